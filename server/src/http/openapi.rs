//! The OpenAPI 3.1 document (`GET /api/v1/openapi.json`, browsable at `/api/docs`),
//! generated from the request and response types. Each operation is described by one
//! annotated function below; a test checks that the operations are exactly the routes the
//! router serves.

#![allow(dead_code)] // The functions below only carry their `#[utoipa::path]`.

use axum::Json;
use fleet_protocol::api::{
    ArtifactInfo, AuditEntry, DeviceInfo, DeviceWithToken, KeyInfo, List, PlannedWave, Rollout, RolloutArtifact,
    RolloutDevice, RolloutOptions, RolloutPlan, RolloutTarget, TokenInfo, TokenScope, TokenWithSecret, WaveProgress,
    WaveState,
};
use fleet_protocol::api::{CertificateRequest, DeviceCertificate, MaintenanceWindow, WhoAmI, WindowState};
use fleet_protocol::envelope::EnvelopeSignature;
use fleet_protocol::events::{DeliveryCounts, NewWebhook, WebhookCreated, WebhookDelivery, WebhookInfo};
use fleet_protocol::message::Installed;
use fleet_protocol::problem::{ErrorCode, Problem};
use fleet_protocol::state::{DeviceState, Reason};
use fleet_protocol::{ArtifactKind, Envelope};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::broker::{EmqxAuthenticate, EmqxAuthorize};
use super::devices::{Register, Relabel};
use super::keys::AddKey;
use super::tokens::CreateToken;
use crate::rollout::plan::{RolloutRequest, WaveGate};

mod shared;
mod webhooks;
use shared::SharedResponses;

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Fleet OTA", description = "Signed firmware and configuration rollouts to device fleets."),
    paths(
        healthz, readyz, metrics, openapi_json,
        keys_list, keys_add, keys_show, keys_revoke,
        firmware_list, firmware_upload, firmware_show, firmware_delete, firmware_blob,
        configs_list, configs_upload, configs_show, configs_delete, configs_blob,
        devices_list, devices_register, devices_show, devices_relabel, devices_remove, devices_rotate_token, devices_certificate,
        devices_command,
        rollouts_list, rollouts_create, rollouts_show, rollouts_delete, rollouts_devices, rollouts_pause, rollouts_resume,
        rollouts_cancel, rollouts_events, rollouts_device_cancel, rollouts_device_retry, rollouts_device_skip,
        tokens_list, tokens_create, tokens_revoke, whoami, audit_list, trust_latest, trust_add, trust_show,
        broker_passwords, broker_acl, emqx_authenticate, emqx_authorize,
        webhooks::webhooks_list, webhooks::webhooks_create, webhooks::webhooks_show, webhooks::webhooks_remove,
        webhooks::webhooks_deliveries,
    ),
    components(schemas(
        Problem, ErrorCode, KeyInfo, ArtifactInfo, DeviceInfo, DeviceWithToken, Installed, Envelope, EnvelopeSignature,
        TokenInfo, TokenScope, TokenWithSecret, WhoAmI, AuditEntry, AddKey, Register, Relabel, CreateToken, RolloutRequest,
        WaveGate, EmqxAuthenticate, EmqxAuthorize, Upload, Rollout, RolloutDevice, RolloutArtifact, RolloutTarget,
        RolloutOptions, WaveProgress, WaveState, RolloutPlan, PlannedWave, DeviceState, Reason, ArtifactKind,
        MaintenanceWindow, WindowState, NewWebhook, WebhookCreated, WebhookInfo, WebhookDelivery, DeliveryCounts, CertificateRequest, DeviceCertificate,
    )),
    modifiers(&BearerAuth, &SharedResponses),
    security(("bearer" = [])),
)]
#[derive(Debug)]
pub struct ApiDoc;

/// Every route takes `Authorization: Bearer <token>` (operator or device), except health.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `multipart/form-data`: `envelope` (the DSSE envelope JSON) first, then `file`.
#[derive(ToSchema)]
struct Upload {
    /// The signed DSSE envelope (JSON).
    envelope: Envelope,
    /// The artifact's bytes, exactly as signed.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

// ---- health, metrics, this document ----

#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process answers")))]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, description = "Database and broker answer"),
        (status = 503, description = "A check failed; the body says which")))]
fn readyz() {}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus metrics", content_type = "application/openmetrics-text"),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem)))]
fn metrics() {}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "This document")))]
fn openapi_json() {}

// ---- keys ----

#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "OK", body = List<KeyInfo>), (status = 400, description = "bad_request: limit outside 1 to 1000", body = Problem), (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem)))]
fn keys_list() {}

#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = AddKey,
    responses((status = 201, description = "Created", body = KeyInfo), (status = 200, description = "Already registered under this name: the registered key", body = KeyInfo), (status = 400, description = "bad_request: malformed input", body = Problem), (status = 401, description = "unauthorized: no or an unknown token", body = Problem),
        (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem), (status = 409, description = "already_exists (the key under another name, or the name taken by another active key) or key_revoked", body = Problem)))]
fn keys_add() {}

#[utoipa::path(get, path = "/api/v1/keys/{keyid}", tag = "keys", params(("keyid" = String, Path)),
    responses((status = 200, description = "OK", body = KeyInfo), (status = 400, description = "invalid_id: a keyid is 64 lowercase hex characters", body = Problem), (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem),
        (status = 404, description = "not_found", body = Problem)))]
fn keys_show() {}

#[utoipa::path(delete, path = "/api/v1/keys/{keyid}", tag = "keys", params(("keyid" = String, Path)),
    responses((status = 204, description = "Revoked; rollouts it alone signed pause"), (status = 400, description = "invalid_id: a keyid is 64 lowercase hex characters", body = Problem),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem), (status = 404, description = "not_found", body = Problem)))]
fn keys_revoke() {}

// ---- trust documents ----

#[utoipa::path(get, path = "/api/v1/trust", tag = "trust",
    responses((status = 200, description = "The latest trust document (DSSE envelope), for operators and devices", body = Envelope),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 404, description = "not_found: no trust document yet", body = Problem)))]
fn trust_latest() {}

#[utoipa::path(post, path = "/api/v1/trust", tag = "trust", request_body = Envelope,
    responses((status = 201, description = "Stored and announced on `{root}/trust`", body = Envelope),
        (status = 400, description = "bad_request: not an envelope; bad_manifest: a malformed trust payload", body = Problem),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem),
        (status = 409, description = "trust_version: not the latest version plus one", body = Problem),
        (status = 413, description = "too_large", body = Problem),
        (status = 422, description = "signature_invalid: too few valid signatures by the current or the new root; trust_expired", body = Problem)))]
fn trust_add() {}

#[utoipa::path(get, path = "/api/v1/trust/{version}", tag = "trust", params(("version" = u64, Path)),
    responses((status = 200, description = "That version's trust document (DSSE envelope), for operators and devices", body = Envelope),
        (status = 400, description = "bad_request: a version is a positive integer", body = Problem),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 404, description = "not_found", body = Problem)))]
fn trust_show() {}

// ---- firmware and configs ----

macro_rules! artifact_docs {
    ($tag:literal, $base:literal, $item:literal, $blob:literal, $list:ident, $upload:ident, $show:ident, $delete:ident, $get_blob:ident) => {
        #[utoipa::path(get, path = $base, tag = $tag,
            params(("name" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
            responses((status = 200, description = "OK", body = List<ArtifactInfo>),
                (status = 400, description = "bad_request: limit outside 1 to 1000; invalid_id: a name that breaks the id rule", body = Problem), (status = 401, description = "unauthorized: no or an unknown token", body = Problem),
                (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem)))]
        fn $list() {}

        #[utoipa::path(post, path = $base, tag = $tag, request_body(content = Upload, content_type = "multipart/form-data"),
            responses((status = 201, description = "Created", body = ArtifactInfo),
                (status = 400, description = "malformed envelope, manifest or form", body = Problem),
                (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem),
                (status = 409, description = "version_exists", body = Problem),
                (status = 413, description = "too_large", body = Problem),
                (status = 422, description = "signature, threshold, size or digest refused", body = Problem),
                (status = 507, description = "insufficient_storage", body = Problem)))]
        fn $upload() {}

        #[utoipa::path(get, path = $item, tag = $tag, params(("id" = String, Path)),
            responses((status = 200, description = "OK", body = ArtifactInfo), (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem),
                (status = 404, description = "not_found", body = Problem)))]
        fn $show() {}

        #[utoipa::path(delete, path = $item, tag = $tag, params(("id" = String, Path)),
            responses((status = 204, description = "Deleted (and its blob, unless shared)"),
                (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem), (status = 404, description = "not_found", body = Problem),
                (status = 409, description = "in_use: a rollout still running, paused or winding down (cancelled, devices not yet stopped) refers to it", body = Problem)))]
        fn $delete() {}

        #[utoipa::path(get, path = $blob, tag = $tag, params(("id" = String, Path)),
            responses((status = 200, description = "The bytes", content_type = "application/octet-stream"),
                (status = 206, description = "A Range", content_type = "application/octet-stream"),
                (status = 304, description = "If-None-Match matched the ETag"),
                (status = 401, description = "unauthorized: no or an unknown token", body = Problem),
                (status = 403, description = "forbidden: a device token, for an artifact no command sent to the device named", body = Problem),
                (status = 404, description = "not_found", body = Problem),
                (status = 416, description = "range_not_satisfiable: a Range past the end", body = Problem)))]
        fn $get_blob() {}
    };
}

artifact_docs!(
    "firmware",
    "/api/v1/firmware",
    "/api/v1/firmware/{id}",
    "/api/v1/firmware/{id}/blob",
    firmware_list,
    firmware_upload,
    firmware_show,
    firmware_delete,
    firmware_blob
);
artifact_docs!(
    "configs",
    "/api/v1/configs",
    "/api/v1/configs/{id}",
    "/api/v1/configs/{id}/blob",
    configs_list,
    configs_upload,
    configs_show,
    configs_delete,
    configs_blob
);

// ---- devices ----

#[utoipa::path(get, path = "/api/v1/devices", tag = "devices",
    params(("hardware" = Option<String>, Query), ("label" = Option<String>, Query, description = "key=value; repeatable"),
        ("trust_behind" = Option<bool>, Query, description = "true: only devices below the latest trust version (or reporting none)"),
        ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "OK", body = List<DeviceInfo>), (status = 400, description = "bad_request: malformed input", body = Problem), (status = 401, description = "unauthorized: no or an unknown token", body = Problem),
        (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem)))]
fn devices_list() {}

#[utoipa::path(post, path = "/api/v1/devices", tag = "devices", request_body = Register,
    responses((status = 201, description = "The token is shown only now", body = DeviceWithToken),
        (status = 400, description = "bad_request: malformed input", body = Problem), (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem),
        (status = 409, description = "already_exists", body = Problem)))]
fn devices_register() {}

#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = DeviceInfo), (status = 400, description = "invalid_id: the device id breaks the rule", body = Problem), (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem),
        (status = 404, description = "not_found", body = Problem)))]
fn devices_show() {}

#[utoipa::path(patch, path = "/api/v1/devices/{id}", tag = "devices", params(("id" = String, Path)), request_body = Relabel,
    responses((status = 200, description = "The device with its new labels (all earlier ones replaced)", body = DeviceInfo),
        (status = 400, description = "invalid_id: the device id breaks the rule; bad_request: bad labels, more than 32, or an unknown field", body = Problem),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: not an admin token", body = Problem),
        (status = 404, description = "not_found", body = Problem)))]
fn devices_relabel() {}

#[utoipa::path(delete, path = "/api/v1/devices/{id}", tag = "devices", params(("id" = String, Path)),
    responses((status = 204, description = "Decommissioned: its token and broker session end now"), (status = 400, description = "invalid_id: the device id breaks the rule", body = Problem),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem), (status = 404, description = "not_found", body = Problem)))]
fn devices_remove() {}

#[utoipa::path(post, path = "/api/v1/devices/{id}/token", tag = "devices", params(("id" = String, Path)),
    responses((status = 200, description = "The new token, shown only now", body = DeviceWithToken), (status = 400, description = "invalid_id: the device id breaks the rule", body = Problem),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem), (status = 404, description = "not_found", body = Problem)))]
fn devices_rotate_token() {}

#[utoipa::path(post, path = "/api/v1/devices/{id}/certificate", tag = "devices", params(("id" = String, Path)), request_body = CertificateRequest,
    responses((status = 200, description = "A client certificate for the device (CONTRACT §12)", body = DeviceCertificate), (status = 400, description = "bad_request: not a valid CSR, or its CN is not the device id; invalid_id", body = Problem),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a read-only token, or another device", body = Problem), (status = 404, description = "not_found: the device, or no device CA", body = Problem)))]
fn devices_certificate() {}

#[utoipa::path(get, path = "/api/v1/devices/{id}/command", tag = "devices", params(("id" = String, Path)),
    responses((status = 200, description = "The device's current command, as on MQTT"),
        (status = 204, description = "No command"), (status = 400, description = "invalid_id: the device id breaks the rule", body = Problem), (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem),
        (status = 404, description = "not_found", body = Problem)))]
fn devices_command() {}

// ---- rollouts ----

#[utoipa::path(get, path = "/api/v1/rollouts", tag = "rollouts",
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "OK", body = List<Rollout>), (status = 400, description = "bad_request: limit outside 1 to 1000", body = Problem), (status = 401, description = "unauthorized: no or an unknown token", body = Problem),
        (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem)))]
fn rollouts_list() {}

#[utoipa::path(post, path = "/api/v1/rollouts", tag = "rollouts", request_body = RolloutRequest,
    params(("dry_run" = Option<bool>, Query, description = "Only plan the waves")),
    responses((status = 201, description = "Created", body = Rollout), (status = 200, description = "The plan (dry run)", body = RolloutPlan),
        (status = 400, description = "bad_request: a field out of range, unknown devices, an unknown field; invalid_id: a device id or hardware that breaks the rule", body = Problem), (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem),
        (status = 404, description = "not_found: the firmware or config", body = Problem), (status = 409, description = "device_busy (with the rollouts), or key_revoked: too few of the artifact's signers are still registered", body = Problem)))]
fn rollouts_create() {}

#[utoipa::path(get, path = "/api/v1/rollouts/{id}", tag = "rollouts", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = Rollout), (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem),
        (status = 404, description = "not_found", body = Problem)))]
fn rollouts_show() {}

#[utoipa::path(delete, path = "/api/v1/rollouts/{id}", tag = "rollouts", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted with its per-device entries"),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem),
        (status = 403, description = "forbidden: not an admin token", body = Problem),
        (status = 404, description = "not_found", body = Problem),
        (status = 409, description = "invalid_state: the rollout is scheduled, running or paused", body = Problem)))]
fn rollouts_delete() {}

#[utoipa::path(get, path = "/api/v1/rollouts/{id}/devices", tag = "rollouts",
    params(("id" = String, Path), ("state" = Option<String>, Query), ("limit" = Option<u32>, Query),
        ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "Per-device states", body = List<RolloutDevice>), (status = 400, description = "bad_request: malformed input", body = Problem),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem), (status = 404, description = "not_found", body = Problem)))]
fn rollouts_devices() {}

macro_rules! control_docs {
    ($path:literal, $name:ident, $what:literal) => {
        #[utoipa::path(post, path = $path, tag = "rollouts", params(("id" = String, Path)),
            responses((status = 200, description = $what, body = Rollout), (status = 401, description = "unauthorized: no or an unknown token", body = Problem),
                (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem), (status = 404, description = "not_found", body = Problem),
                (status = 409, description = "invalid_state: a move its state does not allow; key_revoked (resume): too few of the artifact's signers are still registered", body = Problem)))]
        fn $name() {}
    };
}

control_docs!("/api/v1/rollouts/{id}/pause", rollouts_pause, "Paused");
control_docs!("/api/v1/rollouts/{id}/resume", rollouts_resume, "Running again");
control_docs!("/api/v1/rollouts/{id}/cancel", rollouts_cancel, "Cancelled");

macro_rules! device_control_docs {
    ($path:literal, $name:ident, $what:literal, $refused:literal) => {
        #[utoipa::path(post, path = $path, tag = "rollouts", params(("id" = String, Path), ("device_id" = String, Path)),
            responses((status = 200, description = $what, body = RolloutDevice),
                (status = 400, description = "invalid_id: the device id breaks the rule", body = Problem),
                (status = 401, description = "unauthorized: no or an unknown token", body = Problem),
                (status = 403, description = "forbidden: not an admin token", body = Problem),
                (status = 404, description = "not_found: no such rollout, or the device is not in it", body = Problem),
                (status = 409, description = $refused, body = Problem)))]
        fn $name() {}
    };
}

device_control_docs!(
    "/api/v1/rollouts/{id}/devices/{device_id}/cancel",
    rollouts_device_cancel,
    "Cancelled: a pending device at once; a device in flight is also sent `cancel`",
    "invalid_state: the device is final, or the rollout is completed or cancelled"
);
device_control_docs!(
    "/api/v1/rollouts/{id}/devices/{device_id}/retry",
    rollouts_device_retry,
    "Pending again for one more attempt, even with no attempts left",
    "invalid_state: the device is not failed or timed_out, or the rollout is completed or cancelled"
);
device_control_docs!(
    "/api/v1/rollouts/{id}/devices/{device_id}/skip",
    rollouts_device_skip,
    "Cancelled with reason `skipped`",
    "invalid_state: the device is not pending, or the rollout is completed or cancelled"
);

#[utoipa::path(get, path = "/api/v1/rollouts/{id}/events", tag = "rollouts", params(("id" = String, Path)),
    responses((status = 200, description = "Server-Sent Events `rollout` with the body", content_type = "text/event-stream"),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem), (status = 404, description = "not_found", body = Problem)))]
fn rollouts_events() {}

// ---- operator tokens, audit ----

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "OK", body = List<TokenInfo>), (status = 400, description = "bad_request: limit outside 1 to 1000", body = Problem), (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem)))]
fn tokens_list() {}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, description = "The token is shown only now", body = TokenWithSecret),
        (status = 400, description = "bad_request: malformed input", body = Problem), (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem),
        (status = 409, description = "already_exists", body = Problem)))]
fn tokens_create() {}

#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "tokens", params(("name" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem),
        (status = 404, description = "not_found", body = Problem), (status = 409, description = "the admin token", body = Problem)))]
fn tokens_revoke() {}

#[utoipa::path(get, path = "/api/v1/whoami", tag = "tokens",
    responses((status = 200, description = "The calling operator token's name and scope", body = WhoAmI),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem)))]
fn whoami() {}

#[utoipa::path(get, path = "/api/v1/audit", tag = "tokens",
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "Newest first", body = List<AuditEntry>), (status = 400, description = "bad_request: malformed input", body = Problem),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem)))]
fn audit_list() {}

// ---- external brokers ----

#[utoipa::path(get, path = "/api/v1/broker/mosquitto/passwords", tag = "broker", params(super::broker::PasswordsQuery),
    responses((status = 200, description = "Mosquitto's password_file", content_type = "text/plain"),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem)))]
fn broker_passwords() {}

#[utoipa::path(get, path = "/api/v1/broker/mosquitto/acl", tag = "broker",
    responses((status = 200, description = "Mosquitto's acl_file", content_type = "text/plain"),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem)))]
fn broker_acl() {}

#[utoipa::path(post, path = "/api/v1/broker/emqx/authenticate", tag = "broker", request_body = EmqxAuthenticate,
    responses((status = 200, description = "`{\"result\": \"allow\"|\"deny\", \"is_superuser\": bool}`", body = Object),
        (status = 429, description = "too_many_requests: this username failed too often lately", body = Problem),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem)))]
fn emqx_authenticate() {}

#[utoipa::path(post, path = "/api/v1/broker/emqx/authorize", tag = "broker", request_body = EmqxAuthorize,
    responses((status = 200, description = "`{\"result\": \"allow\"|\"deny\"}`", body = Object),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem)))]
fn emqx_authorize() {}
