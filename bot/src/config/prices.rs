//! `[prices.<model>]` and the token limits of `[limits]`: what the model's tokens cost, and how
//! many a task, a person or everyone may use (see `pipeline/budget.rs`).
//!
//! ```toml
//! [prices."gpt-4o-mini"]
//! input = 0.15   # per million prompt (input) tokens
//! output = 0.60  # per million completion (output) tokens
//! ```

use serde::Deserialize;
use threadsmith_runner::ModelUsage;

use super::{Config, LimitsSection};

/// What a million tokens of one model cost, in the operator's currency (shown as `$`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Per million prompt (input) tokens.
    pub input: f64,
    /// Per million completion (output) tokens.
    pub output: f64,
}

impl ModelPrice {
    /// The measured tokens' cost; `None` when none was measured (an endpoint without `usage`).
    pub fn cost(&self, usage: &ModelUsage) -> Option<f64> {
        if usage.known() == threadsmith_runner::usage::Known::None {
            return None;
        }
        Some(
            (usage.prompt_tokens as f64 * self.input
                + usage.completion_tokens as f64 * self.output)
                / 1e6,
        )
    }
}

/// `$0.042`, `$1.27`, `<$0.001`.
pub fn money_words(amount: f64) -> String {
    if amount > 0.0 && amount < 0.001 {
        "<$0.001".into()
    } else if amount < 1.0 {
        format!("${amount:.3}")
    } else {
        format!("${amount:.2}")
    }
}

/// The token limits in force (`None`: no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenLimits {
    pub task: Option<u64>,
    pub daily: Option<u64>,
    pub user_daily: Option<u64>,
}

impl TokenLimits {
    pub fn any(&self) -> bool {
        self.task.is_some() || self.daily.is_some() || self.user_daily.is_some()
    }
}

impl LimitsSection {
    pub fn tokens(&self) -> TokenLimits {
        TokenLimits {
            task: self.task_tokens,
            daily: self.daily_tokens,
            user_daily: self.user_daily_tokens,
        }
    }
}

impl Config {
    /// The price of `model`'s tokens, when the table has it.
    pub fn price(&self, model: Option<&str>) -> Option<ModelPrice> {
        self.prices.get(model?).copied()
    }

    /// Prices must be numbers of money, limits more than nothing.
    pub(super) fn check_costs(&self) -> Result<(), String> {
        for (model, p) in &self.prices {
            if !(p.input.is_finite() && p.output.is_finite() && p.input >= 0.0 && p.output >= 0.0) {
                return Err(format!(
                    "prices.\"{model}\": input and output must be numbers of 0 or more (per million tokens)"
                ));
            }
        }
        let l = self.limits.tokens();
        for (name, v) in [
            ("task_tokens", l.task),
            ("daily_tokens", l.daily),
            ("user_daily_tokens", l.user_daily),
        ] {
            if v == Some(0) {
                return Err(format!(
                    "limits.{name} is 0: no task could run; leave it out for no limit"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_turn_measured_tokens_into_money_and_unknown_into_none() {
        let config: Config = toml::from_str(
            "[prices.\"gpt-4o-mini\"]\ninput = 0.15\noutput = 0.6\n[limits]\ntask_tokens = 50000\nuser_daily_tokens = 2000000\n",
        )
        .unwrap();
        assert!(config.check_costs().is_ok());
        let price = config.price(Some("gpt-4o-mini")).unwrap();
        assert_eq!(config.price(Some("other")), None);
        assert_eq!(config.price(None), None);
        let usage = ModelUsage {
            calls: 3,
            unmeasured: 0,
            prompt_tokens: 120_000,
            completion_tokens: 10_000,
        };
        let cost = price.cost(&usage).unwrap();
        assert!((cost - 0.024).abs() < 1e-9, "{cost}");
        assert_eq!(money_words(cost), "$0.024");
        assert_eq!(money_words(12.345), "$12.35");
        assert_eq!(money_words(0.0001), "<$0.001");
        let unknown = ModelUsage {
            calls: 2,
            unmeasured: 2,
            ..ModelUsage::default()
        };
        assert_eq!(price.cost(&unknown), None);
        assert_eq!(
            config.limits.tokens(),
            TokenLimits {
                task: Some(50_000),
                daily: None,
                user_daily: Some(2_000_000)
            }
        );
    }

    #[test]
    fn bad_prices_and_zero_limits_are_refused() {
        let bad: Config = toml::from_str("[prices.m]\ninput = -1.0\noutput = 1.0\n").unwrap();
        assert!(bad.check_costs().unwrap_err().contains("prices.\"m\""));
        assert!(toml::from_str::<Config>("[prices.m]\ninput = 1.0\n").is_err());
        let zero: Config = toml::from_str("[limits]\ndaily_tokens = 0\n").unwrap();
        assert!(
            zero.check_costs()
                .unwrap_err()
                .contains("limits.daily_tokens")
        );
    }
}
