/work/wt-fix/mcu-target/release/deps/rustc_version-d46cfc3507b0d9be.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rustc_version-0.4.1/src/lib.rs

/work/wt-fix/mcu-target/release/deps/librustc_version-d46cfc3507b0d9be.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rustc_version-0.4.1/src/lib.rs

/work/wt-fix/mcu-target/release/deps/librustc_version-d46cfc3507b0d9be.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rustc_version-0.4.1/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rustc_version-0.4.1/src/lib.rs:
