//! Diff pages: the real router over a real task (real Docker, git, SQLite), read by headless
//! Chromium. Everything the agent, the model and the thread wrote is hostile here.

use serde_json::json;
use threadsmith_tests::browser::{self, dump_dom, screenshot};
use threadsmith_tests::gitrepo::{FIXED_CALC, calc_repo};
use threadsmith_tests::{Turn, env};

const HOSTILE_SUMMARY: &str = "Fixed **add**. <script>document.title='PWN'+'ED-summary'</script> \
<img src=x onerror=\"document.title='PWN'+'ED-img'\"> [click me](javascript:document.title='PWN'+'ED-link')";

#[tokio::test(flavor = "multi_thread")]
async fn pages_show_the_diff_and_transcript_and_run_no_script() {
    let env = env(|_| {}).await;
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let hostile_file = format!("{FIXED_CALC}# <script>document.title='PWN'+'ED-diff'</script>\n");
    env.model.script(
        1,
        vec![
            Turn::Call(
                "run_command",
                json!({"command": "echo \"<script>document.title='PWN'+'ED-output'</script>\"; bash test.sh"}),
            ),
            Turn::Call("write_file", json!({"path": "calc.sh", "content": hostile_file})),
            Turn::Call("finish", json!({"summary": HOSTILE_SUMMARY, "confidence": 0.8})),
        ],
    );
    let report = env
        .run(
            &repo,
            1,
            "<script>document.title='PWN'+'ED-title'</script> add() subtracts",
        )
        .await;
    let task_id = report.task.id.clone();
    let token = env.svc.store.web_token(&task_id).await.unwrap();
    assert_eq!(token.len(), 32);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = threadsmith_bot::web::router(env.svc.store.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let task_url = format!("{base}/t/{token}");
    let rollout_url = format!("{task_url}/rollouts/1");

    // Over HTTP: the pages, their headers, the patch, and 404s for anything else.
    let http = reqwest::Client::new();
    let page = http.get(&rollout_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"viewport\""), "usable on a phone");
    let patch = http
        .get(format!("{rollout_url}/patch"))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    let stored = env.svc.store.diff(&task_id, 1).await.unwrap().unwrap();
    assert_eq!(patch.text().await.unwrap(), stored.patch);
    let wrong = uuid::Uuid::new_v4().simple().to_string();
    for url in [
        format!("{base}/t/{wrong}"),
        format!("{base}/t/{wrong}/rollouts/1"),
        format!("{base}/t/{wrong}/rollouts/1/patch"),
        format!("{base}/t/not-a-token"),
        format!("{task_url}/rollouts/9"),
        format!("{base}/tasks/{task_id}/rollouts/1"),
    ] {
        assert_eq!(http.get(&url).send().await.unwrap().status(), 404, "{url}");
    }

    // The browser runs script where a page allows it…
    let control =
        dump_dom("data:text/html,<title>before</title><script>document.title='RAN'</script>").await;
    assert_eq!(browser::title(&control), "RAN", "the browser runs scripts");
    // …and none of the hostile text ran on ours.
    let dom = dump_dom(&rollout_url).await;
    let title = browser::title(&dom);
    assert!(title.starts_with("Rollout 1 · "), "{title}");
    // Each hostile script would set the title to PWNED-<where>; that word is in no text.
    assert!(!dom.contains("PWNED"), "a script ran: {title}");
    assert!(!dom.contains("<img"), "no image element from the summary");
    assert!(!dom.contains("href=\"javascript:"), "no script link");
    // The evidence: the file, the diff lines, every command with its exit code and output.
    let text = browser::text(&dom);
    assert!(text.contains("calc.sh"), "the file list");
    assert!(
        text.contains("+add() { echo $(( $1 + $2 )); }"),
        "the added line: {text}"
    );
    assert!(
        text.contains("-add() { echo $(( $1 - $2 )); }"),
        "the removed line"
    );
    assert!(text.contains("Transcript (3 commands)"), "{text}");
    assert!(
        text.contains("bash test.sh · exit 1"),
        "the command and its exit code: {text}"
    );
    assert!(text.contains("not ok - add: got -1, want 5"), "its output");
    assert!(text.contains("Download .patch"));
    assert!(
        dom.contains("&lt;script&gt;document.title='PWN'+'ED-output'&lt;/script&gt;"),
        "hostile output is shown as text"
    );

    let task_dom = dump_dom(&task_url).await;
    assert!(!task_dom.contains("PWNED"), "a script ran on the task page");
    assert!(
        task_dom.contains(&format!("/t/{token}/rollouts/1")),
        "links to the rollout"
    );
    assert!(
        task_dom.contains("Fixed <strong>add</strong>"),
        "the summary's Markdown rendered"
    );
    let missing = dump_dom(&format!("{base}/t/{wrong}")).await;
    assert!(missing.contains("Not found"));

    // A phone-sized screenshot of the rollout page, kept as a test artifact.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("rollout-page.png");
    let _ = std::fs::remove_file(&png);
    screenshot(&rollout_url, &png, 412, 1400).await;
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
        "a real screenshot"
    );
    eprintln!("screenshot: {}", png.display());
    env.assert_nothing_left(&task_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_pages_show_real_names_renames_and_mode_changes() {
    let env = env(|_| {}).await;
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = threadsmith_tests::gitrepo::repo_with(
        &repo_dir.path().join("docs-repo"),
        &[
            ("docs/naïve notes/a.md", "one\ntwo\nthree\nfour\nfive\n"),
            ("docs/naïve notes/edit me.md", "x\n"),
            ("run.sh", "echo hi\n"),
            ("blob.bin", "\u{0}\u{1}\u{2}"),
        ],
    );
    env.model.script(
        1,
        vec![
            Turn::Call(
                "run_command",
                json!({"command": "cd 'docs/naïve notes' && mv a.md b.md && sed -i 's/five/FIVE/' b.md && printf 'y\\n' > 'edit me.md' && cd ../.. && chmod +x run.sh && printf '\\000\\003' > blob.bin"}),
            ),
            Turn::Call("finish", json!({"summary": "Renamed the notes.", "confidence": 0.5})),
        ],
    );
    let report = env.run(&repo, 1, "rename the notes").await;
    let task_id = report.task.id.clone();
    let stored = env.svc.store.diff(&task_id, 1).await.unwrap().unwrap();
    // The stored patch is one git applies (Approve applies it) and it says "rename".
    assert!(stored.patch.contains("rename from"), "{}", stored.patch);
    let check = tempfile::tempdir().unwrap();
    let clone = check.path().join("clone");
    threadsmith_tests::gitrepo::git(
        check.path(),
        &[
            "clone",
            "--quiet",
            repo.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    std::fs::write(check.path().join("p.patch"), &stored.patch).unwrap();
    threadsmith_tests::gitrepo::git(
        &clone,
        &[
            "apply",
            "--check",
            check.path().join("p.patch").to_str().unwrap(),
        ],
    );

    let token = env.svc.store.web_token(&task_id).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = threadsmith_bot::web::router(env.svc.store.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dom = dump_dom(&format!("{base}/t/{token}/rollouts/1")).await;
    let text = browser::text(&dom);
    assert!(text.contains("docs/naïve notes/b.md"), "{text}");
    assert!(text.contains("docs/naïve notes/edit me.md"), "{text}");
    assert!(!text.contains("\\303"), "no quoted names: {text}");
    assert!(
        text.contains("renamed docs/naïve notes/a.md → docs/naïve notes/b.md"),
        "{text}"
    );
    assert!(text.contains("mode 100644 → 100755"), "{text}");
    assert!(text.contains("binary"), "{text}");
    assert!(text.contains("Files (4)"), "a rename is one file: {text}");
    env.assert_nothing_left(&task_id).await;
}
