//! Task titles: one line of plain text (no Markdown, no speaker prefix), at most
//! [`TITLE_CHARS`] characters, cut at a word boundary so that no word or link is cut in two.

use pulldown_cmark::{Event, Parser, Tag, TagEnd};

/// Titles stay short enough for a chat header or a pull request.
pub const TITLE_CHARS: usize = 80;

const UNTITLED: &str = "Untitled task";

/// The title of a text: its first non-empty line, as plain text, cut to size.
pub fn title_of(text: &str) -> String {
    let line = text
        .lines()
        .map(|l| plain(l.trim()))
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    cut(&line).unwrap_or_else(|| UNTITLED.to_string())
}

/// The title of a transcript (`**author**: text` per message): the first message's text,
/// without its author.
pub fn title_of_transcript(transcript: &str) -> String {
    let first = transcript
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    title_of(strip_speaker(first))
}

/// `**alice**: text` → `text`.
fn strip_speaker(line: &str) -> &str {
    let Some(rest) = line.strip_prefix("**") else {
        return line;
    };
    match rest.find("**: ") {
        Some(end) if end > 0 && !rest[..end].contains('*') => rest[end + 4..].trim_start(),
        _ => line,
    }
}

/// One line of Markdown as plain text: emphasis, code marks, headings and link syntax gone
/// (a link keeps its text), whitespace collapsed.
fn plain(line: &str) -> String {
    let mut out = String::new();
    let mut in_image = false;
    for event in Parser::new(line) {
        match event {
            Event::Start(Tag::Image { .. }) => in_image = true,
            Event::End(TagEnd::Image) => in_image = false,
            Event::Text(t) | Event::Code(t) if !in_image => out.push_str(&t),
            Event::InlineHtml(t) | Event::Html(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak => out.push(' '),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_link(word: &str) -> bool {
    word.contains("://") || word.starts_with("www.")
}

/// At most [`TITLE_CHARS`] characters, cut after a whole word (with `…`); a single word
/// longer than that is cut in its middle unless it is a link, which is left out.
fn cut(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.chars().count() <= TITLE_CHARS {
        return Some(text.to_string());
    }
    let mut out = String::new();
    for word in text.split(' ') {
        let len = out.chars().count() + usize::from(!out.is_empty()) + word.chars().count();
        if len + 1 > TITLE_CHARS {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        // The first word alone is too long.
        let first = text.split(' ').next().unwrap_or_default();
        if is_link(first) {
            let rest = text[first.len()..].trim();
            return cut(rest).or_else(|| Some(UNTITLED.to_string()));
        }
        out = first.chars().take(TITLE_CHARS - 1).collect();
    }
    Some(format!("{}…", out.trim_end_matches([',', ';', ':', '-'])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transcript_title_is_the_first_message_in_plain_text_without_its_author() {
        let transcript = "**alice**: Stack trace in `calc.sh` when **adding** [negatives](https://example.com/x)\n\n**bob**: me too\n\n";
        assert_eq!(
            title_of_transcript(transcript),
            "Stack trace in calc.sh when adding negatives"
        );
        // No author prefix: the line as it is.
        assert_eq!(title_of_transcript("**Bold** start"), "Bold start");
        assert_eq!(title_of_transcript(""), UNTITLED);
    }

    #[test]
    fn titles_are_cut_at_a_word_boundary_never_inside_a_link() {
        let text = "Stack trace: thread 'main' panicked at src/parser.rs:10 see https://example.com/a/very/long/path/to/the/log?with=query&and=more for details";
        let t = title_of(text);
        assert!(t.chars().count() <= TITLE_CHARS, "{t}");
        assert_eq!(
            t,
            "Stack trace: thread 'main' panicked at src/parser.rs:10 see…"
        );
        assert!(text.starts_with(t.trim_end_matches('…')));
        // A link that would not fit is left out whole.
        let url = format!("https://example.com/{}", "x".repeat(100));
        assert_eq!(title_of(&format!("{url} add is broken")), "add is broken");
        assert_eq!(title_of(&url), UNTITLED);
        // One huge word is cut (nothing better exists), to the limit.
        let huge = title_of(&"y".repeat(200));
        assert_eq!(huge.chars().count(), TITLE_CHARS);
        // Short titles are kept whole; headings lose their marks.
        assert_eq!(
            title_of("\n\n## add() is wrong\nIt returns a - b."),
            "add() is wrong"
        );
    }

    #[test]
    fn markup_never_survives() {
        for md in [
            "**alice**: x",
            "_a_ *b* ~~c~~ `d`",
            "[text](https://e.example) ![img](https://i.example/p.png)",
        ] {
            let t = title_of(md);
            assert!(!t.contains(['*', '`', '[', ']', '(']), "{md} → {t}");
        }
    }
}
