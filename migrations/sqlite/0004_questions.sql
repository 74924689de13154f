-- Questions the bot asked in a thread that only the requester may answer ("which repository?"),
-- with the request waiting on the answer. Unanswered questions expire and the bot says so.

CREATE TABLE questions (
    id           TEXT PRIMARY KEY NOT NULL,
    platform     TEXT NOT NULL,
    workspace    TEXT NOT NULL,
    channel      TEXT NOT NULL,
    thread       TEXT NOT NULL,
    trigger_ts   TEXT,
    requester    TEXT NOT NULL,
    -- what waits on the answer: fix | plan
    kind         TEXT NOT NULL,
    instructions TEXT,
    base_ref     TEXT,
    attempts     INTEGER,
    -- the message that asks
    message_ts   TEXT,
    expires_at   TEXT NOT NULL,
    -- open | answered | expired
    state        TEXT NOT NULL
);

CREATE INDEX questions_open ON questions (state, expires_at);
