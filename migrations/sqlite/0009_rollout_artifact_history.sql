-- no-transaction
-- A finished rollout no longer keeps its artifact alive: once no running or paused
-- rollout refers to an artifact it may be deleted, and the finished rollout keeps its
-- `artifact_id` as history. SQLite cannot drop a foreign key, so the table is rebuilt
-- (SQLite's documented twelve steps); foreign keys are off meanwhile so that dropping the
-- old table does not cascade into rollout_devices, and are checked before the commit.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE rollouts_new (
    id                TEXT PRIMARY KEY,
    artifact_id       TEXT NOT NULL,
    kind              TEXT NOT NULL,
    state             TEXT NOT NULL,
    reason            TEXT,
    target            TEXT NOT NULL,
    waves             TEXT NOT NULL,
    current_wave      BIGINT NOT NULL DEFAULT 0,
    wave_soak_s       BIGINT NOT NULL,
    wave_gate         TEXT NOT NULL,
    max_failure_ratio DOUBLE PRECISION NOT NULL,
    min_finished      BIGINT NOT NULL,
    max_per_minute    BIGINT,
    max_in_flight     BIGINT,
    max_attempts      BIGINT NOT NULL,
    device_timeout_s  BIGINT NOT NULL,
    gate_since        BIGINT NOT NULL,
    wave_done_at      BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    lease_owner       TEXT,
    lease_until       BIGINT,
    version           BIGINT NOT NULL DEFAULT 0,
    max_retries_total BIGINT,
    retries_used      BIGINT NOT NULL DEFAULT 0
);
INSERT INTO rollouts_new (id, artifact_id, kind, state, reason, target, waves, current_wave, wave_soak_s,
    wave_gate, max_failure_ratio, min_finished, max_per_minute, max_in_flight, max_attempts,
    device_timeout_s, gate_since, wave_done_at, created_at, updated_at, lease_owner, lease_until,
    version, max_retries_total, retries_used)
SELECT id, artifact_id, kind, state, reason, target, waves, current_wave, wave_soak_s,
    wave_gate, max_failure_ratio, min_finished, max_per_minute, max_in_flight, max_attempts,
    device_timeout_s, gate_since, wave_done_at, created_at, updated_at, lease_owner, lease_until,
    version, max_retries_total, retries_used
FROM rollouts;
DROP TABLE rollouts;
ALTER TABLE rollouts_new RENAME TO rollouts;
CREATE INDEX rollouts_state ON rollouts (state);
CREATE INDEX rollouts_artifact ON rollouts (artifact_id);
PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
