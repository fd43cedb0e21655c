-- A rollout's version, raised by every write of its record: the engine and an operator
-- each write only the version they read (compare-and-set), so an operator's pause or
-- cancel that lands during an engine step is never overwritten by the step.
ALTER TABLE rollouts ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
