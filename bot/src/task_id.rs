//! A task's id: a UUID in its simple form (32 lowercase hex digits), stored and sent as text,
//! and the one short form people read and type (`threadsmith show 1a2b3c4d`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// How many characters of an id its short form shows.
pub const SHORT_LEN: usize = 8;

/// A task's id. Stored and serialised as the bare string (`serde(transparent)`), so rows and
/// events written before this type existed read back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(String);

impl TaskId {
    /// A new id (a random UUID, simple form).
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The short form: the first eight characters.
    pub fn short(&self) -> &str {
        short_id(&self.0)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl Default for TaskId {
    fn default() -> Self {
        Self::new()
    }
}

/// An id as stored (the store and the chat events carry ids as text).
impl From<String> for TaskId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for TaskId {
    fn from(id: &str) -> Self {
        Self(id.to_string())
    }
}

impl From<TaskId> for String {
    fn from(id: TaskId) -> Self {
        id.0
    }
}

/// Maps keyed by id are looked up with the id as text (`Hash` and `Eq` are the string's).
impl std::borrow::Borrow<str> for TaskId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TaskId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user-typed prefix of a task id that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("give the task's id or its first characters")]
    Empty,
    #[error("`{0}` is not the start of a task id: ids are hexadecimal (0-9, a-f)")]
    NotHex(String),
    #[error("`{0}` is longer than a task id")]
    TooLong(String),
}

/// A prefix a person typed (`show 1A2B`, trimmed, any case) as ids are stored: lowercase hex,
/// at most a whole id. Anything else cannot name a task and is refused before any look-up.
pub fn parse_prefix(input: &str) -> Result<String, PrefixError> {
    let prefix = input.trim().to_ascii_lowercase();
    if prefix.is_empty() {
        return Err(PrefixError::Empty);
    }
    if !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(PrefixError::NotHex(input.trim().to_string()));
    }
    if prefix.len() > 32 {
        return Err(PrefixError::TooLong(input.trim().to_string()));
    }
    Ok(prefix)
}

/// The first eight characters of an id, or all of it when shorter. Never panics: ids can come
/// from stored events, buttons and command lines, so they may be short or not ASCII.
pub fn short_id(id: &str) -> &str {
    match id.char_indices().nth(SHORT_LEN) {
        Some((at, _)) => &id[..at],
        None => id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_and_long_ids() {
        assert_eq!(short_id("0123456789abcdef"), "01234567");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(short_id(""), "");
        assert_eq!(short_id("ééééééééé"), "éééééééé");
    }

    #[test]
    fn a_new_id_is_a_simple_uuid_and_its_short_form_a_prefix() {
        let id = TaskId::new();
        assert_eq!(id.as_str().len(), 32);
        assert!(id.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(id.short().len(), 8);
        assert!(id.as_str().starts_with(id.short()));
        assert_eq!(id.to_string(), id.as_str());
        assert_ne!(TaskId::new(), id);
    }

    #[test]
    fn serialised_as_the_bare_string() {
        let id = TaskId::from("0123456789abcdef0123456789abcdef");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"0123456789abcdef0123456789abcdef\"");
        assert_eq!(serde_json::from_str::<TaskId>(&json).unwrap(), id);
    }

    #[test]
    fn prefixes_as_people_type_them() {
        assert_eq!(parse_prefix(" 1A2b3C4d \n").unwrap(), "1a2b3c4d");
        assert_eq!(parse_prefix("").unwrap_err(), PrefixError::Empty);
        assert_eq!(parse_prefix("  ").unwrap_err(), PrefixError::Empty);
        assert_eq!(
            parse_prefix("1a2b%").unwrap_err(),
            PrefixError::NotHex("1a2b%".into())
        );
        assert_eq!(
            parse_prefix(&"a".repeat(33)).unwrap_err(),
            PrefixError::TooLong("a".repeat(33))
        );
        let whole = TaskId::new();
        assert_eq!(parse_prefix(whole.as_str()).unwrap(), whole.as_str());
    }

    proptest! {
        #[test]
        fn never_panics_and_is_a_prefix(id in ".*") {
            let short = short_id(&id);
            prop_assert!(id.starts_with(short));
            prop_assert!(short.chars().count() <= 8);
            prop_assert_eq!(short.chars().count(), id.chars().count().min(8));
        }

        #[test]
        fn a_parsed_prefix_is_a_prefix_of_the_lowercase_input(input in "[0-9a-fA-F ]{0,40}") {
            if let Ok(p) = parse_prefix(&input) {
                prop_assert!(input.trim().to_ascii_lowercase().starts_with(&p));
            }
        }
    }
}
