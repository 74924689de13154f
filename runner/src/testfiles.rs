//! Which files of a rollout's change are tests: by the usual path conventions, or by the
//! repository's own glob patterns (`sandbox.test_paths`), which replace the conventions. Pure.
//!
//! The cross-checks ([`crate::crosscheck`]) run a rollout's test files against the base and the
//! other rollouts' changes; everything else in its change is the fix.

use crate::types::FileChange;

/// Folder names that hold tests.
const TEST_DIRS: [&str; 4] = ["test", "tests", "spec", "__tests__"];

/// Whether `path` (relative to the repository's root, `/`-separated) is a test file: by the
/// conventions, or, when `globs` is given, by those patterns alone.
pub fn is_test_file(path: &str, globs: Option<&[String]>) -> bool {
    match globs {
        Some(globs) => globs.iter().any(|g| glob_match(g, path)),
        None => by_convention(path),
    }
}

/// The paths of `files` that are tests (see [`is_test_file`]), in the diff's order.
pub fn test_files(files: &[FileChange], globs: Option<&[String]>) -> Vec<String> {
    files
        .iter()
        .filter(|f| is_test_file(&f.path, globs))
        .map(|f| f.path.clone())
        .collect()
}

fn by_convention(path: &str) -> bool {
    let mut segments: Vec<&str> = path.split('/').collect();
    let Some(name) = segments.pop() else {
        return false;
    };
    if segments.iter().any(|s| TEST_DIRS.contains(s)) {
        return true;
    }
    let js = [".js", ".ts", ".jsx", ".tsx"];
    (name.starts_with("test_") && name.ends_with(".py"))
        || name.ends_with("_test.py")
        || name.ends_with("_test.go")
        || js.iter().any(|ext| name.ends_with(&format!(".test{ext}")))
        || name.ends_with(".spec.js")
        || name.ends_with(".spec.ts")
        || name.ends_with("_spec.rb")
        || name.ends_with("Test.java")
}

/// Matches `path` against a glob: `*` (any run of characters but `/`), `?` (one character but
/// `/`), `**` (any run of whole segments, none included: `a/**/b` matches `a/b`), and `[...]`
/// classes are not supported (taken literally). A pattern without `/` matches the file name in
/// any folder, as in `.gitignore`.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let pattern = pattern.trim().trim_start_matches("./");
    if pattern.is_empty() {
        return false;
    }
    if !pattern.contains('/') {
        let name = path.rsplit('/').next().unwrap_or(path);
        return segment_match(pattern.as_bytes(), name.as_bytes());
    }
    let pattern: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    segments_match(&pattern, &path)
}

fn segments_match(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| segments_match(rest, &path[skip..])),
        Some((first, rest)) => match path.split_first() {
            Some((segment, tail)) => {
                segment_match(first.as_bytes(), segment.as_bytes()) && segments_match(rest, tail)
            }
            None => false,
        },
    }
}

/// One segment: `*` and `?` within it.
fn segment_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| segment_match(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && segment_match(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && segment_match(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions_find_the_usual_test_files() {
        for path in [
            "tests/test_calc.py",
            "pkg/test/helpers.rb",
            "src/__tests__/app.jsx",
            "spec/models/user_spec.rb",
            "test_calc.py",
            "calc_test.py",
            "pkg/calc_test.go",
            "src/app.test.ts",
            "src/app.test.js",
            "web/app.spec.ts",
            "src/main/java/CalcTest.java",
            "crate/tests/cli.rs",
        ] {
            assert!(is_test_file(path, None), "{path}");
        }
        for path in [
            "calc.py",
            "src/testing.rs",
            "contest/main.go",
            "latest/app.js",
            "src/app.ts",
            "test.sh",
            "tests.md/x",
            "src/attest.py",
            "protest_test.rs",
        ] {
            assert!(!is_test_file(path, None), "{path}");
        }
    }

    #[test]
    fn the_repositorys_globs_replace_the_conventions() {
        let globs = vec!["checks/**/*.sh".to_string(), "*.check".to_string()];
        let globs = Some(globs.as_slice());
        assert!(is_test_file("checks/add.sh", globs));
        assert!(is_test_file("checks/deep/er/add.sh", globs));
        assert!(is_test_file("anywhere/at/all/sum.check", globs));
        assert!(
            !is_test_file("tests/test_calc.py", globs),
            "conventions are off"
        );
        assert!(!is_test_file("checks/add.py", globs));
        assert!(!is_test_file("other/checks/add.sh", globs));
    }

    #[test]
    fn globs_match_segments_stars_and_question_marks() {
        assert!(glob_match("src/*_test.rs", "src/a_test.rs"));
        assert!(!glob_match("src/*_test.rs", "src/x/a_test.rs"));
        assert!(glob_match("src/**/a?.rs", "src/a1.rs"));
        assert!(glob_match("src/**/a?.rs", "src/x/y/a1.rs"));
        assert!(!glob_match("src/**/a?.rs", "src/x/y/a12.rs"));
        assert!(glob_match("./t/**", "t/x/y"));
        assert!(glob_match("**", "anything/at/all"));
        assert!(!glob_match("", "a"));
        assert!(
            !glob_match("a*", "b/a/c"),
            "a pattern without / matches names"
        );
    }

    #[test]
    fn test_files_keep_the_diffs_order() {
        let file = |path: &str| FileChange {
            path: path.into(),
            old_path: None,
            added: Some(1),
            removed: Some(0),
        };
        let files = [file("calc.py"), file("tests/test_b.py"), file("a_test.go")];
        assert_eq!(
            test_files(&files, None),
            vec!["tests/test_b.py".to_string(), "a_test.go".to_string()]
        );
    }
}
