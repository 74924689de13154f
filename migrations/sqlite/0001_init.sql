-- Tasks, their rollouts, the commands each rollout ran (its citations) and its diff.

CREATE TABLE tasks (
    id          TEXT PRIMARY KEY NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    -- received | preparing | running | done | failed | cancelled
    state       TEXT NOT NULL,
    -- where the task came from: cli, slack, discord
    origin      TEXT NOT NULL,
    requester   TEXT,
    title       TEXT NOT NULL,
    -- the task spec given to the agents, as Markdown
    spec        TEXT NOT NULL,
    repo        TEXT NOT NULL,
    base_ref    TEXT,
    base_commit TEXT,
    attempts    INTEGER NOT NULL,
    -- for failed tasks: what went wrong, written for people
    error       TEXT
);

CREATE INDEX tasks_by_state ON tasks (state, created_at);

CREATE TABLE rollouts (
    task_id         TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    idx             INTEGER NOT NULL,
    -- starting | setup | agent | collecting_diff | testing | done
    phase           TEXT NOT NULL,
    step            INTEGER NOT NULL DEFAULT 0,
    outcome         TEXT,
    detail          TEXT,
    summary         TEXT,
    confidence      REAL,
    temperature     REAL,
    seed            INTEGER,
    tests_passed    INTEGER,
    test_exit_code  INTEGER,
    test_timed_out  INTEGER,
    test_output     TEXT,
    test_ms         INTEGER,
    lines_added     INTEGER,
    lines_removed   INTEGER,
    files_changed   INTEGER,
    rank            INTEGER,
    rank_reason     TEXT,
    network         TEXT,
    started_at      TEXT,
    finished_at     TEXT,
    agent_ms        INTEGER,
    PRIMARY KEY (task_id, idx)
);

CREATE TABLE commands (
    task_id       TEXT NOT NULL,
    rollout_idx   INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    command       TEXT NOT NULL,
    exit_code     INTEGER,
    timed_out     INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    output        TEXT NOT NULL,
    output_bytes  INTEGER NOT NULL,
    dropped_bytes INTEGER NOT NULL,
    started_at    TEXT NOT NULL,
    PRIMARY KEY (task_id, rollout_idx, seq),
    FOREIGN KEY (task_id, rollout_idx) REFERENCES rollouts (task_id, idx) ON DELETE CASCADE
);

CREATE TABLE diffs (
    task_id     TEXT NOT NULL,
    rollout_idx INTEGER NOT NULL,
    -- `git diff --binary` against the base commit
    patch       TEXT NOT NULL,
    -- [{"path": "...", "added": 1, "removed": 0}], added/removed null for binary files
    files       TEXT NOT NULL,
    PRIMARY KEY (task_id, rollout_idx),
    FOREIGN KEY (task_id, rollout_idx) REFERENCES rollouts (task_id, idx) ON DELETE CASCADE
);
