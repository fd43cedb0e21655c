/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/fleet_mcu_example-051f8c04d6e8f282.d: src/main.rs

/work/wt-fix/mcu-target/thumbv7em-none-eabihf/release/deps/fleet_mcu_example-051f8c04d6e8f282: src/main.rs

src/main.rs:
