//! SIGTERM to `threadsmith serve` (the real binary) while a task runs, with a second process on
//! the same database: the stopping process takes no new event (one stored meanwhile is handled
//! by the other), lets its task finish within the shutdown grace, or, when the grace is over,
//! hands it over (the other process reports it in its thread, once); it exits 0 within a bound.

use std::time::{Duration, Instant};
use threadsmith_bot::slack::socket::DEFAULT_CONNECTIONS;

use serde_json::json;
use threadsmith_bot::chat::{ChatEvent, ThreadRef, Via};
use threadsmith_bot::store::{TaskRow, TaskState};
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig};
use threadsmith_tests::gitrepo::calc_repo;
use threadsmith_tests::{ServeProcess, TestEnv, Turn, env, serve_two};

const CHANNEL: &str = "C111";
const OTHER_CHANNEL: &str = "C222";
const ALICE: &str = "U222";

/// Two processes with `grace_secs` of shutdown grace; a request in `CHANNEL` runs as a task in
/// one of them (`owner`), its one rollout held by `gate`; `other` is the second process.
struct World {
    slack: FakeSlack,
    env: TestEnv,
    owner: ServeProcess,
    other: ServeProcess,
    parent: String,
    mention: String,
    task: TaskRow,
    gate: std::sync::Arc<tokio::sync::Notify>,
}

/// The process id in a worker id (`host:pid:start`).
fn pid_of(worker: &str) -> u32 {
    worker
        .split(':')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in worker id {worker:?}"))
}

async fn world(grace_secs: u64) -> World {
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let env = env(|_| {}).await;
    let repo = calc_repo(&env.dir.path().join("calc"));
    std::fs::write(
        env.dir.path().join("threadsmith.toml"),
        format!(
            "attempts = 1\nstatus_edit_interval_ms = 0\ndefault_repo = \"{}\"\n\
             [sandbox]\nmemory = \"512m\"\nworkspace_size = \"128m\"\ntmp_size = \"128m\"\n\
             [workers]\nlease_secs = 3\npoll_ms = 100\nshutdown_grace_secs = {grace_secs}\n",
            repo.display()
        ),
    )
    .unwrap();
    let spec = |title: &str| {
        Turn::Call(
            "write_spec",
            json!({"title": title, "problem": "add 2 3 prints -1", "expected": "5",
                   "acceptance_checks": [], "hints": []}),
        )
    };
    env.model
        .script(0, vec![spec("add() subtracts"), spec("another request")]);
    // The first task's rollout waits on the gate; a later rollout gives up at once (its
    // script is used up).
    let gate = env.model.hold_rollouts(1..=1);
    let db = env.svc.config.database_url();
    let (a, b) = serve_two(env.dir.path(), &db, &env.model, Some(&slack.api_base()));
    slack
        .wait_until("both processes connected", |s| {
            s.open_connections() >= 2 * DEFAULT_CONNECTIONS as usize
        })
        .await;
    let parent = slack.post_as_user(CHANNEL, ALICE, "add(2, 3) gives -1", None);
    let (mention, e) = slack
        .mention(CHANNEL, ALICE, "<@UBOT> fix this", Some(&parent))
        .await;
    slack.ack(&e).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let task = loop {
        if let Some(t) = env.svc.store.recent_tasks(1).await.unwrap().pop()
            && t.worker.is_some()
        {
            break t;
        }
        assert!(Instant::now() < deadline, "the task was never stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::timeout(Duration::from_secs(90), env.model.wait_for_requests(2))
        .await
        .expect("the rollout waits on the model");
    let pid = pid_of(task.worker.as_deref().unwrap_or_default());
    let (owner, other) = if pid == a.pid() { (a, b) } else { (b, a) };
    assert_eq!(
        owner.pid(),
        pid,
        "the task runs in one of the two processes"
    );
    World {
        slack,
        env,
        owner,
        other,
        parent,
        mention,
        task,
        gate,
    }
}

async fn task_when(env: &TestEnv, id: &str, what: &str, f: impl Fn(&TaskRow) -> bool) -> TaskRow {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(t) = env.svc.store.task(id).await.unwrap()
            && f(&t)
        {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ended(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::Done | TaskState::Failed | TaskState::Cancelled
    )
}

fn notices(slack: &FakeSlack, parent: &str) -> usize {
    slack
        .thread(CHANNEL, parent)
        .iter()
        .filter(|m| {
            m.text.starts_with(
                "threadsmith stopped (a restart or a crash) while this task was running",
            )
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_the_running_task_finish_and_leaves_new_events_to_the_other_process() {
    let World {
        slack,
        env,
        mut owner,
        other,
        parent,
        task,
        gate,
        ..
    } = world(120).await;
    let stopping = Instant::now();
    owner.terminate();
    // The stopping process closes its chat connection after it stopped taking events.
    slack
        .wait_until("the stopping process disconnected", |s| {
            s.live_connections() == DEFAULT_CONNECTIONS as usize
        })
        .await;
    // An event stored meanwhile (as an adapter of either process would store it).
    let other_parent = slack.post_as_user(OTHER_CHANNEL, ALICE, "add is still wrong", None);
    let mention = slack.post_as_user(
        OTHER_CHANNEL,
        ALICE,
        "<@UBOT> fix this",
        Some(&other_parent),
    );
    let event = ChatEvent::Trigger {
        thread: ThreadRef {
            platform: "slack".into(),
            workspace: "T123".into(),
            channel: OTHER_CHANNEL.into(),
            thread: other_parent.clone(),
        },
        message_ts: mention.clone(),
        user: ALICE.into(),
        text: "<@UBOT> fix this".into(),
        via: Via::Mention,
    };
    let key = format!("slack:msg:{OTHER_CHANNEL}:{mention}");
    env.svc
        .store
        .enqueue(&key, "slack", &serde_json::to_string(&event).unwrap())
        .await
        .unwrap()
        .expect("a new event");
    let deadline = Instant::now() + Duration::from_secs(90);
    let second = loop {
        if let Some(t) = env
            .svc
            .store
            .recent_tasks(2)
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.id != task.id && ended(t.state))
        {
            break t;
        }
        assert!(Instant::now() < deadline, "the new event was never handled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        pid_of(second.worker.as_deref().unwrap_or_default()),
        other.pid(),
        "the event stored during the drain is the other process's"
    );
    assert!(
        owner.0.try_wait().unwrap().is_none(),
        "the stopping process waits for its task"
    );
    // The task in progress finishes in the stopping process, which then exits.
    gate.notify_waiters();
    let status = owner.wait_exit(Duration::from_secs(90)).await;
    assert!(status.success(), "exit status {status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(120),
        "within the grace"
    );
    let ended = task_when(&env, &task.id, "the task's end", |t| ended(t.state)).await;
    assert_eq!(ended.state, TaskState::Done);
    assert_eq!(
        pid_of(ended.worker.as_deref().unwrap_or_default()),
        pid_of(task.worker.as_deref().unwrap_or_default())
    );
    assert!(
        env.svc
            .store
            .chat_task(&task.id)
            .await
            .unwrap()
            .unwrap()
            .summary_ts
            .is_some(),
        "its summary was posted"
    );
    assert_eq!(notices(&slack, &parent), 0, "nothing was interrupted");
    // The other process's task ends with its summary (after its containers are gone).
    let deadline = Instant::now() + Duration::from_secs(90);
    while env
        .svc
        .store
        .chat_task(&second.id)
        .await
        .unwrap()
        .is_none_or(|l| l.summary_ts.is_none())
    {
        assert!(Instant::now() < deadline, "the second summary never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(other);
    env.assert_nothing_left(&task.id).await;
    env.assert_nothing_left(&second.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_hands_a_task_that_outlasts_the_grace_over_to_the_other_process() {
    let World {
        slack,
        env,
        mut owner,
        other,
        parent,
        mention,
        task,
        gate,
    } = world(1).await;
    let stopping = Instant::now();
    owner.terminate();
    let status = owner.wait_exit(Duration::from_secs(45)).await;
    assert!(status.success(), "exit status {status}");
    eprintln!("exited {:?} after SIGTERM", stopping.elapsed());
    // The other process adopts the task and says so in its thread, once, with Retry.
    let notice = slack
        .wait_for("the hand-over reported in the thread", |s| {
            s.thread(CHANNEL, &parent).into_iter().find(|m| {
                m.text.starts_with(
                    "threadsmith stopped (a restart or a crash) while this task was running",
                )
            })
        })
        .await;
    assert!(notice.blocks.unwrap().to_string().contains("\"retry\""));
    let adopted = task_when(&env, &task.id, "the adoption", |t| ended(t.state)).await;
    assert_eq!(adopted.state, TaskState::Failed);
    assert_eq!(
        pid_of(adopted.worker.as_deref().unwrap_or_default()),
        other.pid(),
        "adopted by the other process"
    );
    slack
        .wait_until("❌ on the request", |s| {
            s.reactions(CHANNEL, &mention).contains(&"x".to_string())
        })
        .await;
    assert_eq!(notices(&slack, &parent), 1, "told once");
    let bots = slack
        .thread(CHANNEL, &parent)
        .into_iter()
        .filter(|m| m.is_bot())
        .count();
    assert_eq!(bots, 2, "one status message, one notice");
    assert_eq!(
        env.svc.store.recent_tasks(5).await.unwrap().len(),
        1,
        "no second task"
    );
    // The stopping process stopped its rollout before it exited.
    env.assert_nothing_left(&task.id).await;
    drop(other);
    gate.notify_waiters();
}
