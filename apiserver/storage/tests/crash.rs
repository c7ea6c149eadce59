//! Crash safety of the embedded store: a child process writes as fast as it
//! can and prints each key once its write is acknowledged; it is killed
//! with SIGKILL mid-stream, and every acknowledged key must be in the
//! reopened store, with the database intact.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rkube_storage::sqlite::{SqliteConfig, SqliteStore};
use rkube_storage::{RangeRequest, Storage};

const CHILD_ENV: &str = "RKUBE_CRASH_CHILD_DB";

/// The child's body; a no-op unless the parent set the environment.
#[test]
fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round = std::env::var("RKUBE_CRASH_ROUND").unwrap_or_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store = Arc::new(SqliteStore::open(SqliteConfig::new(path)).unwrap());
        let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let mut tasks = Vec::new();
        for w in 0..16 {
            let (store, out, round) = (store.clone(), out.clone(), round.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("/crash/r{round}/w{w}-{i}");
                    store
                        .create(&key, Bytes::from(vec![b'v'; 512]), None)
                        .await
                        .unwrap();
                    let mut out = out.lock().unwrap();
                    writeln!(out, "ack {key}").unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let exe = std::env::current_exe().unwrap();
    let mut acked = Vec::new();
    for round in 0..4 {
        let mut child = Command::new(&exe)
            .args([
                "crash_child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &db)
            .env("RKUBE_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let started = Instant::now();
        let mut this_round = 0;
        // Kill after a varying number of acknowledgements.
        let target = 500 + round * 700;
        while let Some(Ok(line)) = lines.next() {
            if let Some(key) = line.strip_prefix("ack ") {
                acked.push(key.to_owned());
                this_round += 1;
            }
            if this_round >= target || started.elapsed() > Duration::from_secs(20) {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        // Acknowledgements printed before the kill landed count too.
        for line in lines.map_while(Result::ok) {
            if let Some(key) = line.strip_prefix("ack ") {
                acked.push(key.to_owned());
            }
        }
        child.wait().unwrap();
        assert!(
            this_round > 0,
            "round {round}: the child acknowledged no write"
        );

        let conn = rusqlite::Connection::open(&db).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        drop(conn);

        let rt = tokio::runtime::Runtime::new().unwrap();
        let missing = rt.block_on(async {
            let store = SqliteStore::open(SqliteConfig::new(&db)).unwrap();
            let all = store
                .range(RangeRequest {
                    prefix: "/crash/".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            let present: std::collections::HashSet<_> =
                all.kvs.into_iter().map(|kv| kv.key).collect();
            acked
                .iter()
                .filter(|k| !present.contains(*k))
                .cloned()
                .collect::<Vec<_>>()
        });
        assert!(
            missing.is_empty(),
            "round {round}: lost acknowledged keys {missing:?}"
        );
    }
}

#[test]
fn a_damaged_file_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    std::fs::write(&db, vec![0x42u8; 64 * 1024]).unwrap();
    let err = SqliteStore::open(SqliteConfig::new(&db))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("it was left as it is"), "{err}");
    // Still there, untouched.
    assert_eq!(std::fs::read(&db).unwrap(), vec![0x42u8; 64 * 1024]);
}

#[test]
fn a_second_process_on_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let _first = SqliteStore::open(SqliteConfig::new(&db)).unwrap();
    let err = SqliteStore::open(SqliteConfig::new(&db))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("in use"), "{err}");
}

#[test]
fn data_and_revisions_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rev = rt.block_on(async {
        let store = SqliteStore::open(SqliteConfig::new(&db)).unwrap();
        let kv = store
            .create("/a/b", Bytes::from_static(b"1"), None)
            .await
            .unwrap();
        store
            .update("/a/b", Bytes::from_static(b"2"), kv.mod_revision, None)
            .await
            .unwrap()
            .mod_revision
    });
    rt.block_on(async {
        // The lock is released once the first store is dropped.
        let store = loop {
            match SqliteStore::open(SqliteConfig::new(&db)) {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        assert_eq!(store.current_revision().await.unwrap(), rev);
        let kv = store.get("/a/b", None).await.unwrap().kv.unwrap();
        assert_eq!((kv.value.as_ref(), kv.version), (&b"2"[..], 2));
        let next = store
            .create("/a/c", Bytes::from_static(b"x"), None)
            .await
            .unwrap();
        assert_eq!(next.mod_revision, rev + 1);
    });
}
