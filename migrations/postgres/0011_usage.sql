-- What each attempt cost (issue 15): the model's tokens and calls per rollout (summed over its
-- requests, from each response's `usage`; `model_unmeasured` counts the calls whose response
-- carried none, so their tokens are unknown rather than zero), the time spent waiting for the
-- model and in the sandbox; on the task, its spec and plan calls and the model they used.
ALTER TABLE rollouts ADD COLUMN model_calls BIGINT;
ALTER TABLE rollouts ADD COLUMN model_unmeasured BIGINT;
ALTER TABLE rollouts ADD COLUMN prompt_tokens BIGINT;
ALTER TABLE rollouts ADD COLUMN completion_tokens BIGINT;
ALTER TABLE rollouts ADD COLUMN model_ms BIGINT;
ALTER TABLE rollouts ADD COLUMN sandbox_ms BIGINT;
ALTER TABLE tasks ADD COLUMN model TEXT;
ALTER TABLE tasks ADD COLUMN spec_calls BIGINT;
ALTER TABLE tasks ADD COLUMN spec_unmeasured BIGINT;
ALTER TABLE tasks ADD COLUMN spec_prompt_tokens BIGINT;
ALTER TABLE tasks ADD COLUMN spec_completion_tokens BIGINT;
