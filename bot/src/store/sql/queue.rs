//! The inbox as a work queue: storing one event, taking events with a lease, finishing them.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use tokio::sync::watch;

use super::{Backend, SqlStore, ms, now, now_ms};
use crate::store::{Gauges, InboxItem, InboxStore, NewEvent, Pruned, StoreError};

#[async_trait]
impl InboxStore for SqlStore {
    fn inbox_changes(&self) -> watch::Receiver<u64> {
        self.changes.inbox()
    }

    fn inbox_journal_dir(&self) -> Option<std::path::PathBuf> {
        self.journal_dir.clone()
    }

    fn inbox_touched(&self) {
        self.changes.inbox_written();
    }

    #[tracing::instrument(name = "store.enqueue", skip(self, event))]
    async fn enqueue(
        &self,
        dedupe_key: &str,
        platform: &str,
        event: &str,
    ) -> Result<Option<i64>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO inbox (dedupe_key, platform, event, received_at, state) VALUES ($1, $2, $3, $4, 'queued')
             ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        )
        .bind(dedupe_key)
        .bind(platform)
        .bind(event)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        if id.is_some() {
            self.changes.inbox_written();
        }
        Ok(id)
    }

    async fn inbox_len(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    #[tracing::instrument(name = "store.claim_inbox", skip(self))]
    async fn claim_inbox(
        &self,
        platform: &str,
        worker: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<InboxItem>, StoreError> {
        let now = now_ms();
        // An event taken by a worker stays its own while the worker is alive: its lease runs
        // out only when both the lease given at the claim and the worker's heartbeat have
        // lapsed (a heartbeat renews one row, not every event the worker holds, so that it
        // never holds up the inbox's writes for long). SQLite has one writer at a time, so the
        // UPDATE is atomic as it stands; PostgreSQL locks the rows it picks and skips those
        // another worker is picking.
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE inbox SET state = 'taken', leased_by = $1, lease_until = $2, attempts = attempts + 1
             WHERE id IN (
                SELECT id FROM inbox
                WHERE platform = $3 AND (state = 'queued' OR (state = 'taken' AND lease_until < $4
                    AND NOT EXISTS (SELECT 1 FROM workers w
                                    WHERE w.id = inbox.leased_by AND w.alive_until > $4)))
                ORDER BY id LIMIT $5 {lock})
             RETURNING id, event, attempts"
        );
        let mut items = sqlx::query(&sql)
            .bind(worker)
            .bind(now + ms(lease))
            .bind(platform)
            .bind(now)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(InboxItem {
                    id: r.try_get("id")?,
                    event: r.try_get("event")?,
                    attempts: r.try_get::<i64, _>("attempts")? as u32,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        items.sort_by_key(|i| i.id);
        if !items.is_empty() {
            self.changes.inbox_written();
        }
        Ok(items)
    }

    async fn finish_inbox(&self, id: i64, error: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("UPDATE inbox SET state = $1, error = $2, handled_at = $3 WHERE id = $4")
            .bind(if error.is_some() { "failed" } else { "done" })
            .bind(error)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.changes.inbox_written();
        Ok(())
    }

    async fn inbox_pending(&self) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE state IN ('queued', 'taken')")
                .fetch_one(&self.pool)
                .await?;
        Ok(n as u64)
    }

    #[tracing::instrument(name = "store.enqueue_many", skip_all, fields(events = events.len()))]
    async fn enqueue_many(&self, events: &[NewEvent]) -> Result<Vec<Option<i64>>, StoreError> {
        let ids = super::inbox::enqueue_many(&self.pool, events).await?;
        if ids.iter().any(Option::is_some) {
            self.changes.inbox_written();
        }
        Ok(ids)
    }

    #[tracing::instrument(name = "store.prune", skip(self))]
    async fn prune(&self, before: DateTime<Utc>) -> Result<Pruned, StoreError> {
        super::housekeeping::prune(&self.pool, before).await
    }

    async fn gauges(&self) -> Result<Gauges, StoreError> {
        super::gauges::gauges(&self.pool).await
    }
}
