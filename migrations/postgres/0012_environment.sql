-- Whether a rollout started from an environment snapshot, or ran the setup and saved one, and
-- which (runner/src/environment.rs), in words for the rollout page.
ALTER TABLE rollouts ADD COLUMN environment TEXT;
