//! The environment cache's settings, in `[sandbox]` (see runner/src/environment.rs):
//! `setup_inputs` (the files the setup depends on; a repository's own file may set it),
//! `environment_ttl` (how long a snapshot is used; `0` turns the cache off) and
//! `environment_cache_size` (the bot's budget for all snapshots, oldest out first).

use std::time::Duration;

use threadsmith_runner::RepoSettings;
use threadsmith_runner::environment::{
    DEFAULT_SETUP_INPUTS, EnvironmentKey, EnvironmentPlan, inputs_from_tree,
};

use super::{Config, ConfigError, SandboxSection, parse_size};

/// `environment_ttl`'s default: Codex keeps a prepared container as long.
pub const DEFAULT_TTL: Duration = Duration::from_secs(12 * 3600);
/// `environment_cache_size`'s default.
pub const DEFAULT_CACHE_SIZE: u64 = 20 << 30;

/// `90s`, `30m`, `12h`, `2d`, or a number of seconds; `0` is allowed (off).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim().to_ascii_lowercase();
    let (num, unit) = match t.chars().last()? {
        's' => (&t[..t.len() - 1], 1),
        'm' => (&t[..t.len() - 1], 60),
        'h' => (&t[..t.len() - 1], 3600),
        'd' => (&t[..t.len() - 1], 86_400),
        _ => (t.as_str(), 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n >= 0.0 && n.is_finite()).then(|| Duration::from_secs_f64(n * unit as f64))
}

impl SandboxSection {
    /// `environment_ttl`, default 12 h.
    pub fn environment_ttl(&self) -> Result<Duration, ConfigError> {
        match self.environment_ttl.as_deref() {
            None => Ok(DEFAULT_TTL),
            Some(v) => parse_duration(v).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "sandbox.environment_ttl `{v}` is not a duration: write e.g. `12h`, `30m` or `0` (no cache)"
                ))
            }),
        }
    }

    /// `setup_inputs`, default [`DEFAULT_SETUP_INPUTS`].
    pub fn setup_input_patterns(&self) -> Vec<String> {
        self.setup_inputs
            .clone()
            .unwrap_or_else(|| DEFAULT_SETUP_INPUTS.iter().map(|p| p.to_string()).collect())
    }
}

impl Config {
    /// `sandbox.environment_cache_size`, default 20 GiB.
    pub fn environment_cache_size(&self) -> Result<u64, ConfigError> {
        match self.sandbox.environment_cache_size.as_deref() {
            None => Ok(DEFAULT_CACHE_SIZE),
            Some(v) if v.trim() == "0" => Ok(0),
            Some(v) => parse_size(v).ok_or_else(|| ConfigError::Size {
                field: "environment_cache_size",
                value: v.to_string(),
            }),
        }
    }

    /// The `[sandbox]` TTL, for the cleanup commands.
    pub fn environment_ttl(&self) -> Result<Duration, ConfigError> {
        self.sandbox.environment_ttl()
    }
}

/// A task's environment plan: `None` when there is no setup or the cache is off. `listing` is
/// the base commit's `git ls-tree -r -z`.
pub fn environment_plan(
    config: &Config,
    section: &SandboxSection,
    settings: &RepoSettings,
    repo: &str,
    listing: &[u8],
) -> Result<Option<EnvironmentPlan>, ConfigError> {
    let ttl = section.environment_ttl()?;
    let Some(setup) = settings.setup.clone() else {
        return Ok(None);
    };
    if ttl.is_zero() {
        return Ok(None);
    }
    Ok(Some(EnvironmentPlan {
        key: EnvironmentKey {
            repo: repo.to_string(),
            setup,
            network: settings.setup_network,
            inputs: inputs_from_tree(listing, &section.setup_input_patterns()),
        },
        ttl,
        budget_bytes: config.environment_cache_size()?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_the_plan_follow_the_settings() {
        assert_eq!(parse_duration("12h"), Some(DEFAULT_TTL));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("-1h"), None);

        let config = Config::default();
        let settings = RepoSettings {
            setup: Some("make deps".into()),
            ..RepoSettings::default()
        };
        let listing = b"100644 blob aaa\tCargo.lock\x00100644 blob bbb\tsrc/lib.rs";
        let section = SandboxSection::default();
        let plan = environment_plan(&config, &section, &settings, "acme/api", listing)
            .unwrap()
            .unwrap();
        assert_eq!(plan.ttl, DEFAULT_TTL);
        assert_eq!(plan.budget_bytes, DEFAULT_CACHE_SIZE);
        assert_eq!(plan.key.inputs, vec![("Cargo.lock".into(), "aaa".into())]);

        let own = SandboxSection {
            setup_inputs: Some(vec!["src/*.rs".into()]),
            ..SandboxSection::default()
        };
        let plan = environment_plan(&config, &own, &settings, "acme/api", listing)
            .unwrap()
            .unwrap();
        assert_eq!(plan.key.inputs, vec![("src/lib.rs".into(), "bbb".into())]);

        let off = SandboxSection {
            environment_ttl: Some("0".into()),
            ..SandboxSection::default()
        };
        assert!(
            environment_plan(&config, &off, &settings, "acme/api", listing)
                .unwrap()
                .is_none()
        );
        let no_setup = RepoSettings::default();
        assert!(
            environment_plan(&config, &section, &no_setup, "acme/api", listing)
                .unwrap()
                .is_none()
        );
        let bad = SandboxSection {
            environment_ttl: Some("soon".into()),
            ..SandboxSection::default()
        };
        assert!(environment_plan(&config, &bad, &settings, "acme/api", listing).is_err());
    }
}
