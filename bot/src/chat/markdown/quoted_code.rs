use super::*;

/// The input the Discord fuzz found (a quote opening with a fenced block, then a ping) is
/// safe in Slack: every `<` outside the converter's own links is escaped, code included.
#[test]
fn quoted_fences_never_let_a_ping_out() {
    for md in [
        ">```rust\nfn main() {}\n```\n<@U123>",
        ">```\nx\n```\n<!here> <!channel> <#C1>",
        "> > ```\n> > a\n<!everyone>",
    ] {
        let out = to_slack_mrkdwn(md);
        assert!(
            !out.contains("<@") && !out.contains("<!") && !out.contains("<#"),
            "{out}"
        );
        assert_eq!(out.matches("```").count() % 2, 0, "{out}");
    }
}
