//! The store: tasks, rollouts, the commands they ran, and their diffs; the chat inbox (a work
//! queue with leases), effects' idempotency keys, approvals, and the workers (bot processes)
//! sharing the database.
//!
//! The interface is one trait per concern (`traits.rs`); [`Store`] is all of them. Callers hold
//! an `Arc<dyn Store>`; [`open`] picks the database from its URL: SQLite
//! (`sqlite://file.db`, the default) or PostgreSQL (`postgres://…`), both served by
//! [`sql::SqlStore`].

mod changes;
pub mod inbox_writer;
pub mod journal;
mod pending;
mod publication_state;
mod rounds;
mod rows;
pub mod sql;
mod stage;
mod traits;

pub use changes::Changes;
pub use publication_state::PublicationState;
pub use rounds::{RoundLink, RoundPlace, RoundStore};
pub use rows::*;
pub use stage::{Stage, TaskState, stage};
pub use traits::{
    ApprovalStore, ChatStore, EffectStore, InboxStore, JudgementStore, PlanStore, PublicationStore,
    QuestionStore, RolloutStore, Store, TaskStore, ThreadStore, WorkerStore,
};

use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is not reachable at {url}: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("the database could not be migrated: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// A failure shared by several callers (one transaction for a group of events).
    #[error("database error: {0}")]
    Shared(String),
    #[error("the database holds a value threadsmith cannot read: {0}")]
    Corrupt(String),
    #[error(
        "unsupported database URL `{0}`: use sqlite://path/to/file.db or postgres://user:password@host/database"
    )]
    Unsupported(String),
}

/// Hides a database URL's password.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Opens the store a database URL names (`sqlite://…` or `postgres://…`), applying migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(sql::SqlStore::open(url).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_password_is_hidden() {
        assert_eq!(
            redact_url("postgres://bot:hunter2@db.internal:5432/threadsmith"),
            "postgres://bot:***@db.internal:5432/threadsmith"
        );
        assert_eq!(
            redact_url("sqlite://threadsmith.db"),
            "sqlite://threadsmith.db"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn task_states_round_trip() {
        for s in TaskState::ALL {
            assert_eq!(TaskState::parse(s.as_str()), Some(s));
        }
    }
}
