//! What the two-process suites share (`publish_concurrent.rs` over Slack, `publish_discord.rs`
//! over Discord): the config file of their `threadsmith serve` processes and the model's
//! script for the task they approve.

use threadsmith_tests::{FakeModel, Turn};

use super::{FIXED_CALC, FakeGitHub, PAT, Path, Remote};

/// Makes `dir` the working directory of `threadsmith serve` processes that publish `acme/calc`
/// (at `remote`, through its recording git) on the fake GitHub with a personal token, with
/// `chat` the chat platform's own section (empty when it comes from the environment, as
/// Slack's does); and scripts the model: a task of two rollouts, one fixing calc.sh, one
/// giving up.
pub fn two_process_setup(
    dir: &Path,
    remote: &Remote,
    gh: &FakeGitHub,
    model: &FakeModel,
    chat: &str,
) {
    gh.add_repo("acme/calc", &remote.bare);
    std::fs::write(
        dir.join("threadsmith.toml"),
        format!(
            "attempts = 2\ndefault_repo = \"acme/calc\"\n\
             [[repos]]\nname = \"acme/calc\"\nurl = \"{}\"\n\
             {chat}\
             [github]\ntoken = \"{PAT}\"\napi_url = \"{}\"\n\
             [publish]\ngit = \"{}\"\nauthor_name = \"ci\"\nauthor_email = \"ci@example.com\"\n\
             [sandbox]\nmemory = \"256m\"\nworkspace_size = \"64m\"\ntmp_size = \"64m\"\n\
             [workers]\npoll_ms = 100\nconcurrent_events = 8\n",
            remote.bare.display(),
            gh.api_url(),
            remote.git_wrapper.display()
        ),
    )
    .unwrap();
    model.script(
        0,
        vec![Turn::Call(
            "write_spec",
            serde_json::json!({"title": "add() subtracts instead of adding", "problem": "add 2 3 prints -1"}),
        )],
    );
    model.script(
        1,
        vec![
            Turn::Call(
                "write_file",
                serde_json::json!({"path": "calc.sh", "content": FIXED_CALC}),
            ),
            Turn::Call(
                "finish",
                serde_json::json!({"summary": "Fixed add.", "confidence": 0.9}),
            ),
        ],
    );
    model.script(
        2,
        vec![Turn::Call(
            "give_up",
            serde_json::json!({"reason": "no idea"}),
        )],
    );
}
