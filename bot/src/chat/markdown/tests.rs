use super::*;

/// Checks a table of `input => output` lines, like inline snapshots; `\n` is a line break.
fn check(table: &str, run: impl Fn(&str) -> String) {
    for case in table.lines().filter(|l| !l.trim().is_empty()) {
        let (input, want) = case.split_once(" => ").expect("input => output");
        let input = input.trim().replace("\\n", "\n");
        assert_eq!(run(&input).replace('\n', "\\n"), want, "{input:?}");
    }
}

fn names(id: &str) -> Option<String> {
    (id == "U1").then(|| "alice".to_string())
}

#[test]
fn markdown_to_mrkdwn() {
    check(
        r#"
            **b** __b__ *i* _i_ ~~s~~             => *b* *b* _i_ _i_ ~s~
            ***both***                            => _*both*_
            a `x < y && z` b                      => a `x &lt; y &amp;&amp; z` b
            `` a`b ``                             => `aˋb`
            one\ntwo  \nthree                     => one\ntwo\nthree
            a & b <c> d > e                       => a &amp; b &lt;c&gt; d &gt; e
            [docs](https://x.io/a?b=1&c=2)        => docs (x.io)
            [a|b>c](https://x.io/p|q>r)           => a|b&gt;c (x.io)
            [**bold** link](http://x.io)          => bold link (x.io)
            [CI log](https://ci.example@evil.io/) => CI log (evil.io)
            [mail](mailto:a@b.io)                 => mail (a@b.io)
            <https://x.io>                        => <https://x.io>
            <a@b.io>                              => <mailto:a@b.io|a@b.io>
            ![a chart](https://x.io/c.png)        => a chart (x.io)
            [x](javascript:alert(1)) [y](ftp://h) [z](/rel) => x y z
            [ref][1]\n\n[1]: https://x.io         => ref (x.io)
            [broken]                              => [broken]
            # Title\ntext\n## Sub **x**           => *Title*\n\ntext\n\n*Sub x*
            one\n\n\ntwo                          => one\n\ntwo
            ```rust\nfn f() -> u8 {}\n\n// <@U1>\n``` => ```\nfn f() -&gt; u8 {}\n\n// &lt;@U1&gt;\n```
            text\n\n    indented <code>           => text\n\n```\nindented &lt;code&gt;\n```
            - a\n- b\n  - c\n    - d\n- e         => • a\n• b\n  • c\n    • d\n• e
            3. three\n4. four                     => 3. three\n4. four
            1. a\n\n   more\n2. b                 => 1. a\n  more\n2. b
            before\n- x\n\nafter                  => before\n\n• x\n\nafter
            - \n- x                               => •\n• x
            > quoted\n> more\n\nafter             => > quoted\n> more\n\nafter
            > - item\n> > nested                  => > • item\n> nested
            a\n\n---\n\nb                         => a\n\n———\n\nb
            | a | b |\n|---|---|\n| 1 | 2 |       => | a | b |\n|---|---|\n| 1 | 2 |
            <div>\n<b>hi</b>\n</div>              => &lt;div&gt;\n&lt;b&gt;hi&lt;/b&gt;\n&lt;/div&gt;
            <!channel> **hi** <script>alert(1)</script> [x](javascript:alert(1)) <@U1> => &lt;!channel&gt; **hi** &lt;script&gt;alert(1)&lt;/script&gt; [x](javascript:alert(1)) &lt;@U1&gt;
            Hi <!channel> **hi** <script>alert(1)</script> [x](javascript:alert(1)) <@U1> => Hi &lt;!channel&gt; *hi* &lt;script&gt;alert(1)&lt;/script&gt; x &lt;@U1&gt;
            "#,
        to_slack_mrkdwn,
    );
    assert_eq!(to_slack_mrkdwn("  \n\n"), "");
}

#[test]
fn literal_text_is_inert_on_both_platforms() {
    let title = "@everyone @here <@&1> <!channel> **b** [x](https://evil.example) `c` ||s||";
    let lit = literal(title);
    for bad in ["@everyone", "@here", "<@", "<!", "[x](", "**", "||"] {
        assert!(!lit.contains(bad), "{bad} in {lit}");
    }
    // Through Slack's conversion it reads back as the words, with no entity or link.
    let slack = to_slack_mrkdwn(&lit);
    assert!(
        !slack.contains('<') && !slack.contains("(evil.example)"),
        "{slack}"
    );
    assert!(
        slack.contains("‹@＆1›") || slack.contains("‹@&amp;1›"),
        "{slack}"
    );
    assert_eq!(literal("a\nb"), "a b");
    assert_eq!(user_mention("U0123ABC"), "<@U0123ABC>");
    assert_eq!(
        user_mention("1400000000000000001"),
        "<@1400000000000000001>"
    );
    assert_eq!(user_mention("&1"), "@&1");
    assert_eq!(user_mention("!here"), "@!here");
    assert!(!user_mention("x> <!channel").contains('<'));
}

#[test]
fn nothing_pings_or_links() {
    let inputs = [
        "<!channel> **hi** <script>alert(1)</script> [x](javascript:alert(1)) <@U1>",
        "Hi <!channel> **hi** <script>alert(1)</script> [x](javascript:alert(1)) <@U1>",
        "<!here>\n\nx <#C1> y `<!channel>`\n\n```\n<!everyone>\n```",
        "[<@U1>](https://x.io) [a](https://x.io/<!here>) <mailto:<!here>>",
        "> <@U1|x> ![<!channel>](https://x.io/i.png) <https://x.io/<@U1>>",
        "[x](JavaScript:alert(1)) [y](data:text/html,hi) <javascript:alert(1)>",
    ];
    for input in inputs {
        let out = to_slack_mrkdwn(input);
        let links = out.replace("<https://x.io", "").replace("<mailto:", "");
        assert!(!links.contains('<'), "{input:?} gave {out:?}");
        assert!(
            !out.contains("<!") && !out.contains("<@") && !out.contains("<#"),
            "{out:?}"
        );
    }
}

#[test]
fn slack_to_markdown_rules() {
    check(
        r#"
            hi <@U1> and <@U2> and <@U3|bob>          => hi @alice and @U2 and @bob
            in <#C123|general> or <#C9>               => in #general or #C9
            <!here> <!channel> <!everyone|everyone>   => @here @channel @everyone
            <!subteam^S123|@team> <!subteam^S9>       => @team @S9
            <!date^1392734382^{date}|Feb 18th>        => Feb 18th
            see <http://x.io/a?b=1&amp;c=2|the [log]> => see [the \[log\]](http://x.io/a?b=1&c=2)
            <http://x.io/(a)|a b>                     => [a b](http://x.io/%28a%29)
            <http://x.io> <https://y.io|https://y.io> => http://x.io https://y.io
            <mailto:a@b.io|a@b.io> <mailto:c@d.io|Carol> => a@b.io [Carol](mailto:c@d.io)
            a &lt;b&gt; &amp;lt; &amp;amp;           => a <b> &lt; &amp;
            *bold* _it_ ~gone~                        => **bold** *it* ~~gone~~
            *bold _both_*                             => **bold *both***
            snake_case_name 2 * 3 * 4 a*b*c **md**    => snake_case_name 2 * 3 * 4 a*b*c **md**
            *see <@U1>*                               => **see @alice**
            <https://x.io/_a_|link> *x\ny*            => [link](https://x.io/_a_) *x\ny*
            use `*not_bold*` and `&lt;T&gt;`          => use `*not_bold*` and `<T>`
            ```*raw* &lt;x&gt;```                     => ```*raw* <x>```
            ```one\ntwo```                            => ```\none\ntwo\n```
            see```\ncode\n```after                    => see\n```\ncode\n```\nafter
            &gt; quoted\nnext                         => > quoted\nnext
            tick ` alone < not a token                => tick ` alone < not a token
            "#,
        |t| slack_to_markdown(t, &names),
    );
}

#[test]
fn bug_report_round_trip() {
    let slack = "*Bug*: login fails for <@U1> since <https://ci.x.io/run/7|run 7>\nTrace:\n```Traceback (most recent call last):\n  File \"app/_auth.py\", line 3, in *check*\nKeyError: 'user' &lt;&amp;&gt;```\n_Expected_: a 200 from <http://localhost:8080/login>";
    let markdown = "**Bug**: login fails for @alice since [run 7](https://ci.x.io/run/7)\nTrace:\n```\nTraceback (most recent call last):\n  File \"app/_auth.py\", line 3, in *check*\nKeyError: 'user' <&>\n```\n*Expected*: a 200 from http://localhost:8080/login";
    assert_eq!(slack_to_markdown(slack, &names), markdown);
    // A link from untrusted text shows its words and where it goes, without a link.
    let back = "*Bug*: login fails for @alice since run 7 (ci.x.io)\nTrace:\n\n```\nTraceback (most recent call last):\n  File \"app/_auth.py\", line 3, in *check*\nKeyError: 'user' &lt;&amp;&gt;\n```\n\n_Expected_: a 200 from http://localhost:8080/login";
    assert_eq!(to_slack_mrkdwn(markdown), back);
    assert_eq!(
        slack_to_markdown(&to_slack_mrkdwn(markdown), &names),
        markdown
            .replace("[run 7](https://ci.x.io/run/7)", "run 7 (ci.x.io)")
            .replace("```\n*", "```\n\n*")
            .replace(":\n```", ":\n\n```")
    );
}

#[test]
fn truncation() {
    let suffix = "… <https://x.io|more>";
    check(
        r#"
            short                            => short
            the quick brown fox jumps        => the quick brown fox…
            line one is here\nline two       => line one is here…
            ééééééééééééééééééééééééé        => ééééééééééééééééééé…
            see <https://example.com/a/long> => see…
            abcdefghijklmnop &amp; x         => abcdefghijklmnop…
            log:\n```\n1\n2\n3\n4\n5\n```    => log:\n```\n1\n2\n3\n```…
            "#,
        |t| truncate(t, 20, "…"),
    );
    assert_eq!(truncate("abcdefghij", 5, suffix), "abcde");
    assert_eq!(truncate("abc", 0, suffix), "");
    let text =
        "word ".repeat(50) + "```\ncode line\n".repeat(20).as_str() + "<https://x.io/y|y> &amp;";
    for max in 0..text.len() + 2 {
        let out = truncate(&text, max, suffix);
        assert!(out.chars().count() <= max, "{max}: {out:?}");
        assert_eq!(out.matches("```").count() % 2, 0, "{max}: {out:?}");
    }
}
