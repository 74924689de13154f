//! The fake Discord on its own: REST API v10 and the gateway, until Ctrl-C.
//! `cargo run -p threadsmith-tests --bin fake-discord -- --port 3002`

use clap::Parser;
use threadsmith_tests::discord_fake::{APP_ID, BOT_ID, FakeDiscord, GUILD_ID, TOKEN};
use threadsmith_tests::standalone::{bind, pair, until_stopped};

#[derive(Parser)]
#[command(about = "A stateful fake of Discord's REST API v10 and gateway")]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The port of REST (`/api/v10`) and the gateway (`/gateway`); 0: any free port.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// A text channel to seed, as ID=NAME; repeatable (default: one, `general`).
    #[arg(long = "channel", value_parser = pair)]
    channels: Vec<(String, String)>,
    /// A guild member to seed, as ID=NAME; repeatable (default: one, `alice`).
    #[arg(long = "user", value_parser = pair)]
    users: Vec<(String, String)>,
    /// A member's message to seed in a channel, as CHANNEL=TEXT (by the first user); repeatable.
    #[arg(long = "user-message", value_parser = pair)]
    user_messages: Vec<(String, String)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.channels.is_empty() {
        args.channels
            .push(("1300000000000000001".into(), "general".into()));
    }
    if args.users.is_empty() {
        args.users
            .push(("1400000000000000001".into(), "alice".into()));
    }
    let fake = FakeDiscord::start_on(bind(&args.host, args.port).await?);
    println!("DISCORD_API_URL={}/api/v10", fake.api_base());
    println!(
        "DISCORD_GATEWAY_URL=ws://{}/gateway",
        fake.api_base().trim_start_matches("http://")
    );
    println!("DISCORD_TOKEN={TOKEN}");
    println!("DISCORD_APP_ID={APP_ID}");
    println!("DISCORD_BOT_ID={BOT_ID}");
    println!("DISCORD_GUILD_ID={GUILD_ID}");
    for (id, name) in &args.channels {
        fake.add_channel(id, name);
        println!("DISCORD_CHANNEL={id}={name}");
    }
    for (id, name) in &args.users {
        fake.add_user(id, name, &[]);
        println!("DISCORD_USER={id}={name}");
    }
    for (channel, text) in &args.user_messages {
        let id = fake.post_as_user(channel, &args.users[0].0, text);
        println!("DISCORD_MESSAGE={channel}={id}");
    }
    println!("READY");
    until_stopped("fake-discord").await
}
