//! The open-files limit of the processes a bench starts. A process inherits this bench's
//! hard limit (and raises its soft limit to it); when a run needs more, the process is
//! started under `prlimit --nofile=N:N`, as an operator sets `LimitNOFILE=N` in a unit
//! file. Raising a hard limit takes CAP_SYS_RESOURCE: without it the run is refused at
//! once with the numbers, rather than failing device by device minutes later.

use crate::server::Backends;

/// Descriptors the server holds per device connected to the embedded broker (its socket,
/// which the CONNECT gate hands to rmqtt), and beside them (HTTP clients, the database,
/// blobs): the server's own estimate (server/src/limits.rs).
const SERVER_PER_DEVICE: u64 = 1;
const SERVER_BESIDE: u64 = 1024;

/// What a simulator needs beside one descriptor per device (its MQTT connection): the
/// `--http-connections` default, idle connections, blocking threads and the process
/// (agent/src/simulate/budget.rs).
const SIMULATOR_BESIDE: u64 = 64 + 64 + 512 + 64;

/// The limit a process needing `needed` descriptors is started with: `None` when the
/// inherited hard limit holds them, else `needed` rounded up to the next 4,096 (said on
/// stdout, with `why`); an error when this process may not raise it.
fn limit_for(what: &str, needed: u64, why: &str) -> anyhow::Result<Option<u64>> {
    let (inherited, _) = fleet_protocol::open_files::raise_to_hard_limit();
    let Some(hard) = inherited.now.filter(|hard| needed > *hard) else {
        return Ok(None);
    };
    let limit = needed.next_multiple_of(4096);
    let allowed = std::process::Command::new("prlimit")
        .args([format!("--nofile={limit}:{limit}"), "--".into(), "true".into()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    anyhow::ensure!(
        allowed,
        "the {what} needs about {needed} open files ({why}) but the hard limit here is {hard} and raising it was not permitted (prlimit; it takes CAP_SYS_RESOURCE): run fewer devices, or raise the limit (ulimit -Hn, LimitNOFILE=) before the bench"
    );
    println!(
        "open files: the {what} runs under prlimit --nofile={limit}:{limit} (soft and hard): it needs about {needed} ({why}), over the hard limit of {hard} here; an operator sets LimitNOFILE={limit} or more"
    );
    Ok(Some(limit))
}

/// The open-files limits of the server and of each simulator (of `per` devices), when they
/// need more than they inherit. With certificates every device has an HTTPS pool of its
/// own: one more connection per device, on both sides, while it is idle (5 s). On an
/// external broker the server holds no device's MQTT connection; the bench's own Mosquitto
/// holds one per device and inherits this bench's limit.
pub fn limits(
    devices: u64,
    per: u64,
    certificates: bool,
    backends: &Backends,
) -> anyhow::Result<(Option<u64>, Option<u64>)> {
    let own_pool = u64::from(certificates);
    let (gate, why_gate) = match backends.mosquitto || backends.mqtt_url.is_some() {
        true => (0, "MQTT ends in the external broker"),
        false => (SERVER_PER_DEVICE, "1 per device on the embedded broker"),
    };
    let why_pool = if certificates { ", 1 per device for its own HTTPS connection" } else { "" };
    let why_server = format!("{why_gate}{why_pool}, 1,024 beside");
    let server = limit_for("server", devices * (gate + own_pool) + SERVER_BESIDE, &why_server)?;
    let why_simulator = match certificates {
        true => "its MQTT connection and its own HTTPS connection per device, 704 beside",
        false => "an MQTT connection per device, 704 beside",
    };
    let simulator = limit_for("simulator", per * (1 + own_pool) + SIMULATOR_BESIDE, why_simulator)?;
    if backends.mosquitto {
        let raised = limit_for("Mosquitto", devices + SERVER_BESIDE, "a connection per device, 1,024 beside")?;
        anyhow::ensure!(raised.is_none(), "the bench starts Mosquitto under its own limit only: run fewer devices");
    }
    Ok((server, simulator))
}
