//! `[ranking]`: how rollouts are chosen among (see runner/src/rank.rs): the cross-run
//! reproduction tests and the judge, each of which can be turned off.

use serde::Deserialize;

/// `[ranking]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RankingSection {
    /// Run every rollout's reproduction test against the base and every other change (default
    /// true; skipped when the repository has no test command).
    pub reproduction: Option<bool>,
    /// Ask a model to compare rollouts tied on test evidence (default true).
    pub judge: Option<bool>,
    /// The judge's model (default: `model.model`).
    pub judge_model: Option<String>,
}

impl RankingSection {
    pub fn reproduction(&self) -> bool {
        self.reproduction.unwrap_or(true)
    }

    pub fn judge(&self) -> bool {
        self.judge.unwrap_or(true)
    }
}
