-- Diff pages and pull requests.

-- The unguessable token in a task's web links (/t/<token>); made on first use.
ALTER TABLE tasks ADD COLUMN web_token TEXT;
CREATE UNIQUE INDEX tasks_by_web_token ON tasks (web_token);

-- What an approval produced on the git host: one per task. `state` is `publishing` while the
-- branch and pull request are being made (so two approvers at once make one), then `published`.
CREATE TABLE publications (
    task_id      TEXT PRIMARY KEY NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    rollout_idx  INTEGER NOT NULL,
    state        TEXT NOT NULL,
    branch       TEXT NOT NULL,
    commit_sha   TEXT,
    -- the pull request's (or, in push-only mode, the branch's) web address
    url          TEXT,
    pr_number    INTEGER,
    claimed_at   TEXT NOT NULL,
    published_at TEXT
);
