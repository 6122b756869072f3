//! An interrupted transaction leaves the state before it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::*;

#[tokio::test]
async fn an_uncommitted_transaction_leaves_the_previous_state() {
    let tmp = TempDir::new("rollback");
    let store = DefinitionStore::open(&tmp.0).await.unwrap();
    persist_all(&store, &[vhost("/"), queue("/", "before", true, false)]).await;
    let before = store.load().await.unwrap();
    {
        let mut tx = store.pool.begin().await.unwrap();
        write::write_command(&mut tx, &delete_queue("/", "before")).await.unwrap();
        write::write_command(&mut tx, &queue("/", "during", true, false)).await.unwrap();
        write::write_command(&mut tx, &vhost("v2")).await.unwrap();
        // Dropped without commit, as when the task writing it is cancelled.
    }
    let store = reopen(store, &tmp.0).await;
    assert_eq!(store.load().await.unwrap(), before);
    store.close().await;
}

const CRASH_DIR_ENV: &str = "WARREN_DEFS_CRASH_CHILD_DIR";
const IN_TRANSACTION: &str = "WARREN-DEFS-IN-TRANSACTION";

/// The child half of `kill_9_mid_transaction_leaves_the_previous_state`: does
/// nothing unless that test runs it.
#[tokio::test]
async fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let store = DefinitionStore::open(Path::new(&dir)).await.unwrap();
    let mut tx = store.pool.begin().await.unwrap();
    // A tiny page cache makes SQLite spill uncommitted pages into the WAL
    // file before the commit, which is the state a crash must survive.
    sqlx::query("PRAGMA cache_size = 2").execute(&mut *tx).await.unwrap();
    write::write_command(&mut tx, &delete_queue("/", "before")).await.unwrap();
    for i in 0..2000 {
        let cmd = queue("/", &format!("during-{i}"), true, false);
        write::write_command(&mut tx, &cmd).await.unwrap();
    }
    println!("{IN_TRANSACTION}");
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(120)).await;
    panic!("the parent did not kill this process");
}

#[tokio::test]
async fn kill_9_mid_transaction_leaves_the_previous_state() {
    let tmp = TempDir::new("kill9");
    let store = DefinitionStore::open(&tmp.0).await.unwrap();
    persist_all(&store, &[vhost("/"), queue("/", "before", true, false)]).await;
    let before = store.load().await.unwrap();
    store.close().await;

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "store::definitions::tests::crash::crash_child", "--nocapture", "--test-threads=1"])
        .env(CRASH_DIR_ENV, &tmp.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reached = false;
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().contains(IN_TRANSACTION) {
            reached = true;
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(reached, "the child never got into its transaction ({status})");
    assert!(!status.success());
    let wal = std::fs::metadata(tmp.0.join(format!("{FILE_NAME}-wal"))).map(|m| m.len()).unwrap_or(0);
    assert!(wal > 0, "the uncommitted transaction never reached the WAL");

    let store = DefinitionStore::open(&tmp.0).await.unwrap();
    assert_eq!(store.load().await.unwrap(), before);
    let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&store.pool).await.unwrap();
    assert_eq!(check, "ok");
    let fk_violations: Vec<(String, i64, String, i64)> =
        sqlx::query_as("PRAGMA foreign_key_check").fetch_all(&store.pool).await.unwrap();
    assert!(fk_violations.is_empty());
    store.close().await;
}
