-- Device certificates (CONTRACT §12): every certificate the server signed, found by the
-- SHA-256 of its DER when a device presents it. Revoked (revoked_at set) when the device's
-- credentials are rotated or the device is removed; rows are kept for the CRL.
CREATE TABLE device_certificates (
    sha256     TEXT PRIMARY KEY,
    serial     TEXT NOT NULL UNIQUE,
    device_id  TEXT NOT NULL,
    not_after  BIGINT NOT NULL,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX device_certificates_device ON device_certificates (device_id);
