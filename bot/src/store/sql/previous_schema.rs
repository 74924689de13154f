//! Upgrade tests: a SQLite database with the schema an earlier version left, so that rows it
//! wrote can be read back by this one.

use std::path::Path;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

/// A database at `db` migrated with the SQLite migrations whose file name `keep` accepts (an
/// earlier version's); how many migrations that was.
pub(super) async fn migrated_with(
    db: &Path,
    keep: impl Fn(&str) -> bool,
) -> (sqlx::AnyPool, usize) {
    let all = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/sqlite");
    let old = db.with_file_name("previous-migrations");
    std::fs::create_dir(&old).unwrap();
    for entry in std::fs::read_dir(&all).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if keep(&name) {
            std::fs::copy(entry.path(), old.join(&name)).unwrap();
        }
    }
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}?mode=rwc", db.display()))
        .await
        .unwrap();
    let migrator = Migrator::new(old.as_path()).await.unwrap();
    let count = migrator.iter().count();
    migrator.run(&pool).await.unwrap();
    (pool, count)
}
