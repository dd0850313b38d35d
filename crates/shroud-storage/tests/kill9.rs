//! Crash durability: every write acknowledged before a SIGKILL is in the database afterwards.
//!
//! The test re-executes this test binary as a child process that runs
//! [`kill9_child_writer`]: 32 tasks write keys concurrently and print each key only after its
//! write was acknowledged. The parent reads those lines from the pipe, kills the child with
//! SIGKILL mid-stream, reopens the database and checks every acknowledged key.

use shroud_core::Storage;
use shroud_storage::SqliteStorage;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Set in the child's environment to the database path; its presence makes the child test act.
const CHILD_DB_ENV: &str = "SHROUD_STORAGE_KILL9_DB";
const CHILD_TEST: &str = "kill9_child_writer";
const TASKS: usize = 32;
/// Each child task stops after this many writes, so the child ends even if never killed.
const WRITES_PER_TASK: usize = 2000;
/// The parent kills the child after this many acknowledgements.
const ACKS_BEFORE_KILL: usize = 500;
/// Upper bound on the whole exchange; only reached if the child hangs.
const DEADLINE: Duration = Duration::from_secs(120);
const ACK_PREFIX: &str = "ACK ";

fn value_for(key: &str) -> Vec<u8> {
    // Distinct per key and big enough to span more than a trivial record.
    format!("value-of-{key}-").repeat(8).into_bytes()
}

/// The child: only does something when the parent started it with the database path.
#[test]
#[ignore = "run by acknowledged_writes_survive_sigkill as a child process"]
fn kill9_child_writer() {
    let Some(path) = std::env::var_os(CHILD_DB_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let storage = std::sync::Arc::new(SqliteStorage::open(Path::new(&path)).unwrap());
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let storage = storage.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..WRITES_PER_TASK {
                    let key = format!("kill9/{t:02}/{i:05}");
                    storage.put(&key, &value_for(&key)).await.unwrap();
                    // Only now is the write acknowledged; one locked write per line keeps
                    // lines whole across tasks.
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{ACK_PREFIX}{key}").unwrap();
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
    let path = dir.path().join("kill9.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            CHILD_TEST,
            "--nocapture",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_DB_ENV, &path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    // Read the pipe on its own thread so the wait below can be bounded.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let deadline = Instant::now() + DEADLINE;
    let mut acked = HashSet::new();
    while acked.len() < ACKS_BEFORE_KILL {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(remaining) {
            Ok(line) => {
                if let Some(key) = line.strip_prefix(ACK_PREFIX) {
                    acked.insert(key.to_owned());
                }
            }
            Err(e) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                panic!(
                    "child stopped acknowledging after {} writes ({e:?}, {status})",
                    acked.len()
                );
            }
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no final commit or checkpoint
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the child must have been killed, not finished: {status}"
    );
    // Acknowledgements already in the pipe when the child died count too.
    for line in rx.iter() {
        if let Some(key) = line.strip_prefix(ACK_PREFIX) {
            acked.insert(key.to_owned());
        }
    }
    reader.join().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let storage = SqliteStorage::open(&path).expect("reopen after SIGKILL");
        let mut missing = Vec::new();
        for key in &acked {
            match storage.get(key).await.unwrap() {
                Some(v) => assert_eq!(v, value_for(key), "wrong value for {key}"),
                None => missing.push(key.clone()),
            }
        }
        assert!(
            missing.is_empty(),
            "{} acknowledged writes lost, e.g. {:?}",
            missing.len(),
            missing.first()
        );
        let seq = storage.sequence().await.unwrap();
        assert!(
            seq >= acked.len() as u64,
            "sequence {seq} < {} acknowledged writes",
            acked.len()
        );
        let stored = storage.list("kill9/").await.unwrap().len();
        assert!(stored >= acked.len());
    });
}
