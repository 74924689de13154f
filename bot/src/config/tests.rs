//! The config's parsing and checks.

use super::*;

#[test]
fn sizes_parse() {
    assert_eq!(parse_size("512m"), Some(512 << 20));
    assert_eq!(parse_size("4G"), Some(4 << 30));
    assert_eq!(parse_size("2GiB"), Some(2 << 30));
    assert_eq!(parse_size("100"), Some(100));
    assert_eq!(parse_size("lots"), None);
    assert_eq!(parse_size("-1g"), None);
}

#[test]
fn a_full_config_parses_and_layers() {
    let c: Config = toml::from_str(
        r#"
        database_url = "sqlite:///tmp/x.db"
        attempts = 4
        [model]
        base_url = "http://127.0.0.1:8080/v1"
        model = "local"
        api_key = "sk-123"
        [sandbox]
        memory = "1g"
        test = "make test"
        [[repos]]
        name = "acme/api"
        url = "https://example.com/acme/api.git"
        test = "cargo test"
        pids = 256
        "#,
    )
    .unwrap();
    assert!(!format!("{c:?}").contains("sk-123"));
    let repo = c.repo("ACME/api").unwrap();
    let file = parse_repo_file("test = \"npm test\"\nsetup = \"npm ci\"\ncpus = 2.0").unwrap();
    let s = repo
        .settings
        .or(&file)
        .or(&c.sandbox)
        .resolve("img")
        .unwrap();
    assert_eq!(s.test.as_deref(), Some("cargo test"));
    assert_eq!(s.setup.as_deref(), Some("npm ci"));
    assert_eq!(s.limits.cpus, 2.0);
    assert_eq!(s.limits.pids, 256);
    assert_eq!(s.limits.memory_bytes, 1 << 30);
    assert_eq!(s.image, "img");
    assert_eq!(
        c.model_config().unwrap().api_key.unwrap().expose(),
        "sk-123"
    );
}

#[test]
fn the_example_config_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/threadsmith.example.toml");
    let c = Config::load(&path).unwrap();
    assert_eq!(
        c.repo("acme/api").unwrap().push_url.as_deref(),
        Some("https://github.com/acme/api.git")
    );
    assert_eq!(c.publish.branch_prefix.as_deref(), Some("threadsmith/"));
}

#[test]
fn bad_settings_are_explained() {
    let e = parse_repo_file("memroy = \"1g\"").unwrap_err().to_string();
    assert!(e.contains("memroy"), "{e}");
    let s = SandboxSection {
        agent: Some("external".into()),
        ..Default::default()
    };
    assert!(
        s.resolve("i")
            .unwrap_err()
            .to_string()
            .contains("external_command")
    );
}

#[test]
fn test_paths_come_from_the_repository_file_or_the_operator_and_empty_means_the_conventions() {
    let repo = parse_repo_file("test_paths = [\"checks/**/*.sh\"]").unwrap();
    let operator = SandboxSection {
        test_paths: Some(vec!["t/*".into()]),
        ..Default::default()
    };
    let settings = repo.or(&operator).resolve("i").unwrap();
    assert_eq!(
        settings.test_paths,
        Some(vec!["checks/**/*.sh".to_string()])
    );
    let settings = SandboxSection::default()
        .or(&operator)
        .resolve("i")
        .unwrap();
    assert_eq!(settings.test_paths, Some(vec!["t/*".to_string()]));
    let empty = parse_repo_file("test_paths = [\"  \"]").unwrap();
    assert_eq!(empty.resolve("i").unwrap().test_paths, None);
}
