//! The fake Slack on its own: the Web API and the Socket Mode endpoint, until Ctrl-C.
//! `cargo run -p threadsmith-tests --bin fake-slack -- --port 3001`

use clap::Parser;
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig};
use threadsmith_tests::standalone::{bind, pair, until_stopped};

#[derive(Parser)]
#[command(about = "A stateful fake of Slack's Web API and Socket Mode")]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The Web API's port (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The Socket Mode WebSocket's port (0: any free port).
    #[arg(long, default_value_t = 0)]
    ws_port: u16,
    /// A channel the bot is in (it can post only where it is); repeatable. A seeded
    /// message's channel counts too.
    #[arg(long = "channel")]
    channels: Vec<String>,
    /// A human's message to seed, as CHANNEL=TEXT (posted by the first user); repeatable.
    #[arg(long = "user-message", value_parser = pair)]
    user_messages: Vec<(String, String)>,
    /// Turn off the per-method rate-limit tiers (chat.postMessage's per-channel limit stays).
    #[arg(long)]
    no_tier_limits: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = FakeSlackConfig {
        tier_limits: !args.no_tier_limits,
        ..FakeSlackConfig::default()
    };
    let api = bind(&args.host, args.port).await?;
    let ws = bind(&args.host, args.ws_port).await?;
    let slack = FakeSlack::start_on(api, ws, cfg);
    let cfg = slack.config().clone();
    println!("SLACK_API_URL={}/", slack.api_base());
    println!("SLACK_BOT_TOKEN={}", cfg.bot_token);
    println!("SLACK_APP_TOKEN={}", cfg.app_token);
    println!("SLACK_TEAM_ID={}", cfg.team_id);
    println!("SLACK_BOT_USER_ID={}", cfg.bot_user_id);
    for (id, name) in &cfg.users {
        println!("SLACK_USER={id}={name}");
    }
    for channel in &args.channels {
        slack.join(channel);
        println!("SLACK_CHANNEL={channel}");
    }
    let author = cfg.users.first().map(|u| u.0.clone()).unwrap_or_default();
    for (channel, text) in &args.user_messages {
        let ts = slack.post_as_user(channel, &author, text, None);
        println!("SLACK_MESSAGE={channel}={ts}");
    }
    println!("READY");
    until_stopped("fake-slack").await
}
