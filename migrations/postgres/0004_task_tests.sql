-- The test command a task's rollouts ran, and what it was detected from when the repository
-- configures none. Tasks stored before this have NULL here (their rollouts' `detail` words
-- are read instead).
ALTER TABLE tasks ADD COLUMN test_command TEXT;
ALTER TABLE tasks ADD COLUMN test_detected_from TEXT;
