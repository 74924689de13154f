//! Housekeeping on the event loop's timer: handled inbox events and idempotency records older
//! than the retention (`workers.retention_days`) are deleted, at most once an hour per process.
//! Every process may do it; the deletes are idempotent.

use std::time::Duration;

use tokio::time::Instant;

use crate::pipeline::Services;

/// How often a process prunes.
const EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, Default)]
pub(super) struct Housekeeping {
    last: Option<Instant>,
}

impl Housekeeping {
    /// Whether a prune is due at `now` (the first one is due at once).
    fn due(&self, now: Instant) -> bool {
        self.last
            .is_none_or(|last| now.duration_since(last) >= EVERY)
    }

    pub(super) async fn run_when_due(&mut self, svc: &Services) {
        let now = Instant::now();
        if !self.due(now) {
            return;
        }
        self.last = Some(now);
        let retention = svc.config.retention();
        let Ok(retention) = chrono::Duration::from_std(retention) else {
            return;
        };
        let before = chrono::Utc::now() - retention;
        match svc.store.prune(before).await {
            Ok(p) if p.events + p.effects > 0 => tracing::info!(
                events = p.events,
                effects = p.effects,
                "pruned handled events and idempotency records older than the retention"
            ),
            Ok(_) => {}
            // Tried again at the next hour; nothing depends on it meanwhile.
            Err(e) => tracing::warn!(error = %e, "could not prune old events"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prunes_at_once_then_hourly() {
        let start = Instant::now();
        let mut h = Housekeeping::default();
        assert!(h.due(start));
        h.last = Some(start);
        assert!(!h.due(start + Duration::from_secs(60)));
        assert!(!h.due(start + EVERY - Duration::from_millis(1)));
        assert!(h.due(start + EVERY));
    }
}
