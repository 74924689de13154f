-- The repository's instructions for agents a task's rollouts were given (AGENTS.md files and
-- `.threadsmith.toml`'s `instructions`): a JSON array of {path, bytes, shown}, for the rollout
-- page. Tasks stored before this have NULL here (shown as none recorded).
ALTER TABLE tasks ADD COLUMN instruction_files TEXT;
