-- Follow-up rounds (issue 15): a task started from a rollout of an earlier task in the same
-- thread is that task's next round. Round 1 (the first task) has no row; its id is the root.
CREATE TABLE task_rounds (
    task_id TEXT PRIMARY KEY,
    root_task TEXT NOT NULL,
    round BIGINT NOT NULL,
    from_task TEXT NOT NULL,
    from_rollout BIGINT NOT NULL,
    request TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX task_rounds_root ON task_rounds (root_task, round);
