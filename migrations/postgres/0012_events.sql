-- Events and integrations (CONTRACT §10).
--
-- Operator tokens that also log in to the broker as `op:{name}`, with the token's hash in
-- Mosquitto's `$7$` format for its password file (NULL unless `mqtt`).
ALTER TABLE operator_tokens ADD COLUMN mqtt BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE operator_tokens ADD COLUMN broker_password_hash TEXT;

-- Webhooks. The secret is kept as issued: signing needs it (docs/security.md).
CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    events          TEXT NOT NULL, -- JSON array of patterns
    secret          TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    last_status     BIGINT,
    last_error      TEXT,
    last_attempt_at BIGINT,
    created_at      BIGINT NOT NULL
);

-- The outbox: one row per event and webhook, written in the transaction that records the
-- event. A replica claims due rows under a lease (compare-and-set), so no row is sent by
-- two replicas at once; a claim that outlives its lease is taken again (at least once).
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY, -- the `webhook-id` header
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_of ON webhook_deliveries (webhook_id, created_at);

-- What was last announced of each rollout (`rollout:{id}`) and device (`device:{id}`):
-- events are the differences to it, recorded by compare-and-set, so a restart or a second
-- replica does not announce a change twice.
CREATE TABLE event_marks (
    key        TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
