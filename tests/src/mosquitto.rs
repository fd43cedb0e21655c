//! A Mosquitto 2 of a test's own, with per-device isolation: `password_file` and `acl_file`
//! in a directory the server keeps (`--mosquitto-dir`), a plain listener and optionally a
//! TLS one. Needs the `mosquitto` binary (CI installs it); tests that use it are ignored on
//! a bare machine.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::certs::{TestCa, TestCerts};

/// The reason tests that start a Mosquitto are ignored on a bare machine.
pub const NEEDS_MOSQUITTO: &str = "needs the mosquitto binary (CI installs it)";

/// A running Mosquitto; killed when dropped.
#[derive(Debug)]
pub struct Mosquitto {
    pub port: u16,
    pub tls_port: Option<u16>,
    /// Where Mosquitto reads `passwords` and `acl`.
    pub dir: PathBuf,
    child: Child,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Mosquitto {
    /// Starts Mosquitto on free ports, reading its files from `dir` (empty ones are made if
    /// the server has not written them yet); with `tls`, a TLS listener too.
    pub fn start(dir: &Path, tls: Option<&TestCerts>) -> Self {
        Self::start_with(dir, tls, None)
    }

    /// [`Mosquitto::start`]; with `device_ca` (and `tls`), the TLS listener requires a client
    /// certificate of that CA, takes its CN as the username and checks it against the CRL
    /// the server keeps in `dir` (`devices.crl`, an empty one of `device_ca` until then).
    pub fn start_with(dir: &Path, tls: Option<&TestCerts>, device_ca: Option<&TestCa>) -> Self {
        std::fs::create_dir_all(dir).expect("mosquitto dir");
        if let Some(ca) = device_ca {
            let crl = dir.join("devices.crl");
            if !crl.exists() {
                std::fs::write(&crl, ca.empty_crl()).expect("placeholder CRL");
            }
        }
        for file in ["passwords", "acl"] {
            let path = dir.join(file);
            if !path.exists() {
                std::fs::write(&path, "").expect("placeholder file");
            }
        }
        let port = free_port();
        let tls_port = tls.map(|_| free_port());
        let mut conf = format!(
            "per_listener_settings false\nallow_anonymous false\npassword_file {dir}/passwords\n\
             acl_file {dir}/acl\npersistence false\nuser {user}\nmax_queued_messages 100000\n\
             max_inflight_messages 1000\nlog_dest file {dir}/mosquitto.log\n\
             listener {port} 127.0.0.1\nuse_username_as_clientid true\n",
            dir = dir.display(),
            user = current_user(),
        );
        if let (Some(certs), Some(tls_port)) = (tls, tls_port) {
            conf.push_str(&format!(
                "listener {tls_port} 127.0.0.1\nuse_username_as_clientid true\ncertfile {}\nkeyfile {}\n",
                certs.cert.display(),
                certs.key.display()
            ));
            if let Some(ca) = device_ca {
                conf.push_str(&format!(
                    "cafile {}
require_certificate true
use_identity_as_username true
crlfile {}/devices.crl
",
                    ca.cert.display(),
                    dir.display()
                ));
            }
        }
        let conf_path = dir.join("mosquitto.conf");
        std::fs::write(&conf_path, conf).expect("mosquitto.conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto runs (install it: apt-get install mosquitto)");
        let broker = Self { port, tls_port, dir: dir.to_owned(), child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return broker;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("mosquitto did not start: {}", std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default());
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    pub fn tls_url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.tls_port.expect("started with TLS"))
    }

    /// Whether `url` is one of this broker's listeners.
    pub fn serves(&self, url: &str) -> bool {
        url == self.url() || self.tls_port.is_some_and(|_| url == self.tls_url())
    }

    /// Its process id (to read its CPU time and memory).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The shell command that makes this Mosquitto reload its files.
    pub fn reload_command(&self) -> String {
        format!("kill -HUP {}", self.child.id())
    }

    /// Points a server's settings at this Mosquitto as user `fleet-server`, keeping the
    /// files in `self.dir`.
    pub fn configure(&self, settings: &mut fleet_server::Settings, url: String) {
        let password = self.dir.join("server.password");
        if !password.exists() {
            std::fs::write(&password, "test-server-password-0123456789\n").expect("server password");
        }
        settings.mqtt_url = Some(url);
        settings.mqtt_username = Some(SERVER_USER.into());
        settings.mqtt_password_file = Some(password);
        settings.mosquitto_dir = Some(self.dir.clone());
        settings.mosquitto_reload_command = Some(self.reload_command());
    }
}

/// The server's username on a test Mosquitto.
pub const SERVER_USER: &str = "fleet-server";

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
