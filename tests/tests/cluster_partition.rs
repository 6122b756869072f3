//! A cluster split by faults (docs/cluster.md): a node left without a
//! majority refuses definition changes at once and says why, shows the
//! partition in `cluster_status`, `/api/nodes` and a health check, and
//! takes changes again once the others are back; the exclusive queues of a
//! node that died are deleted by the others, while a brief pause deletes
//! nothing; and a node forgotten with `forget_cluster_node` takes its
//! classic queues with it.

mod cluster_support;
mod ctl_common;

use std::time::{Duration, Instant};

use cluster_support::{T, cluster_of_three};
use ctl_common::ctl;
use lapin::options::*;
use lapin::types::FieldTable;
use warren_tests::http::json;
use warren_tests::{eventually, reply_code, reply_text};

const MAJORITY_CHECK: &str = "/api/health/checks/metadata-majority";
const READY_CHECK: &str = "/api/health/checks/ready-to-serve-clients";

#[tokio::test]
async fn a_minority_node_refuses_changes_at_once_and_says_why() {
    let mut nodes = cluster_of_three().await;
    let api = nodes[0].api();
    assert_eq!(api.ok(MAJORITY_CHECK).await["status"], "ok");
    assert_eq!(api.ok(READY_CHECK).await["status"], "ok");
    let (_c, ch) = nodes[0].server.channel().await;
    let me = nodes[0].name.clone();

    nodes[1].server.kill();
    nodes[2].server.kill();
    let st = eventually(T, || async {
        let st = nodes[0].status().await;
        (st["partitions"][&me].as_array().map(Vec::len) == Some(2)).then_some(st)
    })
    .await
    .expect("the survivor never found the two others unreachable");
    let mut lost = vec![nodes[1].name.clone(), nodes[2].name.clone()];
    lost.sort();
    assert_eq!(st["partitions"][&me], json!(lost), "{st}");
    assert_eq!(st["running_nodes"], json!([me]), "{st}");
    let why = st["minority"].as_str().unwrap_or_default();
    assert!(why.contains("minority partition: 1 of 3 members reachable"), "{st}");
    let run = ctl(&nodes[0].server, &["cluster_status"]);
    let text = run.ok();
    let cut = format!("Node {me} cannot communicate with {}", lost.join(", "));
    assert!(text.contains(&cut) && text.contains("minority partition"), "{text}");
    for n in api.ok("/api/nodes").await.as_array().unwrap() {
        match n["name"] == json!(me) {
            true => assert_eq!(n["partitions"], json!(lost), "{n}"),
            false => assert_eq!(n["running"], false, "{n}"),
        }
    }

    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    let started = Instant::now();
    let e = ch.queue_declare("after-the-split".into(), durable, FieldTable::default()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "the refusal took {:?}", started.elapsed());
    assert_eq!(reply_code(&e), Some(541), "{e}");
    assert!(reply_text(&e).contains("minority partition: 1 of 3 members reachable"), "{e}");

    let started = Instant::now();
    let r = api.put("/api/vhosts/after-the-split", json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(2), "the refusal took {:?}", started.elapsed());
    assert_eq!(r.code(), 503, "{}", r.body);
    assert!(r.reason().contains("a majority is needed for metadata changes"), "{}", r.body);

    let r = api.get(MAJORITY_CHECK).await;
    assert_eq!(r.code(), 503, "{}", r.body);
    assert_eq!(r.body["status"], "failed", "{}", r.body);
    assert!(r.reason().contains("minority partition"), "{}", r.body);
    // A load balancer's readiness probe takes the node out of rotation.
    let r = api.get(READY_CHECK).await;
    assert_eq!(r.code(), 503, "{}", r.body);
    assert!(r.reason().contains("minority partition"), "{}", r.body);

    nodes[1].server.start_again();
    nodes[2].server.start_again();
    for n in &nodes {
        n.until_running(3).await;
    }
    let (_c, ch) = nodes[0].server.channel().await;
    let declared = eventually(T, || async {
        ch.queue_declare("after-the-split".into(), durable, FieldTable::default()).await.ok()
    })
    .await;
    assert!(declared.is_some(), "{}", nodes[0].server.log_text());
    let st = nodes[0].status().await;
    assert_eq!(st["partitions"], json!({}), "{st}");
    assert_eq!(st["minority"], json!(null), "{st}");
    assert_eq!(api.ok(MAJORITY_CHECK).await["status"], "ok");
    assert_eq!(api.ok(READY_CHECK).await["status"], "ok");
}

#[tokio::test]
async fn exclusive_queues_die_with_their_node_cluster_wide() {
    let mut nodes = cluster_of_three().await;
    let (_c1, ch1) = nodes[0].server.channel().await;
    let exclusive = QueueDeclareOptions { exclusive: true, ..Default::default() };
    ch1.queue_declare("owned-by-1".into(), exclusive, FieldTable::default()).await.unwrap();
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch1.queue_declare("durable-on-1".into(), durable, FieldTable::default()).await.unwrap();
    for n in &nodes[1..] {
        assert_eq!(n.api().get("/api/queues/%2F/owned-by-1").await.code(), 200, "{}", n.name);
    }

    // A pause shorter than the grace period deletes nothing.
    let pid = nodes[0].server.pid().unwrap() as libc::pid_t;
    let signal = |sig| assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    let apis: Vec<_> = nodes.iter().map(|n| n.api()).collect();
    let state = |i: usize, q: &'static str| {
        let api = apis[i].clone();
        async move { api.ok(&format!("/api/queues/%2F/{q}")).await["state"].clone() }
    };
    signal(libc::SIGSTOP);
    let down = eventually(T, || async { (state(1, "durable-on-1").await == "down").then_some(()) }).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal(libc::SIGCONT);
    assert!(down.is_some(), "node 2 never found node 1 down");
    let up = eventually(T, || async { (state(1, "durable-on-1").await == "running").then_some(()) }).await;
    assert!(up.is_some(), "node 2 never found node 1 up again");
    for n in &nodes {
        assert_eq!(n.api().get("/api/queues/%2F/owned-by-1").await.code(), 200, "{}", n.name);
    }

    nodes[0].server.kill();
    let killed = Instant::now();
    for n in &nodes[1..] {
        let api = n.api();
        let gone = eventually(T, || async {
            (api.get("/api/queues/%2F/owned-by-1").await.code() == 404).then_some(())
        })
        .await;
        assert!(gone.is_some(), "{} still lists the exclusive queue of the dead node", n.name);
    }
    assert!(killed.elapsed() < Duration::from_secs(15), "deleted only after {:?}", killed.elapsed());
    for (i, n) in nodes.iter().enumerate().skip(1) {
        assert_eq!(state(i, "durable-on-1").await, "down", "{}", n.name);
    }
}

/// An auto-delete queue homed on node 1 whose only consumer is on node 2:
/// when node 2 dies, node 1 drops the consumer it held for it, and the
/// queue, having lost its last consumer, is deleted on every node, as
/// RabbitMQ deletes it when its consumer's connection goes.
#[tokio::test]
async fn an_auto_delete_queue_goes_when_its_last_consumer_node_dies() {
    let mut nodes = cluster_of_three().await;
    let (_c1, ch1) = nodes[0].server.channel().await;
    let auto = QueueDeclareOptions { auto_delete: true, ..Default::default() };
    ch1.queue_declare("auto-on-1".into(), auto, FieldTable::default()).await.unwrap();
    let (_c2, ch2) = nodes[1].server.channel().await;
    let _consumer = ch2
        .basic_consume(
            "auto-on-1".into(),
            "far".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume through node 2");
    let api1 = nodes[0].api();
    let attached = eventually(T, || async {
        (api1.ok("/api/queues/%2F/auto-on-1").await["consumers"] == 1).then_some(())
    })
    .await;
    assert!(attached.is_some(), "node 1 never saw the consumer on node 2");
    // Five messages in a queue on node 2, which node 1's overview counts
    // while node 2 runs, and not once it is down.
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch2.queue_declare("held-by-2".into(), durable, FieldTable::default()).await.unwrap();
    for _ in 0..5 {
        ch2.basic_publish("".into(), "held-by-2".into(), Default::default(), b"m", Default::default())
            .await
            .unwrap();
    }
    let total = |api: warren_tests::http::Api| async move {
        api.ok("/api/overview").await["queue_totals"]["messages"].as_u64()
    };
    let counted = eventually(T, || async { (total(api1.clone()).await == Some(5)).then_some(()) }).await;
    assert!(counted.is_some(), "node 1's overview never counted node 2's messages");

    nodes[1].server.kill();
    let killed = Instant::now();
    for i in [0, 2] {
        let api = nodes[i].api();
        let gone = eventually(T, || async {
            (api.get("/api/queues/%2F/auto-on-1").await.code() == 404).then_some(())
        })
        .await;
        assert!(gone.is_some(), "{} still lists the auto-delete queue", nodes[i].name);
    }
    eprintln!("the auto-delete queue went {:?} after its consumer's node died", killed.elapsed());
    let uncounted = eventually(T, || async { (total(api1.clone()).await == Some(0)).then_some(()) }).await;
    assert!(uncounted.is_some(), "node 1's overview still counts the messages of a node that is down");
}

/// Node 3 is killed and at once forgotten with `warrenctl
/// forget_cluster_node` through node 1, before the grace period of a dead
/// member's exclusive queues: its exclusive queue goes from the others all
/// the same, and so do its other classic queues, transient and durable, as
/// RabbitMQ deletes a forgotten node's classic queues. A queue of node 1
/// stays.
#[tokio::test]
async fn a_forgotten_node_takes_its_classic_queues_with_it() {
    let mut nodes = cluster_of_three().await;
    let (_c3, ch3) = nodes[2].server.channel().await;
    let declare = |name: &'static str, opts: QueueDeclareOptions| {
        let ch = ch3.clone();
        async move { ch.queue_declare(name.into(), opts, FieldTable::default()).await.unwrap() }
    };
    declare("owned-by-3", QueueDeclareOptions { exclusive: true, ..Default::default() }).await;
    declare("transient-on-3", QueueDeclareOptions::default()).await;
    declare("durable-on-3", QueueDeclareOptions { durable: true, ..Default::default() }).await;
    let (_c1, ch1) = nodes[0].server.channel().await;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch1.queue_declare("durable-on-1".into(), durable, FieldTable::default()).await.unwrap();
    let names = |api: warren_tests::http::Api| async move {
        let listed = api.ok("/api/queues").await;
        let mut names: Vec<String> =
            listed.as_array().unwrap().iter().map(|q| q["name"].as_str().unwrap().to_owned()).collect();
        names.sort();
        names
    };
    for n in &nodes[..2] {
        let api = n.api();
        let all = ["durable-on-1", "durable-on-3", "owned-by-3", "transient-on-3"];
        let listed = eventually(T, || async { (names(api.clone()).await == all).then_some(()) }).await;
        assert!(listed.is_some(), "{} lists {:?}", n.name, names(api.clone()).await);
    }

    nodes[2].server.kill();
    let killed = Instant::now();
    // Retried while the others elect a new leader, if node 3 led.
    let forgotten = eventually(T, || async {
        let run = ctl(&nodes[0].server, &["forget_cluster_node", &nodes[2].name]);
        (run.code == 0).then_some(()).or_else(|| {
            eprintln!("forget_cluster_node: {run:?}");
            None
        })
    })
    .await;
    assert!(forgotten.is_some(), "{} was never forgotten", nodes[2].name);
    eprintln!("forgotten {:?} after the kill", killed.elapsed());
    for n in &nodes[..2] {
        let api = n.api();
        let left = eventually(Duration::from_secs(10), || async {
            (names(api.clone()).await == ["durable-on-1"]).then_some(())
        })
        .await;
        assert!(left.is_some(), "{} still lists {:?}", n.name, names(api.clone()).await);
    }
    eprintln!("the queues of the forgotten node went {:?} after the kill", killed.elapsed());
}
