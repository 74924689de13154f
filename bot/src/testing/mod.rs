//! The fast test tier's doubles: a recording chat port ([`RecordingPort`]), a scripted task
//! runner ([`ScriptedTasks`]), a scripted model endpoint on loopback ([`ScriptedModel`]) and
//! [`TestServices`] — a temporary SQLite store; no Docker, no outside network, no external
//! binary. The handler tests beside the orchestrator drive a real `Bot`
//! over them.

mod recording_port;
mod scripted_model;
mod scripted_tasks;

use std::sync::Arc;

pub use recording_port::{BOT_USER, Call, RecordingPort};
pub use scripted_model::{JudgeReply, PLAN, SPEC_TITLE, ScriptedModel};
pub use scripted_tasks::{Script, ScriptedTasks};
use threadsmith_runner::RepoCache;

use crate::config::Config;
use crate::pipeline::Services;

/// Services over a fresh temporary SQLite database (migrated) and scripted tasks; the
/// directory lives as long as this value.
pub struct TestServices {
    pub svc: Services,
    pub tasks: Arc<ScriptedTasks>,
    pub database_url: String,
    _dir: tempfile::TempDir,
}

/// A configuration for tests: two listed repositories, `acme/api` the default, two rollouts,
/// no model, no publishing, no pause between status edits.
pub fn config() -> Config {
    let mut config: Config = toml::from_str(
        r#"
        attempts = 2
        default_repo = "acme/api"
        status_edit_interval_ms = 0

        [[repos]]
        name = "acme/api"
        url = "https://git.example/acme/api.git"

        [[repos]]
        name = "acme/web"
        url = "https://git.example/acme/web.git"
        "#,
    )
    .expect("the test configuration parses");
    config.publish.mode = Some("off".into());
    config
}

impl TestServices {
    /// `config` over a fresh database.
    pub async fn new(mut config: Config) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let database_url = format!("sqlite://{}", dir.path().join("threadsmith.db").display());
        config.database_url = Some(database_url.clone());
        config.data_dir = Some(dir.path().join("data"));
        let store = crate::store::open(&database_url)
            .await
            .expect("the temporary database opens");
        let tasks = Arc::new(ScriptedTasks::default());
        let repos = RepoCache::new(config.data_dir());
        let svc = Services::with_tasks(config, store, tasks.clone(), repos)
            .expect("the test configuration's publish settings are valid");
        Self {
            svc,
            tasks,
            database_url,
            _dir: dir,
        }
    }
}
