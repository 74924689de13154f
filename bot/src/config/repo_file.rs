//! The repository's own `.threadsmith.toml`: the keys of `[sandbox]`, and `instructions`, the
//! repository's instructions for agents kept in threadsmith's file (given to the agent after
//! its `AGENTS.md` files; see `crate::instructions`).

use std::path::PathBuf;

use super::{ConfigError, SandboxSection};

/// What `.threadsmith.toml` says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepoFile {
    pub sandbox: SandboxSection,
    /// `instructions = "…"`: Markdown for the agent.
    pub instructions: Option<String>,
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Parse {
        path: PathBuf::from(".threadsmith.toml"),
        message: message.into(),
    }
}

/// Parses `.threadsmith.toml`: `instructions` (a string) taken out, the rest read as
/// `[sandbox]`, bot-only keys refused.
pub fn parse(text: &str) -> Result<RepoFile, ConfigError> {
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e: toml::de::Error| invalid(e.message()))?;
    let instructions = match table.remove("instructions") {
        None => None,
        Some(toml::Value::String(s)) => Some(s).filter(|s| !s.trim().is_empty()),
        Some(_) => return Err(invalid("`instructions` must be a string (Markdown)")),
    };
    let sandbox: SandboxSection = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| invalid(e.message()))?;
    sandbox.refuse_bot_only("the repository's .threadsmith.toml")?;
    Ok(RepoFile {
        sandbox,
        instructions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_are_read_beside_the_sandbox_keys() {
        let file = parse(
            "test = \"make check\"\ninstructions = \"\"\"\nRun `make fmt` before finishing.\n\"\"\"\n",
        )
        .unwrap();
        assert_eq!(file.sandbox.test.as_deref(), Some("make check"));
        assert_eq!(
            file.instructions.as_deref(),
            Some("Run `make fmt` before finishing.\n")
        );
        assert_eq!(parse("test = \"x\"").unwrap().instructions, None);
    }

    #[test]
    fn bad_instructions_and_unknown_keys_are_refused() {
        let e = parse("instructions = 3").unwrap_err().to_string();
        assert!(e.contains("`instructions` must be a string"), "{e}");
        let e = parse("instructons = \"typo\"").unwrap_err().to_string();
        assert!(e.contains("instructons"), "{e}");
    }
}
