/work/wt-fix/mcu-target/release/deps/cortex_m_rt_macros-14b8d41c6c682daf.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cortex-m-rt-macros-0.7.7/src/lib.rs

/work/wt-fix/mcu-target/release/deps/libcortex_m_rt_macros-14b8d41c6c682daf.so: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cortex-m-rt-macros-0.7.7/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cortex-m-rt-macros-0.7.7/src/lib.rs:
