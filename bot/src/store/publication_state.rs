//! Where a publication stands (`publications.state`), as stored.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `publishing` while an attempt holds the row, `published` once the branch (and pull request)
/// exist, which is final; `failed` when the last attempt failed (a new click tries again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublicationState {
    Publishing,
    Published,
    Failed,
}

impl PublicationState {
    pub const ALL: [PublicationState; 3] = [Self::Publishing, Self::Published, Self::Failed];

    /// The stored text (also written literally in the SQL of `store/sql/publish.rs`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publishing => "publishing",
            Self::Published => "published",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for PublicationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_strings_round_trip() {
        for (state, stored) in [
            (PublicationState::Publishing, "publishing"),
            (PublicationState::Published, "published"),
            (PublicationState::Failed, "failed"),
        ] {
            assert_eq!(state.as_str(), stored);
            assert_eq!(PublicationState::parse(stored), Some(state));
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{stored}\"")
            );
        }
        assert_eq!(PublicationState::parse("Published"), None);
    }
}
