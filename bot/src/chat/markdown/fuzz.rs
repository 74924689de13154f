use proptest::prelude::*;

use super::*;

/// Markdown as threads and models write it, with the pieces that could turn into a ping,
/// a forged link or an entity.
pub(crate) fn hostile_markdown() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "<!channel>",
            "<!here>",
            "<!everyone>",
            "<@U123>",
            "<#C123>",
            "<!subteam^S1>",
            "@everyone",
            "@here",
            "<https://evil.example|https://bank.example>",
            "[click](javascript:alert(1))",
            "[x](https://ok.example)",
            "![img](https://i.example/x.png)",
            "```",
            "```rust\nfn main() {}\n```",
            "`code`",
            "**bold**",
            "_it_",
            "~~s~~",
            "> quote",
            "&amp;",
            "&lt;",
            "&gt;",
            "<",
            ">",
            "&",
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "||spoiler||",
            "<t:0:R>",
            "# heading",
            "- item",
            "1. one",
            "\n",
            "\n\n",
            "|a|b|\n|-|-|",
            "\\",
            "*",
            "_",
            "🐛",
            "\u{200b}",
        ])
        .prop_map(String::from),
        "\\PC{0,20}",
    ];
    prop::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn slack_output_can_never_ping_or_forge(md in hostile_markdown()) {
        let out = to_slack_mrkdwn(&md);
        for forged in ["<!", "<@", "<#"] {
            prop_assert!(!out.contains(forged), "{forged} in {out:?} from {md:?}");
        }
        // Every `<…>` left is a link the converter made, to an http(s) or mailto target.
        for (i, _) in out.match_indices('<') {
            let rest = &out[i + 1..];
            prop_assert!(
                rest.starts_with("http://") || rest.starts_with("https://") || rest.starts_with("mailto:"),
                "{out:?}"
            );
        }
    }

    #[test]
    fn slack_text_reads_back_without_panicking(text in hostile_markdown()) {
        let names = |id: &str| (id == "U123").then(|| "alice".to_string());
        let md = slack_to_markdown(&text, &names);
        prop_assert_eq!(&md, &slack_to_markdown(&text, &names), "deterministic");
        // Slack escapes `&`, `<` and `>` in what people type.
        let typed = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let spaced = format!("see {typed} <@U123> now");
        prop_assert!(slack_to_markdown(&spaced, &names).contains("alice"));
    }

    #[test]
    fn truncation_keeps_its_promises(text in hostile_markdown(), max in 0usize..300, suffix in "\\PC{0,12}") {
        let out = truncate(&text, max, &suffix);
        prop_assert!(out.chars().count() <= max.max(text.chars().count().min(max)) + 4,
            "{} > {max}", out.chars().count());
        if text.chars().count() <= max {
            prop_assert_eq!(&out, &text);
        }
    }
}
