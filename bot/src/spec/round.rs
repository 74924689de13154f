//! A follow-up round's part of the spec: which earlier change the working copy holds, that
//! change itself, and what is asked now.

/// What a round's agents are told about the round before it.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct RoundContext {
    /// This round's number (2 and on).
    pub round: u32,
    /// The rollout it starts from, in words ("rollout #2 of round 1").
    pub from: String,
    /// What was asked for in this round.
    pub request: String,
    /// The earlier rollout's whole change against the base, cut to [`MAX_DIFF_CHARS`].
    pub previous_diff: String,
}

/// How much of the earlier change goes into the spec (the working copy has all of it).
pub const MAX_DIFF_CHARS: usize = 40_000;

impl RoundContext {
    pub fn new(round: u32, from: String, request: &str, diff: &str) -> Self {
        let previous_diff = match diff.char_indices().nth(MAX_DIFF_CHARS) {
            Some((i, _)) => format!(
                "{}\n[… the rest of the change is left out here; it is in the working copy …]\n",
                &diff[..i]
            ),
            None => diff.to_string(),
        };
        Self {
            round,
            from,
            request: request.trim().to_string(),
            previous_diff,
        }
    }

    /// The spec's section for the agent.
    pub fn to_markdown(&self) -> String {
        let fence = if self.previous_diff.contains("```") {
            "~~~~"
        } else {
            "```"
        };
        let request = if self.request.is_empty() {
            "(no words beyond the thread: improve on the earlier change as the thread asks)"
        } else {
            self.request.as_str()
        };
        format!(
            "\n## This is round {round}: build on the earlier change\n\n\
             The working copy at /workspace already holds the change of {from}, applied on the \
             base. Keep what it got right and change it as asked now; your result is judged as \
             the whole change against the base.\n\n\
             ### Asked for in this round\n\n{request}\n\n\
             ### The earlier change (already in the working copy)\n\n\
             {fence}diff\n{diff}\n{fence}\n",
            round = self.round,
            from = self.from,
            diff = self.previous_diff.trim_end(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_names_the_round_the_request_and_the_change() {
        let ctx = RoundContext::new(
            2,
            "rollout #2 of round 1".into(),
            " keep the output format ",
            "diff --git a/x b/x\n+tabs\n",
        );
        let md = ctx.to_markdown();
        assert!(md.contains("## This is round 2"), "{md}");
        assert!(md.contains("the change of rollout #2 of round 1"), "{md}");
        assert!(
            md.contains("### Asked for in this round\n\nkeep the output format\n"),
            "{md}"
        );
        assert!(
            md.contains("```diff\ndiff --git a/x b/x\n+tabs\n```"),
            "{md}"
        );
    }

    #[test]
    fn a_long_change_is_cut_and_fences_in_it_do_not_close_the_block() {
        let diff = format!("+```\n{}", "x".repeat(MAX_DIFF_CHARS + 10));
        let ctx = RoundContext::new(3, "rollout #1 of round 2".into(), "", &diff);
        assert!(ctx.previous_diff.contains("left out here"));
        assert!(ctx.previous_diff.chars().count() < MAX_DIFF_CHARS + 200);
        let md = ctx.to_markdown();
        assert!(md.contains("~~~~diff\n+```"), "{md}");
        assert!(md.contains("(no words beyond the thread"), "{md}");
    }
}
