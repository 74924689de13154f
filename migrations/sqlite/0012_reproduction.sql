-- Reproduction tests (runner/src/testfiles.rs, runner/src/crosscheck.rs): which files of a
-- rollout's change are tests (a JSON array of paths; NULL for diffs stored before this), and a
-- task's cross-checks — every rollout's tests run on the base and on every change — as JSON
-- (`crosscheck::Matrix`), so that ranking reads the same evidence back after a restart.
ALTER TABLE diffs ADD COLUMN test_files TEXT;
ALTER TABLE tasks ADD COLUMN crosschecks TEXT;
