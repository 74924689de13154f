//! The SQL store: one implementation for SQLite and PostgreSQL through sqlx's `Any` driver.
//!
//! Every query is written once, in the SQL both understand (`$n` parameters, `ON CONFLICT`,
//! `RETURNING`); the schemas in `migrations/sqlite/` and `migrations/postgres/` use the same
//! column names and only portable types (TEXT, BIGINT, DOUBLE PRECISION), with times as RFC 3339
//! text and lease deadlines as Unix milliseconds. The few statements that differ by backend
//! (locking the work queue) branch on [`Backend`]. Each of the store's traits is implemented in
//! the file of its table or concern under `sql/`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};
use tokio_util::sync::CancellationToken;

use super::{Changes, StoreError};

mod approvals;
mod chat_links;
mod checkpoint;
mod effects;
mod gauges;
mod housekeeping;
mod inbox;
mod judgements;
mod notices;
mod plans;
#[cfg(test)]
mod previous_schema;
mod publish;
mod questions;
mod queue;
mod rollouts;
mod rounds;
mod task_instructions;
mod task_tests;
mod tasks;
mod thread_claims;
mod usage;
mod workers;

pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
pub static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// This process's writes, and on PostgreSQL every process's (see `notices.rs`).
    changes: Arc<Changes>,
    stop_listening: CancellationToken,
    /// SQLite's checkpoints, run beside the writers (see `checkpoint.rs`); `None` elsewhere.
    /// Watched by the tests.
    #[cfg_attr(not(test), allow(dead_code))]
    checkpoints: Option<tokio::sync::watch::Receiver<checkpoint::Checkpointed>>,
    /// Where the inbox's journals live (a SQLite file's; see `store/journal/`).
    journal_dir: Option<std::path::PathBuf>,
}

impl Drop for SqlStore {
    fn drop(&mut self) {
        self.stop_listening.cancel();
    }
}

fn now() -> String {
    Utc::now().to_rfc3339()
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn time(s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.map(|s| {
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| StoreError::Corrupt(format!("time `{s}`: {e}")))
    })
    .transpose()
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// SQLite creates the file when it is missing (`mode=rwc`) unless the URL says otherwise.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

impl SqlStore {
    /// Connects to the database a URL names (`sqlite://…` or `postgres://…`) and migrates it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend =
            Backend::of_url(url).ok_or_else(|| StoreError::Unsupported(super::redact_url(url)))?;
        let open_err = |source| StoreError::Open {
            url: super::redact_url(url),
            source,
        };
        let (connect_url, max) = match backend {
            // One connection: SQLite has one writer at a time, and a writer that finds the
            // database locked waits in SQLite's busy handler, which sleeps (1, 2, 5, 10 ms…)
            // rather than being woken. Queued on the pool instead, each statement is woken the
            // moment the one before it ends (reads are short; the ack benchmark measures it:
            // docs/BENCHMARKS.md). Other processes on the same file still meet the busy handler.
            Backend::Sqlite => (sqlite_url(url), 1),
            Backend::Postgres => (url.to_string(), 16),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            // sqlx pings a connection before every statement by default (a round trip to the
            // connection's worker thread, half of a one-row insert's time on SQLite); a file
            // does not hang up. A PostgreSQL server can, between statements: pinged.
            .test_before_acquire(backend == Backend::Postgres)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never wait for the writer. NORMAL syncs at checkpoints
                        // rather than at every commit: a crash of the process loses nothing;
                        // only a power cut can lose the last commits.
                        conn.execute(
                            "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;
                             PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                        // Checkpoints run beside the writers, not inside a commit.
                        conn.execute(
                            format!(
                                "PRAGMA wal_autocheckpoint = {}",
                                checkpoint::SAFETY_NET_PAGES
                            )
                            .as_str(),
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .map_err(open_err)?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATOR.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATOR.run(&pool).await?,
        }
        let changes = Arc::new(Changes::default());
        let stop = CancellationToken::new();
        if backend == Backend::Postgres {
            notices::start(url, changes.clone(), stop.clone())
                .await
                .map_err(open_err)?;
        }
        let checkpoints = (backend == Backend::Sqlite && !url.contains(":memory:"))
            .then(|| checkpoint::start(connect_url.clone(), stop.clone()));
        Ok(Self {
            pool,
            backend,
            changes,
            stop_listening: stop,
            checkpoints,
            journal_dir: super::journal::dir_for(url),
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}
