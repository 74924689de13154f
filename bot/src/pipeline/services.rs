//! What the pipeline needs ([`Services`]) and this process's registration as a worker with its
//! heartbeat ([`Liveness`]).

use std::sync::Arc;

use threadsmith_runner::{RepoCache, Runner};
use tokio_util::sync::CancellationToken;

use super::{DockerTasks, TaskRunner};
use crate::config::Config;
use crate::publish::{PublishError, Publisher};
use crate::store::{Store, StoreError, Worker};

/// What the pipeline needs.
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    /// Runs tasks: the Docker pipeline ([`DockerTasks`]), or a scripted one in tests.
    pub tasks: Arc<dyn TaskRunner>,
    pub repos: RepoCache,
    /// Approve → branch and pull request.
    pub publisher: Arc<Publisher>,
    /// This process as a worker on the database: its heartbeat keeps its leases.
    pub liveness: Arc<Liveness>,
}

/// This process's registration as a worker, and its heartbeat (which stops when the last
/// [`Services`] is dropped).
pub struct Liveness {
    pub(super) worker: Worker,
    pub(super) started: tokio::sync::OnceCell<()>,
    pub(super) stop: CancellationToken,
    /// Held while a heartbeat is written, so that retiring waits for one in flight.
    pub(super) beat: Arc<tokio::sync::Mutex<()>>,
    /// Set when this process handed its work over on its way out (see `Services::retire`).
    pub(super) retired: std::sync::atomic::AtomicBool,
    /// Woken when a task of this process ends, so that waiting tasks retry admission at once.
    pub admissions: tokio::sync::Notify,
}

impl Drop for Liveness {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Liveness {
    pub(super) fn new() -> Self {
        let id = threadsmith_runner::owner_label();
        let mut parts = id.split(':');
        let host = parts.next().unwrap_or_default().to_string();
        let pid = std::process::id();
        Self {
            worker: Worker {
                id,
                host,
                pid,
                alive_until: 0,
            },
            started: tokio::sync::OnceCell::new(),
            stop: CancellationToken::new(),
            beat: Arc::default(),
            retired: std::sync::atomic::AtomicBool::new(false),
            admissions: tokio::sync::Notify::new(),
        }
    }
}

impl Services {
    /// The services of a process that runs its tasks' rollouts in Docker.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        runner: Runner,
        repos: RepoCache,
    ) -> Result<Self, PublishError> {
        Self::with_tasks(config, store, Arc::new(DockerTasks::new(runner)), repos)
    }

    /// The services with `tasks` running the tasks (see [`TaskRunner`]).
    pub fn with_tasks(
        config: Config,
        store: Arc<dyn Store>,
        tasks: Arc<dyn TaskRunner>,
        repos: RepoCache,
    ) -> Result<Self, PublishError> {
        let config = Arc::new(config);
        let publisher = Publisher::new(config.clone(), store.clone(), repos.clone())?;
        publisher.check()?;
        Ok(Self {
            config,
            store,
            tasks,
            repos,
            publisher: Arc::new(publisher),
            liveness: Arc::new(Liveness::new()),
        })
    }

    /// This process's worker id (`host:pid:start time`).
    pub fn worker_id(&self) -> &str {
        &self.liveness.worker.id
    }

    /// Registers this process as a worker (once) and keeps it alive with a heartbeat every
    /// third of the lease, so that no other process takes over its events or tasks.
    pub async fn ensure_alive(&self) -> Result<(), StoreError> {
        let live = &self.liveness;
        if self.retired() {
            // Handed over: registering again would claim the work back.
            return Ok(());
        }
        let lease = self.config.lease();
        live.started
            .get_or_try_init(|| async {
                self.store.heartbeat(&live.worker, lease).await?;
                let store = self.store.clone();
                let worker = live.worker.clone();
                let stop = live.stop.clone();
                let beat = live.beat.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(lease / 3);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {}
                            _ = stop.cancelled() => break,
                        }
                        let _beating = beat.lock().await;
                        if stop.is_cancelled() {
                            break;
                        }
                        if let Err(e) = store.heartbeat(&worker, lease).await {
                            tracing::error!(error = %e, "heartbeat failed: other processes may take over this one's work");
                        }
                    }
                });
                Ok::<(), StoreError>(())
            })
            .await?;
        Ok(())
    }
}
