-- Rollouts and their per-device entries.

CREATE TABLE rollouts (
    id                TEXT PRIMARY KEY,
    artifact_id       TEXT NOT NULL REFERENCES artifacts (id),
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
    updated_at        BIGINT NOT NULL
);
CREATE INDEX rollouts_state ON rollouts (state);

CREATE TABLE rollout_devices (
    rollout_id     TEXT NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    device_id      TEXT NOT NULL,
    position       BIGINT NOT NULL,
    wave           BIGINT NOT NULL,
    state          TEXT NOT NULL,
    reason         TEXT,
    attempts       BIGINT NOT NULL DEFAULT 0,
    reported       BOOLEAN NOT NULL DEFAULT FALSE,
    sent_at        BIGINT,
    retry_at       BIGINT,
    last_heard_at  BIGINT,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (rollout_id, device_id)
);
CREATE INDEX rollout_devices_state ON rollout_devices (rollout_id, state);
CREATE INDEX rollout_devices_device ON rollout_devices (device_id);
