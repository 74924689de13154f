-- Durable work across processes: workers (bot processes) keep leases on what they handle, so two
-- processes on one database never handle the same event and a dead process's work is taken over.

-- One row per running bot process; `alive_until` (Unix ms) is pushed forward by its heartbeat.
CREATE TABLE workers (
    id          TEXT PRIMARY KEY NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    alive_until INTEGER NOT NULL
);

-- An event being handled is `taken` by a worker until `lease_until` (Unix ms); an expired lease
-- puts it back in the queue. `attempts` counts how often it was taken.
ALTER TABLE inbox ADD COLUMN leased_by TEXT;
ALTER TABLE inbox ADD COLUMN lease_until INTEGER;
ALTER TABLE inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX inbox_leases ON inbox (platform, state, lease_until);

-- The worker running a task; a task whose worker is gone is taken over and reported.
ALTER TABLE tasks ADD COLUMN worker TEXT;
-- When the task was admitted to run (limits on running rollouts), Unix ms.
ALTER TABLE tasks ADD COLUMN admitted_at INTEGER;
-- Cancel asked for in a process other than the one running the task: that one notices.
ALTER TABLE tasks ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
