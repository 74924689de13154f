//! The spec call (issue 11, item 17): `write_spec` is forced by a named `tool_choice` (the
//! fake model checks it as the Chat Completions API does), an endpoint that refuses a named
//! `tool_choice` is asked again with `"required"`, and a model that writes the spec as JSON
//! in its message content is understood.

use serde_json::json;
use threadsmith_bot::spec;
use threadsmith_runner::{ModelClient, ModelConfig};
use threadsmith_tests::Turn;
use threadsmith_tests::fake_model::FakeModel;

fn client(model: &FakeModel) -> ModelClient {
    ModelClient::new(ModelConfig {
        base_url: model.base_url(),
        model: "fake-model".into(),
        max_retries: 0,
        ..ModelConfig::default()
    })
    .unwrap()
}

const THREAD: &str = "**alice**: calc.sh add returns a - b\n\n";

#[tokio::test]
async fn write_spec_is_forced_by_name() {
    let model = FakeModel::start().await;
    model.script(
        0,
        vec![Turn::Call(
            "write_spec",
            json!({"title": "Fix add", "problem": "add subtracts"}),
        )],
    );
    let spec = spec::from_thread(&client(&model), THREAD, None)
        .await
        .unwrap();
    assert_eq!(spec.title, "Fix add");
    let asked = model.received();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        asked[0].body["tool_choice"],
        json!({"type": "function", "function": {"name": "write_spec"}})
    );
}

#[tokio::test]
async fn a_spec_written_as_json_in_the_content_is_accepted() {
    let model = FakeModel::start().await;
    model.script(
        0,
        vec![
            Turn::Text(
                "Here is the spec:\n```json\n{\"title\": \"Fix add\", \"problem\": \"add subtracts\", \"hints\": [\"calc.sh\"]}\n```"
                    .into(),
            ),
            Turn::Text("I'd rather chat.".into()),
        ],
    );
    let spec = spec::from_thread(&client(&model), THREAD, None)
        .await
        .unwrap();
    assert_eq!(spec.title, "Fix add");
    assert_eq!(spec.problem, "add subtracts");
    assert_eq!(spec.hints, ["calc.sh"]);
    // Prose without a spec is still a failure (the caller falls back to the thread).
    assert!(
        spec::from_thread(&client(&model), THREAD, None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_endpoint_without_named_tool_choice_is_asked_with_required() {
    let model = FakeModel::start().await;
    model.refuse_named_tool_choice();
    let call = || {
        Turn::Call(
            "write_spec",
            json!({"title": "Fix add", "problem": "add subtracts"}),
        )
    };
    model.script(0, vec![call(), call()]);
    let spec = spec::from_thread(&client(&model), THREAD, None)
        .await
        .unwrap();
    assert_eq!(spec.title, "Fix add");
    let choices: Vec<_> = model
        .received()
        .iter()
        .map(|r| r.body["tool_choice"].clone())
        .collect();
    assert_eq!(
        choices,
        [
            json!({"type": "function", "function": {"name": "write_spec"}}),
            json!("required")
        ]
    );
    // The endpoint's answer is remembered: the next spec asks with "required" at once.
    spec::from_thread(&client(&model), THREAD, None)
        .await
        .unwrap();
    assert_eq!(model.received().len(), 3);
    assert_eq!(model.received()[2].body["tool_choice"], json!("required"));
}
