//! Whether a chat adapter is connected to its platform now. Only the adapter can tell (it
//! alone knows its platform's connection), so it sets the state; the core reads it, for
//! `/readyz` and `/metrics`, without knowing any Slack or Discord type.

use std::sync::Arc;

use tokio::sync::watch;

/// A connection's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not connected yet since the start.
    Connecting,
    Connected,
    /// It was connected, then lost, for this reason; the adapter is reconnecting.
    Lost(String),
}

/// A chat adapter's connection state, shared by clones: the adapter sets it, the core reads
/// or watches it.
#[derive(Debug, Clone)]
pub struct Connection {
    state: Arc<watch::Sender<ConnectionState>>,
}

impl Default for Connection {
    fn default() -> Self {
        Self {
            state: Arc::new(watch::Sender::new(ConnectionState::Connecting)),
        }
    }
}

impl Connection {
    pub fn connected(&self) {
        self.state.send_replace(ConnectionState::Connected);
    }

    /// The connection went away; `reason` is shown by `/readyz`.
    pub fn lost(&self, reason: impl Into<String>) {
        self.state
            .send_replace(ConnectionState::Lost(reason.into()));
    }

    pub fn state(&self) -> ConnectionState {
        self.state.borrow().clone()
    }

    pub fn is_connected(&self) -> bool {
        *self.state.borrow() == ConnectionState::Connected
    }

    /// Changes as they happen.
    pub fn subscribe(&self) -> watch::Receiver<ConnectionState> {
        self.state.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_state() {
        let c = Connection::default();
        let seen = c.clone();
        assert_eq!(seen.state(), ConnectionState::Connecting);
        c.connected();
        assert!(seen.is_connected());
        c.lost("the WebSocket closed");
        assert_eq!(
            seen.state(),
            ConnectionState::Lost("the WebSocket closed".into())
        );
        assert!(!seen.is_connected());
    }
}
