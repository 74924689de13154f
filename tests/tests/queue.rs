//! Two `threadsmith serve` processes on one PostgreSQL database share a queue of 200 tasks:
//! each task runs exactly once (one spec, one rollout, one status message and one summary in
//! its thread), both processes work, the limit on running rollouts holds across them, and every
//! delivery was deduplicated (each event was delivered 4 times).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::json;
use threadsmith_bot::chat::{ChatEvent, ThreadRef, Via};
use threadsmith_bot::slack::socket::DEFAULT_CONNECTIONS;
use threadsmith_bot::store::{self, TaskState};
use threadsmith_tests::fake_slack::{FakeSlack, FakeSlackConfig};
use threadsmith_tests::gitrepo::repo_with;
use threadsmith_tests::{FakeModel, ServeProcess, Turn, ensure_image, serve_process};

const RUNNING_LIMIT: usize = 6;

fn serve(
    dir: &std::path::Path,
    db: &str,
    data: &str,
    model: &FakeModel,
    slack: &FakeSlack,
) -> ServeProcess {
    serve_process(dir, db, &dir.join(data), model, &slack.api_base())
}

fn task_count() -> usize {
    std::env::var("THREADSMITH_TEST_QUEUE_TASKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_postgres_run_each_of_200_tasks_exactly_once() {
    ensure_image().await;
    let n = task_count();
    let dir = tempfile::tempdir().unwrap();
    let db = threadsmith_tests::postgres::database().await;
    let store = store::open(&db).await.expect("open the database");
    // Slack's method tiers (50 status edits a minute...) would make this test about them.
    let slack = FakeSlack::start(FakeSlackConfig {
        tier_limits: false,
        ..FakeSlackConfig::default()
    })
    .await;
    let model = FakeModel::start().await;
    let repo = repo_with(
        &dir.path().join("repo"),
        &[("README.md", "# tiny\n"), ("notes.txt", "one\n")],
    );
    std::fs::write(
        dir.path().join("threadsmith.toml"),
        format!(
            "attempts = 1\ndefault_repo = \"{}\"\n\
             [sandbox]\nmemory = \"256m\"\nworkspace_size = \"64m\"\ntmp_size = \"64m\"\n\
             [limits]\nrunning_rollouts = {RUNNING_LIMIT}\nqueued_tasks = 1000\nuser_queued_tasks = 1000\n\
             [workers]\npoll_ms = 250\nlease_secs = 20\nconcurrent_events = 16\n",
            repo.display()
        ),
    )
    .unwrap();
    // Every spec comes at once; every rollout gives up at its first step (its script is empty),
    // which is a whole run: container, agent, diff, ranking, summary.
    model.script(
        0,
        (0..n)
            .map(|_| {
                Turn::Call(
                    "write_spec",
                    json!({"title": "Tidy the notes", "problem": "notes.txt is untidy",
                           "expected": "tidy", "acceptance_checks": [], "hints": []}),
                )
            })
            .collect(),
    );

    // n threads, each with a request, queued as the Slack adapter queues them; every event
    // is delivered 4 times (at-least-once delivery) and stored once.
    let mut threads = Vec::new();
    for i in 0..n {
        // A channel each: Slack allows one message per second per channel, which the bot
        // honours (and which would make this test about that limit).
        let channel = format!("C{i:04}");
        let channel = channel.as_str();
        let user = format!("U{i:04}");
        let parent =
            slack.post_as_user(channel, &user, &format!("notes.txt needs work #{i}"), None);
        let mention = slack.post_as_user(channel, &user, "<@UBOT> fix this", Some(&parent));
        let event = ChatEvent::Trigger {
            thread: ThreadRef {
                platform: "slack".into(),
                workspace: "T123".into(),
                channel: channel.into(),
                thread: parent.clone(),
            },
            message_ts: mention.clone(),
            user,
            text: "<@UBOT> fix this".into(),
            via: Via::Mention,
        };
        let json = serde_json::to_string(&event).unwrap();
        let key = format!("slack:msg:{channel}:{mention}");
        let stored: Vec<_> =
            futures_util::future::join_all((0..4).map(|_| store.enqueue(&key, "slack", &json)))
                .await
                .into_iter()
                .map(|r| r.unwrap())
                .collect();
        assert_eq!(
            stored.iter().filter(|s| s.is_some()).count(),
            1,
            "one of 4 deliveries stored"
        );
        threads.push((channel.to_string(), parent));
    }
    assert_eq!(store.inbox_len().await.unwrap(), n as u64);

    let t0 = Instant::now();
    let a = serve(dir.path(), &db, "data-a", &model, &slack);
    let b = serve(dir.path(), &db, "data-b", &model, &slack);

    // Wait for every task to end, watching the running rollouts never exceed the limit: looked
    // at after every change of a task or of the inbox (PostgreSQL's notices, from either
    // process).
    let mut peak = 0usize;
    let deadline = Instant::now() + Duration::from_secs(20 * 60);
    let tasks = loop {
        let (mut task_changes, mut inbox_changes) = (store.task_changes(), store.inbox_changes());
        let tasks = store.recent_tasks(10_000).await.unwrap();
        let running: usize = tasks
            .iter()
            .filter(|t| matches!(t.state, TaskState::Preparing | TaskState::Running))
            .map(|t| t.attempts as usize)
            .sum();
        peak = peak.max(running);
        let ended = tasks
            .iter()
            .filter(|t| {
                matches!(
                    t.state,
                    TaskState::Done | TaskState::Failed | TaskState::Cancelled
                )
            })
            .count();
        if ended >= n && store.inbox_pending().await.unwrap() == 0 {
            break tasks;
        }
        assert!(
            Instant::now() < deadline,
            "timed out: {ended} of {n} tasks ended"
        );
        tokio::select! {
            Ok(()) = task_changes.changed() => {}
            Ok(()) = inbox_changes.changed() => {}
            () = tokio::time::sleep_until(deadline.into()) => {}
        }
    };
    let took = t0.elapsed();
    eprintln!(
        "{n} tasks by two processes in {took:?} ({:.2} s/task); peak running rollouts {peak}",
        took.as_secs_f64() / n as f64
    );

    // Exactly once: one task per request, all done, one rollout conversation each.
    assert_eq!(tasks.len(), n, "one task per request");
    assert!(
        tasks.iter().all(|t| t.state == TaskState::Done),
        "{:?}",
        tasks
            .iter()
            .filter(|t| t.state != TaskState::Done)
            .map(|t| (&t.id, t.state, &t.error))
            .collect::<Vec<_>>()
    );
    let mut by_trigger = HashSet::new();
    for t in &tasks {
        let link = store
            .chat_task(&t.id)
            .await
            .unwrap()
            .expect("linked to its thread");
        assert!(
            by_trigger.insert(link.trigger_ts.clone()),
            "two tasks for {:?}",
            link.trigger_ts
        );
        assert_eq!(store.rollouts(&t.id).await.unwrap().len(), 1);
    }
    let rollout_starts = model
        .received()
        .iter()
        .filter(|r| r.seed == Some(1))
        .count();
    assert_eq!(rollout_starts, n, "one agent conversation per task");
    let specs = model
        .received()
        .iter()
        .filter(|r| r.seed.is_none_or(|s| s == 0))
        .count();
    assert_eq!(specs, n, "one spec per task");

    // Both processes worked, and the limit held across them.
    let mut per_worker: HashMap<String, usize> = HashMap::new();
    for t in &tasks {
        *per_worker
            .entry(t.worker.clone().unwrap_or_default())
            .or_default() += 1;
    }
    eprintln!("tasks per process: {per_worker:?}");
    assert_eq!(
        per_worker.len(),
        2,
        "both processes ran tasks: {per_worker:?}"
    );
    assert!(peak <= RUNNING_LIMIT, "peak {peak} > limit {RUNNING_LIMIT}");

    // Each event was taken once (no lease expired), and handled.
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT attempts, state FROM inbox")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), n);
    assert!(
        rows.iter()
            .all(|(attempts, state)| *attempts == 1 && state == "done"),
        "{:?}",
        rows.iter()
            .filter(|(a, s)| *a != 1 || s != "done")
            .collect::<Vec<_>>()
    );

    // In every thread: one status message and one summary, nothing doubled.
    for (channel, parent) in &threads {
        slack
            .wait_until("the summary", |s| {
                s.thread(channel, parent)
                    .iter()
                    .filter(|m| m.is_bot())
                    .count()
                    >= 2
            })
            .await;
    }
    for t in &tasks {
        let link = store.chat_task(&t.id).await.unwrap().unwrap();
        let bots: Vec<_> = slack
            .thread(&link.channel, &link.thread)
            .into_iter()
            .filter(|m| m.is_bot())
            .collect();
        assert_eq!(
            bots.len(),
            2,
            "status + summary in {}: {bots:?}",
            link.thread
        );
        assert_eq!(Some(&bots[0].ts), link.status_ts.as_ref());
        assert_eq!(Some(&bots[1].ts), link.summary_ts.as_ref());
    }
    drop(a);
    drop(b);
    let left = threadsmith_runner::Docker::connect()
        .await
        .unwrap()
        .list_managed()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| {
            tasks
                .iter()
                .any(|t| c.task.as_deref() == Some(t.id.as_str()))
        })
        .count();
    assert_eq!(left, 0, "no container left");
}

/// Two processes on one PostgreSQL database; the one running a task (3 rollouts at work) is
/// SIGKILLed; the other, still serving, takes the task over: reported failed in its thread
/// with Retry, once, its containers removed, and it goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_other_process_takes_over_a_killed_processs_task() {
    ensure_image().await;
    let dir = tempfile::tempdir().unwrap();
    let db = threadsmith_tests::postgres::database().await;
    let store = store::open(&db).await.expect("open the database");
    let slack = FakeSlack::start(FakeSlackConfig::default()).await;
    let model = FakeModel::start().await;
    let repo = threadsmith_tests::gitrepo::calc_repo(&dir.path().join("calc"));
    std::fs::write(
        dir.path().join("threadsmith.toml"),
        format!(
            "attempts = 3\nstatus_edit_interval_ms = 0\ndefault_repo = \"{}\"\n\
             [sandbox]\nmemory = \"256m\"\nworkspace_size = \"64m\"\ntmp_size = \"64m\"\n\
             [workers]\npoll_ms = 100\nlease_secs = 3\n",
            repo.display()
        ),
    )
    .unwrap();
    model.script(
        0,
        vec![
            Turn::Call(
                "write_spec",
                json!({"title": "add() subtracts", "problem": "add 2 3 prints -1"}),
            );
            2
        ],
    );
    // Every rollout's first model call hangs: the task is mid-run when its process dies.
    let gate = model.hold_rollouts(1..=3);
    let a = serve(dir.path(), &db, "data-a", &model, &slack);
    slack.wait_connected().await;
    let parent = slack.post_as_user("C500", "U1", "add(2, 3) gives -1", None);
    let (mention, e) = slack
        .mention("C500", "U1", "<@UBOT> fix this", Some(&parent))
        .await;
    slack.ack(&e).await;
    tokio::time::timeout(Duration::from_secs(120), model.wait_for_requests(4))
        .await
        .expect("three rollouts waiting on the model");
    let task = store.recent_tasks(1).await.unwrap().remove(0);
    let docker = threadsmith_runner::Docker::connect().await.unwrap();
    let containers = |docker: threadsmith_runner::Docker, id: String| async move {
        docker
            .list_managed()
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.task.as_deref() == Some(id.as_str()))
            .count()
    };
    assert_eq!(containers(docker.clone(), task.id.clone()).await, 3);

    let b = serve(dir.path(), &db, "data-b", &model, &slack);
    // B is up and serving before A dies.
    slack
        .wait_until("the second process connected", |s| {
            s.open_connections() >= 2 * DEFAULT_CONNECTIONS as usize
        })
        .await;
    drop(a); // SIGKILL
    let killed = Instant::now();
    let notice = slack
        .wait_for("the takeover reported in the thread", |s| {
            s.thread("C500", &parent)
                .into_iter()
                .find(|m| m.is_bot() && m.text.starts_with("threadsmith stopped"))
        })
        .await;
    eprintln!("reported {:?} after the kill", killed.elapsed());
    assert!(killed.elapsed() < Duration::from_secs(60));
    assert!(notice.blocks.unwrap().to_string().contains("\"retry\""));
    let deadline = Instant::now() + Duration::from_secs(60);
    while containers(docker.clone(), task.id.clone()).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the dead process's containers stay"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = store.task(&task.id).await.unwrap().unwrap();
    assert_eq!(now.state, TaskState::Failed);
    assert_ne!(now.worker, task.worker, "adopted by the other process");
    slack
        .wait_until("❌ on the request", |s| {
            s.reactions("C500", &mention).contains(&"x".to_string())
        })
        .await;
    // B still serves: a help request is answered.
    let other = slack.post_as_user("C501", "U2", "hello", None);
    let (_, e) = slack
        .mention("C501", "U2", "<@UBOT> help", Some(&other))
        .await;
    slack.ack(&e).await;
    slack
        .wait_until("the help answer", |s| {
            s.thread("C501", &other).iter().any(|m| m.is_bot())
        })
        .await;
    let notices = slack
        .thread("C500", &parent)
        .into_iter()
        .filter(|m| m.is_bot() && m.text.starts_with("threadsmith stopped"))
        .count();
    assert_eq!(notices, 1, "reported once");
    drop(b);
    gate.notify_waiters();
}
