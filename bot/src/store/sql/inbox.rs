//! Storing a group of inbox events in one statement (group commit; see `inbox_writer`).

use std::collections::HashMap;

use sqlx::{AnyPool, Row};

use crate::store::{NewEvent, StoreError};

/// One multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING`: the statement is its own
/// transaction, so the group is stored whole or not at all. A key that is already stored, or
/// that comes again later in the group, is answered `None`.
pub(super) async fn enqueue_many(
    pool: &AnyPool,
    events: &[NewEvent],
) -> Result<Vec<Option<i64>>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let now = chrono::Utc::now().to_rfc3339();
    let mut sql =
        String::from("INSERT INTO inbox (dedupe_key, platform, event, received_at, state) VALUES ");
    for i in 0..events.len() {
        let p = 4 * i;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, 'queued')",
            p + 1,
            p + 2,
            p + 3,
            p + 4
        ));
    }
    sql.push_str(" ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key");
    let mut query = sqlx::query(&sql);
    for e in events {
        query = query
            .bind(&e.dedupe_key)
            .bind(&e.platform)
            .bind(&e.event)
            .bind(&now);
    }
    let rows = query.fetch_all(pool).await?;
    let mut stored: HashMap<String, i64> = HashMap::with_capacity(rows.len());
    for row in rows {
        stored.insert(row.try_get("dedupe_key")?, row.try_get("id")?);
    }
    // The first occurrence of a stored key gets its id; any later one is a duplicate.
    Ok(events
        .iter()
        .map(|e| stored.remove(&e.dedupe_key))
        .collect())
}
