-- Release keys, artifacts (firmware and configs), devices.
-- Timestamps are milliseconds since the Unix epoch, the same in both dialects.

CREATE TABLE release_keys (
    keyid          TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    public_key_pem TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    revoked_at     BIGINT
);

CREATE TABLE artifacts (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('firmware', 'config')),
    name       TEXT NOT NULL,
    version    TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    size       BIGINT NOT NULL,
    manifest   TEXT NOT NULL,
    envelope   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (kind, name, version)
);
CREATE INDEX artifacts_sha256 ON artifacts (sha256);

CREATE TABLE artifact_signers (
    artifact_id TEXT NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
    keyid       TEXT NOT NULL REFERENCES release_keys (keyid),
    PRIMARY KEY (artifact_id, keyid)
);
CREATE INDEX artifact_signers_keyid ON artifact_signers (keyid);

CREATE TABLE devices (
    id               TEXT PRIMARY KEY,
    hardware         TEXT NOT NULL,
    token_hash       TEXT NOT NULL UNIQUE,
    created_at       BIGINT NOT NULL,
    online           BOOLEAN NOT NULL DEFAULT FALSE,
    last_seen        BIGINT,
    last_seq         BIGINT,
    firmware_name    TEXT,
    firmware_version TEXT,
    firmware_sha256  TEXT,
    config_name      TEXT,
    config_version   TEXT,
    config_sha256    TEXT
);
CREATE INDEX devices_hardware ON devices (hardware);

CREATE TABLE device_labels (
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (device_id, key)
);
CREATE INDEX device_labels_key_value ON device_labels (key, value);
