//! Follow-up rounds through Discord, end to end (real Docker, git and SQLite; fake Discord and
//! model): `from #9` with two rollouts is answered and starts nothing; `from #2` starts round 2,
//! whose agents find #2's change in their working copy and the request in their spec; round 1's
//! Approve still works and names its round.

use threadsmith_runner::secret::Secret;
use threadsmith_tests::discord_fake::{self as fake_discord, FakeDiscord, Msg};
use threadsmith_tests::gitrepo::{OVERFIXED_CALC, calc_repo};
use threadsmith_tests::{Turn, env, script_calc_fix};

const CHANNEL: &str = "1300000000000000001";
const ALICE: &str = "1400000000000000001";

fn bot_messages(fake: &FakeDiscord, channel: &str) -> Vec<Msg> {
    fake.messages(channel)
        .into_iter()
        .filter(|m| m.is_bot)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_round_from_2_in_a_discord_thread_and_the_bad_inputs() {
    let fake = FakeDiscord::start().await;
    fake.add_channel(CHANNEL, "bugs");
    fake.add_user(ALICE, "alice", &[]);
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = calc_repo(&repo_dir.path().join("calc"));
    let api = fake.api_base();
    let repo_arg = repo.display().to_string();
    let env = env(move |c| {
        c.discord.token = Some(Secret::new(fake_discord::TOKEN));
        c.discord.api_url = Some(api);
        c.default_repo = Some(repo_arg);
        c.attempts = Some(2);
        c.status_edit_interval_ms = Some(0);
    })
    .await;
    script_calc_fix(&env);
    let (running, shutdown) = threadsmith_tests::start_serve(&env.svc).await;
    fake.wait_connected().await;

    let starter = fake.post_as_user(CHANNEL, ALICE, "add(2, 3) gives -1 in calc.sh");
    let thread = fake.start_thread(CHANNEL, &starter, "add is broken");
    let bot = fake_discord::BOT_ID;
    fake.post_as_user(&thread, ALICE, &format!("<@{bot}> fix this"));
    let summary = fake
        .wait_for("the summary", |f| {
            bot_messages(f, &thread)
                .into_iter()
                .find(|m| m.components.to_string().contains("approve:"))
        })
        .await;
    let first = env.svc.store.recent_tasks(1).await.unwrap().remove(0).id;

    // A rollout that does not exist: said, nothing starts.
    fake.post_as_user(
        &thread,
        ALICE,
        &format!("<@{bot}> from #9: keep the output format"),
    );
    fake.wait_until("the answer to from #9", |f| {
        bot_messages(f, &thread).iter().any(|m| {
            m.content
                == "Round 1 has no rollout #9: it had 2 (#1 to #2). Say `from #1` to `from #2`."
        })
    })
    .await;
    assert_eq!(env.svc.store.recent_tasks(10).await.unwrap().len(), 1);

    // Round 2 from #2: each rollout reads calc.sh, then writes the round's version.
    env.model.reset();
    script_calc_fix(&env);
    for seed in [1, 2] {
        env.model.script(
            seed,
            vec![
                Turn::Call("read_file", serde_json::json!({"path": "calc.sh"})),
                Turn::Call(
                    "write_file",
                    serde_json::json!({"path": "calc.sh", "content": threadsmith_tests::gitrepo::FIXED_CALC}),
                ),
                Turn::Call("finish", serde_json::json!({"summary": "Put sub back.", "confidence": 0.8})),
            ],
        );
    }
    fake.post_as_user(
        &thread,
        ALICE,
        &format!("<@{bot}> from #2: keep the output format"),
    );
    fake.wait_until("round 2's summary", |f| {
        bot_messages(f, &thread).iter().any(|m| {
            m.content
                .contains(r"Round 2 of this task, from rollout \#2 of round 1")
        })
    })
    .await;
    let second = env.svc.store.recent_tasks(1).await.unwrap().remove(0).id;
    assert_ne!(second, first);
    let asked = env.model.received_by(1);
    let spec = asked[0].body.to_string();
    assert!(
        spec.contains("## This is round 2") && spec.contains("keep the output format"),
        "{spec}"
    );
    let read = asked[1].body["messages"].to_string();
    assert!(
        read.contains(OVERFIXED_CALC.lines().nth(1).unwrap()),
        "{read}"
    );
    // Round 2's change against the base is round 1's fix alone: rollout #2's sub() undone.
    let diff = env.svc.store.diff(&second, 1).await.unwrap().unwrap();
    assert!(
        diff.patch.contains("+add() { echo $(( $1 + $2 )); }"),
        "{}",
        diff.patch
    );
    assert!(!diff.patch.contains("+sub()"), "{}", diff.patch);

    // Round 1's Approve still works and says which round it belongs to.
    let click = fake.button_click(ALICE, &thread, &summary.id, &format!("approve:{first}:1"));
    fake.send_interaction(click).await;
    fake.wait_until("the approval", |f| {
        bot_messages(f, &thread)
            .iter()
            .any(|m| m.content.starts_with("Rollout 1 of round 1 approved by"))
    })
    .await;
    threadsmith_tests::settle(env.svc.store.as_ref(), std::time::Duration::from_secs(60)).await;
    running.stop(&shutdown).await;
}
