//! A U-Boot board for the agent's `uboot` and `swupdate` back ends: slot files (`a.img`
//! holds the old image and boots, `b.img` is empty) and a real U-Boot environment image
//! made by `mkenvimage`, read and written with libubootenv's tools; the stand-in
//! bootloader `tests/uboot/bootloader.sh` applies U-Boot's boot-count decision to it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What slot a holds before an update.
pub const OLD_IMAGE: &[u8] = b"old image";
const ENV_SIZE: &str = "0x4000";

/// A device's slots and U-Boot environment in a directory.
#[derive(Debug, Clone)]
pub struct UbootBoard {
    pub dir: PathBuf,
    pub config: PathBuf,
}

/// Runs a tool: its stdout, or what went wrong, naming it.
fn try_run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run(program: &str, args: &[&str]) -> String {
    try_run(program, args).unwrap_or_else(|e| panic!("{e}"))
}

fn text(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

impl UbootBoard {
    /// A new board in `dir`: slot a boots, `bootlimit` trial boots are allowed.
    pub fn new(dir: &Path, bootlimit: u32) -> Self {
        std::fs::create_dir_all(dir).expect("board dir");
        std::fs::write(dir.join("a.img"), OLD_IMAGE).expect("slot a");
        std::fs::write(dir.join("b.img"), b"").expect("slot b");
        let env_text = format!("boot_slot=a\nupgrade_available=0\nbootcount=0\nbootlimit={bootlimit}\n");
        std::fs::write(dir.join("env.txt"), env_text).expect("env.txt");
        let env = dir.join("uboot.env");
        run("mkenvimage", &["-s", ENV_SIZE, "-o", text(&env), text(&dir.join("env.txt"))]);
        let board = Self::at(dir);
        std::fs::write(&board.config, format!("{} 0x0000 {ENV_SIZE}\n", env.display())).expect("fw_env.config");
        board
    }

    /// The board made earlier in `dir`.
    pub fn at(dir: &Path) -> Self {
        Self { dir: dir.to_owned(), config: dir.join("fw_env.config") }
    }

    /// The environment as `fw_printenv` prints it.
    pub fn env(&self) -> HashMap<String, String> {
        self.try_env().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::env`], or why it cannot be read.
    pub fn try_env(&self) -> Result<HashMap<String, String>, String> {
        let out = try_run("fw_printenv", &["-c", text(&self.config)])?;
        Ok(out.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    /// A power cut's boot: the stand-in bootloader's decision on the environment.
    pub fn boot(&self) -> Result<(), String> {
        try_run("sh", &[text(&bootloader()), text(&self.config)]).map(drop)
    }

    /// `fleet-agent run` flags for `--installer uboot` on this board.
    pub fn flags(&self) -> Vec<String> {
        let slot = |s: &str| text(&self.dir.join(s)).to_owned();
        let mut flags = ["--installer", "uboot", "--slot-a", &slot("a.img"), "--slot-b", &slot("b.img")]
            .map(str::to_owned)
            .to_vec();
        flags.extend(self.env_flags());
        flags
    }

    /// The environment's configuration, and the stand-in U-Boot as the reboot.
    pub fn env_flags(&self) -> Vec<String> {
        let reboot = format!("sh {} {}", bootloader().display(), self.config.display());
        ["--uboot-env-config", text(&self.config), "--reboot-command", &reboot].map(str::to_owned).to_vec()
    }
}

/// The stand-in bootloader.
fn bootloader() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("uboot/bootloader.sh")
}
