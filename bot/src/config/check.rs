//! Settings that contradict each other are refused when the config is loaded, with what to
//! change, rather than found out by a rollout.

use threadsmith_runner::oom::check_memory_budget;

use super::{Config, ConfigError};

impl Config {
    /// The sandbox settings, and each configured repository's over them, are consistent.
    pub fn check_sandbox(&self) -> Result<(), ConfigError> {
        let image = self.image();
        let settings = self.sandbox.resolve(&image)?;
        check_memory_budget(&settings.limits)
            .map_err(|e| ConfigError::Invalid(format!("[sandbox]: {e}")))?;
        self.backend()?;
        self.check_costs().map_err(ConfigError::Invalid)?;
        self.environment_ttl()?;
        self.environment_cache_size()?;
        for repo in &self.repos {
            repo.settings
                .refuse_bot_only(&format!("the settings of repository `{}`", repo.name))?;
            repo.settings.environment_ttl()?;
            let settings = repo.settings.or(&self.sandbox).resolve(&image)?;
            check_memory_budget(&settings.limits).map_err(|e| {
                ConfigError::Invalid(format!("the settings of repository `{}`: {e}", repo.name))
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_larger_than_the_memory_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("threadsmith.toml");
        std::fs::write(
            &path,
            "[sandbox]\nmemory = \"2g\"\nworkspace_size = \"4g\"\n",
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        let err = config.check_sandbox().unwrap_err().to_string();
        assert!(
            err.contains("more than three quarters of sandbox.memory"),
            "{err}"
        );
        assert!(
            Config::default().check_sandbox().is_ok(),
            "the defaults fit"
        );
        std::fs::write(
            &path,
            "[sandbox]\nmemory = \"4g\"\nworkspace_size = \"2g\"\n",
        )
        .unwrap();
        assert!(Config::load(&path).unwrap().check_sandbox().is_ok());
    }
}
