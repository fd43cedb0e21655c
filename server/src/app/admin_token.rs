//! The admin token at start-up: its hash goes into the database, where every replica finds
//! it. `FLEET_ADMIN_TOKEN` replaces the stored one (that is how it is rotated); without it
//! the token file in the data directory is used (created on first start, mode 0600) unless
//! the database already holds an admin token, which then stays.

use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use fleet_protocol::api::TokenScope;

use super::StartupError;
use crate::settings::Settings;
use crate::store::{OperatorTokenRecord, Store};
use crate::token::{ADMIN_TOKEN_NAME, ADMIN_TOKEN_PREFIX, generate_token, hash_token};

/// The shortest admin token accepted from `FLEET_ADMIN_TOKEN`.
const MIN_LEN: usize = 16;

/// Puts the admin token's hash in the database.
pub async fn set_admin_token(settings: &Settings, store: &dyn Store) -> Result<(), StartupError> {
    let now = store.now_ms().await?;
    let record = |token: &str| OperatorTokenRecord {
        name: ADMIN_TOKEN_NAME.into(),
        scope: TokenScope::Admin,
        token_hash: hash_token(token),
        created_at_ms: now,
    };
    match &settings.admin_token {
        Some(token) if token.expose().len() < MIN_LEN => Err(StartupError::AdminTokenTooShort),
        Some(token) => {
            store.put_operator_token(&record(token.expose())).await?;
            tracing::info!("admin token set from FLEET_ADMIN_TOKEN");
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
