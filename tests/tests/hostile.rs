//! Hostile agents are contained and reported; the bot process is unharmed and other rollouts
//! of the task carry on. The suite runs on both backends (on Kubernetes, pods on the fake API
//! server, each a Docker container), with the same expectations.

use serde_json::json;
use threadsmith_runner::{CommandKind, CommandRecord, Outcome};
use threadsmith_tests::gitrepo::calc_repo;
use threadsmith_tests::{Backend, MODEL_KEY, Turn, env_on};

fn hostile_then_alive(command: &str, timeout_secs: u64) -> Vec<Turn> {
    vec![
        Turn::Call(
            "run_command",
            json!({"command": command, "timeout_secs": timeout_secs}),
        ),
        Turn::Call("run_command", json!({"command": "echo alive"})),
        Turn::Call("give_up", json!({"reason": "done being hostile"})),
    ]
}

fn shell(commands: &[CommandRecord]) -> Vec<&CommandRecord> {
    commands
        .iter()
        .filter(|c| c.kind == CommandKind::Shell)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_agents_are_contained_and_reported() {
    hostile_agents(Backend::Docker).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_agents_are_contained_and_reported_on_kubernetes() {
    hostile_agents(Backend::Kubernetes).await;
}

async fn hostile_agents(backend: Backend) {
    let env = env_on(backend, |c| {
        c.sandbox.memory = Some("256m".into());
        c.sandbox.pids = Some(128);
        c.sandbox.workspace_size = Some("64m".into());
        c.sandbox.tmp_size = Some("64m".into());
    })
    .await;
    let repo = calc_repo(&env.dir.path().join("calc"));

    const FORK_BOMB: u64 = 1;
    const MEMORY_HOG: u64 = 2;
    const ENDLESS: u64 = 3;
    const FLOOD: u64 = 4;
    const NETWORK: u64 = 5;
    const HOST_ENV: u64 = 6;
    const DELETE_REPO: u64 = 7;
    const FILL_DISK: u64 = 8;
    const LEFTOVERS: u64 = 9;
    env.model.script(
        FORK_BOMB,
        hostile_then_alive("bomb() { bomb | bomb; }; bomb", 8),
    );
    env.model
        .script(MEMORY_HOG, hostile_then_alive("tail /dev/zero", 60));
    env.model
        .script(ENDLESS, hostile_then_alive("while :; do :; done", 3));
    env.model.script(
        FLOOD,
        hostile_then_alive("head -c 1000000000 /dev/zero | tr '\\0' x", 120),
    );
    env.model.script(
        NETWORK,
        hostile_then_alive(
            "getent hosts deb.debian.org || echo no-dns; (exec 3<>/dev/tcp/deb.debian.org/80) 2>/dev/null && echo connected || echo no-connect; cat /proc/net/dev",
            30,
        ),
    );
    env.model.script(
        HOST_ENV,
        hostile_then_alive(
            "env; tr '\\0' '\\n' < /proc/1/environ; cat /proc/self/environ | tr '\\0' '\\n'",
            30,
        ),
    );
    env.model.script(
        DELETE_REPO,
        vec![
            Turn::Call("run_command", json!({"command": "rm -rf /workspace/* /workspace/.[!.]* && ls -A /workspace | wc -l"})),
            Turn::Call("finish", json!({"summary": "Removed everything.", "confidence": 0.1})),
        ],
    );
    env.model.script(
        FILL_DISK,
        vec![
            Turn::Call(
                "run_command",
                json!({"command": "dd if=/dev/urandom of=/workspace/fill bs=1M count=1000"}),
            ),
            Turn::Call(
                "finish",
                json!({"summary": "Filled the disk.", "confidence": 0.1}),
            ),
        ],
    );

    env.model.script(
        LEFTOVERS,
        vec![
            Turn::Call(
                "run_command",
                json!({"command": "(exec -a lingerer sleep 600) >/dev/null 2>&1 & touch /usr/planted /etc/planted /seed/planted; chmod u+w /seed/tree/.git/config; echo started"}),
            ),
            Turn::Call(
                "run_command",
                json!({"command": "echo lingering: $(for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done 2>/dev/null | grep -c '^lingerer ')"}),
            ),
            Turn::Call("give_up", json!({"reason": "done being hostile"})),
        ],
    );

    let report = env.run(&repo, 9, "Be hostile").await;
    assert_eq!(report.task.error, None);
    let store = &env.svc.store;
    let commands = |k: u32| {
        let store = store.clone();
        let id = report.task.id.clone();
        async move { store.commands(&id, k).await.unwrap() }
    };

    // Fork bomb: held by the pids limit (or the time limit); the sandbox still works after.
    let c = commands(FORK_BOMB as u32).await;
    let s = shell(&c);
    assert!(
        s[0].timed_out || s[0].output.contains("Resource temporarily unavailable"),
        "{:?}",
        s[0]
    );
    assert_eq!(
        (s[1].exit_code, s[1].output.trim()),
        (Some(0), "alive"),
        "{:?}",
        s[1]
    );

    // Memory hog: killed by the memory limit (SIGKILL, 137) and reported as such.
    let c = commands(MEMORY_HOG as u32).await;
    let s = shell(&c);
    assert_eq!(s[0].exit_code, Some(137), "{:?}", s[0]);
    assert_eq!(s[1].output.trim(), "alive");

    // Endless loop: stopped at its time limit.
    let c = commands(ENDLESS as u32).await;
    let s = shell(&c);
    assert!(s[0].timed_out, "{:?}", s[0]);
    assert!(s[0].duration.as_secs() < 60, "{:?}", s[0].duration);
    assert_eq!(s[1].output.trim(), "alive");

    // 1 GB of output: all of it counted, head and tail kept, the rest dropped.
    let c = commands(FLOOD as u32).await;
    let s = shell(&c);
    assert_eq!(s[0].exit_code, Some(0));
    assert_eq!(s[0].output_bytes, 1_000_000_000);
    assert!(s[0].dropped_bytes > 999_000_000, "{:?}", s[0].dropped_bytes);
    assert!(s[0].output.len() < 64 * 1024, "{}", s[0].output.len());
    assert!(s[0].output.contains("bytes of output dropped"));

    // Network: no DNS, no connection, no interface but loopback.
    let c = commands(NETWORK as u32).await;
    let out = &shell(&c)[0].output;
    assert!(out.contains("no-dns"), "{out}");
    assert!(out.contains("no-connect"), "{out}");
    assert!(!out.contains("connected\n"), "{out}");
    assert!(out.contains("lo:"), "{out}");
    assert!(!out.contains("eth0"), "{out}");

    // The environment: only the sandbox's allow-list, nothing of the host or its secrets.
    let c = commands(HOST_ENV as u32).await;
    let out = &shell(&c)[0].output;
    assert!(out.contains("HOME=/tmp"), "{out}");
    assert!(!out.contains(MODEL_KEY), "{out}");
    assert!(!out.contains("THREADSMITH"), "{out}");
    assert!(!out.contains("CARGO"), "{out}");

    // Deleting the repository: the diff is still taken against the base, and the outcome says
    // what happened.
    let rollouts = store.rollouts(&report.task.id).await.unwrap();
    let by_index = |k: u64| rollouts.iter().find(|r| u64::from(r.index) == k).unwrap();
    let deleted = by_index(DELETE_REPO);
    assert_eq!(deleted.outcome, Some(Outcome::TestsFailed), "{deleted:?}");
    assert_eq!(deleted.files_changed, 3, "{deleted:?}");
    let diff = store
        .diff(&report.task.id, DELETE_REPO as u32)
        .await
        .unwrap()
        .unwrap();
    assert!(diff.patch.contains("deleted file mode"), "{}", diff.patch);

    // Filling the disk: the write stops at the workspace's size limit.
    let c = commands(FILL_DISK as u32).await;
    let s = shell(&c);
    assert_ne!(s[0].exit_code, Some(0));
    assert!(
        s[0].output.contains("No space left on device"),
        "{}",
        s[0].output
    );
    let filled = by_index(FILL_DISK);
    assert!(
        matches!(
            filled.outcome,
            Some(Outcome::TestsFailed | Outcome::Errored)
        ),
        "{filled:?}"
    );
    assert!(filled.detail.is_some());

    // A read-only root and seed (the diff is taken against the seed's git data); what a command
    // leaves running is killed when it ends.
    let c = commands(LEFTOVERS as u32).await;
    let s = shell(&c);
    assert_eq!(
        s[0].output.matches("Read-only file system").count(),
        4,
        "{:?}",
        s[0]
    );
    assert!(s[0].output.contains("started"), "{:?}", s[0]);
    assert_eq!(s[1].output.trim(), "lingering: 0", "{:?}", s[1]);

    // Every rollout ended with a stored outcome, and nothing is left behind.
    assert_eq!(rollouts.len(), 9);
    assert!(
        rollouts
            .iter()
            .all(|r| r.outcome.is_some() && r.rank.is_some())
    );
    env.assert_nothing_left(&report.task.id).await;
}
