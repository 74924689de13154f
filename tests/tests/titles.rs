//! Titles (issue 11, item 16): the Discord port reports a thread's own name, which titles a
//! task whose spec falls back to the thread's text.

use threadsmith_bot::chat::{ChatPort, ThreadRef};
use threadsmith_tests::discord_fake::{self as fake_discord, FakeDiscord};

const CHANNEL: &str = "1100000000000000001";
const ALICE: &str = "1200000000000000001";

#[tokio::test]
async fn the_discord_port_reads_a_threads_name() {
    let fake = FakeDiscord::start().await;
    fake.add_channel(CHANNEL, "bugs");
    fake.add_user(ALICE, "alice", &[]);
    let starter = fake.post_as_user(CHANNEL, ALICE, "**alice** says: add is broken");
    let thread = fake.start_thread(CHANNEL, &starter, "calc: add returns a - b");
    let http = threadsmith_bot::discord::http(fake_discord::TOKEN, Some(&fake.api_base()));
    let port = threadsmith_bot::discord::DiscordPort::new(std::sync::Arc::new(http));
    let place = |thread: &str| ThreadRef {
        platform: "discord".into(),
        workspace: fake_discord::GUILD_ID.into(),
        channel: CHANNEL.into(),
        thread: thread.into(),
    };
    assert_eq!(
        port.thread_title(&place(&thread)).await.as_deref(),
        Some("calc: add returns a - b")
    );
    // A message whose thread does not exist yet (the bot's first post creates it): no name.
    let lone = fake.post_as_user(CHANNEL, ALICE, "no thread here");
    assert_eq!(port.thread_title(&place(&lone)).await, None);
    // The title a fallback spec gets from it.
    let transcript = "**alice**: **alice** says: add is broken\n\n";
    let spec = threadsmith_bot::spec::plain_from_thread(
        transcript,
        None,
        port.thread_title(&place(&thread)).await.as_deref(),
    );
    assert_eq!(spec.title, "calc: add returns a - b");
}
