//! The agent's `swupdate` back end (CONTRACT §9) with the real server, the real agent,
//! Debian's real `swupdate` and the real libubootenv tools on a U-Boot environment image
//! made by `mkenvimage`. The `.swu` is signed (CMS, by a test CA, with `openssl`) and its
//! `sw-description` has one set with a mode per slot, each a `raw` image written to that
//! slot's file; the agent picks the mode of the slot that is not booted (`-e`) and has
//! SWUpdate check the signature (`-k`) and the hardware (`-H`). What stands in: the slots
//! are files, and the reboot is the U-Boot stand-in of the `uboot` tests
//! (`tests/uboot/bootloader.sh`) while the agent goes on in-process.

use std::path::Path;
use std::process::Command;

use fleet_tests::TestApp;
use fleet_tests::certs::openssl_ca;
use sha2::{Digest as _, Sha256};

use crate::backend::{Device, update};
use crate::uboot::{Board, hex};

/// The slot image: 1 MiB, more than a Unix socket's send buffer holds (about 208 KiB), as
/// real images are. SWUpdate 2022.12's `-i` client ends a run as successful when it has
/// written the whole file before SWUpdate's installer woke (agent/src/install/swupdate.rs
/// says why and how the agent tells); a file the socket cannot hold makes it wait for the
/// installer, so these tests are not at the mercy of that race.
fn payload() -> Vec<u8> {
    (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect()
}

/// A `.swu` of `payload` for `board`, signed by the CA `ca` made in its directory.
fn swu(board: &Board, payload: &[u8], ca: &str) -> Vec<u8> {
    let dir = board.dir.join(format!("swu-{ca}"));
    std::fs::create_dir_all(&dir).unwrap();
    if !board.dir.join(format!("{ca}.cert.pem")).exists() {
        openssl_ca(&board.dir, ca).unwrap();
    }
    std::fs::write(dir.join("rootfs.img"), payload).unwrap();
    let sha256 = hex(&Sha256::digest(payload));
    let copy = |slot: &str| {
        let device = board.dir.join(format!("{slot}.img"));
        format!(
            "copy-{slot} = {{ images: ( {{ filename = \"rootfs.img\"; device = \"{}\"; type = \"raw\"; \
             sha256 = \"{sha256}\"; }} ); }};",
            device.display()
        )
    };
    let description = format!(
        "software =\n{{\n\tversion = \"2.0.0\";\n\thardware-compatibility: [ \"1.0\" ];\n\
         \tstable = {{\n\t\t{}\n\t\t{}\n\t}};\n}}\n",
        copy("a"),
        copy("b")
    );
    std::fs::write(dir.join("sw-description"), description).unwrap();
    let signer = |s: &str| board.dir.join(format!("{ca}.signer.{s}.pem")).display().to_string();
    shell(
        &dir,
        &format!(
            "openssl cms -sign -in sw-description -out sw-description.sig -signer {} -inkey {} \
             -outform DER -nosmimecap -binary",
            signer("cert"),
            signer("key")
        ),
    );
    // sw-description first, its signature second; SWUpdate reads the `crc` cpio format.
    shell(&dir, "printf '%s\\n' sw-description sw-description.sig rootfs.img | cpio -o -H crc > update.swu");
    std::fs::read(dir.join("update.swu")).unwrap()
}

/// Holds the machine's one SWUpdate run until dropped. SWUpdate processes running at once,
/// even with separate `TMPDIR`s, now and then fail each other's runs (`sw-description.sig
/// cannot be opened`, measured: 2 of 100 runs with four at once, none of 160 one at a time
/// under the same CPU load); a device runs one at a time, so the tests do too. A file lock,
/// so separate test processes wait for each other as well.
async fn one_swupdate_at_a_time() -> std::fs::File {
    let path = std::env::temp_dir().join("fleet-tests-swupdate.lock");
    let lock = move || {
        let file = std::fs::File::create(path)?;
        fs4::FileExt::lock(&file)?;
        Ok::<_, std::io::Error>(file)
    };
    tokio::task::spawn_blocking(lock).await.unwrap().expect("the SWUpdate test lock")
}

fn shell(dir: &Path, script: &str) {
    let out = Command::new("sh").arg("-c").arg(script).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A device on `board` with the real agent; SWUpdate checks against the CA `swu`.
fn device(board: &Board, id: &'static str, hardware: &str, extra: &[&str]) -> Device {
    let tmp = board.dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let ca = board.dir.join("swu.cert.pem").display().to_string();
    let mut flags =
        ["--installer", "swupdate", "--swupdate-select", "stable,copy-a,copy-b"].map(str::to_owned).to_vec();
    flags.extend(["--swupdate-ca", &ca, "--swupdate-hardware", hardware].map(str::to_owned));
    flags.extend(board.env_flags());
    flags.extend(extra.iter().map(|s| (*s).to_owned()));
    // SWUpdate's scratch files and sockets stay in the test's directory.
    let env = vec![("TMPDIR".to_owned(), tmp.display().to_string())];
    Device { id, flags, env, state_dir: board.dir.join("state") }
}

#[tokio::test]
#[ignore = "needs swupdate, cpio, libubootenv-tool, u-boot-tools (CI installs them)"]
async fn swupdate_writes_the_inactive_copy_and_the_environment_commits_it() {
    let _swupdate = one_swupdate_at_a_time().await;
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let dir = tempfile::tempdir().unwrap();
    let board = Board::new(dir.path(), 3);
    let file = swu(&board, &payload(), "swu");
    let (done, agent) = update(&app, device(&board, "swu-1", "rpi4:1.0", &[]), file).await;
    assert_eq!(done["counts"]["succeeded"], 1, "{done:#}\n{}", agent.log());
    assert_eq!(std::fs::read(board.dir.join("b.img")).unwrap(), payload(), "mode copy-b wrote slot b");
    assert_eq!(std::fs::read(board.dir.join("a.img")).unwrap(), b"old image", "the running slot is untouched");
    let env = board.env();
    assert_eq!((env["boot_slot"].as_str(), env["upgrade_available"].as_str()), ("b", "0"), "{env:?}");
    assert_eq!(env.get("ustate").map(String::as_str), Some("0"), "{env:?}");
}

#[tokio::test]
#[ignore = "needs swupdate, cpio, libubootenv-tool, u-boot-tools (CI installs them)"]
async fn after_a_failed_health_check_the_old_slot_boots_again() {
    let _swupdate = one_swupdate_at_a_time().await;
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let dir = tempfile::tempdir().unwrap();
    let board = Board::new(dir.path(), 3);
    let file = swu(&board, &payload(), "swu");
    let (done, agent) = update(&app, device(&board, "swu-2", "rpi4:1.0", &["--health-command", "false"]), file).await;
    assert_eq!(done["counts"]["rolled_back"], 1, "{done:#}\n{}", agent.log());
    let env = board.env();
    assert_eq!((env["boot_slot"].as_str(), env["upgrade_available"].as_str()), ("a", "0"), "{env:?}");
    assert_eq!(std::fs::read(board.dir.join("a.img")).unwrap(), b"old image");
}

#[tokio::test]
#[ignore = "needs swupdate, cpio, libubootenv-tool, u-boot-tools (CI installs them)"]
async fn swupdate_refusing_the_image_fails_the_update_and_changes_nothing() {
    let _swupdate = one_swupdate_at_a_time().await;
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let dir = tempfile::tempdir().unwrap();
    let board = Board::new(dir.path(), 3);
    openssl_ca(&board.dir, "swu").unwrap();
    // Our signature over the file is good; SWUpdate's check against its CA (-k) is not.
    let file = swu(&board, &payload(), "stranger");
    let (done, agent) = update(&app, device(&board, "swu-3", "rpi4:1.0", &[]), file).await;
    assert_eq!(done["counts"]["failed"], 1, "{done:#}\n{}", agent.log());
    assert!(agent.log().contains("Authentication of all signatures failed"), "{}", agent.log());
    assert_eq!(std::fs::read(board.dir.join("b.img")).unwrap(), b"", "slot b is not written");
    let env = board.env();
    assert_eq!((env["boot_slot"].as_str(), env["upgrade_available"].as_str()), ("a", "0"), "{env:?}");
}

#[tokio::test]
#[ignore = "needs swupdate, cpio, libubootenv-tool, u-boot-tools (CI installs them)"]
async fn other_hardware_is_refused_by_swupdate() {
    let _swupdate = one_swupdate_at_a_time().await;
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let dir = tempfile::tempdir().unwrap();
    let board = Board::new(dir.path(), 3);
    let file = swu(&board, &payload(), "swu");
    // The .swu is for revision 1.0 only.
    let (done, agent) = update(&app, device(&board, "swu-4", "rpi4:2.0", &[]), file).await;
    assert_eq!(done["counts"]["failed"], 1, "{done:#}\n{}", agent.log());
    assert!(agent.log().contains("not compatible with hardware"), "{}", agent.log());
    assert_eq!(std::fs::read(board.dir.join("b.img")).unwrap(), b"", "slot b is not written");
}
