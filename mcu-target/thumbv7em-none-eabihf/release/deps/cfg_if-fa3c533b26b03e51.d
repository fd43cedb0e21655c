/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/cfg_if-fa3c533b26b03e51.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libcfg_if-fa3c533b26b03e51.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libcfg_if-fa3c533b26b03e51.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs:
