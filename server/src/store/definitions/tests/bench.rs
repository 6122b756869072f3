//! Not a test: what one persist costs.

use std::time::Instant;

use super::*;

/// Not a test: prints what one persist costs. Run with
/// `cargo test -p warren --lib store::definitions::tests::bench -- --ignored --nocapture`
/// (WARREN_BENCH_DIR picks the file system).
#[tokio::test]
#[ignore]
async fn bench_persist() {
    let tmp = TempDir::new("bench");
    let dir = std::env::var_os("WARREN_BENCH_DIR")
        .map(|d| PathBuf::from(d).join("warren-defs-bench"))
        .unwrap_or_else(|| tmp.0.clone());
    let _ = std::fs::remove_dir_all(&dir);
    let store = DefinitionStore::open(&dir).await.unwrap();
    store.persist(&vhost("/")).await.unwrap();
    store.persist(&exchange("/", "x", true)).await.unwrap();
    const N: usize = 300;
    let report = |what: &str, started: Instant| {
        let ms = started.elapsed().as_secs_f64() * 1000.0 / N as f64;
        println!("{what}: {ms:.3} ms each ({N} runs)");
    };
    let started = Instant::now();
    for i in 0..N {
        store.persist(&queue("/", &format!("q{i}"), true, false)).await.unwrap();
    }
    report("declare durable queue (new)", started);
    let started = Instant::now();
    for i in 0..N {
        store.persist(&queue("/", &format!("q{i}"), true, false)).await.unwrap();
    }
    report("declare durable queue (existing)", started);
    let started = Instant::now();
    for i in 0..N {
        let cmd = bind("/", "x", "queue", &format!("q{i}"), "k", FieldTable::default());
        store.persist(&cmd).await.unwrap();
    }
    report("bind durable", started);
    let started = Instant::now();
    for i in 0..N {
        store.persist(&queue("/", &format!("t{i}"), false, false)).await.unwrap();
    }
    report("declare transient queue", started);
    let cmds: Vec<Cmd> = (0..N).map(|i| queue("/", &format!("batch{i}"), true, false)).collect();
    let started = Instant::now();
    store.persist_all(&cmds).await.unwrap();
    report("declare durable queue in one persist_all", started);
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
