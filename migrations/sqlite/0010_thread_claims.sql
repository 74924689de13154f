-- One task at a time per thread, across processes: the request (`anchor`, the ts of the message
-- that asked) that holds a thread from the moment it is let through until its task ends, and
-- the worker handling it. A claim whose worker is no longer alive is free.
CREATE TABLE thread_claims (
    platform    TEXT NOT NULL,
    channel     TEXT NOT NULL,
    thread      TEXT NOT NULL,
    anchor      TEXT NOT NULL,
    worker      TEXT NOT NULL,
    -- Unix ms
    claimed_at  INTEGER NOT NULL,
    PRIMARY KEY (platform, channel, thread)
);
