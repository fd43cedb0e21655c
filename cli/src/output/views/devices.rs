//! The inventory: `devices list` and `devices show`.

use fleet_protocol::api::DeviceInfo;
use fleet_protocol::message::Installed;
use time::OffsetDateTime;

use super::{ago, detail, plural, yes_no};
use crate::output::Table;

/// `gateway-os 1.1.0`, or empty.
pub fn installed(i: Option<&Installed>) -> String {
    i.map(|i| format!("{} {}", i.name, i.version)).unwrap_or_default()
}

/// `site=berlin, ring=canary`.
pub fn labels(d: &DeviceInfo) -> String {
    d.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

/// `ID  HARDWARE  FIRMWARE  ONLINE  LAST SEEN`.
pub fn table(devices: &[DeviceInfo], now: OffsetDateTime) -> Table {
    let mut t = Table::new(["ID", "HARDWARE", "FIRMWARE", "ONLINE", "LAST SEEN"]);
    for d in devices {
        let seen = d.last_seen.as_deref().map_or_else(|| "never".to_owned(), |at| ago(at, now));
        t.row([d.id.clone(), d.hardware.clone(), installed(d.firmware.as_ref()), yes_no(d.online).into(), seen]);
    }
    t
}

/// `3 devices, 1 online`.
pub fn count_line(devices: &[DeviceInfo]) -> String {
    let online = devices.iter().filter(|d| d.online).count();
    format!("{}, {online} online", plural(devices.len(), "device"))
}

/// `devices show`.
pub fn summary(d: &DeviceInfo, now: OffsetDateTime) -> String {
    let seen = d.last_seen.as_deref().map_or_else(|| "never".to_owned(), |at| format!("{at} ({})", ago(at, now)));
    let rollout = d.rollout.as_ref().map_or_else(String::new, |r| {
        format!("{} ({})", r["id"].as_str().unwrap_or("?"), r["state"].as_str().unwrap_or("?"))
    });
    let with_digest = |i: Option<&Installed>| i.map(|i| format!("{} {} sha256 {}", i.name, i.version, i.sha256));
    detail(&[
        ("device", d.id.clone()),
        ("hardware", d.hardware.clone()),
        ("labels", labels(d)),
        ("firmware", with_digest(d.firmware.as_ref()).unwrap_or_default()),
        ("config", with_digest(d.config.as_ref()).unwrap_or_default()),
        ("online", yes_no(d.online).into()),
        ("last seen", seen),
        ("rollout", rollout),
        ("registered", d.created_at.clone()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn device(id: &str, online: bool, last_seen: Option<&str>) -> DeviceInfo {
        serde_json::from_value(serde_json::json!({
            "id": id, "hardware": "rpi4", "labels": {"site": "berlin"},
            "firmware": {"name": "gateway-os", "version": "1.1.0", "sha256": "ab".repeat(32)},
            "config": null, "online": online, "last_seen": last_seen,
            "rollout": {"id": "r-1", "state": "running"}, "created_at": "2026-12-01T00:00:00Z"
        }))
        .unwrap()
    }

    const NOW: OffsetDateTime = datetime!(2026-12-06 12:00:00 UTC);

    #[test]
    fn the_list_shows_firmware_presence_and_age_with_a_count() {
        let devices = [device("gw-1", true, Some("2026-12-06T11:59:50Z")), device("gw-2", false, None)];
        assert_eq!(
            table(&devices, NOW).render(),
            "ID    HARDWARE  FIRMWARE          ONLINE  LAST SEEN\n\
             gw-1  rpi4      gateway-os 1.1.0  yes     10s ago\n\
             gw-2  rpi4      gateway-os 1.1.0  no      never\n"
        );
        assert_eq!(count_line(&devices), "2 devices, 1 online");
        assert_eq!(count_line(&devices[..1]), "1 device, 1 online");
    }

    #[test]
    fn show_is_a_summary_not_json() {
        let text = summary(&device("gw-1", false, Some("2026-12-06T11:00:00Z")), NOW);
        assert!(text.starts_with("device      gw-1\n"), "{text}");
        assert!(text.contains("labels      site=berlin\n"), "{text}");
        assert!(text.contains("config      -\n"), "{text}");
        assert!(text.contains("last seen   2026-12-06T11:00:00Z (1h ago)\n"), "{text}");
        assert!(text.contains("rollout     r-1 (running)\n"), "{text}");
        assert!(!text.contains('{'));
    }
}
