//! Mosquitto's classic files as the server writes them: the `$7$` password hash, the
//! `password_file` and the `acl_file`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fleet_protocol::topic::{Channel, OPERATOR_USER_PREFIX, Topics};

use crate::random::{self, RandomnessError};

/// Mosquitto's PBKDF2 iteration count (what `mosquitto_passwd` writes).
const ITERATIONS: u32 = 101;

/// `$7$101$<salt>$<hash>`: Mosquitto's password hash of `password` with a fresh salt.
pub fn password_hash(password: &str) -> Result<String, RandomnessError> {
    Ok(password_hash_with_salt(password, &random::bytes::<12>()?))
}

fn password_hash_with_salt(password: &str, salt: &[u8]) -> String {
    let mut hash = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password.as_bytes(), salt, ITERATIONS, &mut hash);
    format!("$7${ITERATIONS}${}${}", STANDARD.encode(salt), STANDARD.encode(hash))
}

/// The server's own account on an external broker: written into Mosquitto's files (so it
/// may do everything) and recognised by the EMQX hooks. The hash is computed once, so the
/// files stay the same from one sync to the next.
#[derive(Debug, Clone)]
pub struct ServerAccount {
    pub username: String,
    pub password: crate::settings::Secret,
    pub password_hash: String,
}

impl ServerAccount {
    pub fn new(username: String, password: String) -> Result<Self, RandomnessError> {
        let password_hash = password_hash(&password)?;
        Ok(Self { username, password: crate::settings::Secret::new(password), password_hash })
    }
}

/// The `password_file`: the server's account, then one line per device.
///
/// Operator accounts (`op:{name}`, CONTRACT §10) are left out: Mosquitto splits each line
/// at its first `:` and has no escape (`mosquitto_passwd` refuses such usernames), so a
/// line `op:ha:$7$…` would define a user `op` with a broken hash. On Mosquitto with these
/// files operator accounts cannot log in; the ACL file still carries their sections, ready
/// for an authentication that can name them (docs/integrations.md).
pub fn password_file(server: Option<&ServerAccount>, users: &[(String, String)]) -> String {
    let mut out = String::from("# Written by fleet-server; edits are overwritten.\n");
    if let Some(s) = server {
        out.push_str(&format!("{}:{}\n", s.username, s.password_hash));
    }
    for (user, hash) in users.iter().filter(|(u, _)| !u.contains(':')) {
        out.push_str(&format!("{user}:{hash}\n"));
    }
    out
}

/// The `acl_file`: the server's account may do everything; each operator account
/// (`op:{name}` among `users`) reads [`Topics::operator_filters`] and writes Home Assistant
/// install commands; every other user only its own commands and the trust announcement
/// (read) and its own status and presence (write), the rule of
/// [`Topics::device_may_subscribe`] and [`Topics::device_may_publish`].
pub fn acl_file(server: Option<&ServerAccount>, topics: &Topics, users: &[(String, String)]) -> String {
    let mut out = String::from("# Written by fleet-server; edits are overwritten.\n");
    if let Some(s) = server {
        out.push_str(&format!("user {}\ntopic readwrite #\n\n", s.username));
    }
    for (user, _) in users.iter().filter(|(u, _)| u.starts_with(OPERATOR_USER_PREFIX)) {
        out.push_str(&format!("user {user}\n"));
        // With `--ha-discovery`, the discovery prefix is among them.
        for filter in topics.operator_filters() {
            out.push_str(&format!("topic read {filter}\n"));
        }
        out.push_str(&format!("topic write {}\n\n", topics.ha_install("+")));
    }
    let pattern = |channel| topics.device_pattern("%u", channel);
    out.push_str(&format!("pattern read {}\n", pattern(Channel::Commands)));
    out.push_str(&format!("pattern write {}\n", pattern(Channel::Status)));
    out.push_str(&format!("pattern write {}\n", pattern(Channel::Presence)));
    out.push_str(&format!("pattern read {}\n", topics.trust()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_mosquitto_passwd() {
        // Made by `mosquitto_passwd -b pw dev-a secret-a` (Mosquitto 2.0.11).
        let known = "$7$101$UUUksWR1M+7SIuzb$F13aQc9yj92HmpnN27QAhRiGpJFC288oYsaFYmA6h+LqLZ9oxfoWJKOQwnW48CKfNmUBYXz75nP93Y/4F+bLHQ==";
        let salt = STANDARD.decode("UUUksWR1M+7SIuzb").unwrap();
        assert_eq!(password_hash_with_salt("secret-a", &salt), known);
        assert_ne!(password_hash("secret-a").unwrap(), known, "a fresh salt each time");
    }

    #[test]
    fn acl_confines_devices_to_their_topics() {
        let server = ServerAccount {
            username: "fleet-server".into(),
            password: crate::settings::Secret::new("secret"),
            password_hash: "$7$x".into(),
        };
        let acl = acl_file(Some(&server), &Topics::new("acme"), &[]);
        assert_eq!(
            acl.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>(),
            [
                "user fleet-server",
                "topic readwrite #",
                "",
                "pattern read acme/devices/%u/commands",
                "pattern write acme/devices/%u/status",
                "pattern write acme/devices/%u/presence",
                "pattern read acme/trust",
            ]
        );
        let users = [("dev-1".into(), "$7$h".into()), ("op:ha".into(), "$7$o".into())];
        let pw = password_file(Some(&server), &users);
        assert!(pw.ends_with("fleet-server:$7$x\ndev-1:$7$h\n"), "{pw}");
        let acl = acl_file(None, &Topics::new("acme"), &[("op:ha".into(), "$7$o".into())]);
        assert!(
            acl.contains(
                "user op:ha\ntopic read acme/events/#\ntopic read acme/devices/+/presence\ntopic read acme/ha/#\n\
                 topic write acme/ha/+/install\n"
            ),
            "{acl}"
        );
        let ha = Topics::new("acme").with_ha_prefix(Some("homeassistant".into()));
        let acl = acl_file(None, &ha, &[("op:ha".into(), "$7$o".into())]);
        assert!(
            acl.contains("topic read acme/ha/#\ntopic read homeassistant/#\ntopic write acme/ha/+/install\n"),
            "{acl}"
        );
    }
}
