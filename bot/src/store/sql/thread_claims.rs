//! Thread claims (`thread_claims`): one request at a time holds a thread, across every process
//! sharing the database, from the moment it is let through until its task ends — so a second
//! request cannot start beside it in the window before the first task is stored.

use async_trait::async_trait;
use sqlx::{AnyPool, Row};

use super::{SqlStore, now_ms};
use crate::store::{StoreError, ThreadStore};

/// Where a claim is and who asks for it.
struct Claim<'a> {
    platform: &'a str,
    channel: &'a str,
    thread: &'a str,
    anchor: &'a str,
    worker: &'a str,
}

/// Claims the thread for request `anchor`: true when it is free, held by a worker that is no
/// longer alive, or held by this same request (whichever process handles it: the request's
/// own claim decides between processes).
async fn claim(pool: &AnyPool, c: &Claim<'_>) -> Result<bool, StoreError> {
    let now = now_ms();
    let taken = sqlx::query(
        "INSERT INTO thread_claims (platform, channel, thread, anchor, worker, claimed_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (platform, channel, thread) DO UPDATE
            SET anchor = excluded.anchor, worker = excluded.worker,
                claimed_at = excluded.claimed_at
            WHERE NOT EXISTS (SELECT 1 FROM workers w
                              WHERE w.id = thread_claims.worker AND w.alive_until > $6)",
    )
    .bind(c.platform)
    .bind(c.channel)
    .bind(c.thread)
    .bind(c.anchor)
    .bind(c.worker)
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected();
    if taken == 1 {
        return Ok(true);
    }
    Ok(holder(pool, c.platform, c.channel, c.thread)
        .await?
        .as_deref()
        == Some(c.anchor))
}

/// The request holding a thread, while its worker is alive.
async fn holder(
    pool: &AnyPool,
    platform: &str,
    channel: &str,
    thread: &str,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query(
        "SELECT c.anchor FROM thread_claims c
         JOIN workers w ON w.id = c.worker AND w.alive_until > $4
         WHERE c.platform = $1 AND c.channel = $2 AND c.thread = $3",
    )
    .bind(platform)
    .bind(channel)
    .bind(thread)
    .bind(now_ms())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| r.try_get("anchor")).transpose()?)
}

/// Gives the thread back once request `anchor`'s task ended; a claim another worker took over
/// meanwhile is left alone.
async fn release(pool: &AnyPool, c: &Claim<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM thread_claims
         WHERE platform = $1 AND channel = $2 AND thread = $3 AND anchor = $4 AND worker = $5",
    )
    .bind(c.platform)
    .bind(c.channel)
    .bind(c.thread)
    .bind(c.anchor)
    .bind(c.worker)
    .execute(pool)
    .await?;
    Ok(())
}

#[async_trait]
impl ThreadStore for SqlStore {
    async fn claim_thread(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
        anchor: &str,
        worker: &str,
    ) -> Result<bool, StoreError> {
        let c = Claim {
            platform,
            channel,
            thread,
            anchor,
            worker,
        };
        claim(&self.pool, &c).await
    }

    async fn thread_holder(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
    ) -> Result<Option<String>, StoreError> {
        holder(&self.pool, platform, channel, thread).await
    }

    async fn release_thread(
        &self,
        platform: &str,
        channel: &str,
        thread: &str,
        anchor: &str,
        worker: &str,
    ) -> Result<(), StoreError> {
        let c = Claim {
            platform,
            channel,
            thread,
            anchor,
            worker,
        };
        release(&self.pool, &c).await
    }
}
