//! Headless Chromium (Debian's `chromium` package; `.ci/run` installs it) driven from its command
//! line: the DOM after scripts ran, and screenshots.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The browser binary; a test that needs it fails (never skips) when it is missing.
pub fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("no Chromium on this machine: install Debian's `chromium` package (.ci/run does)");
}

async fn run(args: &[String]) -> String {
    let profile = tempfile::tempdir().expect("a browser profile directory");
    let mut cmd = tokio::process::Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--disable-extensions",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("Chromium answered within 2 minutes")
        .expect("Chromium runs");
    assert!(
        out.status.success(),
        "Chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The page's DOM after it loaded and its scripts (if any were allowed) ran.
pub async fn dump_dom(url: &str) -> String {
    run(&["--dump-dom".to_string(), url.to_string()]).await
}

/// A PNG of the page at `width`×`height` CSS pixels.
pub async fn screenshot(url: &str, path: &Path, width: u32, height: u32) {
    run(&[
        format!("--screenshot={}", path.display()),
        format!("--window-size={width},{height}"),
        url.to_string(),
    ])
    .await;
}

/// The `<title>` of a dumped DOM.
pub fn title(dom: &str) -> String {
    dom.split_once("<title>")
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map(|(t, _)| t.to_string())
        .unwrap_or_default()
}

/// A dumped DOM's text: tags dropped, the common entities decoded.
pub fn text(dom: &str) -> String {
    let mut out = String::with_capacity(dom.len());
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}
