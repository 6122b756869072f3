//! Operating replicated queues with rabbitmq-queues' verbs through
//! `warrenctl` (docs/cluster.md, "Operating replicated queues"):
//! `add_member`, `delete_member`, `grow`, `shrink`, `quorum_status` and
//! `rebalance`, each against three real warren-server processes.

mod cluster_support;
mod ctl_common;

use std::collections::BTreeMap;
use std::time::Duration;

use cluster_support::{Node, T, cluster_of_three};
use ctl_common::{ctl, table};
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use warren_tests::eventually;

/// A quorum queue's arguments, with an initial group size if given.
fn quorum_args(size: Option<i64>) -> FieldTable {
    let mut t = FieldTable::default();
    t.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    if let Some(n) = size {
        t.insert("x-quorum-initial-group-size".into(), AMQPValue::LongLongInt(n));
    }
    t
}

async fn declare(node: &Node, queue: &str, args: FieldTable) {
    let (_c, ch) = node.server.channel().await;
    let opts = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare(queue.into(), opts, args).await.expect("declared");
}

/// Publishes `m{base}`..`m{base+n}` persistent, all confirmed.
async fn publish_confirmed(node: &Node, queue: &str, base: u64, n: u64) {
    let (_c, ch) = node.server.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
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
    }
}

async fn try_channel(uri: &str) -> Option<(Connection, Channel)> {
    let c = Connection::connect(uri, ConnectionProperties::default()).await.ok()?;
    let ch = c.create_channel().await.ok()?;
    Some((c, ch))
}

/// Drains `queue` through `node` (basic.get, acked): each id, how often.
async fn drain(node: &Node, queue: &str) -> BTreeMap<u64, u32> {
    let mut got = BTreeMap::new();
    let deadline = std::time::Instant::now() + T;
    'channel: while std::time::Instant::now() < deadline {
        let Some((_c, ch)) = try_channel(&node.server.uri()).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        loop {
            let Ok(m) = ch.basic_get(queue.into(), BasicGetOptions { no_ack: false }).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue 'channel;
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

/// The queue as `via`'s API shows it.
async fn queue(via: &Node, name: &str) -> serde_json::Value {
    via.api().get(&format!("/api/queues/%2F/{name}")).await.body
}

fn names(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> =
        v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(String::from)).collect();
    out.sort();
    out
}

/// Waits until `via` shows `name` with exactly `members` as its members,
/// all online, and a leader.
async fn until_members(via: &Node, name: &str, members: &[&str]) -> serde_json::Value {
    let mut want: Vec<String> = members.iter().map(|s| s.to_string()).collect();
    want.sort();
    let last = std::sync::Mutex::new(serde_json::Value::Null);
    let found = eventually(T, || async {
        let q = queue(via, name).await;
        *last.lock().unwrap() = q.clone();
        let ok = names(&q["members"]) == want && names(&q["online"]) == want && q["leader"].is_string();
        ok.then_some(q)
    })
    .await;
    found.unwrap_or_else(|| {
        panic!("{name} never had members {want:?} on {}: {}", via.name, last.lock().unwrap())
    })
}

fn rows_json(out: &ctl_common::Run) -> Vec<serde_json::Value> {
    out.json().as_array().cloned().unwrap_or_default()
}

/// A quorum queue of two grows to three with `add_member` (asked through
/// a node that does not lead it); its messages, old and new, are all read
/// after its leader is killed. The verb's refusals are RabbitMQ's.
#[tokio::test]
async fn add_member_grows_a_queue_and_its_messages_survive_the_leader() {
    let mut nodes = cluster_of_three().await;
    let [n1, n2, n3] = [&nodes[0].name, &nodes[1].name, &nodes[2].name].map(|s| s.clone());
    declare(&nodes[0], "two", quorum_args(Some(2))).await;
    until_members(&nodes[2], "two", &[&n1, &n2]).await;
    publish_confirmed(&nodes[0], "two", 0, 200).await;

    let out = ctl(&nodes[1].server, &["add_member", "two", &n3]);
    assert!(out.ok().contains(&format!("Adding a member for queue two on node {n3}...")), "{out:?}");
    let q = until_members(&nodes[0], "two", &[&n1, &n2, &n3]).await;
    assert_eq!(q["leader"], n1.as_str(), "{q}");
    // Done already: a member there.
    ctl(&nodes[2].server, &["add_member", "two", &n3]).ok();
    publish_confirmed(&nodes[1], "two", 1000, 100).await;

    // Refusals.
    declare(&nodes[0], "classic", FieldTable::default()).await;
    ctl(&nodes[0].server, &["add_member", "classic", &n3]).fails(69, "classic_queue_not_supported");
    ctl(&nodes[0].server, &["add_member", "two", "warren-9@127.0.0.1"]).fails(69, "node_not_running");
    ctl(&nodes[0].server, &["add_member", "nope", &n3]).fails(65, "queue 'nope' in vhost '/' does not exist");

    nodes[0].server.kill();
    let moved = eventually(T, || async {
        let l = queue(&nodes[2], "two").await["leader"].as_str().map(String::from)?;
        (l != n1).then_some(l)
    })
    .await;
    assert!(moved.is_some(), "no new leader after the kill");
    let got = drain(&nodes[2], "two").await;
    let want: Vec<u64> = (0..200).chain(1000..1100).collect();
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), want, "every message, once or more");
}

/// `delete_member` removes a follower, then the leader's own node (the
/// leadership moves first); the last member cannot go. Nothing is lost.
#[tokio::test]
async fn delete_member_shrinks_a_queue() {
    let nodes = cluster_of_three().await;
    let [n1, n2, n3] = [&nodes[0].name, &nodes[1].name, &nodes[2].name].map(|s| s.clone());
    declare(&nodes[0], "three", quorum_args(None)).await;
    until_members(&nodes[1], "three", &[&n1, &n2, &n3]).await;
    publish_confirmed(&nodes[0], "three", 0, 100).await;

    let out = ctl(&nodes[2].server, &["delete_member", "three", &n2]);
    assert!(out.ok().contains(&format!("Removing a replica of queue three on node {n2}...")), "{out:?}");
    until_members(&nodes[1], "three", &[&n1, &n3]).await;
    // Done already: no member there.
    ctl(&nodes[0].server, &["delete_member", "three", &n2]).ok();

    // The leader's own node.
    ctl(&nodes[1].server, &["delete_member", "three", &n1]).ok();
    let q = until_members(&nodes[0], "three", &[&n3]).await;
    assert_eq!(q["leader"], n3.as_str(), "{q}");
    ctl(&nodes[0].server, &["delete_member", "three", &n3]).fails(69, "last_node");

    let got = drain(&nodes[1], "three").await;
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), (0..100).collect::<Vec<_>>());
}

/// The members an operator chose outlive a restart of the whole cluster:
/// a quorum queue of two (its arguments) grown to three and shrunk to
/// the other two keeps those two after every node restarted, rather than
/// going back to the two its arguments choose; and keeps its messages.
#[tokio::test]
async fn members_chosen_by_hand_outlive_a_whole_cluster_restart() {
    let mut nodes = cluster_of_three().await;
    let [n1, n2, n3] = [&nodes[0].name, &nodes[1].name, &nodes[2].name].map(|s| s.clone());
    declare(&nodes[0], "kept", quorum_args(Some(2))).await;
    until_members(&nodes[1], "kept", &[&n1, &n2]).await;
    ctl(&nodes[0].server, &["add_member", "kept", &n3]).ok();
    ctl(&nodes[2].server, &["delete_member", "kept", &n2]).ok();
    until_members(&nodes[1], "kept", &[&n1, &n3]).await;
    publish_confirmed(&nodes[1], "kept", 0, 50).await;

    for n in nodes.iter_mut() {
        n.server.stop();
    }
    for n in nodes.iter_mut() {
        n.server.start_again();
    }
    for n in &nodes {
        n.until_running(3).await;
    }
    for n in &nodes {
        until_members(n, "kept", &[&n1, &n3]).await;
    }
    // And they stay so (a leader growing back to its arguments' choice
    // would change them a moment later).
    tokio::time::sleep(Duration::from_secs(2)).await;
    until_members(&nodes[0], "kept", &[&n1, &n3]).await;
    let got = drain(&nodes[2], "kept").await;
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), (0..50).collect::<Vec<_>>());
}

/// A node killed and forgotten with `forget_cluster_node` leaves the
/// members of every quorum queue, as RabbitMQ's forget shrinks them: one
/// whose members its arguments chose, and one whose members an operator
/// chose (`add_member`). Both keep serving on the two nodes left.
#[tokio::test]
async fn a_forgotten_node_leaves_the_quorum_queues() {
    let mut nodes = cluster_of_three().await;
    let [n1, n2, n3] = [&nodes[0].name, &nodes[1].name, &nodes[2].name].map(|s| s.clone());
    declare(&nodes[0], "computed", quorum_args(None)).await;
    declare(&nodes[0], "operated", quorum_args(Some(2))).await;
    until_members(&nodes[1], "operated", &[&n1, &n2]).await;
    ctl(&nodes[0].server, &["add_member", "operated", &n3]).ok();
    for q in ["computed", "operated"] {
        until_members(&nodes[1], q, &[&n1, &n2, &n3]).await;
        publish_confirmed(&nodes[0], q, 0, 20).await;
    }

    nodes[2].server.kill();
    let forgotten = eventually(T, || async {
        (ctl(&nodes[0].server, &["forget_cluster_node", &n3]).code == 0).then_some(())
    })
    .await;
    assert!(forgotten.is_some(), "{n3} was never forgotten");
    for q in ["computed", "operated"] {
        until_members(&nodes[0], q, &[&n1, &n2]).await;
        until_members(&nodes[1], q, &[&n1, &n2]).await;
        let got = drain(&nodes[1], q).await;
        assert_eq!(got.keys().copied().collect::<Vec<_>>(), (0..20).collect::<Vec<_>>(), "{q}");
    }
}

/// `quorum_status` lists each member once, exactly one of them the leader,
/// with its id, term and log indexes; a classic queue is refused.
#[tokio::test]
async fn quorum_status_lists_the_members_with_one_leader() {
    let nodes = cluster_of_three().await;
    let all = [&nodes[0].name, &nodes[1].name, &nodes[2].name].map(|s| s.clone());
    declare(&nodes[1], "st", quorum_args(None)).await;
    until_members(&nodes[0], "st", &all.each_ref().map(|s| s.as_str())).await;
    publish_confirmed(&nodes[1], "st", 0, 10).await;

    let out = ctl(&nodes[0].server, &["--formatter", "json", "quorum_status", "st"]);
    let rows = rows_json(&out);
    let mut listed: Vec<String> = rows.iter().map(|r| r["Node Name"].as_str().unwrap().to_owned()).collect();
    listed.sort();
    assert_eq!(listed, all.to_vec(), "{rows:?}");
    let leaders: Vec<&serde_json::Value> = rows.iter().filter(|r| r["Raft State"] == "leader").collect();
    assert_eq!(leaders.len(), 1, "{rows:?}");
    assert_eq!(leaders[0]["Node Name"], nodes[1].name.as_str(), "the declaring node leads: {rows:?}");
    assert!(rows.iter().filter(|r| r["Raft State"] == "follower").count() == 2, "{rows:?}");
    for r in &rows {
        assert_eq!(r["Membership"], "voter", "{r}");
        assert_eq!(r["Term"], leaders[0]["Term"], "{rows:?}");
        assert_eq!(r["Member Id"].as_str().map(str::len), Some(16), "{r}");
    }
    let last = leaders[0]["Last Log Index"].as_u64().unwrap();
    assert!(last >= 2, "{rows:?}");
    assert!(leaders[0]["Commit Index"].as_u64().unwrap() <= last, "{rows:?}");

    // Every member holds the same ten messages once it applied the same
    // entries (the followers learn the last commit with the next append or
    // at once, so wait a little).
    let agree = eventually(T, || async {
        let out = ctl(&nodes[0].server, &["--formatter", "json", "quorum_status", "st"]);
        let rows = rows_json(&out);
        let first = rows.first()?.clone();
        let same = rows
            .iter()
            .all(|r| ["Contents Applied", "Contents Digest", "Messages"].iter().all(|k| r[*k] == first[*k]));
        (same && first["Messages"] == 10).then_some(rows)
    })
    .await;
    assert!(agree.is_some(), "the members never agreed on ten messages");

    let text = ctl(&nodes[2].server, &["quorum_status", "st"]);
    let out = text.ok();
    assert!(out.starts_with("Status of queue st on node "), "{out}");
    let t = table(out);
    assert_eq!(t[1][..3], ["Node Name", "Raft State", "Membership"], "{out}");
    assert_eq!(t.len(), 5, "banner, header and three members: {out}");

    declare(&nodes[0], "plain", FieldTable::default()).await;
    ctl(&nodes[0].server, &["quorum_status", "plain"]).fails(69, "classic_queue_not_supported");
}

/// `grow` adds node 3 to every matching quorum queue of two members (only
/// those the pattern names), and `shrink` takes it out of all again.
#[tokio::test]
async fn grow_and_shrink_over_several_queues() {
    let nodes = cluster_of_three().await;
    let [n1, n2, n3] = [&nodes[0].name, &nodes[1].name, &nodes[2].name].map(|s| s.clone());
    for name in ["g1", "g2", "g3", "other"] {
        declare(&nodes[0], name, quorum_args(Some(2))).await;
    }
    for name in ["g1", "g2", "g3", "other"] {
        until_members(&nodes[2], name, &[&n1, &n2]).await;
    }

    let out = ctl(&nodes[0].server, &["grow", &n3, "all", "--queue-pattern", "^g"]);
    let text = out.ok();
    assert!(text.starts_with(&format!("Growing all quorum queues on {n3}...")), "{text}");
    let t = table(text);
    assert_eq!(t[1], ["vhost", "name", "size", "result"], "{text}");
    assert_eq!(
        t[2..].to_vec(),
        ["g1", "g2", "g3"].map(|q| vec!["/".to_owned(), q.into(), "3".into(), "ok".into()])
    );
    for name in ["g1", "g2", "g3"] {
        until_members(&nodes[1], name, &[&n1, &n2, &n3]).await;
    }
    assert_eq!(names(&queue(&nodes[1], "other").await["members"]), [n1.clone(), n2.clone()]);
    // "even": only queues with an even number of members (other, of two).
    let even = ctl(&nodes[0].server, &["--formatter", "json", "grow", &n3, "even"]);
    let rows = rows_json(&even);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["name"], "other");
    until_members(&nodes[1], "other", &[&n1, &n2, &n3]).await;

    let out = ctl(&nodes[1].server, &["--formatter", "json", "shrink", &n3]);
    let rows = rows_json(&out);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|r| r["result"] == "ok" && r["size"] == 2), "{rows:?}");
    for name in ["g1", "g2", "g3", "other"] {
        until_members(&nodes[2], name, &[&n1, &n2]).await;
    }
}

/// Three quorum queues declared through node 1 are all led there;
/// `rebalance quorum` moves two of the leaderships away, so each node
/// leads one.
#[tokio::test]
async fn rebalance_spreads_the_leaders() {
    let nodes = cluster_of_three().await;
    let all = [&nodes[0].name, &nodes[1].name, &nodes[2].name].map(|s| s.clone());
    let all_refs = all.each_ref().map(|s| s.as_str());
    for name in ["r1", "r2", "r3"] {
        declare(&nodes[0], name, quorum_args(None)).await;
    }
    for name in ["r1", "r2", "r3"] {
        let q = until_members(&nodes[1], name, &all_refs).await;
        assert_eq!(q["leader"], all[0].as_str(), "{q}");
    }
    publish_confirmed(&nodes[0], "r1", 0, 50).await;

    let out = ctl(&nodes[1].server, &["rebalance", "quorum"]);
    let text = out.ok();
    assert!(text.starts_with("Re-balancing leaders of quorum queues..."), "{text}");
    let t = table(text);
    assert_eq!(t[1], ["Node name", "Number of quorum queues"], "{text}");
    assert_eq!(t[2..].iter().map(|r| r[1].as_str()).collect::<Vec<_>>(), ["1", "1", "1"], "{text}");

    let spread = eventually(T, || async {
        let mut leaders = Vec::new();
        for name in ["r1", "r2", "r3"] {
            leaders.push(queue(&nodes[2], name).await["leader"].as_str()?.to_owned());
        }
        leaders.sort();
        (leaders == all.to_vec()).then_some(())
    })
    .await;
    assert!(spread.is_some(), "the leaders were not spread over the three nodes");
    let got = drain(&nodes[2], "r1").await;
    assert_eq!(got.len(), 50);
    ctl(&nodes[0].server, &["rebalance", "streams"]).fails(64, "type streams is not supported");
}
