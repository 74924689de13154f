//! A process handing its work over on its way out: it stops its heartbeat and withdraws its
//! registration, so that its events are taken again and its tasks adopted by another live
//! process at once, rather than when its heartbeat would have lapsed.

use std::sync::atomic::Ordering;

use super::Services;
use crate::store::StoreError;

impl Services {
    /// Withdraws this process as a worker: no more heartbeats, its leases on inbox events end
    /// now, and its tasks become another live worker's to adopt (`Bot::reconcile`). Tasks
    /// cancelled afterwards are left unfinished in the store for that adopter to report.
    pub async fn retire(&self) -> Result<(), StoreError> {
        let live = &self.liveness;
        live.retired.store(true, Ordering::SeqCst);
        live.stop.cancel();
        // A heartbeat in flight would register this process again after the retirement.
        let _beating = live.beat.lock().await;
        self.store.retire_worker(&live.worker.id).await
    }

    /// Whether this process has handed its work over (see [`Self::retire`]).
    pub fn retired(&self) -> bool {
        self.liveness.retired.load(Ordering::SeqCst)
    }
}
