/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/num_conv-c2837b1b062e1952.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/num-conv-0.2.2/src/lib.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libnum_conv-c2837b1b062e1952.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/num-conv-0.2.2/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/num-conv-0.2.2/src/lib.rs:
