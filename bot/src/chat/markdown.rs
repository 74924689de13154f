//! Markdown ↔ Slack mrkdwn, and cutting text to a chat message's size. Pure: no I/O.
//!
//! [`to_slack_mrkdwn`] is the only way model or agent text reaches Slack: it escapes every
//! `&`, `<` and `>` it did not write itself, so no input can ping (`<!channel>`, `<@U1>`) or
//! smuggle a link; links survive only for `http(s)://` and `mailto:`.

use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd};

/// Markdown (from a model or an agent: untrusted) → Slack mrkdwn that renders the same and can
/// never ping anyone or inject links/markup.
pub fn to_slack_mrkdwn(md: &str) -> String {
    let mut w = Writer::default();
    for event in Parser::new_ext(md, Options::ENABLE_STRIKETHROUGH) {
        w.event(event);
    }
    let lines: Vec<&str> = w.out.lines().map(str::trim_end).collect();
    lines.join("\n").trim_matches('\n').to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A link's destination fit for `<url|label>`, or `None` for schemes we do not link.
fn safe_url(kind: LinkType, dest: &str) -> Option<String> {
    let url = match kind {
        LinkType::Email => format!("mailto:{}", dest.trim()),
        _ => dest.trim().to_string(),
    };
    let lower = url.to_ascii_lowercase();
    if !["http://", "https://", "mailto:"]
        .iter()
        .any(|s| lower.starts_with(s))
    {
        return None;
    }
    let mut out = String::with_capacity(url.len());
    for c in url.chars().filter(|c| !c.is_control()) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '|' => out.push_str("%7C"),
            ' ' => out.push_str("%20"),
            c => out.push(c),
        }
    }
    Some(out)
}

/// Untrusted text (a task title, say) placed in the core's own Markdown text (`OutMessage::Text`),
/// shown literally on both platforms whether the adapter sends the text as it is (Discord) or
/// converts it (Slack): `<` and `>` become look-alikes (so nothing reads as a mention, channel or
/// link), Markdown punctuation is escaped (no emphasis, code, spoiler or masked link), and
/// `@everyone`, `@here`, `@channel` are broken with a zero-width space. One line.
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '<' => out.push('‹'),
            '>' => out.push('›'),
            '\\' | '`' | '*' | '_' | '~' | '|' | '[' | ']' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    ["@everyone", "@here", "@channel"]
        .iter()
        .fold(out, |t, m| t.replace(m, &format!("@\u{200b}{}", &m[1..])))
}

/// The bot's own mention of a person (the requester, an approver): the platform's `<@id>` for a
/// user id as the platform's event gave it (Slack `U…`/`W…`, Discord digits), and nothing that
/// could be read as any other entity (`<!here>`, `<@&role>`) for anything else.
pub fn user_mention(id: &str) -> String {
    if !id.is_empty()
        && id.len() <= 32
        && id
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        format!("<@{id}>")
    } else {
        format!("@{}", literal(id))
    }
}

/// Where an untrusted link goes, as shown next to its words instead of a clickable link: the
/// host of an `http(s)` URL (after any `user@`, in its ASCII form, so look-alike letters show as
/// `xn--…`), the address of a `mailto:`.
pub fn link_destination(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    match parsed.scheme() {
        "http" | "https" => parsed.host_str().map(str::to_string),
        "mailto" => Some(parsed.path().to_string()).filter(|p| !p.is_empty()),
        _ => None,
    }
}

#[derive(Default)]
struct Writer {
    out: String,
    quote: usize,
    /// Open lists, innermost last: the next number of an ordered one.
    lists: Vec<Option<u64>>,
    /// The marker of an item whose first line is not written yet.
    bullet: Option<String>,
    /// Open links and images; the outermost one's safe URL and raw text are collected.
    links: usize,
    link: Option<(Option<String>, String)>,
    /// The text of the code block being read.
    code: Option<String>,
    /// Inside a heading, which is bold already: Slack cannot nest emphasis there.
    heading: bool,
}

impl Writer {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) | Event::Html(t) | Event::InlineHtml(t) => self.text(&t),
            Event::Code(c) | Event::InlineMath(c) | Event::DisplayMath(c) => match &mut self.link {
                Some((_, label)) => label.push_str(&c),
                None => self.write(&format!("`{}`", escape(&c.replace('`', "ˋ")))),
            },
            Event::SoftBreak | Event::HardBreak => self.text("\n"),
            Event::Rule => {
                self.block();
                self.write("———");
            }
            Event::FootnoteReference(name) => self.text(&format!("[^{name}]")),
            Event::TaskListMarker(done) => self.text(if done { "[x] " } else { "[ ] " }),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph | Tag::HtmlBlock => self.block(),
            Tag::Heading { .. } => {
                self.block();
                self.mark("*");
                self.heading = true;
            }
            Tag::BlockQuote(_) => {
                self.block();
                self.quote += 1;
            }
            Tag::CodeBlock(_) => {
                self.block();
                self.code = Some(String::new());
            }
            Tag::List(first) => {
                self.block();
                self.lists.push(first);
            }
            Tag::Item => {
                self.block();
                self.bullet = Some(match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}. ", *n - 1)
                    }
                    _ => "• ".into(),
                });
            }
            Tag::Emphasis => self.mark("_"),
            Tag::Strong => self.mark("*"),
            Tag::Strikethrough => self.mark("~"),
            Tag::Link {
                link_type,
                dest_url,
                ..
            }
            | Tag::Image {
                link_type,
                dest_url,
                ..
            } => {
                self.links += 1;
                if self.links == 1 {
                    self.link = Some((safe_url(link_type, &dest_url), String::new()));
                }
            }
            // Not enabled: tables, footnotes, definition lists, metadata, super/subscript.
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Heading(_) => {
                self.heading = false;
                self.mark("*");
            }
            TagEnd::BlockQuote(_) => self.quote = self.quote.saturating_sub(1),
            TagEnd::CodeBlock => {
                let code = self.code.take().unwrap_or_default();
                self.write(&format!(
                    "```\n{}\n```",
                    escape(code.trim_end_matches('\n'))
                ));
            }
            TagEnd::List(_) => {
                self.lists.pop();
            }
            TagEnd::Item if self.bullet.is_some() => self.prefix(),
            TagEnd::Emphasis => self.mark("_"),
            TagEnd::Strong => self.mark("*"),
            TagEnd::Strikethrough => self.mark("~"),
            TagEnd::Link | TagEnd::Image => {
                self.links = self.links.saturating_sub(1);
                if self.links == 0
                    && let Some((url, label)) = self.link.take()
                {
                    let label = escape(label.trim());
                    match url {
                        // A link whose words are its own address shows where it goes.
                        Some(url) if label.is_empty() || label == url => {
                            self.write(&format!("<{url}>"))
                        }
                        Some(url) if url.strip_prefix("mailto:") == Some(label.as_str()) => {
                            self.write(&format!("<{url}|{label}>"))
                        }
                        // Words chosen by untrusted text: not clickable, and followed by where
                        // the link would have gone (see SECURITY.md).
                        Some(url) => match link_destination(&unescape(&url)) {
                            Some(to) => self.write(&format!("{label} ({})", escape(&to))),
                            None => self.write(&label),
                        },
                        None => self.write(&label),
                    }
                }
            }
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        if let Some((_, label)) = &mut self.link {
            label.push_str(&text.replace('\n', " "));
        } else if let Some(code) = &mut self.code {
            code.push_str(text);
        } else {
            self.write(&escape(text));
        }
    }

    /// An emphasis marker, unless Slack could not render it here.
    fn mark(&mut self, m: &str) {
        if !self.heading && self.link.is_none() {
            self.write(m);
        }
    }

    /// Writes already-escaped text, prefixing each new line for quotes and lists.
    fn write(&mut self, s: &str) {
        for (i, part) in s.split('\n').enumerate() {
            if i > 0 {
                self.out.push('\n');
            }
            if part.is_empty() {
                continue;
            }
            if self.out.is_empty() || self.out.ends_with('\n') {
                self.prefix();
            }
            self.out.push_str(part);
        }
    }

    fn prefix(&mut self) {
        if self.quote > 0 {
            self.out.push_str("> ");
        }
        let depth = self.lists.len();
        match self.bullet.take() {
            Some(b) => self
                .out
                .push_str(&format!("{}{b}", "  ".repeat(depth.saturating_sub(1)))),
            None => self.out.push_str(&"  ".repeat(depth)),
        }
    }

    /// Starts a block on a new line; at the top level, after a blank line.
    fn block(&mut self) {
        if self.out.is_empty() {
            return;
        }
        if !self.out.ends_with('\n') {
            self.out.push('\n');
        }
        if self.lists.is_empty() && self.quote == 0 && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }
}

/// Looks up a user's display name by id.
type Names<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Marks text kept out of the formatting passes: `OPEN index CLOSE`.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn hold(out: &mut String, held: &mut Vec<String>, piece: String) {
    out.push(OPEN);
    out.push_str(&held.len().to_string());
    out.push(CLOSE);
    held.push(piece);
}

/// Slack message text (mrkdwn as delivered in events) → plain Markdown for a task spec.
pub fn slack_to_markdown(text: &str, user_name: &dyn Fn(&str) -> Option<String>) -> String {
    let text: String = text.chars().filter(|c| *c != OPEN && *c != CLOSE).collect();
    let (mut out, mut held) = (String::new(), Vec::new());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("```") {
        let Some(len) = rest[i + 3..].find("```") else {
            break;
        };
        inline(&rest[..i], &mut out, &mut held, user_name);
        let body = unescape(&rest[i + 3..i + 3 + len]);
        rest = &rest[i + 6 + len..];
        let piece = if body.contains('\n') {
            let body = body.strip_prefix('\n').unwrap_or(&body);
            let body = body.strip_suffix('\n').unwrap_or(body);
            let nl = |no: bool| if no { "" } else { "\n" };
            let (before, after) = (
                nl(out.is_empty() || out.ends_with('\n')),
                nl(rest.is_empty() || rest.starts_with('\n')),
            );
            format!("{before}```\n{body}\n```{after}")
        } else {
            format!("```{body}```")
        };
        hold(&mut out, &mut held, piece);
    }
    inline(rest, &mut out, &mut held, user_name);
    let out: Vec<String> = out
        .split('\n')
        .map(|l| swap(&swap(&swap(l, '*', "**"), '_', "*"), '~', "~~"))
        .collect();
    let out = unescape(&out.join("\n"));
    let mut restored = String::with_capacity(out.len());
    let mut parts = out.split(OPEN);
    restored.push_str(parts.next().unwrap_or_default());
    for part in parts {
        let (index, tail) = part.split_once(CLOSE).unwrap_or((part, ""));
        let piece = index.parse().ok().and_then(|i: usize| held.get(i));
        restored.push_str(piece.map_or("", String::as_str));
        restored.push_str(tail);
    }
    restored
}

/// Text outside ``` blocks: code spans and `<…>` tokens are held, the rest copied.
fn inline(text: &str, out: &mut String, held: &mut Vec<String>, user_name: Names<'_>) {
    let mut rest = text;
    while let Some(i) = rest.find(['`', '<']) {
        let close = if rest[i..].starts_with('`') { '`' } else { '>' };
        let end = rest[i + 1..]
            .find([close, '\n'])
            .map(|e| i + 1 + e)
            .filter(|&e| e > i + 1);
        let Some(end) = end.filter(|&e| rest[e..].starts_with(close)) else {
            out.push_str(&rest[..=i]);
            rest = &rest[i + 1..];
            continue;
        };
        out.push_str(&rest[..i]);
        let inner = &rest[i + 1..end];
        let piece = if close == '`' {
            format!("`{}`", unescape(inner))
        } else {
            token(inner, user_name)
        };
        hold(out, held, piece);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
}

/// One Slack `<…>` token (without the brackets) as Markdown.
fn token(inner: &str, user_name: Names<'_>) -> String {
    let (target, label) = inner.split_once('|').unwrap_or((inner, ""));
    let label = Some(unescape(label)).filter(|l| !l.is_empty());
    if let Some(id) = target.strip_prefix('@') {
        return format!("@{}", user_name(id).or(label).unwrap_or_else(|| id.into()));
    }
    if let Some(id) = target.strip_prefix('#') {
        return format!("#{}", label.unwrap_or_else(|| id.into()));
    }
    if let Some(special) = target.strip_prefix('!') {
        let (kind, id) = special.split_once('^').unwrap_or((special, special));
        return match kind {
            "here" | "channel" | "everyone" => format!("@{kind}"),
            "subteam" => label.unwrap_or_else(|| format!("@{id}")),
            _ => label.unwrap_or_else(|| format!("@{kind}")),
        };
    }
    let url = unescape(target);
    let plain = url.strip_prefix("mailto:").unwrap_or(&url);
    match label {
        Some(l) if l != plain && l != url => {
            let mut label = String::with_capacity(l.len());
            for c in l.chars() {
                if "\\[]".contains(c) {
                    label.push('\\');
                }
                label.push(c);
            }
            let url = url.replace(' ', "%20").replace('(', "%28");
            format!("[{label}]({})", url.replace(')', "%29"))
        }
        _ => plain.to_string(),
    }
}

/// One line with Slack's `m`-delimited spans re-delimited by `to` (`*b*` → `**b**`).
fn swap(line: &str, m: char, to: &str) -> String {
    let c: Vec<char> = line.chars().collect();
    let opens = |i: usize| {
        (i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == m))
            && c.get(i + 1).is_some_and(|a| !a.is_whitespace() && *a != m)
    };
    let closes = |j: usize| {
        !c[j - 1].is_whitespace()
            && c[j - 1] != m
            && c.get(j + 1).is_none_or(|a| !a.is_alphanumeric() && *a != m)
    };
    let (mut out, mut i) = (String::with_capacity(line.len()), 0);
    while i < c.len() {
        if c[i] == m
            && opens(i)
            && let Some(j) = (i + 2..c.len()).find(|&j| c[j] == m && closes(j))
        {
            out.push_str(to);
            out.extend(&c[i + 1..j]);
            out.push_str(to);
            i = j + 1;
            continue;
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// Cuts text to at most `max` chars on a char boundary (prefer a line break or space near the
/// end), appending `suffix` (e.g. "… <url|full text>") when cut; the result including suffix
/// is ≤ max chars. A ``` block left open is closed; a `<…>` token or entity is never halved.
/// When `suffix` alone does not fit, the text is cut without it.
pub fn truncate(text: &str, max: usize, suffix: &str) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let suffix_len = suffix.chars().count();
    let fits = suffix_len < max;
    let (budget, suffix) = if fits {
        (max - suffix_len, suffix)
    } else {
        (max, "")
    };
    let mut kept = cut(text, budget);
    if kept.matches("```").count() % 2 == 1 && budget >= 4 {
        kept = cut(text, budget - 4);
        if kept.matches("```").count() % 2 == 1 {
            kept.push_str("\n```");
        }
    }
    kept + suffix
}

/// The start of `text`, at most `n` chars, ending at a good place.
fn cut(text: &str, n: usize) -> String {
    let end = text.char_indices().nth(n).map_or(text.len(), |(i, _)| i);
    let mut head = &text[..end];
    if let Some(lt) = head.rfind('<')
        && !head[lt..].contains('>')
        && ["<http", "<mailto:", "<@", "<#", "<!"]
            .iter()
            .any(|t| head[lt..].starts_with(t) || t.starts_with(&head[lt..]))
    {
        head = &head[..lt];
    }
    if let Some(amp) = head.rfind('&')
        && !head[amp..].contains(';')
        && head.len() - amp < 6
    {
        head = &head[..amp];
    }
    let floor = head.len() * 4 / 5;
    let mid_word = !head.ends_with(char::is_whitespace)
        && !text[head.len()..].starts_with(char::is_whitespace);
    if mid_word
        && let Some(i) = head
            .rfind('\n')
            .or_else(|| head.rfind(' '))
            .filter(|&i| i >= floor && i > 0)
    {
        head = &head[..i];
    }
    head.trim_end().to_string()
}

#[cfg(test)]
pub(crate) mod fuzz;
#[cfg(test)]
mod quoted_code;
#[cfg(test)]
mod tests;
