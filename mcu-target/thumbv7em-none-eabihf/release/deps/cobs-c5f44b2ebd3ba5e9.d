/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/cobs-c5f44b2ebd3ba5e9.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cobs-0.3.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cobs-0.3.0/src/dec.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cobs-0.3.0/src/enc.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libcobs-c5f44b2ebd3ba5e9.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cobs-0.3.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cobs-0.3.0/src/dec.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cobs-0.3.0/src/enc.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cobs-0.3.0/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cobs-0.3.0/src/dec.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cobs-0.3.0/src/enc.rs:
