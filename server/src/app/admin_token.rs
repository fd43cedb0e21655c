//! The admin token at start-up: its hash goes into the database, where every replica finds
//! it. `FLEET_ADMIN_TOKEN` or `--admin-token-file` replaces the stored one (that is how it
//! is rotated) and must be as strong as a generated token; without them the token file in
//! the data directory is used (created on first start, mode 0600) unless the database
//! already holds an admin token, which then stays.

use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use fleet_protocol::api::TokenScope;

use super::StartupError;
use crate::settings::Settings;
use crate::store::{OperatorTokenRecord, Store};
use crate::token::{ADMIN_TOKEN_NAME, ADMIN_TOKEN_PREFIX, generate_token, hash_token};

/// The shortest admin token an operator may set: as long as the random part of a generated
/// token (256 bits in URL-safe base64), or of `openssl rand -base64 32`.
pub const MIN_LEN: usize = 43;
/// Fewer different characters than this is a pattern, not randomness. Random tokens of
/// [`MIN_LEN`] have far more: about 32 in base64, all 16 in 64 hex digits.
pub const MIN_DISTINCT: usize = 12;

/// Refuses an operator-set admin token weaker than a generated one. Randomness cannot be
/// measured from one string; length and variety refuse the guessable ones people type.
pub fn check_strength(token: &str) -> Result<(), StartupError> {
    let distinct: std::collections::HashSet<char> = token.chars().collect();
    if token.chars().count() < MIN_LEN || distinct.len() < MIN_DISTINCT {
        return Err(StartupError::AdminTokenWeak);
    }
    Ok(())
}

/// The admin token the operator set: `FLEET_ADMIN_TOKEN` or the first line of
/// `--admin-token-file`.
fn operator_token(settings: &Settings) -> Result<Option<String>, StartupError> {
    match (&settings.admin_token, &settings.admin_token_file) {
        (Some(_), Some(_)) => Err(StartupError::AdminTokenTwice),
        (Some(token), None) => Ok(Some(token.expose().to_owned())),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| StartupError::AdminToken(path.clone(), e))?;
            Ok(Some(text.lines().next().unwrap_or_default().trim().to_owned()))
        }
        (None, None) => Ok(None),
    }
}

/// Puts the admin token's hash in the database.
pub async fn set_admin_token(settings: &Settings, store: &dyn Store) -> Result<(), StartupError> {
    let now = store.now_ms().await?;
    let record = |token: &str| OperatorTokenRecord {
        name: ADMIN_TOKEN_NAME.into(),
        scope: TokenScope::Admin,
        token_hash: hash_token(token),
        mqtt: false,
        broker_password_hash: None,
        created_at_ms: now,
    };
    match operator_token(settings)? {
        Some(token) => {
            check_strength(&token)?;
            store.put_operator_token(&record(&token)).await?;
            tracing::info!("admin token set from FLEET_ADMIN_TOKEN or --admin-token-file");
            Ok(())
        }
        None => {
            let path = settings.data_dir.join("admin.token");
            let token = load_or_create(&path)?;
            let wanted = record(&token);
            if store.init_operator_token(&wanted).await?.token_hash != wanted.token_hash {
                tracing::warn!(
                    path = %path.display(),
                    "the database holds another admin token (set by FLEET_ADMIN_TOKEN or another replica); \
                     the one in this file is not valid"
                );
            }
            Ok(())
        }
    }
}

/// Reads the admin token file, or creates it on first start. Logs the path, never the
/// token.
fn load_or_create(path: &Path) -> Result<String, StartupError> {
    let err = |e| StartupError::AdminToken(path.to_owned(), e);
    match std::fs::read_to_string(path) {
        Ok(token) if !token.trim().is_empty() => {
            tracing::info!(path = %path.display(), "admin token loaded");
            return Ok(token.trim().to_owned());
        }
        Ok(_) => return Err(err(io::Error::other("file is empty"))),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err(e)),
        Err(_) => {}
    }
    let token = generate_token(ADMIN_TOKEN_PREFIX)?;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(err)?;
    file.write_all(token.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(err)?;
    tracing::info!(path = %path.display(), "admin token created");
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_tokens_must_be_as_strong_as_generated_ones() {
        let generated = generate_token(ADMIN_TOKEN_PREFIX).unwrap();
        assert!(check_strength(&generated).is_ok());
        assert!(check_strength("0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0").is_ok());
        for weak in ["sixteen-chars-ok", "test-admin-token-0123456789abcdef", &"ab".repeat(40)] {
            assert!(matches!(check_strength(weak), Err(StartupError::AdminTokenWeak)), "{weak}");
        }
    }
}
