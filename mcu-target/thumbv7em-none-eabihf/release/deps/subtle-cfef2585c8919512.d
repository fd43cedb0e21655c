/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/subtle-cfef2585c8919512.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/subtle-2.6.1/src/lib.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libsubtle-cfef2585c8919512.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/subtle-2.6.1/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/subtle-2.6.1/src/lib.rs:
