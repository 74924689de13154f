-- The judge's answer for a task's rollouts tied on test evidence (issue 14): its verdicts, or
-- why it could not be had. Kept so that ranking the task again (recovery, a re-rank) reuses it
-- instead of asking the model again: the same evidence gives the same order.
CREATE TABLE judgements (
    task_id     TEXT NOT NULL,
    -- The rollouts compared, in order, comma-separated ("1,3").
    candidates  TEXT NOT NULL,
    -- The model asked.
    model       TEXT NOT NULL,
    -- JSON: {"verdicts": [{"rollout", "verdict", "reason"}]} or {"failed": "<why, for people>"}.
    answer      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (task_id, candidates)
);
