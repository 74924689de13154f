//! The short form of a task id that people read and type (`threadsmith show 1a2b3c4d`).

/// The first eight characters of an id, or all of it when shorter. Never panics: ids can come
/// from stored events, buttons and command lines, so they may be short or not ASCII.
pub fn short_id(id: &str) -> &str {
    match id.char_indices().nth(8) {
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

    proptest! {
        #[test]
        fn never_panics_and_is_a_prefix(id in ".*") {
            let short = short_id(&id);
            prop_assert!(id.starts_with(short));
            prop_assert!(short.chars().count() <= 8);
            prop_assert_eq!(short.chars().count(), id.chars().count().min(8));
        }
    }
}
