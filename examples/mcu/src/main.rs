//! A bare-metal image with the Fleet OTA update core (`fleet-agent-core`), for a Cortex-M4F.
//!
//! What a board support package provides, and what stands in for it here:
//! - the flash with two image regions and the boot selection (`fleet_agent_core::flash::Board`):
//!   the core's `SimulatedFlash`, two regions of [`REGION`] bytes in RAM;
//! - the network, MQTT and HTTP ([`Network`]): [`Unplugged`], opaque to the optimiser, so
//!   the image links the whole update path as a board's would;
//! - the clock and the reset: part of the two above.
//!
//! The pinned key is the repository's TEST-ONLY release key (firmware-samples/).
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use ed25519_dalek::VerifyingKey;
use fleet_agent_core::flash::SimulatedFlash;
use fleet_agent_core::session::{Network, Session};
use fleet_agent_core::updater::{Identity, Updater};
use fleet_agent_core::verify::{Keys, TrustedKey};
use panic_halt as _;

/// firmware-samples/test-only-release.pub, its 32 raw bytes.
const RELEASE_KEY: [u8; 32] = [
    0xb7, 0x28, 0xb9, 0x5d, 0xa1, 0xcb, 0xb2, 0xe6, 0xd5, 0x93, 0x43, 0x04, 0xd5, 0x86, 0x94, 0x28, 0xfd, 0x2a, 0x94,
    0xfc, 0xd9, 0x49, 0x2e, 0x6e, 0xc8, 0x56, 0x8d, 0x60, 0xec, 0x23, 0x11, 0x41,
];

/// Each simulated image region's size.
const REGION: usize = 16 * 1024;

/// The receive buffers: one MQTT command, one chunk of the image.
const COMMAND_BYTES: usize = 4096;
const CHUNK_BYTES: usize = 4096;

/// No network: every answer is opaque to the optimiser, as a real stack's would be.
struct Unplugged;

impl Network for Unplugged {
    fn current_command(&mut self, into: &mut [u8]) -> Option<usize> {
        black_box(&mut *into);
        black_box(None)
    }

    fn is_server_origin(&self, url: &str) -> bool {
        black_box(url);
        black_box(false)
    }

    fn fetch(&mut self, url: &str, offset: u64, into: &mut [u8]) -> Option<usize> {
        black_box((url, offset, &mut *into));
        black_box(None)
    }

    fn publish(&mut self, report: &[u8]) {
        black_box(report);
    }

    fn healthy(&mut self) -> bool {
        black_box(true)
    }

    fn now(&self) -> i64 {
        black_box(0)
    }
}

#[entry]
fn main() -> ! {
    let keys = [TrustedKey::new(VerifyingKey::from_bytes(&RELEASE_KEY).expect("a valid Ed25519 key"))];
    let identity = Identity { device_id: "mcu-1", hardware: "stm32f411", keys: Keys::new(&keys, 1) };
    // Lent, not moved: the regions stay in one place on the stack.
    let mut flash = SimulatedFlash::new([0xff; REGION], [0xff; REGION]);
    let mut session = Session::new(Updater::open(&mut flash, identity, None, 0), Unplugged);
    let mut command = [0u8; COMMAND_BYTES];
    let mut chunk = [0u8; CHUNK_BYTES];
    session.connected(&mut chunk);
    loop {
        // A board's MQTT client fills `command` with the next message on `…/commands`.
        let len = black_box(0usize).min(COMMAND_BYTES);
        black_box(&mut command);
        if len > 0 {
            session.command(&command[..len], &mut chunk);
        }
    }
}
