use super::*;

/// Checks a table of `input => outcome` lines, like inline snapshots; `\n` is a line break.
fn check(table: &str, run: impl Fn(&str) -> String) {
    for case in table.lines().filter(|l| !l.trim().is_empty()) {
        let (input, want) = case.split_once(" => ").expect("input => outcome");
        let input = input.trim().replace("\\n", "\n");
        assert_eq!(run(&input).replace('\n', "\\n"), want, "{input:?}");
    }
}

/// A command on one line: `fix "instructions" repo=…`, or `error: <what the user sees>`.
fn show(parsed: Option<Result<Command, ParseError>>) -> String {
    let args = |a: &FixArgs| {
        let mut s = a
            .instructions
            .as_ref()
            .map_or(String::new(), |i| format!(" {i:?}"));
        let attempts = a.attempts.map(|n| n.to_string());
        for (k, v) in [
            ("repo", &a.repo),
            ("base", &a.base),
            ("attempts", &attempts),
        ] {
            s += &v.as_ref().map_or(String::new(), |v| format!(" {k}={v}"));
        }
        s
    };
    match parsed {
        None => "-".into(),
        Some(Ok(Command::Fix(a))) => format!("fix{}", args(&a)),
        Some(Ok(Command::Plan(a))) => format!("plan{}", args(&a)),
        Some(Ok(c)) => format!("{c:?}"),
        Some(Err(e)) => format!("error: {e}"),
    }
}

#[test]
fn mentions() {
    check(
        r#"
            <@U0BOT> fix this                   => fix
            <@U0BOT> fix it                     => fix
            <@U0BOT> Fix                        => fix
            <@U0BOT>: fix this.                 => fix
            hey <@U0BOT>, fix!                  => fix
            <@U0BOT|threadsmith> fix this       => fix
            <@U0BOT> fix thistle                => fix "thistle"
            <@U0BOT> fix\nline one\nline two    => fix "line one\nline two"
            <@U0BOT> plan                       => plan
            <@U0BOT> plan repo=acme/api         => plan repo=acme/api
            <@U0BOT> help                       => Help
            <@U0BOT> HELP me                    => Help
            <@U0BOT> status                     => Status
            <@U0BOT>                            => Help
            <@U0BOT> ?                          => Help
            <@U0BOT> fix it when x=1 fails      => fix "when x=1 fails"
            <@U0BOT> fix: keep `repo=a/b` as is => fix "keep `repo=a/b` as is"
            <@U0BOT> fix: run `make base=x` now => fix "run `make base=x` now"
            <@U0BOT> fix this: the add test fails, use the v2 API repo=acme/api base=release => fix "the add test fails, use the v2 API" repo=acme/api base=release
            <@U0BOT> fix attempts=4 repo=<https://github.com/a/b|github.com/a/b>. => fix repo=https://github.com/a/b attempts=4
            <@U0BOT> fix base=release/1.2 Base=x => error: You gave `base=` twice; please give it once.
            <@U0BOT> fix attempts=0             => error: `attempts=0` won't do: I need a number from 1 to 16.
            <@U0BOT> fix attempts=lots          => error: `attempts=lots` won't do: I need a number from 1 to 16.
            <@U0BOT> fix base=--upload-pack=x   => error: `base=--upload-pack=x` won't do: I need a branch, tag or commit.
            <@U0BOT> fix base=a..b              => error: `base=a..b` won't do: I need a branch, tag or commit.
            <@U0BOT> fix repo=acme              => error: `repo=acme` won't do: I need `owner/name` or a repository URL.
            <@U0BOT> fix repo=                  => error: `repo=` won't do: I need `owner/name` or a repository URL.
            <@U0BOT> fxi this                   => error: I don't know the command `fxi`. Did you mean `fix`? Try `@threadsmith help`.
            <@U0BOT> stauts                     => error: I don't know the command `stauts`. Did you mean `status`? Try `@threadsmith help`.
            <@U0BOT> can you look               => error: I don't know the command `can`. Try `@threadsmith help`.
            <@U0BOT> `x`                        => error: I don't know the command `'x'`. Try `@threadsmith help`.
            <@U0BOT> fix rpeo=acme/api          => error: I don't know the option `rpeo=`. Did you mean `repo=`? The options are `repo=`, `base=` and `attempts=`.
            <@U0BOT> fix Branch=main            => error: I don't know the option `Branch=`. Did you mean `base=`? The options are `repo=`, `base=` and `attempts=`.
            "#,
        |t| show(parse_mention(t, "U0BOT")),
    );
    check(
        r#"
            <@123456789> status  => Status
            <@!123456789> status => Status
            <@1234567890> status => -
            <@U0BOT> status      => -
            "#,
        |t| show(parse_mention(t, "123456789")),
    );
    assert_eq!(parse_mention("<@U0BOT> fix", ""), None);
    let e = parse_mention("<@U0BOT> fxi", "U0BOT");
    let want = ParseError::UnknownCommand {
        word: "fxi".into(),
        suggestion: Some("fix"),
    };
    assert_eq!(e, Some(Err(want)));
    let long = ParseError::UnknownCommand {
        word: "`x`".repeat(20),
        suggestion: None,
    };
    assert!(!long.to_string().contains("`x`") && long.to_string().contains('…'));
}

#[test]
fn code_and_quotes_do_not_trigger() {
    check(
        r#"
            hello <@U0BOT2> fix this                => -
            `<@U0BOT> fix this`                     => -
            ```\n<@U0BOT> fix this\n```             => -
            look:```<@U0BOT> fix this```            => -
            text\n\n    <@U0BOT> fix this           => -
            > <@U0BOT> fix this                     => -
            &gt; <@U0BOT> fix this                  => -
            &gt;&gt;&gt; quoted\n<@U0BOT> fix this => -
            &gt; the test fails\n<@U0BOT> fix this  => fix
            ```trace\nline```\n<@U0BOT> fix this    => fix
            <!here> `<@U0BOT>` <@U0BOT> fix this    => fix
            "#,
        |t| show(parse_mention(t, "U0BOT")),
    );
}

#[test]
fn phrases() {
    let phrases = ["fix this".to_string(), " ".into(), "ça plante".into()];
    check(
        r#"
            fix this please                          => fix "please"
            Fix this!                                => fix
            FIX THIS: the add test fails             => fix "the add test fails"
            the build broke\n  fix this\nsee above   => fix "see above"
            fix this now repo=a/b rpeo=x attempts=99 => fix "now rpeo=x attempts=99" repo=a/b
            Ça plante                                => fix
            ok, fix this please                      => -
            fix thistle                              => -
            > fix this                               => -
            &gt; fix this                           => -
            `fix this`                               => -
            ```\nfix this\n```                       => -
            "#,
        |t| show(parse_phrase(t, &phrases).map(Ok)),
    );
    assert_eq!(parse_phrase("fix this", &[]), None);
}

#[test]
fn slash_commands() {
    check(
        r#"
            help                              => Ok(Help)
            Status                            => Ok(Status)
            repo                              => Ok(ShowRepo)
            repo acme/api                     => Ok(SetRepo("acme/api"))
            repo <https://x.io/a/b>           => Ok(SetRepo("https://x.io/a/b"))
            repo nope                         => Err(BadValue { key: "repo", value: "nope", expected: "`owner/name` or a repository URL" })
            repo=acme/api                     => Err(NothingToDo)
            it crashes atempts=3              => Err(UnknownOption { key: "atempts", suggestion: Some("attempts") })
            repo cloning fails                => Ok(Describe(FixArgs { instructions: Some("repo cloning fails"), repo: None, base: None, attempts: None }))
            help: the page is blank attempts=2 => Ok(Describe(FixArgs { instructions: Some("help: the page is blank"), repo: None, base: None, attempts: Some(2) }))
            <https://a.slack.com/archives/C1/p1700000000000100|link> => Ok(FromThread { link: Slack { channel: "C1", ts: "1700000000.000100" }, args: FixArgs { instructions: None, repo: None, base: None, attempts: None } })
            use v2 https://discord.com/channels/1/2/3 repo=a/b => Ok(FromThread { link: Discord { guild: "1", channel: "2", message: "3" }, args: FixArgs { instructions: Some("use v2"), repo: Some("a/b"), base: None, attempts: None } })
            "#,
        |t| format!("{:?}", parse_slash(t)),
    );
    assert_eq!(parse_slash(" \n "), Ok(SlashCommand::Help));
}

#[test]
fn thread_links() {
    check(
        r#"
            https://acme.slack.com/archives/C123/p1700000000000100 => Some(Slack { channel: "C123", ts: "1700000000.000100" })
            <https://a.slack.com/archives/C9/p1700000001000200?thread_ts=1700000000.000100&amp;cid=C9> => Some(Slack { channel: "C9", ts: "1700000000.000100" })
            <https://a.slack.com/archives/C9/p1700000001000200?thread_ts=x|label> => Some(Slack { channel: "C9", ts: "1700000001.000200" })
            https://discord.com/channels/11/22/33  => Some(Discord { guild: "11", channel: "22", message: "33" })
            https://discordapp.com/channels/11/22/33/ => Some(Discord { guild: "11", channel: "22", message: "33" })
            https://acme.slack.com/archives/C123/p170000000000010  => None
            https://acme.slack.com/archives/C-1/p1700000000000100  => None
            https://acme.slack.com/archives/C123                   => None
            https://evil.io/archives/C123/p1700000000000100        => None
            https://discord.com/channels/@me/22/33                 => None
            https://discord.com.evil.io/channels/11/22/33          => None
            acme/api                                               => None
            "#,
        |t| format!("{:?}", parse_thread_link(t)),
    );
}

#[test]
fn help_lists_every_command() {
    let help = help_text("@threadsmith", "fix");
    let lines: Vec<&str> = help.lines().filter(|l| l.starts_with("- ")).collect();
    assert_eq!(lines.len(), 10, "{help}");
    assert!(
        lines[0].starts_with("- `@threadsmith fix this: <instructions>`"),
        "{help}"
    );
    assert!(
        lines[5].starts_with("- `/fix <thread link> [instructions]`"),
        "{help}"
    );
}

#[test]
fn did_you_mean() {
    assert_eq!(
        [
            distance("fxi", "fix"),
            distance("", "abc"),
            distance("kitten", "sitting")
        ],
        [1, 3, 3]
    );
    let hints = [
        suggest("STAUTS", &VERBS),
        suggest("hi", &VERBS),
        suggest("name", &OPTIONS),
    ];
    assert_eq!(hints, [Some("status"), None, None]);
}
