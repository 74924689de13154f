//! threadsmith's Socket Mode client against the fake Slack's Socket Mode (strict about acks):
//! envelopes of one connection stored concurrently, each acked only once stored; a failed store
//! not acked and its redelivery taken; an ack lost with its connection deduplicated on the
//! redelivery; `disconnect` answered by a new connection while the old one finishes; shutdown
//! finishing what it holds. No Docker: the events go to a SQLite inbox through the group-commit
//! writer, behind a sink each test scripts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use threadsmith_bot::chat::ChatEvent;
use threadsmith_bot::slack::events::EventSettings;
use threadsmith_bot::slack::socket::{self, EventSink, SocketMode};
use threadsmith_bot::store::inbox_writer::InboxWriter;
use threadsmith_bot::store::{self, NewEvent, Store, StoreError};
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig, SlackState};
use tokio::sync::{Notify, watch};

/// What the sink does with one call, in order; past the script it stores.
enum Step {
    /// Waits for the notification, then stores.
    HoldThenStore(Arc<Notify>),
    /// Fails as a store that cannot write.
    Fail,
    /// Stores, then never answers (the ack goes missing with the connection).
    StoreThenHang,
}

struct Sink {
    store: Arc<dyn Store>,
    inbox: InboxWriter,
    script: Mutex<VecDeque<Step>>,
    /// How many calls began, and how many ended (stored, failed, or stored and hung).
    began: watch::Sender<usize>,
    ended: watch::Sender<usize>,
}

#[async_trait]
impl EventSink for Sink {
    async fn submit(&self, key: &str, event: &ChatEvent) -> Result<(), StoreError> {
        self.began.send_modify(|n| *n += 1);
        let step = self.script.lock().unwrap().pop_front();
        let store = || {
            self.inbox.enqueue(NewEvent {
                dedupe_key: key.into(),
                platform: "slack".into(),
                event: serde_json::to_string(event).unwrap(),
            })
        };
        let result = match step {
            None => store().await.map(|_| ()),
            Some(Step::HoldThenStore(release)) => {
                release.notified().await;
                store().await.map(|_| ())
            }
            Some(Step::Fail) => Err(StoreError::Shared("the disk is full".into())),
            Some(Step::StoreThenHang) => {
                store().await.unwrap();
                self.ended.send_modify(|n| *n += 1);
                std::future::pending::<()>().await;
                unreachable!()
            }
        };
        self.ended.send_modify(|n| *n += 1);
        result
    }
}

struct Setup {
    slack: FakeSlack,
    sink: Arc<Sink>,
    socket: SocketMode,
    _dir: tempfile::TempDir,
}

async fn setup(connections: u32, script: Vec<Step>) -> Setup {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = store::open(&url).await.unwrap();
    let sink = Arc::new(Sink {
        inbox: InboxWriter::start(store.clone(), None),
        store,
        script: Mutex::new(script.into()),
        began: watch::channel(0).0,
        ended: watch::channel(0).0,
    });
    let client = threadsmith_bot::slack::client(Some(&slack.api_base())).unwrap();
    let settings = EventSettings {
        bot_user_id: "UBOT".into(),
        team_id: "T1".into(),
        ..EventSettings::default()
    };
    let socket = socket::start(client, "xapp-test", connections, sink.clone(), settings)
        .await
        .unwrap();
    slack
        .wait_until("every connection", |s| {
            s.open_connections() == connections as usize
        })
        .await;
    Setup {
        slack,
        sink,
        socket,
        _dir: dir,
    }
}

async fn wait_for(counter: &watch::Sender<usize>, n: usize) {
    counter.subscribe().wait_for(|c| *c >= n).await.unwrap();
}

async fn mention(slack: &FakeSlack, text: &str) -> String {
    let ts = slack.post_as_user("C1", "U222", text, None);
    let payload = slack.app_mention("C1", "U222", text, &ts, None);
    slack.send_envelope("events_api", payload, false).await
}

async fn inbox_len(s: &Setup) -> u64 {
    s.sink.store.inbox_len().await.unwrap()
}

fn no_refused_ack(slack: &FakeSlack) {
    assert_eq!(slack.read(SlackState::rejected_acks), Vec::new());
}

#[tokio::test]
async fn envelopes_of_one_connection_are_stored_concurrently_and_acked_once_stored() {
    let release = Arc::new(Notify::new());
    let s = setup(1, vec![Step::HoldThenStore(release.clone())]).await;
    let first = mention(&s.slack, "<@UBOT> one").await;
    wait_for(&s.sink.began, 1).await;
    // The first is still being stored; the second, on the same connection, is not held up.
    let second = mention(&s.slack, "<@UBOT> two").await;
    s.slack.ack(&second).await;
    assert_eq!(s.slack.unacked(), vec![first.clone()]);
    release.notify_one();
    assert_eq!(
        s.slack.ack(&first).await,
        serde_json::json!({"envelope_id": first})
    );
    assert_eq!(inbox_len(&s).await, 2);
    no_refused_ack(&s.slack);
    s.socket.shutdown().await;
}

#[tokio::test]
async fn a_slash_command_is_acked_with_on_it_after_it_is_stored() {
    let s = setup(1, Vec::new()).await;
    let payload = s
        .slack
        .slash_command("/fix", "the flaky test", "C1", "U222");
    let id = s.slack.send_envelope("slash_commands", payload, true).await;
    let ack = s.slack.ack(&id).await;
    assert_eq!(ack["payload"]["text"], "On it.");
    assert_eq!(ack["payload"]["response_type"], "ephemeral");
    assert_eq!(inbox_len(&s).await, 1);
    no_refused_ack(&s.slack);
    s.socket.shutdown().await;
}

#[tokio::test]
async fn a_failed_store_is_not_acked_and_the_redelivery_is_stored_and_acked() {
    let s = setup(1, vec![Step::Fail]).await;
    let lost = mention(&s.slack, "<@UBOT> one").await;
    wait_for(&s.sink.ended, 1).await;
    // Acks leave in order: once a later one is in, the failed one would have been too.
    let later = mention(&s.slack, "<@UBOT> two").await;
    s.slack.ack(&later).await;
    assert_eq!(s.slack.unacked(), vec![lost.clone()]);
    assert_eq!(inbox_len(&s).await, 1);

    // Slack delivers it again once the connection is gone; the client reconnects at once.
    s.slack.close_connections();
    s.slack.ack(&lost).await;
    assert_eq!(s.slack.connections(), 2);
    assert_eq!(inbox_len(&s).await, 2);
    no_refused_ack(&s.slack);
    s.socket.shutdown().await;
}

#[tokio::test]
async fn an_ack_lost_with_its_connection_is_deduplicated_when_slack_delivers_again() {
    let s = setup(1, vec![Step::StoreThenHang]).await;
    let id = mention(&s.slack, "<@UBOT> once").await;
    wait_for(&s.sink.ended, 1).await;
    assert_eq!(inbox_len(&s).await, 1);
    s.slack.close_connections();
    s.slack.ack(&id).await;
    // Delivered twice, stored once.
    assert_eq!(*s.sink.began.borrow(), 2);
    assert_eq!(inbox_len(&s).await, 1);
    no_refused_ack(&s.slack);
    s.socket.shutdown().await;
}

#[tokio::test]
async fn disconnect_opens_a_new_connection_while_the_old_one_acks_what_it_holds() {
    for reason in ["refresh_requested", "warning"] {
        let release = Arc::new(Notify::new());
        let s = setup(1, vec![Step::HoldThenStore(release.clone())]).await;
        let held = mention(&s.slack, "<@UBOT> held").await;
        wait_for(&s.sink.began, 1).await;
        s.slack.disconnect_with(reason).await;
        s.slack
            .wait_until("a new connection", |st| {
                st.connections() == 2 && st.open_connections() == 1
            })
            .await;
        let fresh = mention(&s.slack, "<@UBOT> fresh").await;
        s.slack.ack(&fresh).await;
        // The old connection acks its envelope (on itself, as Slack wants), then closes.
        release.notify_one();
        s.slack.ack(&held).await;
        s.slack
            .wait_until("the old connection closed", |st| st.live_connections() == 1)
            .await;
        assert_eq!(
            s.slack.calls_to("apps.connections.open").len(),
            2,
            "{reason}"
        );
        assert_eq!(inbox_len(&s).await, 2);
        no_refused_ack(&s.slack);
        s.socket.shutdown().await;
    }
}

#[tokio::test]
async fn link_disabled_is_answered_by_connecting_again() {
    let s = setup(1, Vec::new()).await;
    s.slack.disconnect_with("link_disabled").await;
    s.slack
        .wait_until("connected again", |st| {
            st.connections() == 2 && st.open_connections() == 1
        })
        .await;
    let id = mention(&s.slack, "<@UBOT> back").await;
    s.slack.ack(&id).await;
    s.socket.shutdown().await;
}

#[tokio::test]
async fn shutdown_stores_and_acks_what_it_holds_then_closes() {
    let release = Arc::new(Notify::new());
    let s = setup(2, vec![Step::HoldThenStore(release.clone())]).await;
    let held = mention(&s.slack, "<@UBOT> held").await;
    wait_for(&s.sink.began, 1).await;
    let slack = s.slack.clone();
    let closing = tokio::spawn(s.socket.shutdown());
    release.notify_one();
    slack.ack(&held).await;
    closing.await.unwrap();
    slack
        .wait_until("every connection closed", |st| st.live_connections() == 0)
        .await;
    assert_eq!(s.sink.store.inbox_len().await.unwrap(), 1);
    no_refused_ack(&slack);
}
