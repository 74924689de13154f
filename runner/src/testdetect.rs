//! The test command of a repository that configures none, found from its usual files, and the
//! words that say which command was used (and whether it was found rather than configured).
//!
//! Pure: the caller reads the candidate files ([`CANDIDATES`]) from the base commit.

use std::collections::HashMap;

use crate::types::RepoSettings;

/// Files at the repository's root that can name a test command, in the order they are tried.
pub const CANDIDATES: &[&str] = &[
    "Cargo.toml",
    "package.json",
    "pytest.ini",
    "pyproject.toml",
    "tox.ini",
    "setup.cfg",
    "go.mod",
    "Makefile",
    "makefile",
    "GNUmakefile",
];

/// A test command found in the repository's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub command: String,
    /// What it was found from, e.g. `Cargo.toml` or `the Makefile's test target`.
    pub source: String,
}

fn found(command: &str, source: &str) -> Option<Detected> {
    Some(Detected {
        command: command.into(),
        source: source.into(),
    })
}

/// The usual test command of a repository, from its root files (path → content; only the
/// candidates that exist). `None` when nothing names one.
pub fn detect(files: &HashMap<String, String>) -> Option<Detected> {
    let file = |name: &str| files.get(name).map(String::as_str);
    if file("Cargo.toml").is_some() {
        return found("cargo test", "Cargo.toml");
    }
    if let Some(text) = file("package.json")
        && npm_has_test_script(text)
    {
        return found("npm test", "package.json's `test` script");
    }
    if file("pytest.ini").is_some() {
        return found("pytest", "pytest.ini");
    }
    if let Some(text) = file("pyproject.toml")
        && has_section(text, "[tool.pytest.ini_options]")
    {
        return found("pytest", "pyproject.toml's [tool.pytest.ini_options]");
    }
    if file("tox.ini").is_some() {
        return found("pytest", "tox.ini");
    }
    if let Some(text) = file("setup.cfg")
        && has_section(text, "[tool:pytest]")
    {
        return found("pytest", "setup.cfg's [tool:pytest]");
    }
    if file("go.mod").is_some() {
        return found("go test ./...", "go.mod");
    }
    for name in ["GNUmakefile", "makefile", "Makefile"] {
        if let Some(text) = file(name)
            && make_has_test_target(text)
        {
            return found("make test", &format!("the {name}'s `test` target"));
        }
    }
    None
}

/// A `scripts.test` that is not npm's placeholder (`echo "Error: no test specified" && exit 1`).
fn npm_has_test_script(text: &str) -> bool {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return false;
    };
    json.get("scripts")
        .and_then(|s| s.get("test"))
        .and_then(|t| t.as_str())
        .is_some_and(|t| !t.trim().is_empty() && !t.contains("no test specified"))
}

fn has_section(text: &str, header: &str) -> bool {
    text.lines().any(|l| l.trim() == header)
}

/// A rule whose targets include `test` (`test:`, `check test: …`), not a variable assignment.
fn make_has_test_target(text: &str) -> bool {
    text.lines().any(|line| {
        if line.starts_with(['\t', ' ', '#', '.']) {
            return false;
        }
        let Some((targets, rest)) = line.split_once(':') else {
            return false;
        };
        // `test := …` and `test ::= …` assign variables.
        if rest.starts_with('=') || rest.starts_with(":=") {
            return false;
        }
        targets.split_whitespace().any(|t| t == "test")
    })
}

/// How the rollout's tests were chosen, for people: "`cargo test`, found from Cargo.toml, as
/// none is configured", or "`bash test.sh`".
pub fn test_words(settings: &RepoSettings) -> Option<String> {
    let test = settings.test.as_deref()?;
    Some(words(test, settings.test_detected_from.as_deref()))
}

/// [`test_words`] from the command and what it was detected from (`None`: configured).
pub fn words(command: &str, detected_from: Option<&str>) -> String {
    match detected_from {
        Some(source) => format!("`{command}`, detected from {source} (none is configured)"),
        None => format!("`{command}`"),
    }
}

/// Why a rollout is untested.
pub const UNTESTED: &str = "untested: no test command is configured and none was found (Cargo.toml, package.json's test script, pytest or tox config, go.mod, a Makefile test target); review the change yourself";

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> HashMap<String, String> {
        list.iter()
            .map(|(p, c)| (p.to_string(), c.to_string()))
            .collect()
    }

    fn command(list: &[(&str, &str)]) -> Option<String> {
        detect(&files(list)).map(|d| d.command)
    }

    #[test]
    fn the_usual_files_name_their_test_command() {
        assert_eq!(
            detect(&files(&[("Cargo.toml", "[package]\nname = \"x\"\n")])),
            Some(Detected {
                command: "cargo test".into(),
                source: "Cargo.toml".into()
            })
        );
        assert_eq!(
            command(&[("package.json", r#"{"scripts":{"test":"jest"}}"#)]).as_deref(),
            Some("npm test")
        );
        assert_eq!(
            command(&[("pytest.ini", "[pytest]\n")]).as_deref(),
            Some("pytest")
        );
        assert_eq!(
            command(&[(
                "pyproject.toml",
                "[project]\nname='x'\n\n[tool.pytest.ini_options]\naddopts = \"-q\"\n"
            )])
            .as_deref(),
            Some("pytest")
        );
        assert_eq!(
            command(&[("tox.ini", "[tox]\nenvlist = py3\n")]).as_deref(),
            Some("pytest")
        );
        assert_eq!(
            command(&[(
                "setup.cfg",
                "[metadata]\nname = x\n[tool:pytest]\ntestpaths = tests\n"
            )])
            .as_deref(),
            Some("pytest")
        );
        assert_eq!(
            command(&[("go.mod", "module x\n")]).as_deref(),
            Some("go test ./...")
        );
        assert_eq!(
            detect(&files(&[(
                "Makefile",
                "all: build\n\ntest: build\n\t./run-tests\n"
            )])),
            Some(Detected {
                command: "make test".into(),
                source: "the Makefile's `test` target".into()
            })
        );
        assert_eq!(
            command(&[("Makefile", ".PHONY: check test\ncheck test:\n\t./t\n")]).as_deref(),
            Some("make test")
        );
    }

    #[test]
    fn look_alikes_name_nothing() {
        assert_eq!(command(&[]), None);
        // npm init's placeholder, no scripts, broken JSON.
        assert_eq!(
            command(&[(
                "package.json",
                r#"{"scripts":{"test":"echo \"Error: no test specified\" && exit 1"}}"#
            )]),
            None
        );
        assert_eq!(command(&[("package.json", r#"{"name":"x"}"#)]), None);
        assert_eq!(command(&[("package.json", "{not json")]), None);
        // A pyproject without pytest's table, a setup.cfg without its section.
        assert_eq!(command(&[("pyproject.toml", "[tool.black]\n")]), None);
        assert_eq!(command(&[("setup.cfg", "[flake8]\n")]), None);
        // Makefiles without a test target: a variable, a recipe line, a comment, `.PHONY`.
        assert_eq!(
            command(&[(
                "Makefile",
                "test := 1\n.PHONY: test\n# test: nothing\nbuild:\n\techo test: x\ntests: build\n"
            )]),
            None
        );
    }

    #[test]
    fn cargo_goes_before_a_makefile() {
        assert_eq!(
            command(&[("Makefile", "test:\n\tx\n"), ("Cargo.toml", "")]).as_deref(),
            Some("cargo test")
        );
    }

    #[test]
    fn words_say_whether_the_command_was_detected() {
        let mut s = RepoSettings::default();
        assert_eq!(test_words(&s), None);
        s.test = Some("bash test.sh".into());
        assert_eq!(test_words(&s).as_deref(), Some("`bash test.sh`"));
        s.test = Some("cargo test".into());
        s.test_detected_from = Some("Cargo.toml".into());
        assert_eq!(
            test_words(&s).as_deref(),
            Some("`cargo test`, detected from Cargo.toml (none is configured)")
        );
    }
}
