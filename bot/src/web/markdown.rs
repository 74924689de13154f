//! Markdown from threads and models → HTML that cannot run script: raw HTML is shown as text,
//! links keep only http(s) and mailto targets, images become links. (The pages' Content Security
//! Policy forbids script as well: two locks.)

use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd, html};

fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://")
        || lower.starts_with("http://")
        || lower.starts_with("mailto:")
        || lower.starts_with('#')
}

/// Renders untrusted Markdown as inert HTML.
pub fn to_safe_html(markdown: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_TASKLISTS);
    // Links whose target was refused: their closing tag is dropped too.
    let mut dropped_links = Vec::new();
    let events = Parser::new_ext(markdown, options).filter_map(|event| match event {
        Event::Html(text) | Event::InlineHtml(text) => Some(Event::Text(text)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let ok = safe_url(&dest_url);
            dropped_links.push(!ok);
            ok.then_some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::End(TagEnd::Link) => {
            if dropped_links.pop().unwrap_or(false) {
                None
            } else {
                Some(Event::End(TagEnd::Link))
            }
        }
        // No remote images (and no tracking pixels): an image is a link to it.
        Event::Start(Tag::Image {
            dest_url,
            title,
            id,
            ..
        }) => {
            let ok = safe_url(&dest_url);
            dropped_links.push(!ok);
            ok.then_some(Event::Start(Tag::Link {
                link_type: LinkType::Inline,
                dest_url,
                title,
                id,
            }))
        }
        Event::End(TagEnd::Image) => {
            if dropped_links.pop().unwrap_or(false) {
                None
            } else {
                Some(Event::End(TagEnd::Link))
            }
        }
        Event::InlineMath(t) | Event::DisplayMath(t) => Some(Event::Code(t)),
        other => Some(other),
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    // Links open without telling the target where they came from (the page URL holds the token).
    out.replace("<a href=", "<a rel=\"noreferrer nofollow\" href=")
}

/// For titles: Markdown's inline text only, for a heading (escaped by the template).
pub fn plain(markdown: &str) -> String {
    let mut out = String::new();
    for event in Parser::new(markdown) {
        match event {
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                out.push_str(&t)
            }
            Event::SoftBreak | Event::HardBreak => out.push(' '),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_and_script_links_are_inert() {
        let html = to_safe_html(
            "hi <script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1)) [ok](https://example.com) ![i](https://e.com/p.png)",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(
            html.contains("<a rel=\"noreferrer nofollow\" href=\"https://example.com\">ok</a>"),
            "{html}"
        );
        assert!(html.contains("href=\"https://e.com/p.png\""), "{html}");
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn page_html_is_inert(md in crate::chat::markdown::fuzz::hostile_markdown()) {
            let html = to_safe_html(&md).to_lowercase();
            for bad in ["<script", "<img", "<iframe", "<style", "<svg", "<object", "href=\"javascript:"] {
                prop_assert!(!html.contains(bad), "{bad} in {html:?} from {md:?}");
            }
            // No tag carries an event handler (text that merely reads "onerror" is escaped).
            for tag in html.split('<').skip(1).map(|t| t.split('>').next().unwrap_or("")) {
                let handler = tag.split_whitespace().skip(1).any(|a| a.starts_with("on"));
                prop_assert!(!handler, "<{tag}> in {html:?}");
            }
            let _ = plain(&md);
        }
    }
}
