//! Replicated queues (docs/cluster.md, "Replicated queues"): a quorum
//! queue, and queues an `ha-mode` policy matches, kept by a Raft group of
//! several nodes. Each test runs three real warren-server processes,
//! publishes with confirms through the nodes, kills the node that leads
//! the queue with SIGKILL, and counts: every confirmed message must come
//! back (lost = 0), none that was never published may appear, and
//! duplicates are counted and reported.

mod cluster_support;
mod ctl_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cluster_support::{Node, T, cluster_of_three};
use ctl_common::ctl;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use warren_tests::eventually;
use warren_tests::http::json;

fn quorum_args() -> FieldTable {
    let mut t = FieldTable::default();
    t.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    t
}

async fn try_channel(uri: &str) -> Option<(Connection, Channel)> {
    let c = Connection::connect(uri, ConnectionProperties::default()).await.ok()?;
    let ch = c.create_channel().await.ok()?;
    Some((c, ch))
}

/// The node that leads `queue`, as the management API of `via` says.
async fn leader_of(via: &Node, queue: &str) -> Option<String> {
    let q = via.api().get(&format!("/api/queues/%2F/{queue}")).await;
    if q.code() != 200 {
        return None;
    }
    q.body["leader"].as_str().map(str::to_owned)
}

/// The end of a node's log, for a failure's message.
fn tail(n: &Node) -> String {
    let log = n.server.log_text();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// What a publisher saw: confirmed ids, nacked ids, and ids sent without
/// an answer (indeterminate).
#[derive(Default)]
struct Published {
    acked: BTreeSet<u64>,
    nacked: usize,
    unknown: BTreeSet<u64>,
    sent: u64,
}

/// Publishes `prefix`-numbered persistent messages with confirms to
/// `queue` through the nodes in `uris` (first one first), a window at a
/// time, reconnecting to the next node when a connection fails, until
/// `stop`. Every id is unique: `base + n`.
async fn publish_until(
    uris: Vec<String>,
    queue: &'static str,
    base: u64,
    stop: Arc<AtomicBool>,
    acked_count: Arc<AtomicUsize>,
) -> Published {
    let mut out = Published { sent: base, ..Default::default() };
    let mut turn = 0;
    while !stop.load(Ordering::Relaxed) {
        let uri = &uris[turn % uris.len()];
        turn += 1;
        let Some((_c, ch)) = try_channel(uri).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if ch.confirm_select(ConfirmSelectOptions::default()).await.is_err() {
            continue;
        }
        'conn: while !stop.load(Ordering::Relaxed) {
            let mut window = Vec::new();
            for _ in 0..100 {
                let id = out.sent;
                out.sent += 1;
                let props = BasicProperties::default().with_delivery_mode(2);
                let body = format!("m{id}");
                match ch
                    .basic_publish("".into(), queue.into(), Default::default(), body.as_bytes(), props)
                    .await
                {
                    Ok(confirm) => window.push((id, confirm)),
                    Err(_) => {
                        out.unknown.insert(id);
                        break;
                    }
                }
            }
            let mut broken = false;
            for (id, confirm) in window {
                let Ok(confirm) = tokio::time::timeout(Duration::from_secs(10), confirm).await else {
                    out.unknown.insert(id);
                    broken = true;
                    continue;
                };
                match confirm {
                    Ok(c) if c.is_ack() => {
                        out.acked.insert(id);
                        acked_count.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        out.nacked += 1;
                        out.unknown.insert(id);
                    }
                    Err(_) => {
                        out.unknown.insert(id);
                        broken = true;
                    }
                }
            }
            if broken {
                break 'conn;
            }
        }
    }
    out
}

/// Drains `queue` through `node` with basic.get and acks: each id and how
/// many times it came. A get refused while the queue elects a leader is
/// tried again on a new channel, as a client would.
async fn drain(node: &Node, queue: &str) -> BTreeMap<u64, u32> {
    let mut got = BTreeMap::new();
    let deadline = Instant::now() + T;
    'channel: while Instant::now() < deadline {
        let Some((_c, ch)) = try_channel(&node.server.uri()).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        loop {
            let m = match ch.basic_get(queue.into(), BasicGetOptions { no_ack: false }).await {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("basic.get on {}: {e}; trying again", node.name);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue 'channel;
                }
            };
            let Some(m) = m else { return got };
            let body = String::from_utf8(m.delivery.data.clone()).unwrap();
            let id: u64 = body.strip_prefix('m').and_then(|k| k.parse().ok()).expect("a published body");
            *got.entry(id).or_insert(0) += 1;
            if m.delivery.ack(BasicAckOptions::default()).await.is_err() {
                continue 'channel;
            }
        }
    }
    panic!("could not drain {queue} through {}", node.name);
}

/// The checker: every confirmed id consumed, nothing unpublished.
fn check(published: &[&Published], got: &BTreeMap<u64, u32>) {
    let acked: BTreeSet<u64> = published.iter().flat_map(|p| p.acked.iter().copied()).collect();
    let unknown: BTreeSet<u64> = published.iter().flat_map(|p| p.unknown.iter().copied()).collect();
    let lost: Vec<u64> = acked.iter().filter(|id| !got.contains_key(id)).copied().collect();
    let unexpected: Vec<u64> =
        got.keys().filter(|id| !acked.contains(id) && !unknown.contains(id)).copied().collect();
    let duplicated = got.values().filter(|n| **n > 1).count();
    let indeterminate_seen = got.keys().filter(|id| unknown.contains(id)).count();
    eprintln!(
        "checker: acked {}, consumed {}, lost {}, unexpected {}, duplicated {duplicated}, indeterminate seen {indeterminate_seen} of {}",
        acked.len(),
        got.len(),
        lost.len(),
        unexpected.len(),
        unknown.len()
    );
    assert!(
        lost.is_empty(),
        "{} confirmed messages lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(unexpected.is_empty(), "messages never published: {:?}", &unexpected[..unexpected.len().min(10)]);
}

/// A quorum queue declared through node 1 is led there; confirmed
/// publishes through nodes 1 and 2 go on while node 1 is killed; a new
/// leader serves within a second or so, and after draining through node 3
/// nothing confirmed is missing. The killed node comes back and catches up.
#[tokio::test]
async fn a_quorum_queue_survives_the_loss_of_its_leader() {
    let mut nodes = cluster_of_three().await;
    let (_c, ch) = nodes[0].server.channel().await;
    let opts = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare("qq".into(), opts, quorum_args()).await.expect("a quorum queue");
    let q = nodes[2].api().ok("/api/queues/%2F/qq").await;
    assert_eq!(q["type"], "quorum", "{q}");
    // Another node knows the leader once the declare is answered (give it
    // a moment on a loaded machine: the leader's announcement travels on).
    let leader = eventually(Duration::from_secs(2), || leader_of(&nodes[2], "qq"))
        .await
        .expect("a leader known on node 3");
    assert_eq!(leader, nodes[0].name, "the declaring node leads first");
    // Node 3 lists the members once its own member has the membership
    // (a moment after the declare is answered, on a loaded machine).
    let api3 = nodes[2].api();
    let members = eventually(Duration::from_secs(5), || async {
        let q = api3.ok("/api/queues/%2F/qq").await;
        (q["members"].as_array().map(|m| m.len()) == Some(3)).then_some(())
    })
    .await;
    assert!(members.is_some(), "node 3 never listed three members: {q}");

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let via = |i: usize| nodes[i].server.uri();
    let p1 = tokio::spawn(publish_until(vec![via(0), via(1), via(2)], "qq", 0, stop.clone(), acked.clone()));
    let p2 = tokio::spawn(publish_until(vec![via(1), via(2)], "qq", 1 << 40, stop.clone(), acked.clone()));
    assert!(
        eventually(T, || async { (acked.load(Ordering::Relaxed) >= 2000).then_some(()) }).await.is_some(),
        "publishing never got going"
    );
    nodes[0].server.kill();
    let killed = Instant::now();
    let before = acked.load(Ordering::Relaxed);
    let back =
        eventually(T, || async { (acked.load(Ordering::Relaxed) >= before + 500).then_some(()) }).await;
    assert!(
        back.is_some(),
        "publishes were never confirmed again after the leader died\n--- node 2:\n{}\n--- node 3:\n{}",
        tail(&nodes[1]),
        tail(&nodes[2])
    );
    eprintln!("confirms resumed {:?} after the leader was killed", killed.elapsed());
    let new_leader = leader_of(&nodes[1], "qq").await.expect("a new leader");
    assert_ne!(new_leader, nodes[0].name);
    stop.store(true, Ordering::Relaxed);
    let a = tokio::time::timeout(T, p1).await.expect("publisher 1 stops").unwrap();
    let b = tokio::time::timeout(T, p2).await.expect("publisher 2 stops").unwrap();

    // The killed node comes back, catches up, and holds what the others do.
    nodes[0].server.start_again();
    for n in &nodes {
        n.until_running(3).await;
    }
    let got = drain(&nodes[2], "qq").await;
    check(&[&a, &b], &got);
    let empty = eventually(T, || async {
        let q = nodes[0].api().get("/api/queues/%2F/qq").await;
        (q.code() == 200 && q.body["messages"] == json!(0)).then_some(())
    })
    .await;
    assert!(empty.is_some(), "the restarted node never saw the queue drained");
}

/// Publishes `n` persistent messages `m{base}`.. with confirms through
/// `node`; all must be confirmed.
async fn publish_confirmed(node: &Node, queue: &str, base: u64, n: u64) -> Published {
    let (_c, ch) = node.server.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let mut out = Published { sent: base, ..Default::default() };
    let mut window = Vec::new();
    for id in base..base + n {
        let props = BasicProperties::default().with_delivery_mode(2);
        let body = format!("m{id}");
        let c = ch
            .basic_publish("".into(), queue.into(), Default::default(), body.as_bytes(), props)
            .await
            .unwrap();
        window.push((id, c));
    }
    for (id, c) in window {
        assert!(c.await.unwrap().is_ack(), "m{id} was not confirmed");
        out.acked.insert(id);
    }
    out.sent = base + n;
    out
}

/// Waits until `via` lists `queue` with `n` members, all online.
async fn until_members(via: &Node, queue: &str, n: usize) -> serde_json::Value {
    let last = std::sync::Mutex::new(serde_json::Value::Null);
    let found = eventually(T, || async {
        let q = via.api().get(&format!("/api/queues/%2F/{queue}")).await;
        let members = q.body["members"].as_array().map_or(0, |m| m.len());
        let online = q.body["online"].as_array().map_or(0, |m| m.len());
        let ok = q.code() == 200 && members == n && online == n && q.body["leader"].is_string();
        *last.lock().unwrap() = q.body.clone();
        ok.then_some(q.body)
    })
    .await;
    found.unwrap_or_else(|| {
        let q = last.lock().unwrap().clone();
        panic!("{queue} never had {n} members online: {q}\n--- {}:\n{}", via.name, tail(via))
    })
}

/// The tutorial's 11.2 with warrenctl: a durable queue `lqz` with
/// messages already in it on node 1; `set_policy ha-all '^lqz'
/// '{"ha-mode":"all","ha-sync-mode":"automatic"}'` makes it replicated on
/// all three nodes (`list_queues name type leader members` says so); node
/// 1 is killed, and node 2 serves every message, old and new.
#[tokio::test]
async fn the_tutorial_ha_all_policy_replicates_an_existing_queue() {
    let mut nodes = cluster_of_three().await;
    let (_c, ch) = nodes[0].server.channel().await;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare("lqz".into(), durable, FieldTable::default()).await.unwrap();
    let before = publish_confirmed(&nodes[0], "lqz", 0, 300).await;
    ctl(
        &nodes[0].server,
        &["set_policy", "ha-all", "^lqz", r#"{"ha-mode":"all","ha-sync-mode":"automatic"}"#],
    )
    .ok();
    let q = until_members(&nodes[1], "lqz", 3).await;
    assert_eq!(q["leader"], json!(nodes[0].name), "{q}");
    let counted = eventually(T, || async {
        let q = nodes[1].api().ok("/api/queues/%2F/lqz").await;
        (q["messages"] == json!(300)).then_some(())
    })
    .await;
    assert!(counted.is_some(), "node 2 never counted the 300 messages");
    let listed =
        ctl(&nodes[2].server, &["--formatter", "json", "list_queues", "name", "type", "leader", "members"]);
    let listed = listed.json();
    assert_eq!(listed[0]["name"], "lqz", "{listed}");
    assert_eq!(listed[0]["members"].as_array().map(|m| m.len()), Some(3), "{listed}");
    let after = publish_confirmed(&nodes[1], "lqz", 1000, 300).await;

    nodes[0].server.kill();
    let served = eventually(T, || async {
        let l = leader_of(&nodes[1], "lqz").await?;
        (l != nodes[0].name).then_some(l)
    })
    .await;
    assert!(served.is_some(), "no new leader after the kill");
    let got = drain(&nodes[1], "lqz").await;
    check(&[&before, &after], &got);
    assert_eq!(got.len(), 600);
}

/// A policy change from `exactly 2` to `all` adds the third node to a live
/// queue with a backlog while a publisher goes on; then the leader is
/// killed, and the queue, now on three nodes, keeps every message.
#[tokio::test]
async fn a_policy_change_grows_a_live_queue() {
    let mut nodes = cluster_of_three().await;
    ctl(&nodes[0].server, &["set_policy", "ha-two", "^two", r#"{"ha-mode":"exactly","ha-params":2}"#]).ok();
    let (_c, ch) = nodes[0].server.channel().await;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare("two".into(), durable, FieldTable::default()).await.unwrap();
    let q = until_members(&nodes[2], "two", 2).await;
    let members: Vec<String> =
        q["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect();
    assert!(members.contains(&nodes[0].name), "{q}");
    let backlog = publish_confirmed(&nodes[2], "two", 0, 2000).await;

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let uris = vec![nodes[1].server.uri(), nodes[2].server.uri()];
    let p = tokio::spawn(publish_until(uris, "two", 1 << 40, stop.clone(), acked.clone()));
    ctl(&nodes[1].server, &["set_policy", "ha-two", "^two", r#"{"ha-mode":"all"}"#]).ok();
    until_members(&nodes[2], "two", 3).await;
    let more = acked.load(Ordering::Relaxed);
    assert!(
        eventually(T, || async { (acked.load(Ordering::Relaxed) >= more + 500).then_some(()) })
            .await
            .is_some(),
        "publishing stopped while the queue grew"
    );
    stop.store(true, Ordering::Relaxed);
    let live = tokio::time::timeout(T, p).await.expect("the publisher stops").unwrap();

    // The leader goes: the two others (one of them the new member) hold
    // everything between them.
    nodes[0].server.kill();
    let led = eventually(T, || async {
        let l = leader_of(&nodes[2], "two").await?;
        (l != nodes[0].name).then_some(l)
    })
    .await;
    assert!(led.is_some(), "no new leader after the kill");
    let got = drain(&nodes[2], "two").await;
    check(&[&backlog, &live], &got);
}

/// Every node of the cluster restarts (SIGTERM, then start): replicated
/// queues and their messages are all there afterwards.
#[tokio::test]
async fn a_whole_cluster_restart_keeps_replicated_queues() {
    let mut nodes = cluster_of_three().await;
    let (_c, ch) = nodes[1].server.channel().await;
    let opts = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare("qr".into(), opts, quorum_args()).await.unwrap();
    drop((_c, ch));
    let published = publish_confirmed(&nodes[2], "qr", 0, 1000).await;
    for n in nodes.iter_mut() {
        n.server.stop();
    }
    for n in nodes.iter_mut() {
        n.server.start_again();
    }
    for n in &nodes {
        n.until_running(3).await;
    }
    until_members(&nodes[0], "qr", 3).await;
    let got = drain(&nodes[0], "qr").await;
    check(&[&published], &got);
    assert_eq!(got.len(), 1000);
}

/// Consumers on the surviving nodes keep consuming through a kill -9 of
/// the leader, without consuming again: their deliveries resume from the
/// new leader, and what they had not acked comes back redelivered. A
/// consumer that asked for `x-cancel-on-ha-failover` gets basic.cancel
/// instead.
#[tokio::test]
async fn consumers_on_other_nodes_go_on_after_the_leader_dies() {
    use futures_lite::StreamExt;
    let mut nodes = cluster_of_three().await;
    let (_c, ch) = nodes[0].server.channel().await;
    let opts = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare("qc".into(), opts, quorum_args()).await.unwrap();
    until_members(&nodes[1], "qc", 3).await;

    // Two consumers, on nodes 2 and 3, acking everything they get.
    let got = Arc::new(std::sync::Mutex::new(BTreeMap::<u64, u32>::new()));
    let redelivered = Arc::new(AtomicUsize::new(0));
    let mut consumers = Vec::new();
    for (i, n) in nodes[1..].iter().enumerate() {
        let (c, ch) = n.server.channel().await;
        ch.basic_qos(50, BasicQosOptions::default()).await.unwrap();
        let mut stream = ch
            .basic_consume(
                "qc".into(),
                format!("c{i}").into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let (got, redelivered) = (got.clone(), redelivered.clone());
        consumers.push((
            c,
            tokio::spawn(async move {
                while let Some(Ok(d)) = stream.next().await {
                    let body = String::from_utf8(d.data.clone()).unwrap();
                    let id: u64 = body.strip_prefix('m').and_then(|k| k.parse().ok()).unwrap();
                    *got.lock().unwrap().entry(id).or_insert(0) += 1;
                    if d.redelivered {
                        redelivered.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = d.ack(BasicAckOptions::default()).await;
                }
            }),
        ));
    }
    // And one that wants to be told.
    let (_c3, ch3) = nodes[2].server.channel().await;
    let mut args = FieldTable::default();
    args.insert("x-cancel-on-ha-failover".into(), AMQPValue::Boolean(true));
    let mut told =
        ch3.basic_consume("qc".into(), "told".into(), BasicConsumeOptions::default(), args).await.unwrap();
    let told_ended = tokio::spawn(async move {
        while let Some(Ok(d)) = told.next().await {
            let _ = d.nack(BasicNackOptions { requeue: true, ..Default::default() }).await;
        }
    });

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let uris = vec![nodes[1].server.uri(), nodes[2].server.uri()];
    let p = tokio::spawn(publish_until(uris, "qc", 0, stop.clone(), acked.clone()));
    assert!(
        eventually(T, || async { (got.lock().unwrap().len() >= 1000).then_some(()) }).await.is_some(),
        "no consuming"
    );
    nodes[0].server.kill();
    let seen = got.lock().unwrap().len();
    let going_on = eventually(T, || async { (got.lock().unwrap().len() >= seen + 1000).then_some(()) }).await;
    assert!(going_on.is_some(), "the consumers never got messages again after the leader died");
    stop.store(true, Ordering::Relaxed);
    let published = tokio::time::timeout(T, p).await.expect("the publisher stops").unwrap();
    // Everything confirmed reaches the consumers in the end.
    let all = eventually(T, || async {
        let g = got.lock().unwrap();
        published.acked.iter().all(|id| g.contains_key(id)).then_some(())
    })
    .await;
    let g = got.lock().unwrap().clone();
    check(&[&published], &g);
    assert!(all.is_some());
    eprintln!("redelivered after the failover: {}", redelivered.load(Ordering::Relaxed));
    assert!(
        tokio::time::timeout(T, told_ended).await.is_ok(),
        "the consumer with x-cancel-on-ha-failover was not cancelled"
    );
}

/// `ha-mode: all` means every node: a node that joins the cluster becomes
/// a member of the queue, and takes over when the others' leader dies.
#[tokio::test]
async fn an_ha_all_queue_grows_to_a_node_that_joins() {
    let mut nodes = cluster_of_three().await;
    ctl(&nodes[0].server, &["set_policy", "ha-all", "^grow", r#"{"ha-mode":"all"}"#]).ok();
    let (_c, ch) = nodes[0].server.channel().await;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare("grow".into(), durable, FieldTable::default()).await.unwrap();
    until_members(&nodes[1], "grow", 3).await;
    let published = publish_confirmed(&nodes[0], "grow", 0, 200).await;
    let fourth = Node::start(4, cluster_support::SECRET);
    fourth.join(&nodes[0]).await;
    fourth.until_running(4).await;
    let q = until_members(&fourth, "grow", 4).await;
    assert!(q["members"].as_array().unwrap().contains(&json!(fourth.name)), "{q}");
    nodes[0].server.kill();
    let led = eventually(T, || async {
        let l = leader_of(&fourth, "grow").await?;
        (l != nodes[0].name).then_some(l)
    })
    .await;
    assert!(led.is_some(), "no new leader after the kill");
    let got = drain(&fourth, "grow").await;
    check(&[&published], &got);
}

/// A replicated queue with fewer than a majority of its members running
/// is listed as `minority`, as RabbitMQ lists it, and comes back to
/// `running` with every message when the members return.
#[tokio::test]
async fn a_queue_without_a_majority_is_listed_as_minority() {
    let mut nodes = cluster_of_three().await;
    let (_c, ch) = nodes[0].server.channel().await;
    let opts = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare("qm".into(), opts, quorum_args()).await.unwrap();
    until_members(&nodes[2], "qm", 3).await;
    let published = publish_confirmed(&nodes[0], "qm", 0, 100).await;
    drop((_c, ch));
    nodes[0].server.kill();
    nodes[1].server.kill();
    let minority = eventually(T, || async {
        let q = nodes[2].api().get("/api/queues/%2F/qm").await;
        (q.code() == 200 && q.body["state"] == "minority").then_some(())
    })
    .await;
    assert!(minority.is_some(), "{}", nodes[2].api().get("/api/queues/%2F/qm").await.body);
    nodes[0].server.start_again();
    nodes[1].server.start_again();
    for n in &nodes {
        n.until_running(3).await;
    }
    let q = until_members(&nodes[2], "qm", 3).await;
    assert_eq!(q["state"], "running", "{q}");
    let got = drain(&nodes[2], "qm").await;
    check(&[&published], &got);
}

/// A quorum queue is deleted and declared again under the same name while
/// one of its members is down. That member comes back with the old
/// queue's log; it must not mix it into the new queue: every member of the
/// new queue holds only the new messages, and after the leader dies the
/// queue serves exactly those.
#[tokio::test]
async fn a_queue_declared_again_while_a_member_was_down_does_not_take_its_old_log() {
    // Metadata snapshots every few changes: the member that was down
    // catches up from a snapshot, which lists the new queue, not from the
    // log, which would show it the delete.
    let start = |n| Node::start_with(n, cluster_support::SECRET, &["--metadata-snapshot-every", "3"]);
    let mut nodes = cluster_support::form([start(1), start(2), start(3)]).await;
    let opts = QueueDeclareOptions { durable: true, ..Default::default() };
    {
        let (_c, ch) = nodes[0].server.channel().await;
        ch.queue_declare("qd".into(), opts, quorum_args()).await.unwrap();
    }
    until_members(&nodes[1], "qd", 3).await;
    publish_confirmed(&nodes[0], "qd", 0, 500).await;

    nodes[2].server.kill();
    {
        let (_c, ch) = nodes[0].server.channel().await;
        ch.queue_delete("qd".into(), QueueDeleteOptions::default()).await.unwrap();
        ch.queue_declare("qd".into(), opts, quorum_args()).await.unwrap();
        // More changes, so that a snapshot covers the delete, and time for
        // the leader to give up sending the log to the node that is down
        // (it keeps the log that it is sending).
        for i in 0..40 {
            if i == 20 {
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
            let x = format!("x{i}");
            ch.exchange_declare(
                x.as_str().into(),
                lapin::ExchangeKind::Fanout,
                Default::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
    }
    let new = publish_confirmed(&nodes[0], "qd", 10_000, 100).await;

    nodes[2].server.start_again();
    for n in &nodes {
        n.until_running(3).await;
    }
    until_members(&nodes[0], "qd", 3).await;
    let agree = eventually(T, || async {
        let rows = nodes[0].api().get("/api/queues/quorum/%2F/qd/status").await;
        let rows = rows.body.as_array()?.clone();
        let first = rows.first()?.clone();
        let keys = ["Contents Applied", "Contents Digest", "Messages"];
        let same = rows.len() == 3 && rows.iter().all(|r| keys.iter().all(|k| r[*k] == first[*k]));
        (same && first["Messages"] == 100).then_some(())
    })
    .await;
    let rows = nodes[0].api().get("/api/queues/quorum/%2F/qd/status").await.body;
    assert!(
        agree.is_some(),
        "the members never agreed on the 100 new messages: {rows:#}\n{}",
        tail(&nodes[2])
    );

    nodes[0].server.kill();
    let led = eventually(T, || async {
        let l = leader_of(&nodes[1], "qd").await?;
        (l != nodes[0].name).then_some(l)
    })
    .await;
    assert!(led.is_some(), "no new leader after the kill");
    let got = drain(&nodes[1], "qd").await;
    check(&[&new], &got);
    assert_eq!(got.len(), 100);
}
