/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/panic_halt-4b6cd0414e2fab3a.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/panic-halt-1.0.0/src/lib.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libpanic_halt-4b6cd0414e2fab3a.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/panic-halt-1.0.0/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/panic-halt-1.0.0/src/lib.rs:
