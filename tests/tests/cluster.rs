//! Several nodes as one cluster (docs/cluster.md), each a real
//! warren-server process on its own loopback ports: forming with
//! join_cluster, metadata made on one node seen on every node, the loss of
//! the Raft leader, a node's restart, forget_cluster_node, and the bad
//! inputs: a wrong secret, joining with the app running.

mod cluster_support;
mod ctl_common;
mod dashboard_support;

use std::time::Duration;

use cluster_support::{Node, SECRET, T, cluster_of_three};
use ctl_common::ctl;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};
use warren_tests::eventually;
use warren_tests::http::json;

#[tokio::test]
async fn three_nodes_share_metadata_and_survive_the_loss_of_the_leader() {
    let mut nodes = cluster_of_three().await;
    let st = nodes[0].status().await;
    let mut names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    names.sort();
    assert_eq!(st["disk_nodes"], json!(names));
    assert_eq!(nodes[1].status().await["leader"], st["leader"], "every node names the same leader");

    // The tutorial's 11.1: exchanges, queues and bindings made through one
    // node exist on every node.
    let (_c1, ch1) = nodes[0].server.channel().await;
    ch1.exchange_declare(
        "m1".into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch1.queue_declare("lqz".into(), durable, FieldTable::default()).await.unwrap();
    ch1.queue_bind("lqz".into(), "m1".into(), "".into(), QueueBindOptions::default(), FieldTable::default())
        .await
        .unwrap();
    // A user made through the third node's API can log in through the second.
    let api3 = nodes[2].api();
    assert_eq!(
        api3.put("/api/users/lqz", json!({"password": "123", "tags": "administrator"})).await.code(),
        201
    );
    let perms = json!({"configure": ".*", "write": ".*", "read": ".*"});
    assert_eq!(api3.put("/api/permissions/%2F/lqz", perms).await.code(), 201);
    // Another node applies a change a moment after the node that made it.
    for n in &nodes {
        let applied = eventually(T, || async {
            let api = n.api();
            let ok = api.get("/api/permissions/%2F/lqz").await.code() == 200
                && api.get("/api/queues/%2F/lqz").await.code() == 200
                && api
                    .ok("/api/exchanges/%2F/m1/bindings/source")
                    .await
                    .as_array()
                    .is_some_and(|b| !b.is_empty());
            ok.then_some(())
        })
        .await;
        assert!(applied.is_some(), "{} never applied the changes", n.name);
    }
    for n in &nodes[1..] {
        let c = lapin::Connection::connect(&n.server.uri_as("lqz", "123", "%2f"), Default::default())
            .await
            .unwrap_or_else(|e| panic!("lqz on {}: {e}", n.name));
        let ch = c.create_channel().await.unwrap();
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        ch.queue_declare("lqz".into(), passive, FieldTable::default()).await.unwrap();
        let xp = ExchangeDeclareOptions { passive: true, ..Default::default() };
        ch.exchange_declare("m1".into(), ExchangeKind::Fanout, xp, FieldTable::default()).await.unwrap();
        let bindings = n.api().ok("/api/exchanges/%2F/m1/bindings/source").await;
        assert_eq!(bindings[0]["destination"], "lqz", "{}: {bindings}", n.name);
        let q = n.api().ok("/api/queues/%2F/lqz").await;
        assert_eq!(q["node"], json!(nodes[0].name), "the queue lives on the node that declared it");
    }

    // Its messages live on its home node, and any node serves them.
    ch1.basic_publish(
        "m1".into(),
        "".into(),
        BasicPublishOptions::default(),
        b"hello world",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    let (_c2, ch2) = nodes[1].server.channel().await;
    let got = eventually(T, || async {
        ch2.basic_get("lqz".into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .map(|m| m.delivery.data.clone())
    })
    .await;
    assert_eq!(got.as_deref(), Some(&b"hello world"[..]), "got through another node than the home");

    // Kill the leader: the two others elect one and keep taking changes.
    let leader = st["leader"].as_str().unwrap().to_owned();
    let li = nodes.iter().position(|n| n.name == leader).unwrap();
    nodes[li].server.kill();
    let alive: Vec<usize> = (0..3).filter(|i| *i != li).collect();
    let st = nodes[alive[0]].until_running(2).await;
    assert_ne!(st["leader"], json!(leader), "a new leader: {st}");
    let api = nodes[alive[0]].api();
    assert_eq!(api.put("/api/queues/%2F/after-the-leader", json!({"durable": true})).await.code(), 201);
    let other = nodes[alive[1]].api();
    let seen = eventually(T, || async {
        (other.get("/api/queues/%2F/after-the-leader").await.code() == 200).then_some(())
    })
    .await;
    assert!(seen.is_some());

    // The killed node comes back with what it missed.
    nodes[li].server.start_again();
    nodes[li].until_running(3).await;
    let seen = eventually(T, || async {
        (nodes[li].api().get("/api/queues/%2F/after-the-leader").await.code() == 200).then_some(())
    })
    .await;
    assert!(seen.is_some(), "{}", nodes[li].server.log_text());
    assert_eq!(nodes[li].api().get("/api/users/lqz").await.code(), 200);
}

#[tokio::test]
async fn forget_cluster_node_removes_a_stopped_member() {
    let mut nodes = cluster_of_three().await;
    nodes[2].server.kill();
    let r = nodes[0].api().post("/api/node/forget_cluster_node", json!({"node": nodes[2].name})).await;
    assert_eq!(r.code(), 204, "{}", r.body);
    let st = nodes[1].until_running(2).await;
    assert_eq!(st["disk_nodes"].as_array().unwrap().len(), 2, "{st}");
    // Two members left, both needed for a majority, and both up.
    assert_eq!(nodes[1].api().put("/api/vhosts/after-forget", json!({})).await.code(), 201);
    let api0 = nodes[0].api();
    let seen =
        eventually(T, || async { (api0.get("/api/vhosts/after-forget").await.code() == 200).then_some(()) })
            .await;
    assert!(seen.is_some());
    let r = nodes[0].api().post("/api/node/forget_cluster_node", json!({"node": "warren-9@nowhere"})).await;
    assert_eq!(r.code(), 404, "{}", r.body);
}

#[tokio::test]
async fn joining_needs_the_app_stopped_and_the_same_secret() {
    let seed = Node::start(1, SECRET);
    let other = Node::start(2, "another-secret");
    let api = other.api();
    let body = json!({"node": seed.name, "address": seed.address()});
    let r = api.post("/api/node/join_cluster", body.clone()).await;
    assert_eq!(r.code(), 400, "{}", r.body);
    assert!(r.reason().contains("stop_app"), "{}", r.body);

    assert_eq!(api.post("/api/node/stop_app", json!({})).await.code(), 204);
    let r = api.post("/api/node/join_cluster", body).await;
    assert_eq!(r.code(), 503, "{}", r.body);
    assert!(r.reason().contains("cluster secret"), "{}", r.body);
    let r = api.post("/api/node/join_cluster", json!({"node": "no-at-sign"})).await;
    assert_eq!(r.code(), 400, "{}", r.body);

    // Nothing was reset: the node is still itself, and works.
    assert_eq!(api.post("/api/node/start_app", json!({})).await.code(), 204);
    let (_c, ch) = other.server.channel().await;
    ch.queue_declare("still-standalone".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    assert_eq!(other.status().await["clustered"], json!(false));
    assert_eq!(seed.status().await["clustered"], json!(false));
    assert!(
        seed.server.wait_for_log("does not have this node's cluster secret", T),
        "{}",
        seed.server.log_text()
    );
}

/// The tutorial's 11.1 with warrenctl: stop_app, join_cluster, start_app,
/// cluster_status; and 11.2's set_policy made on one node, listed on another.
#[tokio::test]
async fn the_tutorial_cluster_commands_with_warrenctl() {
    let nodes = [Node::start(1, SECRET), Node::start(2, SECRET)];
    let (mq1, mq2) = (&nodes[0], &nodes[1]);
    ctl(&mq2.server, &["join_cluster", &mq1.name, "--address", &mq1.address()])
        .fails(65, "stop it first (stop_app)");
    ctl(&mq2.server, &["stop_app"]).ok();
    ctl(&mq2.server, &["join_cluster", "--ram", &mq1.name]).fails(64, "no RAM nodes");
    let out = ctl(&mq2.server, &["join_cluster", &mq1.name, "--address", &mq1.address()]);
    assert!(out.ok().contains(&format!("Clustering node {} with {}", mq2.name, mq1.name)), "{out:?}");
    ctl(&mq2.server, &["start_app"]).ok();
    mq2.until_running(2).await;

    let st = ctl(&mq1.server, &["--formatter", "json", "cluster_status"]).json();
    let mut names = vec![mq1.name.clone(), mq2.name.clone()];
    names.sort();
    assert_eq!(st["disk_nodes"], json!(names), "{st}");
    assert_eq!(st["running_nodes"], json!(names), "{st}");
    let text = ctl(&mq2.server, &["cluster_status"]).ok().to_owned();
    assert!(
        text.contains("Disk Nodes") && text.contains(&mq1.name) && text.contains("Metadata leader: "),
        "{text}"
    );

    ctl(&mq1.server, &["set_policy", "ha-all", "^lqz", r#"{"ha-mode":"all","ha-sync-mode":"automatic"}"#])
        .ok();
    let listed = eventually(T, || async {
        let l = ctl(&mq2.server, &["--formatter", "json", "list_policies"]).json();
        (l[0]["name"] == "ha-all").then_some(l)
    })
    .await;
    assert!(listed.is_some(), "the policy never reached {}", mq2.name);
    ctl(&mq2.server, &["clear_policy", "ha-all"]).ok();
    let cleared = eventually(T, || async {
        (ctl(&mq1.server, &["--formatter", "json", "list_policies"]).json() == json!([])).then_some(())
    })
    .await;
    assert!(cleared.is_some());

    ctl(&mq2.server, &["forget_cluster_node", &mq2.name]).fails(65, "cannot forget itself");
}

/// The dashboard of any node shows every queue's depth and each node's
/// totals: "inspect queue depths per node".
#[tokio::test]
async fn the_dashboard_shows_queue_depths_per_node_from_any_node() {
    use dashboard_support::{Browser, declare_queue, publish};
    let nodes = [Node::start(1, SECRET), Node::start(2, SECRET)];
    nodes[1].join(&nodes[0]).await;
    nodes[1].until_running(2).await;
    // Each queue is declared and filled through its own node.
    for (node, queue, n) in [(&nodes[0], "on-one", 2), (&nodes[1], "on-two", 3)] {
        let api = node.api();
        declare_queue(&api, queue).await;
        for i in 0..n {
            publish(&api, "amq.default", queue, &format!("m{i}")).await;
        }
    }
    // Node one knows node two's queue and, after a refresh, its depth.
    let api1 = nodes[0].api();
    let known = eventually(T, || async {
        let q = api1.get("/api/queues/%2F/on-two").await;
        (q.code() == 200 && q.body["messages"] == 3).then_some(q.body)
    })
    .await;
    assert!(known.is_some(), "node one never learned on-two's depth");

    let b = Browser::start(&nodes[0].server, "cluster").await;
    b.open_as_guest("/queues").await;
    b.wait_text("#queues", "on-two").await;
    let per_node = format!(
        "(() => {{ const m = {{}}; document.querySelectorAll('#per-node .node-depths').forEach(s => \
           m[s.dataset.node] = +s.querySelector('.node-all').dataset.messages); \
           return m[{:?}] === 2 && m[{:?}] === 3; }})()",
        nodes[0].name, nodes[1].name
    );
    b.wait_js("each node's section shows its own queues' messages", &per_node).await;
    b.shot("queues-per-node").await;
    b.close().await;
}

/// With a node killed, the dashboard of another node says so plainly, as
/// RabbitMQ's does: the overview shows the dead member as "Node not
/// running", its queue is listed `down` with no stale depth, and the queue
/// list's Node column names each queue's home.
#[tokio::test]
async fn the_dashboard_shows_a_dead_node_and_its_queues_down() {
    use dashboard_support::{Browser, declare_queue, publish};
    let mut nodes = cluster_of_three().await;
    for (node, queue) in [(&nodes[0], "home-one"), (&nodes[1], "home-two")] {
        let api = node.api();
        declare_queue(&api, queue).await;
        publish(&api, "amq.default", queue, "m").await;
    }
    let api2 = nodes[1].api();
    let learned = eventually(T, || async {
        let q = api2.get("/api/queues/%2F/home-one").await;
        (q.code() == 200 && q.body["messages"] == 1).then_some(())
    });
    assert!(learned.await.is_some(), "node two never learned home-one's depth");
    nodes[0].server.kill();

    // What the API says through a surviving node: node one not running,
    // its queue `down` and still homed on it.
    let dead = nodes[0].name.clone();
    let down = eventually(T, || async {
        let q = api2.ok("/api/queues/%2F/home-one").await;
        (q["state"] == "down").then_some(q)
    })
    .await
    .expect("home-one never listed down through node two");
    assert_eq!(down["node"], json!(dead));
    let listed = api2.ok("/api/nodes").await;
    let member = listed.as_array().unwrap().iter().find(|n| n["name"] == json!(dead)).cloned();
    assert_eq!(member.map(|n| n["running"].clone()), Some(json!(false)), "{listed}");

    let b = Browser::start(&nodes[1].server, "cluster-node-down").await;
    b.open_as_guest("/").await;
    let row = format!("document.querySelector('#nodes tr[data-node={dead:?}]')");
    b.wait_js(
        "the overview shows node one as not running, in red",
        &format!(
            "{row} && {row}.querySelector('td.err.node-state')?.textContent === 'Node not running' \
             && !{row}.textContent.includes('0m 0s') && !{row}.textContent.includes('?')"
        ),
    )
    .await;
    b.shot("overview").await;

    b.goto("/queues").await;
    b.wait_text("#queues", "home-two").await;
    let cells = |queue: &str| {
        format!(
            "(() => {{ const r = document.querySelector('#queues tr[data-queue={queue:?}]'); \
               return r && [r.querySelector('td.node').textContent, r.querySelector('td.state').textContent, \
               r.querySelector('td.state').classList.contains('err'), r.querySelector('td.messages').textContent]; }})()"
        )
    };
    let expect = |queue: &str, home: &str, state: &str, red: bool, messages: &str| {
        format!("JSON.stringify({}) === {:?}", cells(queue), json!([home, state, red, messages]).to_string())
    };
    b.wait_js("home-one is down, with no depth", &expect("home-one", &dead, "down", true, "?")).await;
    b.wait_js("home-two is running on node two", &expect("home-two", &nodes[1].name, "running", false, "1"))
        .await;
    let header =
        b.js("return [...document.querySelectorAll('#queues th')].map(e => e.textContent.trim());").await;
    assert!(header.as_array().unwrap().contains(&json!("Node")), "{header}");
    b.wait_text(&format!("#per-node section[data-node={dead:?}]"), "Node not running").await;
    b.shot("queues").await;
    // The queue's own page says the same.
    b.goto("/queues/%2F/home-one").await;
    b.wait_text("#q-state", "down").await;
    b.wait_js(
        "the queue page shows no depth",
        "document.querySelector('#q-state').classList.contains('err') \
               && document.querySelector('#q-messages').textContent === '?'",
    )
    .await;
    b.close().await;
}

/// Every node stopped, then started again: the cluster re-forms with its
/// metadata, and a persistent message comes back in its queue on its home.
#[tokio::test]
async fn a_whole_cluster_restarts_with_its_metadata_and_messages() {
    let mut nodes = cluster_of_three().await;
    let api2 = nodes[1].api();
    assert_eq!(api2.put("/api/queues/%2F/kept", json!({"durable": true})).await.code(), 201);
    let body = json!({"routing_key": "kept", "payload": "persist me", "payload_encoding": "string",
                      "properties": {"delivery_mode": 2}});
    assert_eq!(api2.post("/api/exchanges/%2F/amq.default/publish", body).await.body, json!({"routed": true}));
    assert_eq!(api2.put("/api/vhosts/kept-vhost", json!({})).await.code(), 201);
    for n in &nodes {
        let api = n.api();
        let seen =
            eventually(T, || async { (api.get("/api/vhosts/kept-vhost").await.code() == 200).then_some(()) });
        assert!(seen.await.is_some(), "{} never saw the vhost", n.name);
    }
    for n in &mut nodes {
        n.server.stop();
    }
    for n in &mut nodes {
        n.server.start_again();
    }
    for n in &nodes {
        n.until_running(3).await;
        assert_eq!(n.api().get("/api/vhosts/kept-vhost").await.code(), 200, "{}", n.name);
        let q = n.api().ok("/api/queues/%2F/kept").await;
        assert_eq!(q["node"], json!(nodes[1].name));
    }
    let (_c, ch) = nodes[1].server.channel().await;
    let got = ch.basic_get("kept".into(), BasicGetOptions { no_ack: true }).await.unwrap();
    assert_eq!(got.map(|m| m.delivery.data.clone()).as_deref(), Some(&b"persist me"[..]));
}

/// Messages published through any node reach a queue on its home node, in
/// order, and a publisher's confirm waits for the home (and its disk).
#[tokio::test]
async fn a_queue_takes_messages_published_through_any_node() {
    let nodes = cluster_of_three().await;
    let (_c1, ch1) = nodes[0].server.channel().await;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch1.queue_declare("orders".into(), durable, FieldTable::default()).await.unwrap();
    ch1.exchange_declare(
        "m3".into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch1.queue_bind(
        "orders".into(),
        "m3".into(),
        "lqz.#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    for n in &nodes {
        let api = n.api();
        let seen = eventually(T, || async {
            let b = api.ok("/api/exchanges/%2F/m3/bindings/source").await;
            b.as_array().is_some_and(|b| !b.is_empty()).then_some(())
        });
        assert!(seen.await.is_some(), "{} never saw the binding", n.name);
    }

    // Through the two other nodes, with confirms, persistent: 2 x 50.
    for (i, n) in nodes[1..].iter().enumerate() {
        let (_c, ch) = n.server.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
        for k in 0..50 {
            let body = format!("{i}-{k}");
            let props = BasicProperties::default().with_delivery_mode(2);
            let confirm = ch
                .basic_publish(
                    "m3".into(),
                    "lqz.order".into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    props,
                )
                .await
                .unwrap()
                .await
                .unwrap();
            assert!(confirm.is_ack(), "{}: {confirm:?}", n.name);
        }
        // Mandatory and unroutable still comes back.
        let back = ch
            .basic_publish(
                "m3".into(),
                "nobody".into(),
                BasicPublishOptions { mandatory: true, ..Default::default() },
                b"x",
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(back.take_message().is_some(), "the unroutable message came back through {}", n.name);
    }
    // On the home node, in order per publisher.
    let mut got: Vec<String> = Vec::new();
    while let Some(m) = ch1.basic_get("orders".into(), BasicGetOptions { no_ack: true }).await.unwrap() {
        got.push(String::from_utf8(m.delivery.data.clone()).unwrap());
    }
    for i in 0..2 {
        let mine: Vec<&String> = got.iter().filter(|m| m.starts_with(&format!("{i}-"))).collect();
        let want: Vec<String> = (0..50).map(|k| format!("{i}-{k}")).collect();
        assert_eq!(mine.iter().map(|s| s.as_str()).collect::<Vec<_>>(), want, "publisher {i}");
    }
    // The HTTP API's publish, through a node that is not the home, too.
    let body = json!({"routing_key": "lqz.http", "payload": "by http", "payload_encoding": "string", "properties": {}});
    let r = nodes[2].api().post("/api/exchanges/%2F/m3/publish", body).await;
    assert_eq!(r.body, json!({"routed": true}));
    let m = ch1.basic_get("orders".into(), BasicGetOptions { no_ack: true }).await.unwrap();
    assert_eq!(m.map(|m| m.delivery.data.clone()).as_deref(), Some(&b"by http"[..]));

    // Dead-lettering on one node into a queue on another: a message that
    // expires in a queue homed on node two goes to `orders` on node one.
    let api2 = nodes[1].api();
    let args = json!({"arguments": {"x-message-ttl": 50, "x-dead-letter-exchange": "",
                                    "x-dead-letter-routing-key": "orders"}});
    assert_eq!(api2.put("/api/queues/%2F/short-lived", args).await.code(), 201);
    let body = json!({"routing_key": "short-lived", "payload": "expired", "payload_encoding": "string",
                      "properties": {}});
    assert_eq!(api2.post("/api/exchanges/%2F/amq.default/publish", body).await.body, json!({"routed": true}));
    let dead = eventually(T, || async {
        ch1.basic_get("orders".into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .map(|m| m.delivery.data.clone())
    })
    .await;
    assert_eq!(dead.as_deref(), Some(&b"expired"[..]));

    // With the home node gone, a confirm for its queue is a nack, not an ack.
    let mut nodes = nodes;
    nodes[0].server.kill();
    let (_c, ch) = nodes[1].server.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let confirm = ch
        .basic_publish(
            "m3".into(),
            "lqz.lost".into(),
            BasicPublishOptions::default(),
            b"lost",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_nack(), "{confirm:?}");
}

/// A consumer on one node of a queue homed on another gets its messages in
/// order with the channel's prefetch; its acks settle them on the home; what
/// it leaves unacked when its channel closes goes back to the queue.
#[tokio::test]
async fn a_queue_is_consumed_through_any_node() {
    use futures_lite::StreamExt;
    let nodes = cluster_of_three().await;
    let (_c1, ch1) = nodes[0].server.channel().await;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch1.queue_declare("work".into(), durable, FieldTable::default()).await.unwrap();
    let api2 = nodes[1].api();
    let seen =
        eventually(T, || async { (api2.get("/api/queues/%2F/work").await.code() == 200).then_some(()) });
    assert!(seen.await.is_some());

    // The consumer is on node two; the publisher on node three.
    let (_c2, ch2) = nodes[1].server.channel().await;
    ch2.basic_qos(10, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch2
        .basic_consume(
            "work".into(),
            "remote-c".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let (_c3, ch3) = nodes[2].server.channel().await;
    ch3.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    for k in 0..100 {
        let props = BasicProperties::default().with_delivery_mode(2);
        let c = ch3
            .basic_publish(
                "".into(),
                "work".into(),
                BasicPublishOptions::default(),
                format!("m{k}").as_bytes(),
                props,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(c.is_ack());
    }
    for k in 0..100 {
        let d = tokio::time::timeout(T, consumer.next()).await.expect("a delivery in time").unwrap().unwrap();
        assert_eq!(d.data, format!("m{k}").into_bytes(), "in order");
        assert!(!d.redelivered);
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    // Every ack reached the home: the queue is empty there.
    let api1 = nodes[0].api();
    let empty = eventually(T, || async {
        let q = api1.ok("/api/queues/%2F/work").await;
        (q["messages"] == 0 && q["consumers"] == 1).then_some(())
    });
    assert!(empty.await.is_some(), "{}", api1.ok("/api/queues/%2F/work").await);

    // Two more, taken but not acked; the channel closes: they go back.
    for k in 0..2 {
        ch3.basic_publish(
            "".into(),
            "work".into(),
            BasicPublishOptions::default(),
            format!("again{k}").as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    for _ in 0..2 {
        tokio::time::timeout(T, consumer.next()).await.expect("a delivery in time").unwrap().unwrap();
    }
    ch2.close(200, "bye".into()).await.unwrap();
    let back = eventually(T, || async {
        let q = api1.ok("/api/queues/%2F/work").await;
        (q["messages_ready"] == 2 && q["consumers"] == 0).then_some(())
    });
    assert!(back.await.is_some(), "{}", api1.ok("/api/queues/%2F/work").await);
    let again = ch1.basic_get("work".into(), BasicGetOptions { no_ack: true }).await.unwrap().unwrap();
    assert!(again.delivery.redelivered);
    assert_eq!(again.delivery.data, b"again0".to_vec());

    // The HTTP API's get through another node, requeueing.
    let body = json!({"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"});
    let got = nodes[2].api().post("/api/queues/%2F/work/get", body).await;
    assert_eq!(got.code(), 200, "{}", got.body);
    assert_eq!(got.body[0]["payload"], "again1", "{}", got.body);
    let requeued = eventually(T, || async {
        (api1.ok("/api/queues/%2F/work").await["messages_ready"] == 1).then_some(())
    });
    assert!(requeued.await.is_some());

    // Purge through another node, too.
    let (_c3b, ch3b) = nodes[2].server.channel().await;
    let n = ch3b.queue_purge("work".into(), QueuePurgeOptions::default()).await.unwrap();
    assert_eq!(n, 1);
}

/// The home of a durable queue is killed: through the other nodes, every
/// operation on the queue gets RabbitMQ's 404 (declaring it again no longer
/// moves it to the node asked, orphaning its messages), publishes to it are
/// nacked once (and returned when mandatory), listings show it `down`; when
/// the home is back, every persistent message is there, through any node.
#[tokio::test]
async fn a_queue_whose_home_is_down_is_down_and_keeps_its_messages() {
    use warren_tests::confirms;
    use warren_tests::raw::Raw;
    const N: usize = 1000;
    let mut nodes = cluster_of_three().await;
    let (_c1, ch1) = nodes[0].server.channel().await;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch1.queue_declare("keep".into(), durable, FieldTable::default()).await.unwrap();
    ch1.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let mut pending = Vec::new();
    for k in 0..N {
        let props = BasicProperties::default().with_delivery_mode(2);
        let body = format!("m{k}");
        pending.push(
            ch1.basic_publish("".into(), "keep".into(), Default::default(), body.as_bytes(), props)
                .await
                .unwrap(),
        );
    }
    for p in pending {
        assert!(p.await.unwrap().is_ack());
    }
    let api2 = nodes[1].api();
    let seen = eventually(T, || async {
        let q = api2.ok("/api/queues/%2F/keep").await;
        (q["messages"] == json!(N) && q["state"] == "running").then_some(())
    });
    assert!(seen.await.is_some(), "node 2 never saw the queue's depth");

    nodes[0].server.kill();
    // Each survivor finds the home down on its own (liveness pings), a few
    // milliseconds apart: wait for both before asking either.
    for n in &nodes[1..] {
        let api = n.api();
        let down = eventually(T, || async {
            let q = api.ok("/api/queues/%2F/keep").await;
            (q["state"] == "down").then_some(q)
        })
        .await;
        assert!(down.is_some(), "{} never saw the queue down: {}", n.name, n.server.log_text());
    }
    let listed = api2.ok("/api/queues/%2F").await;
    let row = listed.as_array().unwrap().iter().find(|q| q["name"] == "keep").cloned().unwrap();
    assert_eq!(row["state"], "down");

    // Every operation through node 2 (and 3): 404, and the home stays.
    let expect_404 = |r: Result<(), lapin::Error>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(warren_tests::reply_code(&e), Some(404), "{what}: {e:?}");
        let text = warren_tests::reply_text(&e);
        assert!(
            text.contains(
                "home node 'warren-1@127.0.0.1' of durable queue 'keep' in vhost '/' is down or inaccessible"
            ),
            "{what}: {text}"
        );
    };
    for n in &nodes[1..] {
        let (_c, ch) = n.server.channel().await;
        expect_404(
            ch.queue_declare("keep".into(), durable, FieldTable::default()).await.map(|_| ()),
            "declare",
        );
        let (_c, ch) = n.server.channel().await;
        let passive = QueueDeclareOptions { passive: true, durable: true, ..Default::default() };
        expect_404(
            ch.queue_declare("keep".into(), passive, FieldTable::default()).await.map(|_| ()),
            "passive",
        );
        let (_c, ch) = n.server.channel().await;
        expect_404(ch.basic_get("keep".into(), BasicGetOptions::default()).await.map(|_| ()), "get");
        let (_c, ch) = n.server.channel().await;
        let consume =
            ch.basic_consume("keep".into(), "".into(), Default::default(), FieldTable::default()).await;
        expect_404(consume.map(|_| ()), "consume");
        let (_c, ch) = n.server.channel().await;
        expect_404(ch.queue_purge("keep".into(), Default::default()).await.map(|_| ()), "purge");
        let (_c, ch) = n.server.channel().await;
        expect_404(ch.queue_delete("keep".into(), Default::default()).await.map(|_| ()), "delete");
        let api = n.api();
        assert_eq!(api.put("/api/queues/%2F/keep", json!({"durable": true})).await.code(), 404);
        assert_eq!(api.delete("/api/queues/%2F/keep").await.code(), 404);
        assert_eq!(api.delete("/api/queues/%2F/keep/contents").await.code(), 404);
        let get = json!({"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"});
        assert_eq!(api.post("/api/queues/%2F/keep/get", get).await.code(), 404);
        let body =
            json!({"routing_key": "keep", "payload": "x", "payload_encoding": "string", "properties": {}});
        assert_eq!(
            api.post("/api/exchanges/%2F/amq.default/publish", body).await.body,
            json!({"routed": false})
        );
    }

    // Publishes to it through node 2, seen on the wire: one nack each,
    // and a mandatory one comes back first.
    let mut r = Raw::open(&nodes[1].server.addr()).await;
    confirms::select(&mut r).await;
    confirms::publish(&mut r, "", "keep", true, false).await;
    confirms::publish(&mut r, "", "keep", true, true).await;
    let (frames, returns) = confirms::confirms(&mut r, 2).await;
    assert_eq!(confirms::each_once(&frames, 2), [false, false], "{frames:?}");
    assert_eq!(returns, 1);

    // The home comes back with every message, served through any node.
    nodes[0].server.start_again();
    for n in &nodes {
        n.until_running(3).await;
    }
    let back = eventually(T, || async {
        let q = api2.ok("/api/queues/%2F/keep").await;
        (q["state"] == "running" && q["node"] == "warren-1@127.0.0.1").then_some(())
    });
    assert!(back.await.is_some(), "the queue never came back on its home");
    // Node 3 sees node 1 again at its next ping; until then, a 404.
    let (_c3, ch3) = eventually(T, || async {
        let (c, ch) = nodes[2].server.channel().await;
        let q = ch.queue_declare("keep".into(), durable, FieldTable::default()).await.ok()?;
        (q.message_count() as usize == N).then_some((c, ch))
    })
    .await
    .expect("declare through node 3 after the return");
    let mut got = Vec::new();
    while let Some(m) = ch3.basic_get("keep".into(), BasicGetOptions { no_ack: true }).await.unwrap() {
        got.push(String::from_utf8(m.delivery.data.clone()).unwrap());
    }
    let want: Vec<String> = (0..N).map(|k| format!("m{k}")).collect();
    assert_eq!(got, want);
}

/// A publisher on node 2 sends persistent messages with confirms to a
/// durable queue homed on node 1 (each forwarded over the link, in
/// batches) and node 1 is killed with SIGKILL in the middle. Every message
/// node 2 acked is in the queue when node 1 is back, nothing that was not
/// published appears, and the publishes after the kill are nacked, not
/// acked.
#[tokio::test]
async fn confirmed_publishes_through_another_node_survive_a_kill_of_the_home() {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let mut nodes = cluster_of_three().await;
    let (_c1, ch1) = nodes[0].server.channel().await;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch1.queue_declare("far".into(), durable, FieldTable::default()).await.unwrap();
    let (c2, ch2) = nodes[1].server.channel().await;
    ch2.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let acked_count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (acked_count, stop) = (acked_count.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut acked, mut nacked, mut sent) = (BTreeSet::new(), 0usize, 0usize);
            while !stop.load(Ordering::Relaxed) {
                // A window of 200 publishes, then their confirms.
                let mut window = Vec::new();
                for _ in 0..200 {
                    let props = BasicProperties::default().with_delivery_mode(2);
                    let body = format!("m{sent}");
                    let Ok(confirm) = ch2
                        .basic_publish("".into(), "far".into(), Default::default(), body.as_bytes(), props)
                        .await
                    else {
                        return (acked, nacked, sent);
                    };
                    window.push((sent, confirm));
                    sent += 1;
                }
                for (k, confirm) in window {
                    match confirm.await {
                        Ok(c) if c.is_ack() => {
                            acked.insert(k);
                            acked_count.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => nacked += 1,
                        Err(_) => return (acked, nacked, sent),
                    }
                }
            }
            (acked, nacked, sent)
        })
    };
    let going = eventually(T, || async { (acked_count.load(Ordering::Relaxed) >= 2000).then_some(()) });
    assert!(going.await.is_some(), "publishing through node 2 never got going");
    nodes[0].server.kill();
    // Publishing goes on against a dead home for a while: all nacks.
    let before = acked_count.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let (acked, nacked, sent) =
        tokio::time::timeout(T, publisher).await.expect("the publisher stops").unwrap();
    drop(c2);
    assert!(nacked > 0, "no publish was nacked after the home died (sent {sent}, acked {})", acked.len());
    assert!(acked.len() >= before, "{} < {before}", acked.len());

    nodes[0].server.start_again();
    for n in &nodes {
        n.until_running(3).await;
    }
    let (_c, ch) = eventually(T, || async {
        let (c, ch) = nodes[0].server.channel().await;
        ch.queue_declare("far".into(), durable, FieldTable::default()).await.ok()?;
        Some((c, ch))
    })
    .await
    .expect("the queue on its home after the restart");
    let mut got = BTreeSet::new();
    while let Some(m) = ch.basic_get("far".into(), BasicGetOptions { no_ack: true }).await.unwrap() {
        let body = String::from_utf8(m.delivery.data.clone()).unwrap();
        let k: usize = body.strip_prefix('m').and_then(|k| k.parse().ok()).expect("a published body");
        assert!(k < sent, "m{k} was never published");
        assert!(got.insert(k), "m{k} came back twice");
    }
    let lost: Vec<_> = acked.difference(&got).take(10).collect();
    assert!(
        lost.is_empty(),
        "{} acked messages lost, e.g. {lost:?} (acked {}, back {})",
        acked.difference(&got).count(),
        acked.len(),
        got.len()
    );
}
