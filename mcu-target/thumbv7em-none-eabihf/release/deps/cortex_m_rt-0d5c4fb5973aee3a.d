/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/cortex_m_rt-0d5c4fb5973aee3a.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cortex-m-rt-0.7.7/src/lib.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libcortex_m_rt-0d5c4fb5973aee3a.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cortex-m-rt-0.7.7/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cortex-m-rt-0.7.7/src/lib.rs:
