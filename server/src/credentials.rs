//! Device credentials: registering a device (its first token), rotating its token and
//! removing it (both revoke its certificates), and signing a certificate for it. Each change writes the token's hash and its broker password hash, then
//! brings everything that checks credentials in step — remembered tokens are forgotten,
//! Mosquitto's files rewritten, the embedded broker's session closed — and records the
//! action in the audit trail. HTTP handlers call these; they never touch credentials
//! themselves.

use std::collections::BTreeMap;
use std::future::Future;

use fleet_protocol::{DeviceId, HardwareModel};

use crate::audit::Actor;
use crate::random::RandomnessError;
use crate::state::AppState;
use crate::store::{DeviceRecord, NewDevice, StoreError, StoreResult};
use crate::token::{DEVICE_TOKEN_PREFIX, generate_token, hash_token};

/// Why a credential change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("device {0} is already registered")]
    AlreadyRegistered(DeviceId),
    #[error("device {0} not found")]
    UnknownDevice(DeviceId),
    #[error("device certificates need TLS with a device CA (--device-ca-cert or --tls-self-signed)")]
    NoDeviceCa,
    #[error(transparent)]
    Certificate(crate::device_ca::SignError),
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
    #[error("storage: {0}")]
    Store(#[source] StoreError),
    #[error("changing the credentials of {0} stopped half-way: {1}")]
    Interrupted(DeviceId, #[source] tokio::task::JoinError),
}

/// A device and its new token, which is shown once.
pub struct Issued {
    pub device: DeviceRecord,
    pub token: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").field("device", &self.device.id).finish_non_exhaustive()
    }
}

/// A new device to register.
#[derive(Debug)]
pub struct Registration {
    pub id: DeviceId,
    pub hardware: HardwareModel,
    pub labels: BTreeMap<String, String>,
}

/// A token and what is stored for it: its hash, and Mosquitto's hash of it.
struct Hashed {
    token: String,
    token_hash: String,
    broker_hash: String,
}

fn new_device_token() -> Result<Hashed, RandomnessError> {
    let token = generate_token(DEVICE_TOKEN_PREFIX)?;
    let broker_hash = crate::broker::mosquitto::password_hash(&token)?;
    Ok(Hashed { token_hash: hash_token(&token), broker_hash, token })
}

/// Store errors about device `id`.
fn about(id: &DeviceId) -> impl FnOnce(StoreError) -> CredentialsError + '_ {
    move |e| match e {
        StoreError::NotFound => CredentialsError::UnknownDevice(id.clone()),
        StoreError::Conflict => CredentialsError::AlreadyRegistered(id.clone()),
        e => CredentialsError::Store(e),
    }
}

/// Registers a device with a fresh token.
pub async fn register(app: &AppState, actor: &Actor, new: Registration) -> Result<Issued, CredentialsError> {
    let hashed = new_device_token()?;
    let record = NewDevice {
        id: new.id.clone(),
        hardware: new.hardware,
        labels: new.labels,
        token_hash: hashed.token_hash,
        broker_password_hash: hashed.broker_hash,
        created_at_ms: crate::clock::now_ms(),
    };
    let device = app.store.insert_device(&record).await.map_err(about(&new.id))?;
    in_step(app, None).await;
    app.ha_device_changed(&device.id);
    let details = serde_json::json!({"hardware": device.hardware.as_str(), "labels": device.labels});
    app.audit(actor.clone(), "device.registered", new.id.as_str(), details).await;
    Ok(Issued { device, token: hashed.token })
}

/// Gives a device a new token; the old one and its certificates stop working at once.
pub async fn rotate(app: &AppState, actor: &Actor, id: &DeviceId) -> Result<Issued, CredentialsError> {
    let hashed = new_device_token()?;
    let (store, rotated) = (app.store.clone(), id.clone());
    let (token_hash, broker_hash) = (hashed.token_hash, hashed.broker_hash);
    let change = async move {
        store.rotate_device_token(&rotated, &token_hash, &broker_hash).await?;
        store.revoke_device_certificates(&rotated, crate::clock::now_ms()).await
    };
    run_to_end(app, actor, id, "device.token_rotated", change).await?;
    let device = app.store.get_device(id).await.map_err(about(id))?;
    Ok(Issued { device, token: hashed.token })
}

/// Removes a device; its token and certificates stop working at once.
pub async fn remove(app: &AppState, actor: &Actor, id: &DeviceId) -> Result<(), CredentialsError> {
    let (store, removed) = (app.store.clone(), id.clone());
    let change = async move {
        store.delete_device(&removed).await?;
        store.revoke_device_certificates(&removed, crate::clock::now_ms()).await
    };
    run_to_end(app, actor, id, "device.removed", change).await?;
    app.wake_engine();
    app.ha_device_changed(id);
    Ok(())
}

/// Signs a device certificate for `id` (which must be registered) from `csr_pem`.
pub async fn certify(
    app: &AppState,
    actor: &Actor,
    id: &DeviceId,
    csr_pem: &str,
) -> Result<crate::device_ca::Signed, CredentialsError> {
    let ca = app.device_ca.as_ref().ok_or(CredentialsError::NoDeviceCa)?;
    app.store.get_device(id).await.map_err(about(id))?;
    let signed = ca.sign(id, csr_pem, crate::clock::now_ms()).map_err(CredentialsError::Certificate)?;
    app.store.insert_device_certificate(&signed.record).await.map_err(about(id))?;
    let details = serde_json::json!({"serial": signed.record.serial});
    app.audit(actor.clone(), "device.certificate_issued", id.as_str(), details).await;
    Ok(signed)
}

/// Runs `change` (the device's token rotated, or the device removed) to its end even if
/// the request is dropped meanwhile, then brings everything in step and records `action`
/// in the audit trail: an old token never outlives a change that was made, and no change
/// goes unrecorded.
async fn run_to_end(
    app: &AppState,
    actor: &Actor,
    id: &DeviceId,
    action: &'static str,
    change: impl Future<Output = StoreResult<()>> + Send + 'static,
) -> Result<(), CredentialsError> {
    let (app_now, actor, device) = (app.clone(), actor.clone(), id.clone());
    tokio::spawn(async move {
        change.await?;
        in_step(&app_now, Some(&device)).await;
        app_now.audit(actor, action, device.as_str(), serde_json::json!({})).await;
        Ok(())
    })
    .await
    .map_err(|e| CredentialsError::Interrupted(id.clone(), e))?
    .map_err(about(id))
}

/// Brings everything in step after a device was registered (`None`), or its token
/// rotated or the device removed (`Some`): remembered device tokens are forgotten,
/// Mosquitto's files are rewritten and reloaded (which closes sessions whose credentials
/// are gone); the embedded broker closes the device's session.
async fn in_step(app: &AppState, device: Option<&DeviceId>) {
    app.device_tokens.forget_all();
    if let Some(m) = &app.mosquitto {
        m.sync_now().await;
    }
    if let (Some(b), Some(device)) = (&app.broker, device) {
        b.kick(device).await;
    }
}
