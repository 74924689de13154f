//! The thread as the spec sees it, when the platform withheld some of its messages.

use crate::chat::ThreadMessage;

/// What stands in the transcript for a message whose text the platform withheld: the spec
/// then says the thread was not read in full rather than working from empty text.
pub(super) const WITHHELD: &str =
    "[this message could not be read: the chat platform withheld its text from the bot]";

/// The (author, text) pairs of the people's messages, and whether any was withheld.
pub(super) fn transcript_pairs(messages: &[ThreadMessage]) -> (Vec<(String, String)>, bool) {
    let people = messages.iter().filter(|m| !m.is_bot);
    let withheld = people.clone().any(|m| m.hidden);
    let pairs = people
        .map(|m| {
            let text = if m.hidden {
                WITHHELD.into()
            } else {
                m.text.clone()
            };
            (m.author.clone(), text)
        })
        .collect();
    (pairs, withheld)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str, hidden: bool) -> ThreadMessage {
        ThreadMessage {
            ts: "1".into(),
            author: "alice".into(),
            is_bot: false,
            text: text.into(),
            hidden,
        }
    }

    #[test]
    fn withheld_messages_are_named_not_dropped() {
        let (pairs, withheld) = transcript_pairs(&[msg("", true), msg("@bot fix this", false)]);
        assert!(withheld);
        assert_eq!(pairs[0].1, WITHHELD);
        assert_eq!(pairs[1].1, "@bot fix this");
        let (_, withheld) = transcript_pairs(&[msg("all here", false)]);
        assert!(!withheld);
    }
}
