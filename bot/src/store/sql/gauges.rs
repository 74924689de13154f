//! What `/metrics` reads at scrape time: counts over the whole database, so that every bot
//! process shows the same, true figures (nothing to keep in step in memory).

use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};

use crate::store::{Gauges, StoreError, TaskState};

pub(super) async fn gauges(pool: &AnyPool) -> Result<Gauges, StoreError> {
    let mut tasks: Vec<(TaskState, u64)> = TaskState::ALL.iter().map(|s| (*s, 0)).collect();
    let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state")
        .fetch_all(pool)
        .await?;
    for row in rows {
        let state: String = row.try_get("state")?;
        let n: i64 = row.try_get("n")?;
        let state = TaskState::parse(&state).ok_or_else(|| {
            StoreError::Corrupt(format!("a task is in an unknown state `{state}`"))
        })?;
        if let Some(slot) = tasks.iter_mut().find(|(s, _)| *s == state) {
            slot.1 = n.max(0) as u64;
        }
    }
    // A rollout runs from its creation until its end is stored (`phase = 'done'`), while its
    // task has not ended.
    let rollouts_running: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM rollouts r JOIN tasks t ON t.id = r.task_id
            WHERE r.phase <> 'done' AND t.state IN ('preparing', 'running')",
    )
    .fetch_one(pool)
    .await?;
    let pending: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE state IN ('queued', 'taken')")
            .fetch_one(pool)
            .await?;
    // The first stored of them (ids follow arrival; `inbox_queued` indexes `(state, id)`).
    let oldest: Option<String> = sqlx::query_scalar(
        "SELECT received_at FROM inbox WHERE state IN ('queued', 'taken') ORDER BY id LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    let oldest_pending = oldest.map(|t| arrival(&t)).transpose()?;
    Ok(Gauges {
        tasks,
        rollouts_running: rollouts_running.max(0) as u64,
        inbox_pending: pending.max(0) as u64,
        oldest_pending,
    })
}

/// An event's `received_at`: RFC 3339 (events stored in groups) or Unix milliseconds (stored
/// one at a time, `Store::enqueue`).
fn arrival(text: &str) -> Result<DateTime<Utc>, StoreError> {
    if let Ok(ms) = text.parse::<i64>() {
        return DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| StoreError::Corrupt(format!("inbox time `{text}` is out of range")));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("inbox time `{text}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_are_read_in_both_stored_forms() {
        let t = arrival("2026-11-29T12:00:00.250+00:00").unwrap();
        assert_eq!(t.timestamp_millis(), 1_795_953_600_250);
        assert_eq!(arrival("1795953600250").unwrap(), t);
        assert!(arrival("yesterday").is_err());
    }
}
