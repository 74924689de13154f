//! The ranking step: rank on evidence, and when two or more changes are tied on test evidence
//! with the first, ask the judge to separate them (once per task and set of candidates: its
//! answer, or why there is none, is stored before it is used, and any later ranking of the same
//! rollouts reuses it).

use std::time::Duration;

use threadsmith_runner::rank::{self, Judgement, RankInput, Ranked};
use threadsmith_runner::{ModelClient, RolloutResult};
use tokio_util::sync::CancellationToken;

use super::Services;
use crate::config::Config;
use crate::judge::{self, Candidate, JudgeError};
use crate::spec::TaskSpec;
use crate::store::{JudgeAnswer, RolloutVerdict, StoreError, StoredJudgement};

/// How long the judge may take.
pub const JUDGE_TIME_LIMIT: Duration = Duration::from_secs(180);

/// The judge's client: `ranking.judge_model`, else `model.model`, on the model endpoint.
/// `None` when no endpoint is configured.
pub fn judge_client(config: &Config) -> Option<ModelClient> {
    let mut model = config.model_config()?;
    if let Some(name) = config
        .ranking
        .judge_model
        .as_deref()
        .filter(|n| !n.trim().is_empty())
    {
        model.model = name.trim().to_string();
    }
    ModelClient::new(model)
        .ok()
        .map(|m| m.with_purpose("judge"))
}

/// The rollouts tied on test evidence with the first-ranked one that changed something, in
/// rollout order. Nothing to judge (empty) when fewer than two are tied, or when all of them
/// made the very same change: no verdict could tell them apart, and the judge would only add
/// its latency and cost to the task (agents given one clear bug often agree to the byte).
pub fn tied_at_the_top(inputs: &[RankInput], results: &[RolloutResult]) -> Vec<u32> {
    let ranked = rank::rank(inputs);
    let Some(top) = ranked
        .first()
        .and_then(|r| inputs.iter().find(|i| i.index == r.index))
    else {
        return Vec::new();
    };
    let changed = |k: u32| results.iter().any(|r| r.index == k && !r.diff.is_empty());
    let mut tied: Vec<u32> = inputs
        .iter()
        .filter(|i| rank::tied_on_tests(top, i) && changed(i.index))
        .map(|i| i.index)
        .collect();
    tied.sort_unstable();
    let patch = |k: &u32| {
        results
            .iter()
            .find(|r| r.index == *k)
            .map(|r| r.diff.patch.as_str())
    };
    let one_change = tied
        .iter()
        .all(|k| patch(k) == tied.first().and_then(patch));
    if tied.len() < 2 || one_change {
        Vec::new()
    } else {
        tied
    }
}

/// Ranks the rollouts, with the judge's verdicts when they are tied on test evidence (see the
/// module's documentation). `ranking.judge = false` ranks without asking.
pub async fn judge_and_rank(
    svc: &Services,
    task_id: &str,
    spec: &TaskSpec,
    results: &[RolloutResult],
    inputs: Vec<RankInput>,
    cancel: &CancellationToken,
) -> Result<Vec<Ranked>, StoreError> {
    let model = judge_client(&svc.config);
    judge_and_rank_with(
        svc,
        model.as_ref(),
        task_id,
        spec,
        results,
        inputs,
        JUDGE_TIME_LIMIT,
        cancel,
    )
    .await
}

/// [`judge_and_rank`] with the judge's client and time limit given.
#[allow(clippy::too_many_arguments)]
pub async fn judge_and_rank_with(
    svc: &Services,
    model: Option<&ModelClient>,
    task_id: &str,
    spec: &TaskSpec,
    results: &[RolloutResult],
    mut inputs: Vec<RankInput>,
    limit: Duration,
    cancel: &CancellationToken,
) -> Result<Vec<Ranked>, StoreError> {
    let tied = tied_at_the_top(&inputs, results);
    if tied.is_empty() || !svc.config.ranking.judge() {
        return Ok(rank::rank(&inputs));
    }
    let answer = match svc.store.judgement(task_id, &tied).await? {
        Some(stored) => stored.answer,
        None => match ask(model, spec, &tied, &inputs, results, limit, cancel).await {
            // Not an answer to keep: the task is ending; ranked without the judge.
            Err(e @ JudgeError::Cancelled) => JudgeAnswer::Failed(e.reason_line()),
            asked => {
                let answer = match asked {
                    Ok(verdicts) => JudgeAnswer::Verdicts(verdicts),
                    Err(e) => JudgeAnswer::Failed(e.reason_line()),
                };
                let judgement = StoredJudgement {
                    candidates: tied.clone(),
                    model: model.map_or_else(String::new, |m| m.config().model.clone()),
                    answer,
                };
                // Stored before it is used; if another process stored one first, that one.
                svc.store.keep_judgement(task_id, &judgement).await?.answer
            }
        },
    };
    Ok(apply(&mut inputs, &tied, &answer))
}

/// Asks the judge about the candidates `tied`.
async fn ask(
    model: Option<&ModelClient>,
    spec: &TaskSpec,
    tied: &[u32],
    inputs: &[RankInput],
    results: &[RolloutResult],
    limit: Duration,
    cancel: &CancellationToken,
) -> Result<Vec<RolloutVerdict>, JudgeError> {
    let Some(model) = model else {
        return Err(JudgeError::NoModel);
    };
    let candidates: Vec<Candidate<'_>> = tied
        .iter()
        .filter_map(|k| {
            let input = inputs.iter().find(|i| i.index == *k)?;
            let result = results.iter().find(|r| r.index == *k)?;
            Some(Candidate { input, result })
        })
        .collect();
    judge::ask(model, spec, &candidates, limit, cancel).await
}

/// Ranks with the judge's answer: its verdicts on the candidates, or the line saying why
/// there are none added to each candidate's reasons.
fn apply(inputs: &mut [RankInput], tied: &[u32], answer: &JudgeAnswer) -> Vec<Ranked> {
    match answer {
        JudgeAnswer::Verdicts(verdicts) => {
            for v in verdicts.iter().filter(|v| tied.contains(&v.rollout)) {
                if let Some(input) = inputs.iter_mut().find(|i| i.index == v.rollout) {
                    input.judge = Some(Judgement {
                        verdict: v.verdict,
                        reason: judge::one_line(&v.reason),
                    });
                }
            }
            rank::rank(inputs)
        }
        JudgeAnswer::Failed(line) => {
            let mut ranked = rank::rank(inputs);
            for r in ranked.iter_mut().filter(|r| tied.contains(&r.index)) {
                r.reasons.push(line.clone());
            }
            ranked
        }
    }
}

#[cfg(test)]
mod tests;
