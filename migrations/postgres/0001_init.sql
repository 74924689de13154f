-- threadsmith on PostgreSQL: the same tables and columns as migrations/sqlite/ (0001–0006), so
-- that one set of queries serves both. Only portable types: TEXT, BIGINT, DOUBLE PRECISION;
-- times are RFC 3339 text, lease deadlines Unix milliseconds, flags 0/1.

CREATE TABLE tasks (
    id          TEXT PRIMARY KEY NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    -- received | queued | preparing | running | done | failed | cancelled
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
    attempts    BIGINT NOT NULL,
    -- for failed tasks: what went wrong, written for people
    error       TEXT,
    -- the structured spec (title, problem, expected, checks, hints) as JSON
    spec_json   TEXT,
    -- the unguessable token in the task's web links (/t/<token>)
    web_token   TEXT,
    -- the worker (bot process) running the task
    worker      TEXT,
    -- when the task was admitted to run under the limits, Unix ms
    admitted_at BIGINT,
    -- Cancel asked for in a process other than the one running the task: that one notices
    cancel_requested BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX tasks_by_state ON tasks (state, created_at);
CREATE UNIQUE INDEX tasks_by_web_token ON tasks (web_token);

CREATE TABLE rollouts (
    task_id         TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    idx             BIGINT NOT NULL,
    -- starting | setup | agent | collecting_diff | testing | done
    phase           TEXT NOT NULL,
    step            BIGINT NOT NULL DEFAULT 0,
    outcome         TEXT,
    detail          TEXT,
    summary         TEXT,
    confidence      DOUBLE PRECISION,
    temperature     DOUBLE PRECISION,
    seed            BIGINT,
    tests_passed    BIGINT,
    test_exit_code  BIGINT,
    test_timed_out  BIGINT,
    test_output     TEXT,
    test_ms         BIGINT,
    lines_added     BIGINT,
    lines_removed   BIGINT,
    files_changed   BIGINT,
    rank            BIGINT,
    rank_reason     TEXT,
    network         TEXT,
    started_at      TEXT,
    finished_at     TEXT,
    agent_ms        BIGINT,
    PRIMARY KEY (task_id, idx)
);

CREATE TABLE commands (
    task_id       TEXT NOT NULL,
    rollout_idx   BIGINT NOT NULL,
    seq           BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    command       TEXT NOT NULL,
    exit_code     BIGINT,
    timed_out     BIGINT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    output        TEXT NOT NULL,
    output_bytes  BIGINT NOT NULL,
    dropped_bytes BIGINT NOT NULL,
    started_at    TEXT NOT NULL,
    PRIMARY KEY (task_id, rollout_idx, seq),
    FOREIGN KEY (task_id, rollout_idx) REFERENCES rollouts (task_id, idx) ON DELETE CASCADE
);

CREATE TABLE diffs (
    task_id     TEXT NOT NULL,
    rollout_idx BIGINT NOT NULL,
    -- `git diff --binary` against the base commit
    patch       TEXT NOT NULL,
    -- [{"path": "...", "added": 1, "removed": 0}], added/removed null for binary files
    files       TEXT NOT NULL,
    PRIMARY KEY (task_id, rollout_idx),
    FOREIGN KEY (task_id, rollout_idx) REFERENCES rollouts (task_id, idx) ON DELETE CASCADE
);

-- The durable inbox: every event, command and click, deduplicated (Slack and Discord deliver at
-- least once). A worker takes an event with a lease (`FOR UPDATE SKIP LOCKED`); an expired lease
-- puts it back in the queue.
CREATE TABLE inbox (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key  TEXT NOT NULL UNIQUE,
    platform    TEXT NOT NULL,
    -- the event in threadsmith's own terms, as JSON
    event       TEXT NOT NULL,
    received_at TEXT NOT NULL,
    -- queued | taken | done | failed
    state       TEXT NOT NULL,
    handled_at  TEXT,
    error       TEXT,
    leased_by   TEXT,
    lease_until BIGINT,
    attempts    BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX inbox_queued ON inbox (state, id);
CREATE INDEX inbox_leases ON inbox (platform, state, lease_until);

CREATE TABLE chat_tasks (
    task_id       TEXT PRIMARY KEY NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    platform      TEXT NOT NULL,
    workspace     TEXT NOT NULL,
    channel       TEXT NOT NULL,
    thread        TEXT NOT NULL,
    trigger_ts    TEXT,
    requester     TEXT NOT NULL,
    status_ts     TEXT,
    summary_ts    TEXT,
    retry_of      TEXT UNIQUE,
    feedback      TEXT
);

CREATE INDEX chat_tasks_by_thread ON chat_tasks (platform, channel, thread);

CREATE TABLE effects (
    key        TEXT PRIMARY KEY NOT NULL,
    result     TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE approvals (
    task_id     TEXT PRIMARY KEY NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    rollout_idx BIGINT NOT NULL,
    approved_by TEXT NOT NULL,
    approved_at TEXT NOT NULL
);

CREATE TABLE channel_settings (
    platform     TEXT NOT NULL,
    channel      TEXT NOT NULL,
    default_repo TEXT,
    PRIMARY KEY (platform, channel)
);

CREATE TABLE plans (
    id          TEXT PRIMARY KEY NOT NULL,
    platform    TEXT NOT NULL,
    workspace   TEXT NOT NULL,
    channel     TEXT NOT NULL,
    thread      TEXT NOT NULL,
    trigger_ts  TEXT,
    requester   TEXT NOT NULL,
    repo        TEXT NOT NULL,
    base_ref    TEXT,
    attempts    BIGINT,
    spec_json   TEXT NOT NULL,
    plan        TEXT NOT NULL,
    revises     TEXT,
    created_at  TEXT NOT NULL
);

CREATE TABLE questions (
    id           TEXT PRIMARY KEY NOT NULL,
    platform     TEXT NOT NULL,
    workspace    TEXT NOT NULL,
    channel      TEXT NOT NULL,
    thread       TEXT NOT NULL,
    trigger_ts   TEXT,
    requester    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    instructions TEXT,
    base_ref     TEXT,
    attempts     BIGINT,
    message_ts   TEXT,
    expires_at   TEXT NOT NULL,
    -- open | answered | expired
    state        TEXT NOT NULL
);

CREATE INDEX questions_open ON questions (state, expires_at);

CREATE TABLE publications (
    task_id      TEXT PRIMARY KEY NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    rollout_idx  BIGINT NOT NULL,
    state        TEXT NOT NULL,
    branch       TEXT NOT NULL,
    commit_sha   TEXT,
    url          TEXT,
    pr_number    BIGINT,
    claimed_at   TEXT NOT NULL,
    published_at TEXT
);

CREATE TABLE workers (
    id          TEXT PRIMARY KEY NOT NULL,
    host        TEXT NOT NULL,
    pid         BIGINT NOT NULL,
    started_at  TEXT NOT NULL,
    alive_until BIGINT NOT NULL
);
