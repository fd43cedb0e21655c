/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/byteorder-59754681665e8d42.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/byteorder-1.5.0/src/lib.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libbyteorder-59754681665e8d42.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/byteorder-1.5.0/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/byteorder-1.5.0/src/lib.rs:
