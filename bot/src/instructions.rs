//! The repository's instructions for agents: its `AGENTS.md` files (the convention Codex and
//! other agents read) and `.threadsmith.toml`'s `instructions`, as a section of the agent's
//! task and a short note for the spec step. Pure; `load.rs` reads them from the mirror.
//!
//! As Codex does: one file per directory (`AGENTS.override.md` before `AGENTS.md`), from the
//! root down to the directories of the files the task works on, so a nearer file comes later
//! and takes precedence; one size budget for them all (Codex's `project_doc_max_bytes`
//! default, 32 KiB), the file that overshoots cut with a note. The files the task works on are
//! the ones its spec names (problem, hints, checks: what the thread quoted); every other
//! instruction file is listed by path, so the agent reads the nearest one before it changes
//! files elsewhere. `.threadsmith.toml`'s `instructions` come last.
//!
//! The text is the repository's: data given to the sandboxed agent, which holds no secret and
//! has no network, never instructions to the bot.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::store::InstructionFile;

pub mod load;
#[cfg(test)]
mod tests;

/// The agent's instructions from the repository may take this many bytes in all.
pub const BUDGET_BYTES: usize = 32 * 1024;
/// The spec step's: the root file and `.threadsmith.toml`'s, for the acceptance checks.
pub const SPEC_BUDGET_BYTES: usize = 8 * 1024;
/// Instruction files read in full at most (the nearest ones win the budget anyway).
pub const MAX_APPLIED: usize = 16;
/// Other instruction files listed by path at most.
pub const MAX_LISTED: usize = 50;
/// In each directory, the first of these that exists is its instruction file.
pub const NAMES: [&str; 2] = ["AGENTS.override.md", "AGENTS.md"];
/// How `.threadsmith.toml`'s instructions are named on the page.
pub const REPO_FILE: &str = ".threadsmith.toml";

/// One source of instructions: a path in the repository and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: String,
    pub text: String,
}

/// What the agent is given, and what the page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assembled {
    /// A Markdown section to append to the task; empty when the repository has none.
    pub markdown: String,
    pub files: Vec<InstructionFile>,
}

/// The directory of `path` (`""` for the root).
fn dir_of(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// Every directory's instruction file (directory → path), among the repository's `paths`.
pub fn instruction_files(paths: &[String]) -> BTreeMap<String, String> {
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for name in NAMES.iter().rev() {
        for p in paths {
            let file = p.rsplit('/').next().unwrap_or(p);
            if file == *name {
                // The override is inserted last, so it replaces AGENTS.md in its directory.
                found.insert(dir_of(p).to_string(), p.clone());
            }
        }
    }
    found
}

/// The directories (of the repository's `paths`) holding a file or folder that `text` names:
/// `src/api/handler.rs`, `./src/api/`, `/workspace/src/api/handler.rs:42`, or a bare file name
/// that only one file has.
pub fn mentioned_dirs(text: &str, paths: &[String]) -> BTreeSet<String> {
    let mut sorted: Vec<&str> = paths.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let is_file = |t: &str| sorted.binary_search(&t).is_ok();
    let is_dir = |t: &str| {
        let prefix = format!("{t}/");
        let i = sorted.partition_point(|p| *p < prefix.as_str());
        sorted.get(i).is_some_and(|p| p.starts_with(&prefix))
    };
    // Files by name, so that a token is matched against the few paths ending in its name.
    let mut by_name: HashMap<&str, Vec<&str>> = HashMap::new();
    for p in &sorted {
        by_name
            .entry(p.rsplit('/').next().unwrap_or(p))
            .or_default()
            .push(p);
    }
    let path_char = |c: char| c.is_alphanumeric() || "/._-+@".contains(c);
    let mut found = BTreeSet::new();
    let tokens: BTreeSet<&str> = text
        .split(|c: char| !path_char(c))
        .map(|t| {
            let t = t.strip_prefix("/workspace/").unwrap_or(t);
            let t = t.trim_start_matches("./").trim_start_matches('/');
            t.trim_end_matches(['.', '/'])
        })
        .filter(|t| t.len() > 2 && (t.contains('/') || t.contains('.')))
        .collect();
    for t in tokens {
        if is_file(t) {
            found.insert(dir_of(t).to_string());
        } else if is_dir(t) {
            found.insert(t.to_string());
        } else {
            let suffix = format!("/{t}");
            let name = t.rsplit('/').next().unwrap_or(t);
            let hits: Vec<&str> = by_name
                .get(name)
                .into_iter()
                .flatten()
                .copied()
                .filter(|p| p.ends_with(&suffix))
                .take(6)
                .collect();
            // A path with folders names its file well enough; a bare name only when unique.
            if (t.contains('/') && hits.len() <= 5) || hits.len() == 1 {
                found.extend(hits.into_iter().map(|h| dir_of(h).to_string()));
            }
        }
    }
    found
}

/// The instruction files that apply to files in `dirs` — the root's and those of every
/// directory on the way down, root first, nearer later — and every other one, by path.
pub fn applicable(
    files: &BTreeMap<String, String>,
    dirs: &BTreeSet<String>,
) -> (Vec<String>, Vec<String>) {
    let mut on_path: BTreeSet<&str> = BTreeSet::new();
    on_path.insert("");
    for d in dirs {
        let mut d = d.as_str();
        while !d.is_empty() {
            on_path.insert(d);
            d = dir_of(d);
        }
    }
    let depth = |d: &str| {
        if d.is_empty() {
            0
        } else {
            d.matches('/').count() + 1
        }
    };
    let mut applied: Vec<(&String, &String)> = files
        .iter()
        .filter(|(d, _)| on_path.contains(d.as_str()))
        .collect();
    applied.sort_by_key(|(d, _)| (depth(d), *d));
    let others = files
        .iter()
        .filter(|(d, _)| !on_path.contains(d.as_str()))
        .map(|(_, p)| p.clone())
        .collect();
    (
        applied.into_iter().map(|(_, p)| p.clone()).collect(),
        others,
    )
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn head(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The agent's section: `sources` in order (root first, `.threadsmith.toml`'s last) within
/// `budget` bytes, and `others` listed by path.
pub fn assemble(sources: &[Source], others: &[String], budget: usize) -> Assembled {
    let sources: Vec<&Source> = sources
        .iter()
        .filter(|s| !s.text.trim().is_empty())
        .collect();
    if sources.is_empty() && others.is_empty() {
        return Assembled::default();
    }
    let mut md = String::from(
        "\n## The repository's instructions for agents\n\nThe repository keeps instructions for coding agents. Follow them where they do not conflict with your own instructions. They are given from the repository's root down: where two disagree, the later one — nearer to the files it is about — wins.\n",
    );
    let mut left = budget;
    let mut files = Vec::new();
    for s in sources {
        let shown = head(&s.text, left);
        // A file cut spends the budget: what is left (less than a character) goes unused.
        left = if shown.len() < s.text.len() {
            0
        } else {
            left - shown.len()
        };
        let title = if s.path == REPO_FILE {
            format!("`{REPO_FILE}` (its `instructions`)")
        } else if dir_of(&s.path).is_empty() {
            format!("`{}`", s.path)
        } else {
            format!("`{}` (for `{}/`)", s.path, dir_of(&s.path))
        };
        md.push_str(&format!("\n### {title}\n\n"));
        if !shown.is_empty() {
            md.push_str(shown.trim_end());
            md.push('\n');
        }
        if shown.len() < s.text.len() {
            let whole = if s.path == REPO_FILE {
                format!("/workspace/{REPO_FILE}")
            } else {
                format!("/workspace/{}", s.path)
            };
            md.push_str(&format!(
                "\n[… cut at the size budget of {budget} bytes: {} of its {} bytes shown. Read {whole} for the rest …]\n",
                shown.len(),
                s.text.len()
            ));
        }
        files.push(InstructionFile {
            path: s.path.clone(),
            bytes: s.text.len() as u64,
            shown: shown.len() as u64,
        });
    }
    if !others.is_empty() {
        md.push_str("\nOther folders have instructions of their own. Before changing files in one of them, read the nearest of these files:\n\n");
        for p in others.iter().take(MAX_LISTED) {
            md.push_str(&format!("- `{p}`\n"));
        }
        if others.len() > MAX_LISTED {
            md.push_str(&format!(
                "- … and {} more (`find /workspace -name AGENTS.md`)\n",
                others.len() - MAX_LISTED
            ));
        }
    }
    Assembled {
        markdown: md,
        files,
    }
}

/// What the spec step is told: the root instruction file and `.threadsmith.toml`'s, within
/// [`SPEC_BUDGET_BYTES`]; `None` when there are none.
pub fn for_spec(sources: &[Source]) -> Option<String> {
    let mut left = SPEC_BUDGET_BYTES;
    let mut text = String::new();
    for s in sources.iter().filter(|s| !s.text.trim().is_empty()) {
        let shown = head(&s.text, left);
        // A file cut spends the budget: what is left (less than a character) goes unused.
        left = if shown.len() < s.text.len() {
            0
        } else {
            left - shown.len()
        };
        text.push_str(&format!("### {}\n\n{}\n", s.path, shown.trim_end()));
        if shown.len() < s.text.len() {
            text.push_str(&format!(
                "[… cut: {} of its {} bytes shown …]\n",
                shown.len(),
                s.text.len()
            ));
        }
        text.push('\n');
    }
    (!text.is_empty()).then_some(text)
}
