//! `rollouts create --window 'Mon-Fri 01:00-04:00 Europe/Berlin'`: the compact form of a
//! maintenance window, made the request's JSON object. Only its shape is checked here
//! (days, a time range, a zone); the server judges the days, times and zone and answers
//! 400 `bad_request` with what is wrong.

use fleet_protocol::api::MaintenanceWindow;

/// `DAYS START-END ZONE`, e.g. `Mon-Fri 01:00-04:00 Europe/Berlin` or `Sat,Sun 22:00-02:00 UTC`.
pub fn parse_window(text: &str) -> Result<MaintenanceWindow, String> {
    let usage = || format!("`{text}`: expected DAYS START-END ZONE, e.g. 'Mon-Fri 01:00-04:00 Europe/Berlin'");
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [days, range, zone] = parts[..] else {
        return Err(usage());
    };
    let (start, end) = range.split_once('-').ok_or_else(usage)?;
    Ok(MaintenanceWindow {
        days: days.to_owned(),
        start: start.to_owned(),
        end: end.to_owned(),
        time_zone: zone.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compact_form_becomes_the_object() {
        let w = parse_window("Mon-Fri 01:00-04:00 Europe/Berlin").unwrap();
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            serde_json::json!({"days": "Mon-Fri", "start": "01:00", "end": "04:00", "time_zone": "Europe/Berlin"})
        );
        let w = parse_window("  Mon,Wed-Fri   22:00-02:00 UTC ").unwrap();
        assert_eq!((w.days.as_str(), w.start.as_str(), w.end.as_str()), ("Mon,Wed-Fri", "22:00", "02:00"));
        for bad in ["Mon-Fri 01:00-04:00", "Mon-Fri 01:00 Europe/Berlin", "Mon-Fri 01:00-04:00 UTC extra", ""] {
            assert!(parse_window(bad).unwrap_err().contains("expected DAYS START-END ZONE"), "{bad}");
        }
    }
}
