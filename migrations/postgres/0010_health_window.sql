-- The health window (CONTRACT §7): a succeeded device is watched for `health_window_s`
-- (0: not at all) before it counts as healthy; `max_offline_ratio` is the share of a
-- wave's succeeded devices that may be offline meanwhile (NULL: none). `pause_detail`
-- says which rule paused a rollout, on which numbers and devices.
ALTER TABLE rollouts ADD COLUMN health_window_s BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rollouts ADD COLUMN max_offline_ratio DOUBLE PRECISION;
ALTER TABLE rollouts ADD COLUMN pause_detail TEXT;
-- A succeeded entry's health (NULL, 'watching', 'healthy', 'unhealthy') and when its
-- window ends.
ALTER TABLE rollout_devices ADD COLUMN health TEXT;
ALTER TABLE rollout_devices ADD COLUMN watch_until BIGINT;
-- The engine reads a rollout's watched entries at every step.
CREATE INDEX rollout_devices_health ON rollout_devices (rollout_id, health);
