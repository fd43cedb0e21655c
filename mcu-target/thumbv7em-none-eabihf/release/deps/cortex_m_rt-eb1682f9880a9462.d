/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/cortex_m_rt-eb1682f9880a9462.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cortex-m-rt-0.7.7/src/lib.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libcortex_m_rt-eb1682f9880a9462.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cortex-m-rt-0.7.7/src/lib.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libcortex_m_rt-eb1682f9880a9462.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cortex-m-rt-0.7.7/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cortex-m-rt-0.7.7/src/lib.rs:
