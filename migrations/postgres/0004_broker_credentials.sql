-- Each device's broker password hash in Mosquitto's `$7$` format, computed when its token is
-- issued or rotated (the token itself is never stored). NULL for devices registered before
-- this migration: rotate their tokens to let them into a Mosquitto with isolation.
ALTER TABLE devices ADD COLUMN broker_password_hash TEXT;
