//! The extended header of one file in a `git diff` (what comes between `diff --git` and the
//! first hunk): renames, copies, modes, added or deleted files, binary changes, and the file
//! names, which git writes C-quoted (`"docs/na\303\257ve notes.md"`) when they hold spaces at the
//! end, quotes, control or non-ASCII bytes.
//!
//! The runner also stores every file's names as git gives them with `-z` (never quoted, renames
//! found by `--find-renames`); the page uses those when they line up with the patch (see
//! [`super::diff::parse_with_names`]), and these header names otherwise (older diffs).

/// What the header says about the file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Header {
    pub path: Option<String>,
    pub old_path: Option<String>,
    pub status: Option<&'static str>,
    pub old_mode: Option<String>,
    pub new_mode: Option<String>,
    pub binary: bool,
}

/// Undoes git's C quoting of a path (`"a\tb\303\251"`); a path without quotes is returned as is.
pub fn unquote(text: &str) -> String {
    let Some(inner) = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|_| text.len() >= 2)
    else {
        return text.to_string();
    };
    let bytes = inner.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 == bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let c = bytes[i + 1];
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let Some(digits) = octal {
            let value = digits
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            out.push(value as u8);
            i += 4;
            continue;
        }
        out.push(match c {
            b'a' => 0x07,
            b'b' => 0x08,
            b't' => b'\t',
            b'n' => b'\n',
            b'v' => 0x0b,
            b'f' => 0x0c,
            b'r' => b'\r',
            other => other,
        });
        i += 2;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a/x` → `x` (after unquoting); `/dev/null` → `None`.
fn side(text: &str, prefix: &str) -> Option<String> {
    let name = unquote(text.trim_end_matches('\t'));
    if name == "/dev/null" {
        return None;
    }
    Some(name.strip_prefix(prefix).unwrap_or(&name).to_string())
}

/// The path after the change from a `diff --git` line's rest (`a/x b/x`, either side quoted).
/// Exact when both sides are quoted or the name is the same on both; a best guess otherwise (the
/// `rename to` and `+++` lines, read later, correct it).
pub fn path_of_diff_line(rest: &str) -> String {
    if rest.ends_with('"')
        && let Some(at) = rest[..rest.len() - 1].rfind(" \"")
    {
        return side(&rest[at + 1..], "b/").unwrap_or_default();
    }
    // `a/X b/X`: the same name twice.
    if rest.len() >= 5 && (rest.len() - 5).is_multiple_of(2) {
        let n = (rest.len() - 5) / 2;
        if let (Some(a), Some(b)) = (rest.get(2..2 + n), rest.get(2 + n + 3..))
            && rest.starts_with("a/")
            && rest.get(2 + n..2 + n + 3) == Some(" b/")
            && a == b
        {
            return b.to_string();
        }
    }
    rest.rsplit_once(" b/").map_or(rest, |(_, b)| b).to_string()
}

impl Header {
    /// Reads one header line; `false` when it is not one.
    pub fn read(&mut self, line: &str) -> bool {
        if let Some(m) = line.strip_prefix("old mode ") {
            self.old_mode = Some(m.trim().to_string());
        } else if let Some(m) = line.strip_prefix("new mode ") {
            self.new_mode = Some(m.trim().to_string());
        } else if line.starts_with("new file mode ") {
            self.status = Some("added");
        } else if line.starts_with("deleted file mode ") {
            self.status = Some("deleted");
        } else if let Some(p) = line.strip_prefix("rename from ") {
            self.old_path = Some(unquote(p));
            self.status = Some("renamed");
        } else if let Some(p) = line.strip_prefix("rename to ") {
            self.path = Some(unquote(p));
            self.status = Some("renamed");
        } else if let Some(p) = line.strip_prefix("copy from ") {
            self.old_path = Some(unquote(p));
            self.status = Some("copied");
        } else if let Some(p) = line.strip_prefix("copy to ") {
            self.path = Some(unquote(p));
            self.status = Some("copied");
        } else if let Some(p) = line.strip_prefix("+++ ") {
            if let Some(p) = side(p, "b/") {
                self.path = Some(p);
            }
        } else if let Some(p) = line.strip_prefix("--- ") {
            if self.path.is_none()
                && let Some(p) = side(p, "a/")
            {
                self.path = Some(p);
            }
        } else if line.starts_with("GIT binary patch") || line.starts_with("Binary files ") {
            self.binary = true;
        } else {
            return line.starts_with("index ")
                || line.starts_with("similarity index ")
                || line.starts_with("dissimilarity index ");
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quoted_names_are_decoded() {
        assert_eq!(
            unquote(r#""docs/na\303\257ve notes/a.md""#),
            "docs/naïve notes/a.md"
        );
        assert_eq!(
            unquote(r#""tab\there \"q\" back\\slash""#),
            "tab\there \"q\" back\\slash"
        );
        assert_eq!(unquote("plain name.md"), "plain name.md");
        assert_eq!(unquote("\""), "\"");
    }

    #[test]
    fn diff_lines_give_the_new_path() {
        assert_eq!(path_of_diff_line("a/src/x y.rs b/src/x y.rs"), "src/x y.rs");
        assert_eq!(
            path_of_diff_line(
                r#""a/docs/na\303\257ve notes/a.md" "b/docs/na\303\257ve notes/a.md""#
            ),
            "docs/naïve notes/a.md"
        );
        assert_eq!(path_of_diff_line("a/b/ b/c b/b/ b/c"), "b/ b/c");
    }

    proptest! {
        #[test]
        fn unquote_never_panics(text in ".*") {
            let _ = unquote(&format!("\"{text}\""));
            let _ = path_of_diff_line(&text);
        }
    }
}
