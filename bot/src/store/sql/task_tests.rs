//! The test command a task's rollouts run, kept on the task (`tasks.test_command`,
//! `tasks.test_detected_from`) so that what is shown is read from fields, not from words.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::now;
use crate::store::{StoreError, TaskTests};

pub(super) async fn set(pool: &AnyPool, id: &str, tests: &TaskTests) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE tasks SET test_command = $1, test_detected_from = $2, updated_at = $3
         WHERE id = $4",
    )
    .bind(&tests.command)
    .bind(tests.detected_from.as_deref())
    .bind(now())
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// A task row's tests; `None` for a task without any, or one stored before these columns.
pub(super) fn read(r: &AnyRow) -> Result<Option<TaskTests>, StoreError> {
    let command: Option<String> = r.try_get("test_command")?;
    let detected_from: Option<String> = r.try_get("test_detected_from")?;
    Ok(command.map(|command| TaskTests {
        command,
        detected_from,
    }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::store::TaskTests;

    /// The schema as the previous version left it: every SQLite migration before this one.
    async fn previous_version(db: &Path) -> sqlx::AnyPool {
        let (pool, count) =
            super::super::previous_schema::migrated_with(db, |name| name < "0009").await;
        assert_eq!(count, 8, "the previous version's migrations");
        pool
    }

    /// A task stored by the previous version (no test columns) reads as one without stored
    /// tests, so the summary falls back to its rollouts' words; a new one reads its fields.
    #[tokio::test]
    async fn tasks_stored_before_the_columns_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("threadsmith.db");
        let pool = previous_version(&db).await;
        sqlx::query(
            "INSERT INTO tasks (id, created_at, updated_at, state, origin, title, spec, repo, attempts)
             VALUES ('0ld7a5k', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00',
                     'done', 'slack', 'Fix it', 'Fix it', 'acme/api', 2)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let store = crate::store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let old = store.task("0ld7a5k").await.unwrap().unwrap();
        assert_eq!(old.title, "Fix it");
        assert_eq!(old.tests, None);

        let tests = TaskTests {
            command: "cargo test".into(),
            detected_from: Some("Cargo.toml".into()),
        };
        store.set_task_tests("0ld7a5k", &tests).await.unwrap();
        let now = store.task("0ld7a5k").await.unwrap().unwrap();
        assert_eq!(now.tests, Some(tests));
    }
}
