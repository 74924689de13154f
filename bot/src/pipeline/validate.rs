//! Checks of a task request that need no repository, no Docker and no database: the CLI makes
//! them before it creates the task, so that a typo leaves no failed task behind.

use threadsmith_runner::RepoSource;

use super::{MAX_ATTEMPTS, Refusal, TaskRequest};
use crate::config::Config;

/// `Err` with the message for the user when the request cannot run.
pub fn validate(config: &Config, req: &TaskRequest) -> Result<(), String> {
    if req.text.trim().is_empty() && req.spec.is_none() {
        return Err(Refusal::EmptyText.to_string());
    }
    if req.attempts == 0 || req.attempts > MAX_ATTEMPTS {
        return Err(Refusal::Attempts(req.attempts).to_string());
    }
    let configured = config.repo(&req.repo);
    RepoSource::parse(configured.map_or(req.repo.as_str(), |r| r.url.as_str()))
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str, attempts: u32, repo: &str) -> TaskRequest {
        TaskRequest {
            text: text.into(),
            repo: repo.into(),
            base: None,
            attempts,
            origin: "cli".into(),
            requester: None,
            spec: None,
            task_id: None,
            round: None,
        }
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason() {
        let config = Config::default();
        let here = env!("CARGO_MANIFEST_DIR");
        assert_eq!(validate(&config, &request("fix it", 2, here)), Ok(()));
        let err = |r| validate(&config, &r).unwrap_err();
        assert!(err(request("  ", 2, here)).contains("The task text is empty"));
        assert!(err(request("fix it", 0, here)).contains("Asked for 0 attempts"));
        assert!(err(request("fix it", 17, here)).contains("Asked for 17 attempts"));
        assert!(err(request("fix it", 2, "/no/such/repository")).contains("/no/such/repository"));
    }
}
