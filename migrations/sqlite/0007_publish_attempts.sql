-- Publishing an approval is done by one attempt at a time across processes: the attempt holding
-- a `publishing` row until `lease_until` (Unix ms, renewed while it works). Others wait for its
-- outcome; a lapsed lease is taken over. A failed attempt leaves `state = 'failed'` with its
-- `error`, for whoever waited on it; only the attempt holding the row may end it.
ALTER TABLE publications ADD COLUMN attempt TEXT;
ALTER TABLE publications ADD COLUMN lease_until INTEGER;
ALTER TABLE publications ADD COLUMN error TEXT;
