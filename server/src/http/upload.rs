//! Receiving an artifact: `multipart/form-data` with the part `envelope` (DSSE JSON)
//! followed by the part `file`.
//!
//! Verify, then read: the envelope is verified against the registered keys before the
//! manifest is parsed, and the manifest is checked (kind, size cap, duplicate version,
//! free space) before a single byte of the file is accepted. The file is streamed to a
//! temporary blob while it is hashed and counted, cut off the moment it exceeds the signed
//! size, and only a file of exactly the signed size and digest is moved into place.
//! Any refusal leaves nothing behind: the temporary file is deleted on drop.
//!
//! A refusal made from the envelope alone comes while the client is still sending the file;
//! answering at once and closing would reset the connection under it, and the client would
//! see a broken pipe instead of the refusal. So the rest of the body is read and dropped
//! first, up to [`READ_ON_AFTER_REFUSAL`] bytes and [`READ_ON_FOR`]; past those the
//! connection is cut.
//!
//! Before the file begins, the body is metered ([`UploadBudget`]): part headers have no
//! bound of their own in multer, so a body that runs past the envelope's size and a margin
//! before the `file` part is refused (413) without being buffered.

use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartError};
use fleet_protocol::envelope::MAX_ENVELOPE_BYTES;
use fleet_protocol::{ArtifactKind, Envelope, ErrorCode, Manifest, PublicKey, Verifier};

use super::error::{ApiError, InternalError};
use super::upload_budget::{BEFORE_FILE, UploadBudget};
use crate::blobs::{BlobUpload, FinishedUpload};
use crate::state::AppState;
use crate::store::{ArtifactRecord, NewArtifact, StoreError};

/// Space kept free on the blob file system beyond the artifact itself.
const DISK_RESERVE: u64 = 64 * 1024 * 1024;
/// The most of a refused upload's body read and dropped before the refusal is sent.
const READ_ON_AFTER_REFUSAL: u64 = 64 * 1024 * 1024;
/// The longest a refused upload's body is read on.
const READ_ON_FOR: std::time::Duration = std::time::Duration::from_secs(5);

fn multipart_error(e: MultipartError) -> ApiError {
    ApiError::bad_request(format!("malformed multipart body: {}", e.body_text()))
}

async fn next_part<'m>(multipart: &'m mut Multipart, expected: &str) -> Result<Field<'m>, ApiError> {
    let field = multipart.next_field().await.map_err(multipart_error)?;
    match field {
        Some(f) if f.name() == Some(expected) => Ok(f),
        Some(f) => Err(ApiError::bad_request(format!(
            "expected the part `{expected}` here, got `{}`; send `envelope` first, then `file`",
            f.name().unwrap_or("")
        ))),
        None => Err(ApiError::bad_request(format!("missing the part `{expected}`"))),
    }
}

/// Reads the envelope part, bounded in size.
async fn read_envelope(mut field: Field<'_>) -> Result<Vec<u8>, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if buf.len() + chunk.len() > MAX_ENVELOPE_BYTES {
            return Err(ApiError::new(ErrorCode::BadEnvelope, format!("envelope exceeds {MAX_ENVELOPE_BYTES} bytes")));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Verifies the envelope against the registered keys and checks the manifest.
async fn admit(app: &AppState, kind: ArtifactKind, bytes: &[u8]) -> Result<NewArtifact, ApiError> {
    let envelope = Envelope::from_json(bytes).map_err(|e| ApiError::new(ErrorCode::BadEnvelope, e.to_string()))?;
    let keys = app.store.active_keys().await?;
    let keys = keys.iter().filter_map(|k| PublicKey::from_pem(&k.public_key_pem).ok());
    let verified = Verifier::new(keys, app.upload_threshold).verify(&envelope)?;
    let manifest = Manifest::from_slice(&verified.payload)?;
    if manifest.kind != kind {
        return Err(ApiError::new(
            ErrorCode::BadManifest,
            format!("manifest kind is `{}`; this endpoint takes `{kind}`", manifest.kind),
        ));
    }
    if manifest.size > app.max_artifact_size {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("signed size {} exceeds the limit of {} bytes", manifest.size, app.max_artifact_size),
        ));
    }
    if app.store.artifact_version_exists(kind, &manifest.name, &manifest.version).await? {
        return Err(version_exists(&manifest));
    }
    let free = app.blobs.available_space()?;
    if free < manifest.size.saturating_add(DISK_RESERVE) {
        return Err(ApiError::new(
            ErrorCode::InsufficientStorage,
            format!("{} bytes needed, {free} free on the blob store", manifest.size + DISK_RESERVE),
        ));
    }
    Ok(NewArtifact {
        id: crate::new_id()?,
        manifest_json: String::from_utf8(verified.payload)
            .map_err(|_| ApiError::new(ErrorCode::BadManifest, "manifest is not UTF-8"))?,
        envelope_json: serde_json::to_string(&envelope)
            .map_err(|e| InternalError::caused_by("writing the envelope as JSON", e))?,
        signers: verified.signers.into_iter().collect(),
        created_at_ms: crate::now_ms(),
        manifest,
    })
}

fn version_exists(m: &Manifest) -> ApiError {
    ApiError::new(ErrorCode::VersionExists, format!("{} {} {} is already uploaded", m.kind, m.name, m.version))
}

/// Streams the file part into a temporary blob, never past the signed size.
async fn receive_file(app: &AppState, mut field: Field<'_>, manifest: &Manifest) -> Result<BlobUpload, ApiError> {
    let mut upload = app.blobs.begin().await?;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if upload.len() + chunk.len() as u64 > manifest.size {
            return Err(ApiError::new(
                ErrorCode::SizeMismatch,
                format!("file is longer than the signed size of {} bytes", manifest.size),
            ));
        }
        upload.write(chunk).await?;
    }
    Ok(upload)
}

/// Reads and drops the rest of a refused upload's body, up to [`READ_ON_AFTER_REFUSAL`].
async fn read_on(mut multipart: Multipart) {
    let mut read = 0u64;
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            read += chunk.len() as u64;
            if read > READ_ON_AFTER_REFUSAL {
                return;
            }
        }
    }
}

/// Handles one upload end to end; on success the blob is in place and the record stored.
/// `multipart` reads a body metered by `budget`.
pub async fn receive(
    app: &AppState,
    kind: ArtifactKind,
    multipart: Multipart,
    budget: &UploadBudget,
) -> Result<ArtifactRecord, ApiError> {
    match receive_metered(app, kind, multipart, budget).await {
        Err(_) if budget.exceeded() => Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("the parts before `file` exceed {BEFORE_FILE} bytes (an envelope is at most {MAX_ENVELOPE_BYTES})"),
        )),
        result => result,
    }
}

async fn receive_metered(
    app: &AppState,
    kind: ArtifactKind,
    mut multipart: Multipart,
    budget: &UploadBudget,
) -> Result<ArtifactRecord, ApiError> {
    let envelope_bytes = read_envelope(next_part(&mut multipart, "envelope").await?).await?;
    let new = match admit(app, kind, &envelope_bytes).await {
        Ok(new) => new,
        Err(refusal) => {
            budget.lift();
            let _ = tokio::time::timeout(READ_ON_FOR, read_on(multipart)).await;
            return Err(refusal);
        }
    };
    let manifest = &new.manifest;

    let field = next_part(&mut multipart, "file").await?;
    budget.lift();
    let upload = receive_file(app, field, manifest).await?;
    if let Some(extra) = multipart.next_field().await.map_err(multipart_error)? {
        return Err(ApiError::bad_request(format!("unexpected part `{}` after `file`", extra.name().unwrap_or(""))));
    }
    let finished = upload.finish().await?;
    store(app, &new, finished).await
}

/// Checks the received file against the manifest, then moves its blob into place and
/// stores the record; a blob this upload created is removed again if the record is not.
async fn store(app: &AppState, new: &NewArtifact, finished: FinishedUpload) -> Result<ArtifactRecord, ApiError> {
    let manifest = &new.manifest;
    if finished.len != manifest.size {
        return Err(ApiError::new(
            ErrorCode::SizeMismatch,
            format!("file is {} bytes; the manifest signs {}", finished.len, manifest.size),
        ));
    }
    if finished.digest != manifest.sha256 {
        return Err(ApiError::new(
            ErrorCode::DigestMismatch,
            format!("file sha256 is {}; the manifest signs {}", finished.digest, manifest.sha256),
        ));
    }

    let _lifecycle = app.blobs.lock().await?;
    let created = app.blobs.commit(finished).await?;
    match app.store.insert_artifact(new).await {
        Ok(record) => Ok(record),
        Err(e) => {
            if created && !app.store.blob_referenced(&manifest.sha256.to_hex()).await.unwrap_or(true) {
                app.blobs.remove(&manifest.sha256).await?;
            }
            Err(match e {
                StoreError::Conflict => version_exists(manifest),
                e => e.into(),
            })
        }
    }
}
