//! Markdown (from a model, an agent or a thread: untrusted) → Discord's Markdown. Pure.
//!
//! Discord reads `__x__` as underline and `<@id>`, `<#id>`, `<t:…>` as live entities, so text is
//! escaped, emphasis is written with `*`, only `http(s)` links survive (as masked links), and
//! `@everyone`/`@here` are broken with a zero-width space. (Messages are also sent with empty
//! `allowed_mentions`: two locks.)

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '<' | '>' | '#' | '[' | ']'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out.replace("@everyone", "@\u{200b}everyone")
        .replace("@here", "@\u{200b}here")
}

fn code_span(code: &str) -> String {
    let code = code.replace('`', "ˋ");
    format!("`{code}`")
}

fn safe_url(url: &str) -> Option<String> {
    let lower = url.trim().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then(|| {
        url.trim()
            .replace(' ', "%20")
            .replace('(', "%28")
            .replace(')', "%29")
            .replace('<', "%3C")
            .replace('>', "%3E")
    })
}

/// Ends a link from untrusted text whose words were written from `start`: a link whose words
/// are its own address stays a link (`<url>`, what it shows is where it goes); any other is not
/// clickable and is followed by where it would have gone, `words (host)` (see SECURITY.md).
fn end_link(out: &mut String, start: usize, url: &str) {
    let words = out
        .get(start..)
        .unwrap_or_default()
        .trim()
        .replace('\\', "");
    if words.is_empty() || words == url || words == url.trim_end_matches('/') {
        out.truncate(start);
        let url = url
            .replace("@everyone", "%40everyone")
            .replace("@here", "%40here");
        out.push_str(&format!("<{url}>"));
    } else if let Some(to) = crate::chat::markdown::link_destination(url) {
        out.push_str(&format!(" ({})", escape(&to)));
    }
}

/// Writes a code block whole, so its fences pair up however it is nested: Discord pairs ```
/// fences in order, wherever they are, and shows text between a pair as code (no entity, no
/// ping), so code is the one place raw text may go, and only if every fence is where it should
/// be. The opening fence starts a line, every line (fences included) carries the block quote's
/// `> ` prefix (a line without it would end the quote and leave the fences unpaired), the code
/// cannot close the block (```` ``` ```` becomes look-alikes), and an empty block is left out
/// (Discord does not read ```` ```\n``` ```` as a block: its fences would pair with the next ones).
fn code_block(out: &mut String, code: &str, quote: usize) {
    let code = code.replace("```", "ˋˋˋ");
    let code = code.trim_matches('\n');
    if code.trim().is_empty() {
        return;
    }
    let prefix = "> ".repeat(quote);
    let line_start = out.is_empty()
        || out.ends_with('\n')
        || *out == prefix
        || out.ends_with(&format!("\n{prefix}"));
    if !line_start {
        out.push('\n');
        out.push_str(&prefix);
    }
    out.push_str("```\n");
    for line in code.split('\n') {
        out.push_str(&prefix);
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&prefix);
    out.push_str("```\n");
    out.push_str(&prefix);
}

/// Converts untrusted Markdown to Discord Markdown that renders the same and can neither ping
/// nor forge entities or links.
pub fn to_discord(md: &str) -> String {
    let mut out = String::new();
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut quote = 0usize;
    let mut link: Vec<(Option<String>, usize)> = Vec::new();
    // The text of the code block being read: written whole at its end (see `code_block`).
    let mut code: Option<String> = None;
    let newline = |out: &mut String, quote: usize| {
        out.push('\n');
        for _ in 0..quote {
            out.push_str("> ");
        }
    };
    for event in Parser::new_ext(md, Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Text(t) if code.is_some() => code.get_or_insert_default().push_str(&t),
            Event::Text(t) => out.push_str(&escape(&t)),
            Event::Code(c) => out.push_str(&code_span(&c)),
            Event::Html(h) | Event::InlineHtml(h) => out.push_str(&escape(&h)),
            Event::SoftBreak | Event::HardBreak => newline(&mut out, quote),
            Event::Rule => {
                newline(&mut out, quote);
                out.push_str("———");
                newline(&mut out, quote);
            }
            Event::Start(Tag::Strong) | Event::End(TagEnd::Strong) => out.push_str("**"),
            Event::Start(Tag::Emphasis) | Event::End(TagEnd::Emphasis) => out.push('*'),
            Event::Start(Tag::Strikethrough) | Event::End(TagEnd::Strikethrough) => {
                out.push_str("~~")
            }
            Event::Start(Tag::Heading { .. }) => out.push_str("**"),
            Event::End(TagEnd::Heading(_)) => {
                out.push_str("**");
                newline(&mut out, quote);
            }
            Event::Start(Tag::Paragraph) => {}
            Event::End(TagEnd::Paragraph) => {
                newline(&mut out, quote);
                if lists.is_empty() {
                    newline(&mut out, quote);
                }
            }
            Event::Start(Tag::BlockQuote(_)) => {
                quote += 1;
                out.push_str("> ");
            }
            Event::End(TagEnd::BlockQuote(_)) => {
                quote = quote.saturating_sub(1);
                newline(&mut out, quote);
            }
            Event::Start(Tag::CodeBlock(_)) => code = Some(String::new()),
            Event::End(TagEnd::CodeBlock) => {
                code_block(&mut out, &code.take().unwrap_or_default(), quote);
            }
            Event::Start(Tag::List(start)) => lists.push(start),
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() {
                    newline(&mut out, quote);
                }
            }
            Event::Start(Tag::Item) => {
                let depth = lists.len().saturating_sub(1);
                out.push_str(&"  ".repeat(depth));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        out.push_str(&format!("{n}. "));
                        *n += 1;
                    }
                    _ => out.push_str("• "),
                }
            }
            Event::End(TagEnd::Item) if !out.ends_with('\n') => newline(&mut out, quote),
            Event::Start(Tag::Link { dest_url, .. }) => link.push((safe_url(&dest_url), out.len())),
            Event::End(TagEnd::Link) => {
                if let Some((Some(url), start)) = link.pop() {
                    end_link(&mut out, start, &url);
                }
            }
            Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => {}
            Event::TaskListMarker(done) => out.push_str(if done { "☑ " } else { "☐ " }),
            Event::FootnoteReference(r) => out.push_str(&escape(&r)),
            Event::InlineMath(m) | Event::DisplayMath(m) => out.push_str(&code_span(&m)),
            _ => {}
        }
    }
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    let mut text = lines.join("\n");
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    text.trim_matches('\n').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_discord_markdown() {
        assert_eq!(
            to_discord("Fixed **add**: it used `-`."),
            "Fixed **add**: it used `-`."
        );
        assert_eq!(to_discord("__under__ _it_"), "**under** *it*");
        assert_eq!(to_discord("- one\n- two"), "• one\n• two");
        assert_eq!(
            to_discord("see <https://ci.example.com/1>"),
            "see <https://ci.example.com/1>"
        );
    }

    #[test]
    fn untrusted_links_show_where_they_go_and_are_not_clickable() {
        assert_eq!(
            to_discord("see [the CI log](https://ci.example@evil.example/x)"),
            "see the CI log (evil.example)"
        );
        assert_eq!(
            to_discord("[**docs**](http://docs.example.com/a_b)"),
            "**docs** (docs.example.com)"
        );
        assert_eq!(to_discord("[x](javascript:alert(1))"), "x");
        let out = to_discord("[click](https://evil.example) and more");
        assert!(!out.contains("](") && !out.contains("<https"), "{out}");
    }

    #[test]
    fn nothing_untrusted_pings_or_links() {
        let out = to_discord(
            "<@123> <@&456> @everyone @here [x](javascript:alert(1)) <t:1:R> ||spoiler||",
        );
        assert!(!out.contains("<@123>") && !out.contains("<@&456>"), "{out}");
        assert!(
            !out.contains("@everyone") && !out.contains("@here"),
            "{out}"
        );
        assert!(!out.contains("javascript:"), "{out}");
        assert!(
            !out.contains("<t:1:R>") && !out.contains("||spoiler||"),
            "{out}"
        );
        let code = to_discord("```\nbreak ``` out\n```");
        assert_eq!(code.matches("```").count(), 2, "{code}");
    }

    /// Found by the fuzz below: a quote opening with a fenced block whose closing fence is not
    /// quoted. The block's fences came out on unquoted lines, paired with the wrong ones, and the
    /// mention in the next (unclosed) code block came out as text.
    #[test]
    fn code_blocks_in_quotes_keep_their_fences_paired() {
        let out = to_discord(">```rust\nfn main() {}\n```\n<@U123>");
        assert_eq!(out, ">\nfn main() {}\n\n```\n<@U123>\n```");
        let out = to_discord("> ```\n> a <@1>\n> ```\n> after @here <#2>");
        assert!(
            out.starts_with("> ```\n> a <@1>\n> ```\n> after @\u{200b}here \\<\\#2\\>"),
            "{out}"
        );
        let out = to_discord("- item\n\n  ```\n  <@&3>\n  ```\n> > ```\n> > <t:1:R>\n> > ```");
        assert!(out.contains("```\n> > <t:1:R>\n> > ```"), "{out}");
        assert_eq!(out.matches("```").count(), 4, "{out}");
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn discord_output_can_never_ping_or_forge(md in crate::chat::markdown::fuzz::hostile_markdown()) {
            let out = to_discord(&md);
            // An entity Discord would render starts with an unescaped `<` outside code (Discord
            // renders none inside code spans and blocks, which are blanked here).
            let mut outside_code = out.clone();
            for (event, range) in pulldown_cmark::Parser::new(&out).into_offset_iter() {
                if let pulldown_cmark::Event::Code(_)
                | pulldown_cmark::Event::Start(pulldown_cmark::Tag::CodeBlock(_)) = event
                {
                    let blank = " ".repeat(range.len());
                    outside_code.replace_range(range, &blank);
                }
            }
            prop_assert!(
                !outside_code.contains("@everyone") && !outside_code.contains("@here"),
                "{out:?}"
            );
            for forged in ["<@", "<#", "<t:", "<:", "</"] {
                let live = outside_code
                    .match_indices(forged)
                    .any(|(i, _)| !outside_code[..i].ends_with('\\'));
                prop_assert!(!live, "{forged} in {out:?} from {md:?}");
            }
            let lower = outside_code.to_lowercase();
            let js_link = lower
                .match_indices("](javascript:")
                .any(|(i, _)| !lower[..i].ends_with('\\'));
            prop_assert!(!js_link, "{out:?}");
            prop_assert_eq!(out.matches("```").count() % 2, 0, "fences closed: {:?}", out);
        }
    }
}
