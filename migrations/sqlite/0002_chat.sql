-- Chat front-ends: the durable inbox (every event, command and click, deduplicated), the thread
-- each task belongs to, idempotency keys of side effects, approvals and channel settings.

CREATE TABLE inbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- one per delivery that matters: Slack and Discord deliver at least once
    dedupe_key  TEXT NOT NULL UNIQUE,
    platform    TEXT NOT NULL,
    -- the event in threadsmith's own terms, as JSON
    event       TEXT NOT NULL,
    received_at TEXT NOT NULL,
    -- queued | done | failed
    state       TEXT NOT NULL,
    handled_at  TEXT,
    error       TEXT
);

CREATE INDEX inbox_queued ON inbox (state, id);

CREATE TABLE chat_tasks (
    task_id       TEXT PRIMARY KEY NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    platform      TEXT NOT NULL,
    workspace     TEXT NOT NULL,
    channel       TEXT NOT NULL,
    thread        TEXT NOT NULL,
    -- the message that asked for the task
    trigger_ts    TEXT,
    requester     TEXT NOT NULL,
    status_ts     TEXT,
    summary_ts    TEXT,
    -- a Retry: the task it retries, and the feedback given
    retry_of      TEXT UNIQUE,
    feedback      TEXT
);

CREATE INDEX chat_tasks_by_thread ON chat_tasks (platform, channel, thread);

CREATE TABLE effects (
    key        TEXT PRIMARY KEY NOT NULL,
    -- what the effect produced (a message ts, a file id…)
    result     TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE approvals (
    task_id     TEXT PRIMARY KEY NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    rollout_idx INTEGER NOT NULL,
    approved_by TEXT NOT NULL,
    approved_at TEXT NOT NULL
);

CREATE TABLE channel_settings (
    platform     TEXT NOT NULL,
    channel      TEXT NOT NULL,
    default_repo TEXT,
    PRIMARY KEY (platform, channel)
);

-- The structured task spec (title, problem, expected behaviour, checks, hints) as JSON, so that a
-- Retry can start from it.
ALTER TABLE tasks ADD COLUMN spec_json TEXT;
