-- Several replicas on one database: operator tokens live here (stored as SHA-256 hex, never
-- in the clear), and each live rollout is driven by one replica at a time under a lease
-- that another replica takes over when it expires.

CREATE TABLE operator_tokens (
    name       TEXT PRIMARY KEY,
    scope      TEXT NOT NULL CHECK (scope IN ('admin', 'read-only')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

ALTER TABLE rollouts ADD COLUMN lease_owner TEXT;
ALTER TABLE rollouts ADD COLUMN lease_until BIGINT;
