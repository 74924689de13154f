//! A `git diff` → files, hunks and lines, highlighted with syntect (inline colours, escaped).

use std::sync::OnceLock;

use syntect::easy::HighlightLines;
use syntect::highlighting::{Theme, ThemeSet};
use syntect::html::{IncludeBackground, styled_line_to_highlighted_html};
use syntect::parsing::SyntaxSet;

use super::diff_header::{Header, path_of_diff_line};

/// Lines longer than this are shown without highlighting (minified files, data).
const HIGHLIGHT_MAX_LINE: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Context,
    Added,
    Removed,
    /// `\ No newline at end of file`
    Note,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub kind: LineKind,
    pub old: Option<u32>,
    pub new: Option<u32>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hunk {
    pub header: String,
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileDiff {
    /// The path after the change (before it, for a deleted file), unquoted.
    pub path: String,
    /// The path before a rename or copy.
    pub old_path: Option<String>,
    /// `added`, `deleted`, `modified`, `renamed`, `copied`
    pub status: &'static str,
    /// Set on a mode change (`100644` → `100755`).
    pub old_mode: Option<String>,
    pub new_mode: Option<String>,
    pub binary: bool,
    pub hunks: Vec<Hunk>,
    pub added: u32,
    pub removed: u32,
}

impl FileDiff {
    /// What changed besides the lines, in words: `renamed a → b`, `mode 100644 → 100755`,
    /// `added`, `deleted`, `binary`.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        match (self.status, &self.old_path) {
            ("renamed" | "copied", Some(old)) => {
                notes.push(format!("{} {old} → {}", self.status, self.path));
            }
            ("added" | "deleted", _) => notes.push(self.status.to_string()),
            _ => {}
        }
        if let (Some(old), Some(new)) = (&self.old_mode, &self.new_mode) {
            notes.push(format!("mode {old} → {new}"));
        }
        if self.binary {
            notes.push("binary".into());
        }
        notes
    }
}

fn hunk_starts(header: &str) -> (u32, u32) {
    // @@ -a,b +c,d @@
    let mut old = 0;
    let mut new = 0;
    for part in header.split_whitespace().skip(1).take(2) {
        let n = part
            .get(1..)
            .unwrap_or("")
            .split(',')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if part.starts_with('-') {
            old = n;
        } else if part.starts_with('+') {
            new = n;
        }
    }
    (old, new)
}

/// Parses a patch and names its files as git's `-z` output did (exact, never quoted, renames
/// included), when that list matches the patch file for file; else as the patch's headers say.
pub fn parse_with_names(patch: &str, names: &[threadsmith_runner::FileChange]) -> Vec<FileDiff> {
    let mut files = parse(patch);
    let lines_up = files.len() == names.len()
        && files
            .iter()
            .zip(names)
            .all(|(f, n)| f.status == "deleted" || f.old_path.is_some() == n.old_path.is_some());
    if lines_up {
        for (f, n) in files.iter_mut().zip(names) {
            f.path.clone_from(&n.path);
            if n.old_path.is_some() {
                f.old_path.clone_from(&n.old_path);
            }
        }
    }
    files
}

/// Parses `git diff` output (as the runner stores it).
pub fn parse(patch: &str) -> Vec<FileDiff> {
    let mut files: Vec<FileDiff> = Vec::new();
    let (mut old, mut new) = (0u32, 0u32);
    let mut in_binary = false;
    let mut header = Header::default();
    for line in patch.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            files.push(FileDiff {
                path: path_of_diff_line(rest),
                status: "modified",
                ..FileDiff::default()
            });
            header = Header::default();
            in_binary = false;
            continue;
        }
        let Some(file) = files.last_mut() else {
            continue;
        };
        if in_binary {
            continue;
        }
        if line.starts_with("@@") {
            let (o, n) = hunk_starts(line);
            old = o;
            new = n;
            file.hunks.push(Hunk {
                header: line.to_string(),
                lines: Vec::new(),
            });
            continue;
        }
        let Some(hunk) = file.hunks.last_mut() else {
            if header.read(line) {
                if let Some(path) = &header.path {
                    file.path.clone_from(path);
                }
                file.old_path.clone_from(&header.old_path);
                file.status = header.status.unwrap_or("modified");
                file.old_mode.clone_from(&header.old_mode);
                file.new_mode.clone_from(&header.new_mode);
                file.binary = header.binary;
                in_binary = header.binary;
            }
            continue;
        };
        let (kind, text) = match line.as_bytes().first() {
            Some(b'+') => (LineKind::Added, &line[1..]),
            Some(b'-') => (LineKind::Removed, &line[1..]),
            Some(b'\\') => (LineKind::Note, line),
            Some(b' ') => (LineKind::Context, &line[1..]),
            None => (LineKind::Context, ""),
            Some(_) => (LineKind::Note, line),
        };
        let (o, n) = match kind {
            LineKind::Context => {
                old += 1;
                new += 1;
                (Some(old - 1), Some(new - 1))
            }
            LineKind::Added => {
                new += 1;
                file.added += 1;
                (None, Some(new - 1))
            }
            LineKind::Removed => {
                old += 1;
                file.removed += 1;
                (Some(old - 1), None)
            }
            LineKind::Note => (None, None),
        };
        hunk.lines.push(Line {
            kind,
            old: o,
            new: n,
            text: text.to_string(),
        });
    }
    files
}

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(SyntaxSet::load_defaults_newlines)
}

fn theme() -> &'static Theme {
    static THEME: OnceLock<Theme> = OnceLock::new();
    THEME.get_or_init(|| {
        let mut set = ThemeSet::load_defaults();
        set.themes
            .remove("InspiredGitHub")
            .or_else(|| set.themes.into_values().next())
            .unwrap_or_default()
    })
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Each line of a hunk as highlighted HTML (escaped; colours as inline styles).
pub struct Highlighter {
    inner: Option<HighlightLines<'static>>,
}

impl Highlighter {
    pub fn for_path(path: &str) -> Self {
        let set = syntaxes();
        let ext = path.rsplit('.').next().unwrap_or("");
        let name = path.rsplit('/').next().unwrap_or(path);
        let syntax = set
            .find_syntax_by_extension(ext)
            .or_else(|| set.find_syntax_by_extension(name));
        Self {
            inner: syntax.map(|s| HighlightLines::new(s, theme())),
        }
    }

    pub fn line(&mut self, text: &str) -> String {
        let Some(h) = self.inner.as_mut() else {
            return escape(text);
        };
        if text.len() > HIGHLIGHT_MAX_LINE {
            return escape(text);
        }
        let with_newline = format!("{text}\n");
        match h.highlight_line(&with_newline, syntaxes()) {
            Ok(ranges) => styled_line_to_highlighted_html(&ranges, IncludeBackground::No)
                .map(|html| html.trim_end_matches('\n').to_string())
                .unwrap_or_else(|_| escape(text)),
            Err(_) => escape(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "diff --git a/src/calc.py b/src/calc.py
index 1111111..2222222 100644
--- a/src/calc.py
+++ b/src/calc.py
@@ -1,3 +1,3 @@
 def add(a, b):
-    return a - b
+    return a + b
 # end
\\ No newline at end of file
diff --git a/logo.png b/logo.png
new file mode 100644
index 0000000..3333333
GIT binary patch
literal 3
KcmZ>9WB>pF0RRC2

literal 0
HcmV?d00001

diff --git a/NEW.md b/NEW.md
new file mode 100644
--- /dev/null
+++ b/NEW.md
@@ -0,0 +1 @@
+hello
";

    /// What `git diff --cached --find-renames --binary HEAD` wrote for a binary change, a
    /// rename with an edit and a non-ASCII, spaced name, an edit under such a name, and a mode
    /// change.
    const GIT_PATCH: &str = "diff --git a/blob.bin b/blob.bin
index 8352675d67aed6625ece79af41c27fdb4ee2e867..a903574af00b573ad9bdb2bccf8d93ed00c675de 100644
GIT binary patch
literal 2
JcmZQz1^@sB00aO4

literal 3
KcmZQzWC8#H2LJ>B

diff --git \"a/docs/na\\303\\257ve notes/a.md\" \"b/docs/na\\303\\257ve notes/b.md\"
similarity index 79%
rename from \"docs/na\\303\\257ve notes/a.md\"
rename to \"docs/na\\303\\257ve notes/b.md\"
index b2f931a..17eb8c9 100644
--- \"a/docs/na\\303\\257ve notes/a.md\"\t
+++ \"b/docs/na\\303\\257ve notes/b.md\"\t
@@ -2,4 +2,4 @@ one
 two
 three
 four
-five
+FIVE
diff --git \"a/docs/na\\303\\257ve notes/edit me.md\" \"b/docs/na\\303\\257ve notes/edit me.md\"
index 587be6b..975fbec 100644
--- \"a/docs/na\\303\\257ve notes/edit me.md\"\t
+++ \"b/docs/na\\303\\257ve notes/edit me.md\"\t
@@ -1 +1 @@
-x
+y
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
";

    #[test]
    fn real_names_renames_modes_and_binary_changes() {
        let files = parse(GIT_PATCH);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "blob.bin",
                "docs/naïve notes/b.md",
                "docs/naïve notes/edit me.md",
                "run.sh"
            ]
        );
        assert!(files[0].binary);
        assert_eq!(files[0].notes(), ["binary"]);
        assert_eq!(files[1].status, "renamed");
        assert_eq!(files[1].old_path.as_deref(), Some("docs/naïve notes/a.md"));
        assert_eq!(
            files[1].notes(),
            ["renamed docs/naïve notes/a.md → docs/naïve notes/b.md"]
        );
        assert_eq!((files[1].added, files[1].removed), (1, 1));
        assert_eq!(files[1].hunks[0].lines[4].new, Some(5));
        assert_eq!(files[2].status, "modified");
        assert!(files[2].notes().is_empty());
        assert_eq!(files[3].notes(), ["mode 100644 → 100755"]);
        assert!(files[3].hunks.is_empty());

        // The names git gave with -z win when they line up with the patch.
        let names = |p: &str, old: Option<&str>| threadsmith_runner::FileChange {
            path: p.into(),
            old_path: old.map(String::from),
            added: None,
            removed: None,
        };
        let named = parse_with_names(
            GIT_PATCH,
            &[
                names("blob.bin", None),
                names("docs/naïve notes/b.md", Some("docs/naïve notes/a.md")),
                names("docs/naïve notes/edit me.md", None),
                names("run.sh", None),
            ],
        );
        assert_eq!(named, files);
        // A list that does not match (an older diff, another patch) is not used.
        assert_eq!(parse_with_names(GIT_PATCH, &[names("x", None)]), files);
    }

    #[test]
    fn a_git_diff_parses_into_files_and_numbered_lines() {
        let files = parse(PATCH);
        assert_eq!(files.len(), 3);
        let calc = &files[0];
        assert_eq!(
            (calc.path.as_str(), calc.added, calc.removed),
            ("src/calc.py", 1, 1)
        );
        let lines = &calc.hunks[0].lines;
        assert_eq!(lines[1].kind, LineKind::Removed);
        assert_eq!((lines[1].old, lines[1].new), (Some(2), None));
        assert_eq!((lines[2].old, lines[2].new), (None, Some(2)));
        assert_eq!((lines[3].old, lines[3].new), (Some(3), Some(3)));
        assert_eq!(lines[4].kind, LineKind::Note);
        assert!(files[1].binary && files[1].hunks.is_empty());
        assert_eq!((files[2].status, files[2].added), ("added", 1));
    }

    #[test]
    fn highlighting_escapes() {
        let mut h = Highlighter::for_path("x.js");
        let html = h.line("let a = \"</script><script>alert(1)</script>\";");
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;") || html.contains("&lt;/script&gt;"),
            "{html}"
        );
        let mut plain = Highlighter::for_path("notes.unknownext");
        assert_eq!(plain.line("<b>"), "&lt;b&gt;");
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    /// Patch-like text: real diff lines mixed with garbage and broken hunk headers.
    fn patch() -> impl Strategy<Value = String> {
        let line = prop_oneof![
            prop::sample::select(vec![
                "diff --git a/x.rs b/x.rs",
                "diff --git a/a b/b c",
                "new file mode 100644",
                "deleted file mode 100644",
                "index 000..111",
                "--- a/x.rs",
                "+++ b/x.rs",
                "--- /dev/null",
                "+++ /dev/null",
                "@@ -1,3 +1,4 @@",
                "@@ -0,0 +1 @@",
                "@@ -99999999999,1 +4294967296,2 @@",
                "@@ garbage @@",
                "@@ -1 +1 @@ fn x()",
                "Binary files a/x.png and b/x.png differ",
                "GIT binary patch",
                "literal 0",
                "\\ No newline at end of file",
                "+added",
                "-removed",
                " context",
                "",
            ])
            .prop_map(String::from),
            "[+ -]\\PC{0,40}",
            "\\PC{0,40}",
        ];
        prop::collection::vec(line, 0..60).prop_map(|l| l.join("\n"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn any_patch_parses_into_consistent_files(text in patch()) {
            for f in parse(&text) {
                let lines = f.hunks.iter().flat_map(|h| &h.lines);
                let (mut added, mut removed) = (0u32, 0u32);
                for l in lines {
                    match l.kind {
                        LineKind::Added => { added += 1; prop_assert!(l.old.is_none()); }
                        LineKind::Removed => { removed += 1; prop_assert!(l.new.is_none()); }
                        _ => {}
                    }
                }
                prop_assert_eq!((f.added, f.removed), (added, removed));
            }
        }
    }
}
