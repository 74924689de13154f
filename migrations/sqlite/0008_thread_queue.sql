-- Requests ("fix this") made in a thread while a task runs there: each waits for that task to
-- end, oldest first, and is then handled again as the event it was (stored as its JSON).
CREATE TABLE queued_requests (
    platform    TEXT NOT NULL,
    channel     TEXT NOT NULL,
    -- the message that asked
    trigger_ts  TEXT NOT NULL,
    thread      TEXT NOT NULL,
    event       TEXT NOT NULL,
    -- Unix ms
    queued_at   INTEGER NOT NULL,
    PRIMARY KEY (platform, channel, trigger_ts)
);

CREATE INDEX queued_requests_by_thread ON queued_requests (platform, channel, thread, queued_at);
