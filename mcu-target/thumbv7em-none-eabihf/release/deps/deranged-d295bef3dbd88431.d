/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/deranged-d295bef3dbd88431.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/deranged-0.5.9/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/deranged-0.5.9/src/unsafe_wrapper.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libderanged-d295bef3dbd88431.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/deranged-0.5.9/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/deranged-0.5.9/src/unsafe_wrapper.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/deranged-0.5.9/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/deranged-0.5.9/src/unsafe_wrapper.rs:
