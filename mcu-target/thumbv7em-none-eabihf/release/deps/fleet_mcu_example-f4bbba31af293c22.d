/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/fleet_mcu_example-f4bbba31af293c22.d: src/main.rs Cargo.toml

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/libfleet_mcu_example-f4bbba31af293c22.rmeta: src/main.rs Cargo.toml

src/main.rs:
Cargo.toml:

# env-dep:CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
# env-dep:CLIPPY_CONF_DIR
