-- Scheduled and dynamic rollouts: `start_at` (ms; the rollout is `scheduled` until then),
-- the maintenance window as the request's JSON (NULL: none), and whether devices
-- registered or relabelled later that match the target join the rollout.
ALTER TABLE rollouts ADD COLUMN start_at BIGINT;
ALTER TABLE rollouts ADD COLUMN maintenance_window TEXT;
ALTER TABLE rollouts ADD COLUMN dynamic BOOLEAN NOT NULL DEFAULT FALSE;
