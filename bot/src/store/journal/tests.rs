use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::file::decode;
use super::*;
use crate::store::inbox_writer::InboxWriter;
use crate::testing::{TestServices, config};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn event(key: &str) -> NewEvent {
    NewEvent {
        dedupe_key: key.into(),
        platform: "slack".into(),
        // A newline inside the event: a line of the journal is still one event.
        event: format!("{{\"key\":\"{key}\",\n\"text\":\"x\"}}"),
    }
}

fn events_in(bytes: &[u8]) -> Vec<NewEvent> {
    decode(bytes).0.into_iter().map(|j| j.event).collect()
}

fn dir_of(services: &TestServices) -> PathBuf {
    dir_for(&services.database_url).unwrap()
}

/// Waits (woken by the journal, bounded) until the inbox holds `n` events.
async fn inbox_reaches(services: &TestServices, moved: &Notify, n: u64) {
    let store = &services.svc.store;
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let woken = moved.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if store.inbox_len().await.unwrap() == n {
                return;
            }
            woken.await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the inbox never held {n} events"));
}

async fn keys(services: &TestServices) -> Vec<String> {
    let taken = services
        .svc
        .store
        .claim_inbox("slack", "test", Duration::from_secs(30), 100)
        .await
        .unwrap();
    taken
        .iter()
        .map(|i| {
            let v: serde_json::Value = serde_json::from_str(&i.event).unwrap();
            v["key"].as_str().unwrap().to_string()
        })
        .collect()
}

/// A journal holding `keys` whose process stopped; its path.
fn left_by_a_stopped_process(dir: &Path, keys: &[&str]) -> PathBuf {
    let stopped = JournalFile::create(dir).unwrap();
    for key in keys {
        stopped.append(event(key)).unwrap();
    }
    // As the kernel does when a process ends: the lock goes with the file's last descriptor.
    stopped.path().to_path_buf()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    found.sort();
    found
}

#[test]
fn the_journal_lives_beside_a_sqlite_file_only() {
    assert_eq!(
        dir_for("sqlite://data/threadsmith.db"),
        Some(PathBuf::from("data/threadsmith.db.inbox-journal"))
    );
    assert_eq!(
        dir_for("sqlite:///var/lib/t.db?mode=rwc"),
        Some(PathBuf::from("/var/lib/t.db.inbox-journal"))
    );
    assert_eq!(
        dir_for("sqlite:t.db"),
        Some(PathBuf::from("t.db.inbox-journal"))
    );
    assert_eq!(dir_for("sqlite::memory:"), None);
    assert_eq!(dir_for("sqlite://t.db?mode=memory"), None);
    assert_eq!(dir_for("postgres://u:p@host/db"), None);
}

/// Recorded events reach the inbox in order, a duplicate (of a stored event, and within the
/// journal) is dropped there, the waiter is woken, and the file is emptied; a clean stop
/// removes it, and events recorded after are stored directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_events_are_moved_into_the_inbox_and_the_file_removed_at_the_end() {
    let services = TestServices::new(config()).await;
    let store = services.svc.store.clone();
    let b = event("b");
    assert!(
        store
            .enqueue("b", "slack", &b.event)
            .await
            .unwrap()
            .is_some()
    );
    let moved = Arc::new(Notify::new());
    let journal = Journal::start(&dir_of(&services), store.clone(), moved.clone(), DAY).unwrap();
    let path = journal.path().to_path_buf();
    let writer = InboxWriter::start(store.clone(), Some(journal));
    for key in ["a", "b", "c", "a"] {
        assert!(!writer.record(event(key)).await.unwrap(), "journaled");
    }
    inbox_reaches(&services, &moved, 3).await;
    assert_eq!(
        keys(&services).await,
        ["b", "a", "c"],
        "b was stored before, a recorded twice"
    );
    writer.drain(Duration::from_secs(30)).await;
    assert!(!path.exists(), "removed once everything in it was moved");

    assert!(
        writer.record(event("d")).await.unwrap(),
        "stored directly once closed"
    );
    assert_eq!(store.inbox_len().await.unwrap(), 4);
}

/// A file is emptied whenever all it holds is in the inbox, and not while it holds more.
#[tokio::test]
async fn the_file_is_emptied_only_once_all_it_holds_is_moved() {
    let services = TestServices::new(config()).await;
    let file = JournalFile::create(&dir_of(&services)).unwrap();
    file.append(event("a")).unwrap();
    let (events, upto) = file.take();
    assert_eq!(events, [event("a")]);
    file.append(event("b")).unwrap();
    file.moved(upto).unwrap();
    let on_disk = std::fs::read(file.path()).unwrap();
    assert_eq!(
        events_in(&on_disk),
        [event("a"), event("b")],
        "b is not moved yet"
    );
    let (events, upto) = file.take();
    assert_eq!(events, [event("b")]);
    file.moved(upto).unwrap();
    assert_eq!(std::fs::metadata(file.path()).unwrap().len(), 0);
    // Appends after emptying start at the beginning.
    file.append(event("c")).unwrap();
    let on_disk = std::fs::read(file.path()).unwrap();
    assert_eq!(events_in(&on_disk), [event("c")]);
}

/// What a stopped process left in its journal (its lock gone with it) is moved into the inbox
/// by a live one, a torn last line and an event older than the retention left out, and the
/// file removed; a live process's file, and a file that is not a journal, are left alone.
#[tokio::test]
async fn a_stopped_processs_journal_is_recovered_and_a_live_ones_left_alone() {
    let services = TestServices::new(config()).await;
    let store = services.svc.store.clone();
    let dir = dir_of(&services);
    let stopped_path = left_by_a_stopped_process(&dir, &["a", "b"]);
    let mut torn = std::fs::OpenOptions::new()
        .append(true)
        .open(&stopped_path)
        .unwrap();
    // Journaled longer ago than the retention: maybe handled and pruned since; left out.
    torn.write_all(b"{\"at\":0,\"key\":\"old\",\"platform\":\"slack\",\"event\":\"{}\"}\n")
        .unwrap();
    torn.write_all(b"{\"at\":1,\"key\":\"c\",\"platf").unwrap();
    let live = JournalFile::create(&dir).unwrap();
    live.append(event("d")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a journal").unwrap();

    let recovered = recover(&dir, None, store.as_ref(), DAY).await.unwrap();
    let read = Recovered {
        files: 1,
        events: 3,
    };
    assert_eq!(recovered, read, "a, b and the old one read");
    assert_eq!(keys(&services).await, ["a", "b"]);
    assert!(!stopped_path.exists());
    assert!(live.path().exists());
    assert_eq!(files(&dir).len(), 2, "the live journal and the other file");

    // Recovering again finds nothing new: the live file is still held.
    let again = recover(&dir, None, store.as_ref(), DAY).await.unwrap();
    assert_eq!(again, Recovered::default());
    assert_eq!(store.inbox_len().await.unwrap(), 2);
}

/// A process that starts moves what stopped ones left before anything else (no wait for the
/// first period), and its own new file is not taken for one of theirs.
#[tokio::test]
async fn a_starting_process_recovers_stopped_ones_journals_at_once() {
    let services = TestServices::new(config()).await;
    let store = services.svc.store.clone();
    let dir = dir_of(&services);
    left_by_a_stopped_process(&dir, &["left"]);
    let moved = Arc::new(Notify::new());
    // Looking again only in an hour: what is found within the test's bound was found at start.
    let hour = Duration::from_secs(3600);
    let journal =
        Journal::start_recovering_every(&dir, store.clone(), moved.clone(), DAY, hour).unwrap();
    inbox_reaches(&services, &moved, 1).await;
    // Removed once moved (the mover wakes `moved` after the pass).
    let own = [journal.path().to_path_buf()];
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let woken = moved.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if files(&dir) == own {
                return;
            }
            woken.await;
        }
    })
    .await
    .expect("the stopped process's file is removed");
    assert!(journal.drain(Duration::from_secs(30)).await);
    assert!(files(&dir).is_empty());
}

/// The mover waits for the database while it refuses, and the events stay journaled meanwhile:
/// a drain bounded shorter than the outage says not everything was moved, and the file stays
/// for the next process (which recovers it).
#[tokio::test]
async fn events_stay_journaled_while_the_database_refuses_them() {
    let services = TestServices::new(config()).await;
    let store = services.svc.store.clone();
    let dir = dir_of(&services);
    // The inbox refuses writes: its table is renamed away.
    let pool = crate::store::sql::SqlStore::open(&services.database_url)
        .await
        .unwrap();
    sqlx::query("ALTER TABLE inbox RENAME TO inbox_away")
        .execute(pool.pool())
        .await
        .unwrap();
    let moved = Arc::new(Notify::new());
    let journal = Journal::start(&dir, store.clone(), moved, DAY).unwrap();
    journal.append(event("a")).unwrap();
    let path = journal.path().to_path_buf();
    assert!(!journal.drain(Duration::from_millis(300)).await);
    drop(journal);
    assert!(path.exists(), "kept for the next process");
    sqlx::query("ALTER TABLE inbox_away RENAME TO inbox")
        .execute(pool.pool())
        .await
        .unwrap();
    let recovered = recover(&dir, None, store.as_ref(), DAY).await.unwrap();
    assert_eq!(
        recovered,
        Recovered {
            files: 1,
            events: 1
        }
    );
    assert_eq!(keys(&services).await, ["a"]);
}

/// Past its size a file takes no more events (the caller commits them directly) until the
/// mover has emptied it.
#[tokio::test]
async fn a_full_file_takes_events_again_once_emptied() {
    let services = TestServices::new(config()).await;
    let file = JournalFile::create_holding(&dir_of(&services), 1).unwrap();
    file.append(event("a")).unwrap();
    let (refused, why) = file.append(event("b")).unwrap_err();
    assert_eq!(refused, event("b"), "handed back to be stored directly");
    assert!(matches!(why, AppendError::Full(n) if n > 0), "{why:?}");
    let (events, upto) = file.take();
    assert_eq!(events, [event("a")]);
    assert!(file.moved(upto).unwrap());
    file.append(event("c")).unwrap();
    assert_eq!(file.take().0, [event("c")]);
}

/// A mover that dies does not strand what was acknowledged: the journal closes (later events
/// are stored directly) and its file, no longer held, is moved into the inbox at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_mover_leaves_nothing_behind() {
    let services = TestServices::new(config()).await;
    let store = services.svc.store.clone();
    let dir = dir_of(&services);
    let moved = Arc::new(Notify::new());
    let journal = Journal::start(&dir, store.clone(), moved.clone(), DAY).unwrap();
    journal
        .file()
        .poisoned
        .store(true, std::sync::atomic::Ordering::Release);
    let writer = InboxWriter::start(store.clone(), Some(journal));
    assert!(!writer.record(event("a")).await.unwrap(), "journaled");
    inbox_reaches(&services, &moved, 1).await;
    assert_eq!(keys(&services).await, ["a"]);
    tokio::time::timeout(
        Duration::from_secs(30),
        writer.drain(Duration::from_secs(30)),
    )
    .await
    .expect("nothing is left unmoved");
    assert!(files(&dir).is_empty(), "recovered and removed");
    assert!(writer.record(event("b")).await.unwrap(), "stored directly");
    assert_eq!(store.inbox_len().await.unwrap(), 2);
}
