-- A rollout-wide retry budget: at most `max_retries_total` retries across all its devices
-- (NULL: unlimited); `retries_used` counts those granted. Once used up, failures are final.
ALTER TABLE rollouts ADD COLUMN max_retries_total BIGINT;
ALTER TABLE rollouts ADD COLUMN retries_used BIGINT NOT NULL DEFAULT 0;
