//! Child processes on the host (git, tar, …) with an allow-listed environment.
//!
//! The bot's environment holds its secrets (the model key, chat and GitHub tokens, a database
//! URL with its password); a child inherits none of it. It gets what a git or a packer needs
//! to work on this machine — the search path, home, locale, time zone, temporary directory,
//! certificate locations, proxies, the SSH agent and the git settings an operator may set for
//! the host's git — and whatever its caller adds explicitly with `.env(…)` (a push's credential
//! header, a commit's author).

use std::ffi::{OsStr, OsString};

use tokio::process::Command;

/// Variables a child keeps, by exact name.
const KEEP: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "SSH_AUTH_SOCK",
    // The host's git as the operator set it up (never GIT_DIR or GIT_WORK_TREE, which would
    // point a command elsewhere, nor GIT_CONFIG_COUNT/KEY/VALUE, which callers set themselves).
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSH_VARIANT",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
    "GIT_PROXY_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_TRACE",
    "GIT_CURL_VERBOSE",
];

/// Whether a child keeps the variable `name` (`LC_*` and [`KEEP`]).
pub fn kept(name: &OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with("LC_") || KEEP.contains(&n))
}

/// The allow-listed part of `vars`.
pub fn allowed_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    vars.into_iter().filter(|(k, _)| kept(k)).collect()
}

/// `program` with an environment of only the allow-listed variables of this process's.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().envs(allowed_env(std::env::vars_os()));
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_left_out_and_the_basics_kept() {
        let vars = [
            ("PATH", "/usr/bin"),
            ("HOME", "/home/bot"),
            ("LC_ALL", "C.UTF-8"),
            ("SSL_CERT_FILE", "/etc/ssl/cert.pem"),
            ("GIT_SSH_COMMAND", "ssh -i key"),
            ("THREADSMITH_MODEL_API_KEY", "sk-secret"),
            ("THREADSMITH_SLACK_BOT_TOKEN", "xoxb-secret"),
            ("THREADSMITH_DATABASE_URL", "postgres://u:pw@db/x"),
            ("OPENAI_API_KEY", "sk-other"),
            ("GIT_DIR", "/elsewhere"),
            ("GIT_CONFIG_COUNT", "1"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let kept: Vec<String> = allowed_env(vars)
            .into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            kept,
            ["PATH", "HOME", "LC_ALL", "SSL_CERT_FILE", "GIT_SSH_COMMAND"]
        );
    }
}
