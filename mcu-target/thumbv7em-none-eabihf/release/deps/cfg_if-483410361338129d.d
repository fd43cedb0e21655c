/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/cfg_if-483410361338129d.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libcfg_if-483410361338129d.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs:
