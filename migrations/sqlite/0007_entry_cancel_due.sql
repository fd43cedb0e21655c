-- An operator cancelled this device while it was in flight: the engine sends it `cancel`
-- once and clears the mark (the entry itself is already `cancelled`).
ALTER TABLE rollout_devices ADD COLUMN cancel_due BOOLEAN NOT NULL DEFAULT FALSE;
