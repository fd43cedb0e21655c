-- A finished rollout no longer keeps its artifact alive: once no running or paused
-- rollout refers to an artifact it may be deleted, and the finished rollout keeps its
-- `artifact_id` as history.
ALTER TABLE rollouts DROP CONSTRAINT rollouts_artifact_id_fkey;
CREATE INDEX rollouts_artifact ON rollouts (artifact_id);
