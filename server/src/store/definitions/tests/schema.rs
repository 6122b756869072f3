//! Opening: a fresh schema, and refusing a database from a newer Warren.

use super::*;

#[tokio::test]
async fn fresh_open_creates_the_schema_and_reopen_is_not_new() {
    let tmp = TempDir::new("fresh");
    let dir = tmp.0.join("nested").join("data");
    let store = DefinitionStore::open(&dir).await.unwrap();
    assert!(store.is_new());
    assert!(dir.join(FILE_NAME).exists());

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
         AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "bindings",
            "exchanges",
            "global_parameters",
            "operator_policies",
            "parameters",
            "permissions",
            "policies",
            "queues",
            "raft_log",
            "raft_state",
            "topic_permissions",
            "user_limits",
            "users",
            "vhost_limits",
            "vhosts"
        ]
    );
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&store.pool).await.unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&store.pool).await.unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&store.pool).await.unwrap();
    assert_eq!(fk, 1);
    assert_eq!(store.load().await.unwrap(), Snapshot::default());

    let store = reopen(store, &dir).await;
    assert_eq!(store.load().await.unwrap(), Snapshot::default());
    store.close().await;
}

#[tokio::test]
async fn a_database_from_a_newer_warren_is_refused_and_left_alone() {
    let tmp = TempDir::new("newer");
    let store = DefinitionStore::open(&tmp.0).await.unwrap();
    persist_all(&store, &[vhost("/"), queue("/", "q", true, false)]).await;
    store.close().await;

    let mut conn = raw_connection(&tmp.0).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (1000, 'from the future', 1, x'00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let before = dir_contents(&tmp.0);

    let err = match DefinitionStore::open(&tmp.0).await {
        Ok(_) => panic!("a database from the future was opened"),
        Err(e) => e,
    };
    match &err {
        StoreError::NewerSchema { found, supported, unknown, .. } => {
            assert_eq!((*found, *supported), (1000, 3));
            assert_eq!(unknown, &[1000]);
        }
        other => panic!("unexpected error: {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("schema version 1000") && message.contains("up to 3"), "{message}");
    assert!(message.contains("newer Warren"), "{message}");
    assert_eq!(dir_contents(&tmp.0), before, "the refused database was modified");
}

#[tokio::test]
async fn a_newer_database_with_committed_data_in_its_wal_is_refused_and_left_alone() {
    let tmp = TempDir::new("newer-wal");
    let store = DefinitionStore::open(&tmp.0).await.unwrap();
    store.persist(&vhost("/")).await.unwrap();
    store.close().await;

    // The newer Warren's last commit is still in the WAL: its connection was
    // never closed (as after a crash), so nothing was checkpointed.
    let mut conn = raw_connection(&tmp.0).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (1000, 'from the future', 1, x'00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    std::mem::forget(conn);
    let wal = format!("{FILE_NAME}-wal");
    let mut before = dir_contents(&tmp.0);
    assert!(before[&wal].0 > 0, "the commit is not in the WAL");

    match DefinitionStore::open(&tmp.0).await {
        Err(StoreError::NewerSchema { found: 1000, .. }) => {}
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a database from the future was opened"),
    }
    // The -shm file is SQLite's shared-memory index of the WAL, rebuilt by
    // any reader; the database and its log are what must not change.
    let mut after = dir_contents(&tmp.0);
    let shm = format!("{FILE_NAME}-shm");
    before.remove(&shm);
    after.remove(&shm);
    assert_eq!(after, before, "the refused database was modified");
}
