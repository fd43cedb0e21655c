/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/stable_deref_trait-ba58d13995d4e17e.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/stable_deref_trait-1.2.1/src/lib.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libstable_deref_trait-ba58d13995d4e17e.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/stable_deref_trait-1.2.1/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/stable_deref_trait-1.2.1/src/lib.rs:
