//! What the store suites share: both stores, `check!` (a check on each), and row builders.
#![allow(dead_code, unused_imports)]

pub use std::collections::HashSet;
pub use std::sync::Arc;
pub use std::time::Duration;
pub use threadsmith_bot::store::{
    self, ChatTaskLink, NewTask, PublicationLease, Question, RolloutLimits, Stage, Store,
    TaskState, Worker,
};
pub use threadsmith_runner::{
    CommandKind, CommandRecord, Diff, FileChange, Outcome, RolloutResult, Sampling,
};

pub async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    (store::open(&url).await.expect("open SQLite"), dir)
}

pub async fn postgres() -> Arc<dyn Store> {
    let url = threadsmith_tests::postgres::database().await;
    store::open(&url).await.expect("open PostgreSQL")
}

/// `check!(name)` runs `name(store)` on both stores.
macro_rules! check {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (store, _dir) = super::sqlite().await;
                    super::$name(store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::postgres().await).await;
                }
            )*
        }
    };
}

pub fn new_task(id: &str, requester: &str, repo: &str, attempts: u32, worker: &str) -> NewTask {
    NewTask {
        id: id.into(),
        origin: "slack".into(),
        requester: Some(requester.into()),
        title: format!("title of {id}"),
        spec: "spec".into(),
        repo: repo.into(),
        base_ref: None,
        attempts,
        spec_json: Some("{}".into()),
        worker: Some(worker.into()),
    }
}

pub fn worker(id: &str) -> Worker {
    Worker {
        id: id.into(),
        host: "test-host".into(),
        pid: 1,
        alive_until: 0,
    }
}

pub fn command(seq: u32) -> CommandRecord {
    CommandRecord {
        seq,
        kind: CommandKind::Shell,
        command: format!("echo {seq}"),
        exit_code: Some(0),
        timed_out: false,
        duration: Duration::from_millis(12),
        output: format!("out {seq} ✓"),
        output_bytes: 9,
        dropped_bytes: 0,
        started_at: chrono::Utc::now(),
    }
}
