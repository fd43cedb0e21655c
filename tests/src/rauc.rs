//! A RAUC device for the tests of the agent's `rauc` back end, as far as this machine
//! allows (see `tests/rauc/`).
//!
//! Real: Debian's `rauc` (bundle, signature check against a test CA, install through its
//! D-Bus service, slot states, mark-good/mark-bad), `dbus-daemon`, `openssl`. Standing in:
//! the system bus is a private `dbus-daemon`; the slots are image files (`type=raw`); the
//! bootloader is RAUC's `custom` back end with a script keeping its state in a file
//! (`tests/rauc/bootloader.sh`); a reboot restarts `rauc service` with the slot that
//! script would boot (`tests/rauc/reboot.sh`). Bundles are `plain` (`verity` needs
//! device-mapper).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::certs::openssl_ca;

/// The image slot A (bootname `A`) holds before any update.
pub const OLD_IMAGE: &[u8] = b"old image";

/// A private system bus, RAUC's service on it and two file-backed slots in `dir`; the
/// service and the bus are stopped on drop.
#[derive(Debug)]
pub struct RaucBoard {
    pub dir: PathBuf,
    bus_pid: u32,
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rauc")
}

/// Runs `program`; its stdout on success.
fn run(program: &str, args: &[&str], env: &[(String, String)]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().cloned())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!("{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl RaucBoard {
    /// Sets the device up in `dir` (a fresh directory) and "boots" slot A.
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir.join("mnt"))?;
        std::fs::create_dir_all(dir.join("data"))?;
        for script in ["bootloader.sh", "reboot.sh"] {
            std::fs::copy(scripts().join(script), dir.join(script))?;
        }
        openssl_ca(dir, "ca")?;
        let slot = |name: &str| dir.join(name).display().to_string();
        std::fs::write(dir.join("slot0.img"), OLD_IMAGE)?;
        std::fs::File::create(dir.join("slot1.img"))?.set_len(1 << 20)?;
        let conf = format!(
            "[system]\ncompatible=fleet-test\nbootloader=custom\nmountprefix={mnt}\n\
             data-directory={data}\nbundle-formats=plain\n\n\
             [handlers]\nbootloader-custom-backend={bootloader}\n\n\
             [keyring]\npath={ca}\n\n\
             [slot.rootfs.0]\ndevice={a}\ntype=raw\nbootname=A\n\n\
             [slot.rootfs.1]\ndevice={b}\ntype=raw\nbootname=B\n",
            mnt = slot("mnt"),
            data = slot("data"),
            bootloader = slot("bootloader.sh"),
            ca = slot("ca.cert.pem"),
            a = slot("slot0.img"),
            b = slot("slot1.img"),
        );
        std::fs::write(dir.join("system.conf"), conf)?;
        let bus = format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n \
             \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n  \
             <type>system</type>\n  <listen>unix:path={}</listen>\n  <auth>EXTERNAL</auth>\n  \
             <policy context=\"default\">\n    <allow user=\"*\"/> <allow own=\"*\"/>\n    \
             <allow send_destination=\"*\"/> <allow receive_sender=\"*\"/>\n  </policy>\n</busconfig>\n",
            slot("system_bus_socket")
        );
        std::fs::write(dir.join("dbus.conf"), bus)?;
        let config = format!("--config-file={}", slot("dbus.conf"));
        let pid = run("dbus-daemon", &[&config, "--fork", "--print-pid=1"], &[])?;
        let board = Self { dir: dir.to_owned(), bus_pid: pid.trim().parse().context("dbus-daemon's pid")? };
        board.reboot()?;
        Ok(board)
    }

    /// `DBUS_SYSTEM_BUS_ADDRESS` of the private bus, for the agent and `rauc`.
    pub fn env(&self) -> Vec<(String, String)> {
        let address = format!("unix:path={}", self.dir.join("system_bus_socket").display());
        vec![("DBUS_SYSTEM_BUS_ADDRESS".into(), address)]
    }

    /// The agent's flags for this device.
    pub fn flags(&self) -> Vec<String> {
        let reboot = format!("sh {} {}", self.dir.join("reboot.sh").display(), self.dir.display());
        ["--installer", "rauc", "--reboot-command", &reboot].map(str::to_owned).to_vec()
    }

    /// The stand-in reboot: RAUC's service restarted with the slot the bootloader picks.
    pub fn reboot(&self) -> anyhow::Result<()> {
        run("sh", &[self.path("reboot.sh").as_str(), self.path("").as_str()], &self.env()).map(drop)
    }

    /// `rauc status --output-format=json`, parsed as the agent parses it.
    pub fn status(&self) -> anyhow::Result<fleet_agent::install::rauc::RaucStatus> {
        let json = run("rauc", &["status", "--output-format=json"], &self.env())?;
        Ok(fleet_agent::install::rauc::RaucStatus::parse(&json)?)
    }

    /// A bundle of `image` for slot class `rootfs`, signed by this board's CA (`ca`) or
    /// by another CA made for it (any other name).
    pub fn bundle(&self, image: &[u8], version: &str, ca: &str) -> anyhow::Result<Vec<u8>> {
        if !self.dir.join(format!("{ca}.cert.pem")).exists() {
            openssl_ca(&self.dir, ca)?;
        }
        let input = self.dir.join(format!("bundle-{version}-{ca}"));
        std::fs::create_dir_all(&input)?;
        std::fs::write(input.join("rootfs.img"), image)?;
        // `rauc bundle` rewrites the manifest in its input folder: written fresh each time.
        let manifest = format!(
            "[update]\ncompatible=fleet-test\nversion={version}\n\n[bundle]\nformat=plain\n\n\
             [image.rootfs]\nfilename=rootfs.img\n"
        );
        std::fs::write(input.join("manifest.raucm"), manifest)?;
        let out = self.dir.join(format!("update-{version}-{ca}.raucb"));
        let _ = std::fs::remove_file(&out);
        let file = |name: String| self.path(&name);
        run(
            "rauc",
            &[
                &format!("--cert={}", file(format!("{ca}.signer.cert.pem"))),
                &format!("--key={}", file(format!("{ca}.signer.key.pem"))),
                &format!("--keyring={}", file(format!("{ca}.cert.pem"))),
                "bundle",
                input.to_str().context("utf-8")?,
                out.to_str().context("utf-8")?,
            ],
            &[],
        )?;
        Ok(std::fs::read(out)?)
    }

    /// The stand-in bootloader's state file (`primary=`, `state_A=`, `state_B=`).
    pub fn boot_state(&self) -> String {
        std::fs::read_to_string(self.dir.join("boot.state")).unwrap_or_default()
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for RaucBoard {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("service.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = Command::new("kill").arg(self.bus_pid.to_string()).status();
    }
}
