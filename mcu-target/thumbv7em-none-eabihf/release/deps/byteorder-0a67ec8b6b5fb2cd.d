/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/byteorder-0a67ec8b6b5fb2cd.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/byteorder-1.5.0/src/lib.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libbyteorder-0a67ec8b6b5fb2cd.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/byteorder-1.5.0/src/lib.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libbyteorder-0a67ec8b6b5fb2cd.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/byteorder-1.5.0/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/byteorder-1.5.0/src/lib.rs:
