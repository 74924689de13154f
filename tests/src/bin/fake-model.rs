//! The scripted OpenAI-compatible Chat Completions server on its own, until Ctrl-C.
//! `cargo run -p threadsmith-tests --bin fake-model -- --script answers.json`
//!
//! A script is JSON: a list of turns (for requests with no `seed`, or seed 0), or an object
//! from seed to list. A turn is `{"call": NAME, "arguments": {…}}`, `{"text": "…"}`,
//! `{"status": 429}` or `{"garbage": "…"}`. After its script, a seed's answer is a `give_up` call.

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::Value;
use threadsmith_tests::fake_model::{FakeModel, Turn};
use threadsmith_tests::standalone::{bind, until_stopped};

#[derive(Parser)]
#[command(about = "A scripted OpenAI-compatible Chat Completions server")]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// 0: any free port.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The scripted answers (JSON, see above).
    #[arg(long)]
    script: Option<std::path::PathBuf>,
    /// The API key the fake requires (`Authorization: Bearer …`), as OpenAI does.
    #[arg(long, default_value = "sk-threadsmith-fake-model")]
    api_key: String,
}

fn turn(v: &Value) -> anyhow::Result<Turn> {
    if let Some(name) = v["call"].as_str() {
        // The fake's turns name their tools with `&'static str`; a script lives as long as the
        // process anyway.
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        return Ok(Turn::Call(name, v["arguments"].clone()));
    }
    if let Some(text) = v["text"].as_str() {
        return Ok(Turn::Text(text.to_string()));
    }
    if let Some(status) = v["status"].as_u64() {
        return Ok(Turn::Status(u16::try_from(status).context("status")?));
    }
    if let Some(text) = v["garbage"].as_str() {
        return Ok(Turn::Garbage(text.to_string()));
    }
    bail!("a turn is {{\"call\"…}}, {{\"text\"…}}, {{\"status\"…}} or {{\"garbage\"…}}: {v}")
}

fn turns(v: &Value) -> anyhow::Result<Vec<Turn>> {
    v.as_array()
        .context("a seed's script is a list of turns")?
        .iter()
        .map(turn)
        .collect()
}

fn load(model: &FakeModel, path: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {path:?}"))?;
    let script: Value = serde_json::from_str(&text).with_context(|| format!("parse {path:?}"))?;
    match &script {
        Value::Array(_) => model.script(0, turns(&script)?),
        Value::Object(seeds) => {
            for (seed, list) in seeds {
                let seed = seed.parse().with_context(|| format!("seed {seed:?}"))?;
                model.script(seed, turns(list)?);
            }
        }
        _ => bail!("a script is a list of turns or an object from seed to list"),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let model = FakeModel::start_on(bind(&args.host, args.port).await?);
    model.require_key(&args.api_key);
    if let Some(path) = &args.script {
        load(&model, path)?;
    }
    println!("OPENAI_BASE_URL={}", model.base_url());
    println!("OPENAI_API_KEY={}", args.api_key);
    println!("MODEL=fake-model");
    println!("READY");
    until_stopped("fake-model").await
}
