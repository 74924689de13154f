//! The repository's instructions for agents a task's rollouts were given, kept on the task
//! (`tasks.instruction_files`, a JSON array) for the rollout page.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::now;
use crate::store::{InstructionFile, StoreError};

pub(super) async fn set(
    pool: &AnyPool,
    id: &str,
    files: &[InstructionFile],
) -> Result<(), StoreError> {
    let json = serde_json::to_string(files)
        .map_err(|e| StoreError::Corrupt(format!("instruction files: {e}")))?;
    sqlx::query("UPDATE tasks SET instruction_files = $1, updated_at = $2 WHERE id = $3")
        .bind(json)
        .bind(now())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// A task row's instruction files; none for a task stored before the column. An unreadable
/// value is logged and read as none: it only feeds a page, and must not make the task unreadable.
pub(super) fn read(r: &AnyRow) -> Result<Vec<InstructionFile>, StoreError> {
    let Some(json) = r.try_get::<Option<String>, _>("instruction_files")? else {
        return Ok(Vec::new());
    };
    match serde_json::from_str(&json) {
        Ok(files) => Ok(files),
        Err(e) => {
            tracing::warn!(error = %e, "a task's instruction files could not be read");
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::store::InstructionFile;

    /// The schema as the previous version left it: every SQLite migration before this one.
    async fn previous_version(db: &Path) -> sqlx::AnyPool {
        super::super::previous_schema::migrated_with(db, |name| !name.contains("instruction_files"))
            .await
            .0
    }

    /// A task stored by the previous version reads as one given no instruction files; the
    /// files set afterwards read back as they were written.
    #[tokio::test]
    async fn tasks_stored_before_the_column_read_and_take_files() {
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
        assert_eq!(old.instruction_files, Vec::new());

        let files = vec![
            InstructionFile {
                path: "AGENTS.md".into(),
                bytes: 120,
                shown: 120,
            },
            InstructionFile {
                path: "api/AGENTS.md".into(),
                bytes: 90_000,
                shown: 32_000,
            },
        ];
        store
            .set_task_instructions("0ld7a5k", &files)
            .await
            .unwrap();
        let now = store.task("0ld7a5k").await.unwrap().unwrap();
        assert_eq!(now.instruction_files, files);
    }
}
