use proptest::prelude::*;

use super::*;

/// Words people (and attackers) write after a mention.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "fix",
            "FIX",
            "plan",
            "help",
            "status",
            "this",
            "fxi",
            "stauts",
            "repo=acme/api",
            "repo=<https://github.com/acme/api|acme/api>",
            "repo=../../etc",
            "repo=",
            "base=main",
            "base=-x",
            "base=a..b",
            "attempts=3",
            "attempts=0",
            "attempts=99999999999999999999",
            "attempts=-1",
            "rpeo=x/y",
            "branch=dev",
            "when=x",
            "`code`",
            "```",
            "```block```",
            ">",
            "&gt;",
            "&gt;&gt;&gt;",
            ">>>",
            "<@UBOT>",
            "<@!UBOT>",
            "<@UBOT|bot>",
            "<@UOTHER>",
            "<!here>",
            "<!channel>",
            "\u{200b}",
            "🐛",
            "é",
            "\n",
            "\n> quoted",
            ":",
            "—",
            "*bold*",
            "_it_",
        ])
        .prop_map(String::from),
        "\\PC{1,12}",
        "[a-z=/<>|@!`]{1,30}",
        ".{200,400}",
    ]
}

fn message() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(word(), 0..16).prop_map(|w| w.join(" ")),
        prop::collection::vec(word(), 0..16).prop_map(|w| format!("<@UBOT> {}", w.join(" "))),
        prop::collection::vec(word(), 0..16).prop_map(|w| w.concat()),
        "\\PC{0,300}",
        ".{0,300}",
    ]
}

fn check_args(args: &FixArgs) -> Result<(), TestCaseError> {
    if let Some(n) = args.attempts {
        prop_assert!((1..=16).contains(&n));
    }
    if let Some(repo) = &args.repo {
        prop_assert!(repo_value(repo.clone()).is_ok(), "{repo}");
    }
    if let Some(base) = &args.base {
        prop_assert!(valid_base(base), "{base}");
    }
    if let Some(i) = &args.instructions {
        prop_assert!(!i.trim().is_empty());
    }
    Ok(())
}

fn check_error(e: &ParseError) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(!text.is_empty());
    // The user's words are quoted shortened, whatever they wrote.
    prop_assert!(
        text.chars().count() < 400,
        "{} chars: {text}",
        text.chars().count()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn mentions_parse_to_valid_commands_or_clear_errors(text in message()) {
        let once = parse_mention(&text, "UBOT");
        prop_assert_eq!(&once, &parse_mention(&text, "UBOT"), "deterministic");
        match once {
            None => {}
            Some(Ok(Command::Fix(a) | Command::Plan(a))) => check_args(&a)?,
            Some(Ok(Command::Help | Command::Status)) => {}
            Some(Err(e)) => check_error(&e)?,
        }
        // Nobody else's mention triggers, and an empty bot id matches nothing.
        prop_assert!(parse_mention(&text, "").is_none());
    }

    #[test]
    fn slash_commands_parse_or_say_why(text in message()) {
        match parse_slash(&text) {
            Ok(SlashCommand::Describe(a)) => check_args(&a)?,
            Ok(SlashCommand::FromThread { args, .. }) => check_args(&args)?,
            Ok(SlashCommand::SetRepo(r)) => prop_assert!(repo_value(r).is_ok()),
            Ok(SlashCommand::Help | SlashCommand::Status | SlashCommand::ShowRepo) => {}
            Err(e) => check_error(&e)?,
        }
    }

    #[test]
    fn phrases_never_panic(text in message(), phrase in prop_oneof![Just("fix this".to_string()), "\\PC{0,10}"]) {
        if let Some(Command::Fix(a)) = parse_phrase(&text, &[phrase]) {
            check_args(&a)?;
        }
    }

    #[test]
    fn thread_links_round_trip(
        channel in "[A-Z0-9]{9,11}",
        secs in 1_000_000_000u64..9_999_999_999,
        micros in 0u64..1_000_000,
        guild in "[0-9]{17,19}",
        junk in "\\PC{0,80}",
    ) {
        let slack = format!("https://acme.slack.com/archives/{channel}/p{secs}{micros:06}");
        prop_assert_eq!(
            parse_thread_link(&slack),
            Some(ThreadLink::Slack { channel: channel.clone(), ts: format!("{secs}.{micros:06}") })
        );
        let discord = format!("<https://discord.com/channels/{guild}/{secs}/{micros}|link>");
        let is_discord = matches!(parse_thread_link(&discord), Some(ThreadLink::Discord { .. }));
        prop_assert!(is_discord);
        // Anything else is a link or not, never a panic.
        let _ = parse_thread_link(&junk);
        let _ = parse_thread_link(&format!("https://{junk}"));
    }
}

#[test]
fn a_huge_unknown_word_is_cheap_and_quoted_short() {
    let word = "x".repeat(1 << 20);
    let e = parse_mention(&format!("<@UBOT> {word}"), "UBOT");
    let text = e.expect("mentioned").expect_err("unknown").to_string();
    assert!(text.len() < 200, "{text}");
}
