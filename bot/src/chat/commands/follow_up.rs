//! A mention in a thread whose task has ended with a summary is a follow-up: the next round of
//! that task. `@threadsmith also handle tabs`, `@threadsmith from #2: keep the output format`,
//! `@threadsmith fix this attempts=2` all are; `help`, `status` and `plan` keep their meaning.

use super::{FixArgs, ParseError, excluded, fix_args, mention_end};

/// What a follow-up asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// `from #k`: the rollout of the last round to start from; `None`: the approved one, else
    /// the top-ranked one.
    pub from: Option<u32>,
    /// The request (`instructions`) and the options, as for `fix`.
    pub args: FixArgs,
}

/// `None` when the bot is not mentioned outside code and quotes, or when the mention asks for
/// help, the status or a plan (handled as anywhere else).
pub fn parse_follow_up(text: &str, bot_user_id: &str) -> Option<Result<FollowUp, ParseError>> {
    let ex = excluded(text);
    let end = mention_end(text, bot_user_id, &ex)?;
    let body = text[end..].trim_start_matches(|c: char| c.is_whitespace() || ":,".contains(c));
    let first = body
        .split(|c: char| !(c.is_alphanumeric() || "-_".contains(c)))
        .next()
        .unwrap_or_default()
        .to_lowercase();
    if !body.contains(char::is_alphanumeric) || ["help", "status", "plan"].contains(&&*first) {
        return None;
    }
    let mut at = text.len() - body.len();
    let from = match from_clause(&text[at..]) {
        Ok(Some((k, len))) => {
            at += len;
            Some(k)
        }
        Ok(None) => None,
        Err(e) => return Some(Err(e)),
    };
    at += verb_len(&text[at..]);
    Some(fix_args(text, at, &ex, true).map(|args| FollowUp { from, args }))
}

/// `from #2`, `from 2`, `from rollout 2`, `from rollout #2` at the start of `s`: the number and
/// the clause's length. Other words after `from` are prose (`from the logs, …`).
fn from_clause(s: &str) -> Result<Option<(u32, usize)>, ParseError> {
    let lower = s.to_lowercase();
    if lower.len() != s.len() {
        // Lowercasing changed byte lengths: not the ASCII clause.
        return Ok(None);
    }
    let Some(rest) = lower.strip_prefix("from") else {
        return Ok(None);
    };
    if !rest.starts_with(char::is_whitespace) {
        return Ok(None);
    }
    let mut rest = rest.trim_start();
    if let Some(r) = rest.strip_prefix("rollout") {
        rest = r.trim_start();
    }
    let hashed = rest.starts_with('#');
    let rest = rest.trim_start_matches('#');
    let digits: String = rest
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let len = s.len() - rest.len() + digits.len();
    match digits.parse::<u32>() {
        Ok(k) if k >= 1 => Ok(Some((k, len))),
        _ if hashed || digits.starts_with(|c: char| c.is_ascii_digit()) => {
            Err(ParseError::BadFrom(digits))
        }
        _ => Ok(None),
    }
}

/// The length of a leading `fix`, `fix this` or `fix it` (a follow-up may say it, or not).
fn verb_len(s: &str) -> usize {
    let trimmed = s.trim_start_matches(|c: char| c.is_whitespace() || ":,-".contains(c));
    let skipped = s.len() - trimmed.len();
    let word = |t: &str| {
        t.split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or_default()
            .to_lowercase()
    };
    if word(trimmed) != "fix" {
        return skipped;
    }
    let after = &trimmed[3..];
    let next = after.trim_start_matches([' ', '\t']);
    match word(next).as_str() {
        w @ ("this" | "it") => s.len() - next.len() + w.len(),
        _ => skipped + 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<Result<FollowUp, ParseError>> {
        parse_follow_up(text, "UBOT")
    }

    fn ok(text: &str) -> FollowUp {
        parse(text).expect("a follow-up").expect("parsed")
    }

    #[test]
    fn plain_words_are_the_request() {
        let f = ok("<@UBOT> also handle tabs");
        assert_eq!(f.from, None);
        assert_eq!(f.args.instructions.as_deref(), Some("also handle tabs"));
    }

    #[test]
    fn from_picks_a_rollout_in_every_spelling() {
        for text in [
            "<@UBOT> from #2: keep the output format",
            "<@UBOT> from 2: keep the output format",
            "<@UBOT> FROM rollout #2, keep the output format",
            "<@UBOT>: from rollout 2 - keep the output format",
        ] {
            let f = ok(text);
            assert_eq!(f.from, Some(2), "{text}");
            assert_eq!(
                f.args.instructions.as_deref(),
                Some("keep the output format"),
                "{text}"
            );
        }
    }

    #[test]
    fn options_and_the_fix_verb_work_as_today() {
        let f = ok("<@UBOT> fix this from the logs attempts=2");
        assert_eq!(f.from, None);
        assert_eq!(f.args.attempts, Some(2));
        assert_eq!(f.args.instructions.as_deref(), Some("from the logs"));
        let f = ok("<@UBOT> from #3 fix it attempts=1");
        assert_eq!((f.from, f.args.attempts), (Some(3), Some(1)));
        assert_eq!(f.args.instructions, None);
        let f = ok("<@UBOT> fixture names are wrong");
        assert_eq!(
            f.args.instructions.as_deref(),
            Some("fixture names are wrong")
        );
    }

    #[test]
    fn bad_numbers_and_options_are_said() {
        assert_eq!(
            parse("<@UBOT> from #x: go"),
            Some(Err(ParseError::BadFrom("x".into())))
        );
        assert_eq!(
            parse("<@UBOT> from #0"),
            Some(Err(ParseError::BadFrom("0".into())))
        );
        assert_eq!(
            parse("<@UBOT> from 99999999999"),
            Some(Err(ParseError::BadFrom("99999999999".into())))
        );
        assert!(matches!(
            parse("<@UBOT> also tabs atempts=2"),
            Some(Err(ParseError::UnknownOption { .. }))
        ));
        let e = ParseError::BadFrom("x`y".into()).to_string();
        assert_eq!(
            e,
            "`from #x'y` is not a rollout number: say `from #2` to start from rollout 2."
        );
    }

    #[test]
    fn help_status_plan_and_no_mention_are_not_follow_ups() {
        for text in [
            "<@UBOT> help",
            "<@UBOT> status",
            "<@UBOT> plan",
            "<@UBOT>",
            "no mention here",
            "`<@UBOT> from #2`",
            "> <@UBOT> also tabs",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
