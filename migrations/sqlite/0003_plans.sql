-- "@threadsmith plan": a plan proposed in a thread, before any rollout; and questions the bot
-- asked that only the requester may answer (which repository?).

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
    attempts    INTEGER,
    -- the task spec (JSON) and the plan (Markdown)
    spec_json   TEXT NOT NULL,
    plan        TEXT NOT NULL,
    -- a revision: the plan it replaces
    revises     TEXT,
    created_at  TEXT NOT NULL
);
