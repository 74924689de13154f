//! A real PostgreSQL server for the tests, and a fresh database per test.
//!
//! With `THREADSMITH_TEST_POSTGRES_URL` set (`.ci/run` starts Debian's cluster and sets it), that
//! server is used: it must accept `CREATE DATABASE` from that URL's user. Without it, the first
//! test that asks starts a private server from the installed PostgreSQL binaries (`initdb` and
//! `postgres` from `/usr/lib/postgresql/*/bin` or `pg_config --bindir`) in a temporary
//! directory, listening on 127.0.0.1 at a free port; it stops when the test process exits. A
//! machine without PostgreSQL fails these tests with a message saying what to install: they
//! never skip themselves.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

struct Server {
    /// Connects as a superuser to the `postgres` database.
    admin_url: String,
    _child: Option<Child>,
}

static SERVER: OnceCell<Server> = OnceCell::const_new();

/// A new, empty database on the test server; returns its URL.
pub async fn database() -> String {
    let server = SERVER.get_or_init(start).await;
    let name = format!("ts_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&server.admin_url)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create a test database");
    admin.close().await;
    let base = server
        .admin_url
        .rsplit_once('/')
        .map_or(server.admin_url.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

async fn start() -> Server {
    if let Ok(url) = std::env::var("THREADSMITH_TEST_POSTGRES_URL") {
        return Server {
            admin_url: url,
            _child: None,
        };
    }
    // The server gets SIGTERM when the thread that started it ends (PR_SET_PDEATHSIG is per
    // thread): start it from a thread that lives as long as the test process.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(start_private());
        loop {
            std::thread::park();
        }
    });
    rx.await.expect("start PostgreSQL")
}

fn bindir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b).unwrap_or_else(|| {
        panic!(
            "these tests need PostgreSQL: install the `postgresql` package (Debian) or set THREADSMITH_TEST_POSTGRES_URL to a server where the user may CREATE DATABASE"
        )
    })
}

/// `initdb` refuses to run as root: run the server as the `postgres` user then.
fn as_server_user(program: &Path) -> Command {
    let root = std::env::var("USER").is_ok_and(|u| u == "root")
        || std::fs::read_to_string("/proc/self/status")
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

fn start_private() -> Server {
    let bin = bindir();
    // Servers of earlier test processes stopped with them; their directories go too.
    for e in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("threadsmith-pg-")
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let dir = std::env::temp_dir().join(format!("threadsmith-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the PostgreSQL directory");
    let data = dir.join("data");
    // The server user must own its directory.
    let _ = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(&dir)
        .status();
    let out = as_server_user(&bin.join("initdb"))
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .output()
        .expect("run initdb");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let mut cmd = as_server_user(&bin.join("postgres"));
    cmd.arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(&dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("server.log")).expect("server log"),
        ));
    // The server stops when this test process ends, however it ends.
    #[cfg(target_os = "linux")]
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("start postgres");
    let admin_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    // Ready when it accepts a TCP connection and answers a query.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Server {
        admin_url,
        _child: Some(child),
    }
}
