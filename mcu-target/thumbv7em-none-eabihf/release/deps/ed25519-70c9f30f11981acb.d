/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/ed25519-70c9f30f11981acb.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/hex.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/../README.md

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libed25519-70c9f30f11981acb.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/hex.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/../README.md

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/hex.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ed25519-3.0.0/src/../README.md:
