/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/subtle-9038fa8cfff90208.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/subtle-2.6.1/src/lib.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libsubtle-9038fa8cfff90208.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/subtle-2.6.1/src/lib.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libsubtle-9038fa8cfff90208.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/subtle-2.6.1/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/subtle-2.6.1/src/lib.rs:
