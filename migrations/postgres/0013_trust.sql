-- Trust documents (CONTRACT §11): every version the server accepted, as the envelope JSON
-- exactly as posted; and the version each device last reported (NULL: none, or a device
-- pinned to plain keys).
CREATE TABLE trust_documents (
    version    BIGINT PRIMARY KEY,
    envelope   TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
ALTER TABLE devices ADD COLUMN trust_version BIGINT;
