/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/hash32-4db27df57afcd44f.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hash32-0.2.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hash32-0.2.1/src/fnv.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hash32-0.2.1/src/murmur3.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libhash32-4db27df57afcd44f.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hash32-0.2.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hash32-0.2.1/src/fnv.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hash32-0.2.1/src/murmur3.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libhash32-4db27df57afcd44f.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hash32-0.2.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hash32-0.2.1/src/fnv.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hash32-0.2.1/src/murmur3.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hash32-0.2.1/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hash32-0.2.1/src/fnv.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hash32-0.2.1/src/murmur3.rs:
