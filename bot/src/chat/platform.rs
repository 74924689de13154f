//! The platform a request came from, as stored (`inbox.platform`, `chat_tasks.platform`,
//! `tasks.origin`, …) and as the orchestrator of one platform knows its own.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// The default of `ChatSettings` (the first platform the bot served).
    #[default]
    Slack,
    Discord,
    /// The command line (`threadsmith run`): a task's origin, never a chat thread's.
    Cli,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Self::Slack, Self::Discord, Self::Cli];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Cli => "cli",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stored rows and events carry the platform as text.
impl PartialEq<Platform> for str {
    fn eq(&self, other: &Platform) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Platform> for String {
    fn eq(&self, other: &Platform) -> bool {
        self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_strings_round_trip() {
        for (platform, stored) in [
            (Platform::Slack, "slack"),
            (Platform::Discord, "discord"),
            (Platform::Cli, "cli"),
        ] {
            assert_eq!(platform.as_str(), stored);
            assert_eq!(platform.to_string(), stored);
            assert_eq!(Platform::parse(stored), Some(platform));
            assert_eq!(
                serde_json::to_string(&platform).unwrap(),
                format!("\"{stored}\"")
            );
            assert_eq!(
                serde_json::from_str::<Platform>(&format!("\"{stored}\"")).unwrap(),
                platform
            );
            assert!(*stored == platform);
            let as_stored_in_a_row: String =
                serde_json::from_str(&format!("\"{stored}\"")).unwrap();
            assert!(as_stored_in_a_row == platform);
        }
        assert_eq!(Platform::parse("Slack"), None);
    }
}
