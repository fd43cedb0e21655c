//! What each resource looks like for people: list tables and `key  value` summaries.
//!
//! - [`rollouts`]: rollouts, their plans, devices and counts (with failure reasons).
//! - [`devices`]: the inventory.
//! - [`registry`]: artifacts, release keys, operator tokens, the audit trail.
//! - [`webhooks`]: webhooks and their deliveries.

pub mod devices;
pub mod registry;
pub mod rollouts;
pub mod webhooks;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `key  value` lines, the values aligned; an empty value reads `-`.
pub fn detail(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| {
            let v = if v.is_empty() { "-" } else { v.as_str() };
            format!("{k:width$}  {v}\n")
        })
        .collect()
}

/// How long ago an RFC 3339 time was, in its largest whole unit (`42s ago`, `5m ago`,
/// `3h ago`, `2d ago`); the text itself when it does not parse.
pub fn ago(at: &str, now: OffsetDateTime) -> String {
    let Ok(then) = OffsetDateTime::parse(at, &Rfc3339) else {
        return at.to_owned();
    };
    let secs = (now - then).whole_seconds();
    match secs {
        ..=0 => "just now".to_owned(),
        1..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

/// `yes` / `no`.
pub fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// `n thing` or `n things`.
pub fn plural(n: usize, thing: &str) -> String {
    if n == 1 { format!("1 {thing}") } else { format!("{n} {thing}s") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn details_align_and_show_empty_values_as_a_dash() {
        let text = detail(&[("id", "gw-1".into()), ("last seen", String::new())]);
        assert_eq!(text, "id         gw-1\nlast seen  -\n");
    }

    #[test]
    fn ages_use_the_largest_whole_unit() {
        let now = datetime!(2026-12-06 12:00:00 UTC);
        assert_eq!(ago("2026-12-06T11:59:18Z", now), "42s ago");
        assert_eq!(ago("2026-12-06T11:54:00Z", now), "6m ago");
        assert_eq!(ago("2026-12-06T09:00:00Z", now), "3h ago");
        assert_eq!(ago("2026-12-04T12:00:00Z", now), "2d ago");
        assert_eq!(ago("2026-12-06T12:00:05Z", now), "just now");
        assert_eq!(ago("yesterday", now), "yesterday");
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "device"), "1 device");
        assert_eq!(plural(0, "device"), "0 devices");
        assert_eq!(plural(100, "device"), "100 devices");
    }
}
