//! The judge's arguments, checked: exactly one verdict for every candidate and no other, each
//! with a known verdict and a reason, which is made one short line of plain text. Anything else
//! is refused with words of our own (never the model's) for the ranking's reasons.

use serde_json::Value;
use threadsmith_runner::rank::Verdict;

use crate::store::RolloutVerdict;

/// A reason at most, in characters.
pub const REASON_CHARS: usize = 100;

/// The candidates' verdicts in rollout order, or why the answer cannot be used (words for
/// people: "it named rollout 7, which was not compared").
pub fn verdicts(args: &Value, candidates: &[u32]) -> Result<Vec<RolloutVerdict>, String> {
    let list = args
        .get("verdicts")
        .and_then(Value::as_array)
        .ok_or("it gave no list of verdicts")?;
    let mut found: Vec<RolloutVerdict> = Vec::new();
    for item in list {
        let rollout = rollout_number(item.get("rollout"))
            .ok_or("it named a rollout by something other than its number")?;
        if !candidates.contains(&rollout) {
            return Err(format!(
                "it named rollout {rollout}, which was not compared"
            ));
        }
        if found.iter().any(|v| v.rollout == rollout) {
            return Err(format!("it judged rollout {rollout} twice"));
        }
        let verdict = item
            .get("verdict")
            .and_then(Value::as_str)
            .and_then(verdict)
            .ok_or_else(|| {
                format!("its verdict on rollout {rollout} is not best, acceptable or poor")
            })?;
        let reason = item
            .get("reason")
            .and_then(Value::as_str)
            .map(one_line)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| format!("it gave rollout {rollout} no reason"))?;
        found.push(RolloutVerdict {
            rollout,
            verdict,
            reason,
        });
    }
    if let Some(missing) = candidates
        .iter()
        .find(|k| !found.iter().any(|v| v.rollout == **k))
    {
        return Err(format!("it left out rollout {missing}"));
    }
    found.sort_by_key(|v| v.rollout);
    Ok(found)
}

/// `3`, `"3"`, `"#3"` or `"rollout 3"`.
fn rollout_number(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => {
            let s = s.trim().to_ascii_lowercase();
            let s = s.strip_prefix("rollout").unwrap_or(&s).trim();
            s.strip_prefix('#').unwrap_or(s).trim().parse().ok()
        }
        _ => None,
    }
}

fn verdict(s: &str) -> Option<Verdict> {
    match s.trim().to_ascii_lowercase().as_str() {
        "best" => Some(Verdict::Best),
        "acceptable" => Some(Verdict::Acceptable),
        "poor" => Some(Verdict::Poor),
        _ => None,
    }
}

/// One line of plain words: control characters and runs of whitespace become one space, at
/// most [`REASON_CHARS`] characters (cut with "…"). The chat views still escape it.
pub fn one_line(text: &str) -> String {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    let line = words.join(" ");
    if line.chars().count() <= REASON_CHARS {
        return line;
    }
    let cut: String = line.chars().take(REASON_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(rollout: Value, verdict: &str, reason: &str) -> Value {
        json!({"rollout": rollout, "verdict": verdict, "reason": reason})
    }

    #[test]
    fn a_good_answer_is_read_in_rollout_order_whatever_the_spelling() {
        let args = json!({"verdicts": [
            v(json!("rollout 3"), "Best", "keeps the\n output   format"),
            v(json!(1), " poor ", "breaks `--json`"),
            v(json!("#2"), "acceptable", "works, but adds a flag"),
        ]});
        let got = verdicts(&args, &[1, 2, 3]).unwrap();
        let order: Vec<_> = got.iter().map(|v| (v.rollout, v.verdict)).collect();
        assert_eq!(
            order,
            vec![
                (1, Verdict::Poor),
                (2, Verdict::Acceptable),
                (3, Verdict::Best)
            ]
        );
        assert_eq!(got[2].reason, "keeps the output format");
    }

    #[test]
    fn garbage_is_refused_in_our_own_words() {
        let ok = |k: u32| v(json!(k), "best", "fine");
        let cases = [
            (json!({"verdict": "best"}), "it gave no list of verdicts"),
            (
                json!({"verdicts": "all good"}),
                "it gave no list of verdicts",
            ),
            (
                json!({"verdicts": [ok(1), ok(2), ok(7)]}),
                "it named rollout 7, which was not compared",
            ),
            (json!({"verdicts": [ok(1)]}), "it left out rollout 2"),
            (
                json!({"verdicts": [ok(1), ok(1), ok(2)]}),
                "it judged rollout 1 twice",
            ),
            (
                json!({"verdicts": [ok(1), v(json!(2), "great!!", "x")]}),
                "its verdict on rollout 2 is not best, acceptable or poor",
            ),
            (
                json!({"verdicts": [ok(1), v(json!(2), "poor", " \n ")]}),
                "it gave rollout 2 no reason",
            ),
            (
                json!({"verdicts": [ok(1), v(json!(-2), "poor", "x")]}),
                "it named a rollout by something other than its number",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(verdicts(&args, &[1, 2]).unwrap_err(), want, "{args}");
        }
    }

    #[test]
    fn a_reason_is_one_short_line() {
        let long = format!("a\u{0}b\tc {}", "word ".repeat(100));
        let line = one_line(&long);
        assert!(line.starts_with("a b c word"), "{line}");
        assert_eq!(line.chars().count(), REASON_CHARS);
        assert!(line.ends_with('…'));
    }
}
