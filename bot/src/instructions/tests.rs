use super::*;

fn paths(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn source(path: &str, text: &str) -> Source {
    Source {
        path: path.into(),
        text: text.into(),
    }
}

const TREE: [&str; 9] = [
    "AGENTS.md",
    "README.md",
    "services/AGENTS.md",
    "services/api/AGENTS.md",
    "services/api/AGENTS.override.md",
    "services/api/src/handler.rs",
    "services/billing/AGENTS.md",
    "services/billing/lib.rs",
    "web/app.ts",
];

#[test]
fn one_file_per_folder_the_override_first() {
    let files = instruction_files(&paths(&TREE));
    assert_eq!(files.get(""), Some(&"AGENTS.md".to_string()));
    assert_eq!(
        files.get("services/api"),
        Some(&"services/api/AGENTS.override.md".to_string())
    );
    assert_eq!(files.len(), 4);
}

#[test]
fn files_named_in_the_spec_pick_their_folders() {
    let tree = paths(&TREE);
    let dirs = |text: &str| mentioned_dirs(text, &tree).into_iter().collect::<Vec<_>>();
    assert_eq!(
        dirs("panic at /workspace/services/api/src/handler.rs:42:7."),
        ["services/api/src"]
    );
    assert_eq!(dirs("see `api/src/handler.rs`"), ["services/api/src"]);
    assert_eq!(dirs("the `lib.rs` of billing"), ["services/billing"]);
    assert_eq!(
        dirs("look in ./services/billing/ first"),
        ["services/billing"]
    );
    assert_eq!(dirs("nothing here, e.g. version 1.2"), Vec::<String>::new());
}

#[test]
fn nearer_files_come_later_and_the_rest_are_listed() {
    let tree = paths(&TREE);
    let files = instruction_files(&tree);
    let (applied, others) = applicable(
        &files,
        &mentioned_dirs("crash in services/api/src/handler.rs", &tree),
    );
    assert_eq!(
        applied,
        [
            "AGENTS.md",
            "services/AGENTS.md",
            "services/api/AGENTS.override.md"
        ]
    );
    assert_eq!(others, ["services/billing/AGENTS.md"]);

    // Nothing named: the root's alone, every other one listed.
    let (applied, others) = applicable(&files, &BTreeSet::new());
    assert_eq!(applied, ["AGENTS.md"]);
    assert_eq!(others.len(), 3);

    let md = assemble(
        &[
            source("AGENTS.md", "Use tabs."),
            source("services/api/AGENTS.override.md", "Use spaces here."),
        ],
        &others,
        BUDGET_BYTES,
    )
    .markdown;
    let root = md.find("Use tabs.").unwrap();
    let nested = md.find("Use spaces here.").unwrap();
    assert!(root < nested, "{md}");
    assert!(md.contains("the later one — nearer to the files it is about — wins"));
    assert!(md.contains("`services/api/AGENTS.override.md` (for `services/api/`)"));
    assert!(md.contains("- `services/billing/AGENTS.md`\n"), "{md}");
}

#[test]
fn the_budget_cuts_with_a_note_and_the_repository_file_comes_last() {
    let big = "é".repeat(20); // 40 bytes: the cut must fall on a character boundary
    let out = assemble(
        &[
            source("AGENTS.md", "0123456789"),
            source("api/AGENTS.md", &big),
            source(REPO_FILE, "Run make fmt."),
        ],
        &[],
        25,
    );
    assert_eq!(
        out.files,
        vec![
            InstructionFile {
                path: "AGENTS.md".into(),
                bytes: 10,
                shown: 10
            },
            InstructionFile {
                path: "api/AGENTS.md".into(),
                bytes: 40,
                shown: 14
            },
            InstructionFile {
                path: REPO_FILE.into(),
                bytes: 13,
                shown: 0
            },
        ]
    );
    assert!(
        out.markdown.contains(
            "[… cut at the size budget of 25 bytes: 14 of its 40 bytes shown. Read /workspace/api/AGENTS.md for the rest …]"
        ),
        "{}",
        out.markdown
    );
    assert!(
        out.markdown
            .contains("`.threadsmith.toml` (its `instructions`)")
    );
    assert!(out.markdown.contains("0 of its 13 bytes shown"));

    // Within the budget: whole, and the repository file's instructions after the AGENTS.md.
    let out = assemble(
        &[
            source("AGENTS.md", "Root rules."),
            source(REPO_FILE, "Run make fmt."),
        ],
        &[],
        BUDGET_BYTES,
    );
    assert!(out.files.iter().all(|f| f.shown == f.bytes));
    assert!(out.markdown.find("Root rules.") < out.markdown.find("Run make fmt."));
    assert!(!out.markdown.contains("cut at"));
}

#[test]
fn nothing_to_say_adds_nothing() {
    assert_eq!(
        assemble(&[source("AGENTS.md", "  \n")], &[], BUDGET_BYTES),
        Assembled::default()
    );
    assert_eq!(for_spec(&[]), None);
}

#[test]
fn the_spec_step_gets_a_smaller_budget() {
    let long = "x".repeat(SPEC_BUDGET_BYTES + 100);
    let text = for_spec(&[
        source("AGENTS.md", &long),
        source(REPO_FILE, "Run make fmt."),
    ])
    .unwrap();
    assert!(text.contains(&format!(
        "[… cut: {SPEC_BUDGET_BYTES} of its {} bytes shown …]",
        long.len()
    )));
    assert!(text.len() < SPEC_BUDGET_BYTES + 200, "{}", text.len());
}

/// Against a real repository on disk: the mirror's base commit is read, the spec's file picks
/// the nested folder, and `.threadsmith.toml`'s instructions come last.
#[tokio::test]
async fn read_from_the_mirror_of_the_base_commit() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let write = |p: &str, text: &str| {
        let p = repo.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("AGENTS.md", "Root: run `make check`.");
    write("pkg/AGENTS.md", "Pkg: never edit generated.rs.");
    write("pkg/calc.sh", "add() { :; }");
    write("docs/AGENTS.md", "Docs: wrap at 80.");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    git(&["init", "--quiet", "--initial-branch=main"]);
    git(&["add", "-A"]);
    git(&["commit", "--quiet", "-m", "initial"]);

    let repos = threadsmith_runner::RepoCache::new(dir.path().join("cache"));
    let source = threadsmith_runner::RepoSource::parse(repo.to_str().unwrap()).unwrap();
    assert!(repos.cached(&source, None).await.is_none(), "never fetched");
    let prepared = repos.prepare(&source, None).await.unwrap();
    let cached = repos.cached(&source, None).await.unwrap();
    assert_eq!(cached.base_commit, prepared.base_commit);

    let out = load::for_agent(
        &repos,
        &prepared,
        "add is wrong in pkg/calc.sh",
        Some("Be brief."),
    )
    .await;
    let paths: Vec<&str> = out.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["AGENTS.md", "pkg/AGENTS.md", REPO_FILE]);
    let md = &out.markdown;
    assert!(
        md.find("Root: run") < md.find("Pkg: never")
            && md.find("Pkg: never") < md.find("Be brief.")
    );
    assert!(md.contains("- `docs/AGENTS.md`"), "{md}");
    assert!(!md.contains("Docs: wrap"), "{md}");
}
