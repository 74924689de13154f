-- A rollout's rank keeps all its reasons: a headline of a few words for the summary and the
-- full list (a JSON array of strings) for the pages (runner/src/rank.rs).
ALTER TABLE rollouts ADD COLUMN rank_headline TEXT;
ALTER TABLE rollouts ADD COLUMN rank_reasons TEXT;
