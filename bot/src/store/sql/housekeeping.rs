//! Housekeeping: what a long-running service deletes so that its database does not grow
//! without bound — handled inbox events and old idempotency records.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::AnyPool;

use crate::store::{Pruned, StoreError};

/// Times are stored as RFC 3339 text in UTC (`+00:00`), so a cut-off in the same form compares
/// as text in both backends.
pub(super) async fn prune(pool: &AnyPool, before: DateTime<Utc>) -> Result<Pruned, StoreError> {
    let cutoff = before.to_rfc3339_opts(SecondsFormat::Secs, false);
    let events = sqlx::query(
        "DELETE FROM inbox WHERE state IN ('done', 'failed') AND handled_at IS NOT NULL
            AND handled_at < $1",
    )
    .bind(&cutoff)
    .execute(pool)
    .await?
    .rows_affected();
    let effects = sqlx::query("DELETE FROM effects WHERE created_at < $1")
        .bind(&cutoff)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(Pruned { events, effects })
}
