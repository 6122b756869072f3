//! A cluster that behaves as one broker (issue 20, section 3): what a
//! client does through one node holds on every node, as it would on one
//! RabbitMQ broker behind a load balancer.

mod cluster_support;

use cluster_support::{Node, SECRET, T, cluster_of_three, form};
use lapin::options::{QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use warren_tests::http::{Api, json};
use warren_tests::{eventually, reply_code};

/// A dashboard login through one node is a session on every node, and a
/// password change through another node ends it on all of them.
#[tokio::test]
async fn a_login_token_from_any_node_is_valid_on_every_node() {
    let nodes = cluster_of_three().await;
    let admin = nodes[0].api();
    let user = json!({"password": "first", "tags": "administrator"});
    assert_eq!(admin.put("/api/users/dash", user).await.code(), 201);

    let r = Api::anonymous(&nodes[0].server)
        .post("/api/login", json!({"username": "dash", "password": "first"}))
        .await;
    assert_eq!(r.code(), 200, "{:?}", r.body);
    let token = r.body["token"].as_str().unwrap().to_owned();
    for n in &nodes {
        let r = Api::bearer(&n.server, &token).get("/api/whoami").await;
        assert_eq!(r.code(), 200, "{}: {:?}", n.name, r.body);
        assert_eq!(r.body["name"], "dash");
    }

    let changed = json!({"password": "second", "tags": "administrator"});
    assert_eq!(nodes[1].api().put("/api/users/dash", changed).await.code(), 204);
    for n in &nodes {
        let r = Api::bearer(&n.server, &token).get("/api/whoami").await;
        assert_eq!(r.code(), 401, "{} still takes the old session: {:?}", n.name, r.body);
    }
}

/// `/api/nodes` through any node shows every member's figures as that
/// member shows its own: here the first node's, with its disk alarm on,
/// through the second and the third.
#[tokio::test]
async fn every_members_figures_and_alarms_are_shown_from_any_node() {
    // More free space than any disk has: the first node's disk alarm is on.
    const LIMIT: u64 = 18_000_000_000_000_000_000;
    let first = Node::start_with(1, SECRET, &["--disk-free-limit", &LIMIT.to_string()]);
    assert!(first.server.wait_for_log("disk alarm set", T), "{}", first.server.log_text());
    let nodes = form([first, Node::start(2, SECRET), Node::start(3, SECRET)]).await;
    let pid = nodes[0].server.pid().unwrap().to_string();
    for n in &nodes[1..] {
        let listed = n.api().ok("/api/nodes").await;
        let entry = |name: &str| {
            let found = listed.as_array().unwrap().iter().find(|e| e["name"] == name).cloned();
            found.unwrap_or_else(|| panic!("{name} is not in {listed}"))
        };
        let (one, own) = (entry(&nodes[0].name), entry(&n.name));
        let fields = [
            "mem_used",
            "mem_limit",
            "mem_alarm",
            "disk_free",
            "disk_free_limit",
            "disk_free_alarm",
            "fd_used",
            "fd_total",
            "sockets_used",
            "sockets_total",
            "uptime",
            "processors",
            "proc_used",
        ];
        for f in fields {
            assert!(!own[f].is_null(), "{} lacks its own {f}: {own}", n.name);
            assert!(!one[f].is_null(), "{} shows no {f} for {}: {one}", n.name, nodes[0].name);
        }
        assert_eq!(one["running"], true);
        assert_eq!(one["os_pid"], pid.as_str(), "the first node's own process");
        assert!(one["mem_used"].as_u64().unwrap() > 1 << 20, "{one}");
        assert!(one["fd_used"].as_u64().unwrap() > 0, "{one}");
        assert!(one["sockets_used"].as_u64().unwrap() >= 2, "its listeners at least: {one}");
        assert!(one["uptime"].as_u64().unwrap() > 0, "{one}");
        assert_eq!(one["disk_free_limit"], LIMIT);
        assert_eq!(one["disk_free_alarm"], true, "{one}");
        assert_eq!(one["mem_alarm"], false, "{one}");
        assert_eq!(own["disk_free_alarm"], false, "{own}");
    }
}

/// Read your writes across nodes: once a declare, a bind or a delete has
/// been answered through one node, the others answer as if they had it,
/// right away (before, about 3 passive declares in 100 through another
/// node got a 404).
#[tokio::test]
async fn a_change_answered_through_one_node_is_seen_at_once_through_the_others() {
    const ROUNDS: usize = 100;
    let nodes = cluster_of_three().await;
    let (_c1, ch1) = nodes[0].server.channel().await;
    let (c2, mut ch2) = nodes[1].server.channel().await;
    let (api2, api3) = (nodes[1].api(), nodes[2].api());
    let (mut unseen, mut unbound, mut undeleted) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        let q = format!("ryw-{i}");
        ch1.queue_declare(q.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())
            .await
            .unwrap();
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        if let Err(e) = ch2.queue_declare(q.as_str().into(), passive, FieldTable::default()).await {
            assert_eq!(reply_code(&e), Some(404), "{e}");
            unseen.push(i);
            ch2 = c2.create_channel().await.unwrap(); // the 404 closed it
        }

        let key = format!("k{i}");
        let bind = QueueBindOptions::default();
        ch1.queue_bind(
            q.as_str().into(),
            "amq.direct".into(),
            key.as_str().into(),
            bind,
            FieldTable::default(),
        )
        .await
        .unwrap();
        let bindings = api3.ok(&format!("/api/bindings/%2F/e/amq.direct/q/{q}")).await;
        if !bindings.as_array().unwrap().iter().any(|b| b["routing_key"] == key.as_str()) {
            unbound.push(i);
        }

        ch1.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await.unwrap();
        if api2.get(&format!("/api/queues/%2F/{q}")).await.code() != 404 {
            undeleted.push(i);
        }
    }
    assert!(
        unseen.is_empty() && unbound.is_empty() && undeleted.is_empty(),
        "in {ROUNDS} rounds, declared through node 1 but 404 through node 2: {unseen:?}; \
         bound through node 1 but not listed through node 3: {unbound:?}; \
         deleted through node 1 but still listed through node 2: {undeleted:?}"
    );
}

/// A member that does not answer is not waited for: with the third node
/// paused (SIGSTOP, a hung node rather than a dead one, whose port still
/// accepts connections), changes through the first are answered at once
/// once the third is found down; resumed, it is waited for again.
#[tokio::test]
async fn a_member_that_does_not_answer_does_not_hold_changes_up() {
    let nodes = cluster_of_three().await;
    let (_c3, ch3) = nodes[2].server.channel().await;
    ch3.queue_declare("on-3".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    let pid = nodes[2].server.pid().unwrap() as libc::pid_t;
    let signal = |sig| assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    let state = || async { nodes[0].api().ok("/api/queues/%2F/on-3").await["state"].clone() };

    signal(libc::SIGSTOP);
    let down = eventually(T, || async { (state().await == "down").then_some(()) }).await;
    let (_c1, ch1) = nodes[0].server.channel().await;
    let started = std::time::Instant::now();
    for i in 0..10 {
        let q = format!("while-3-hangs-{i}");
        ch1.queue_declare(q.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())
            .await
            .unwrap();
    }
    let took = started.elapsed();
    signal(libc::SIGCONT);
    assert!(down.is_some(), "node 1 never found node 3 down");
    assert!(took < std::time::Duration::from_secs(5), "10 declares took {took:?}");

    let up = eventually(T, || async { (state().await == "running").then_some(()) }).await;
    assert!(up.is_some(), "node 1 never found node 3 up again");
    ch1.queue_declare("after-3-resumed".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let (_c3, ch3) = nodes[2].server.channel().await;
    ch3.queue_declare("after-3-resumed".into(), passive, FieldTable::default()).await.unwrap();
}

/// A node that restarts takes back the transient exchanges, queues and
/// bindings the others still have (its store keeps only durable ones),
/// and a transient queue homed on a node that restarts is deleted on
/// every node, as RabbitMQ deletes it.
#[tokio::test]
async fn a_restarted_node_has_the_transient_entities_and_its_own_go() {
    let mut nodes = cluster_of_three().await;
    let (_c1, ch1) = nodes[0].server.channel().await;
    let transient = QueueDeclareOptions::default();
    ch1.exchange_declare("tx".into(), lapin::ExchangeKind::Topic, Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch1.queue_declare("on-1".into(), transient, FieldTable::default()).await.unwrap();
    ch1.queue_bind(
        "on-1".into(),
        "tx".into(),
        "a.#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let (_c3, ch3) = nodes[2].server.channel().await;
    ch3.queue_declare("on-3".into(), transient, FieldTable::default()).await.unwrap();

    // Node 2 restarts: it lists them all again, and the binding routes.
    nodes[1].server.kill();
    nodes[1].server.start_again();
    for n in &nodes {
        n.until_running(3).await;
    }
    let api2 = nodes[1].api();
    let whole = eventually(T, || async {
        let x = api2.get("/api/exchanges/%2F/tx").await.code() == 200;
        let q1 = api2.get("/api/queues/%2F/on-1").await.code() == 200;
        let q3 = api2.get("/api/queues/%2F/on-3").await.code() == 200;
        let b =
            api2.get("/api/exchanges/%2F/tx/bindings/source").await.body.as_array().map(Vec::len) == Some(1);
        (x && q1 && q3 && b).then_some(())
    })
    .await;
    assert!(whole.is_some(), "the restarted node lacks transient entities: {}", nodes[1].server.log_text());
    let (_c2, ch2) = nodes[1].server.channel().await;
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    ch2.queue_declare("on-1".into(), passive, FieldTable::default()).await.expect("on-1 through node 2");
    let ex_passive = lapin::options::ExchangeDeclareOptions { passive: true, ..Default::default() };
    ch2.exchange_declare("tx".into(), lapin::ExchangeKind::Topic, ex_passive, FieldTable::default())
        .await
        .expect("tx through node 2");
    ch2.basic_publish("tx".into(), "a.b".into(), Default::default(), b"routed", Default::default())
        .await
        .unwrap();
    let api1 = nodes[0].api();
    let routed =
        eventually(T, || async { (api1.ok("/api/queues/%2F/on-1").await["messages"] == 1).then_some(()) })
            .await;
    assert!(routed.is_some(), "a publish through the restarted node was not routed by the binding");

    // Node 3 restarts: its transient queue goes everywhere; node 1's stays.
    nodes[2].server.kill();
    nodes[2].server.start_again();
    for n in &nodes {
        n.until_running(3).await;
    }
    for n in &nodes {
        let api = n.api();
        let gone =
            eventually(T, || async { (api.get("/api/queues/%2F/on-3").await.code() == 404).then_some(()) })
                .await;
        assert!(gone.is_some(), "{} still lists the transient queue of the restarted node", n.name);
        // The restarted node lacks on-3 at once, and has node 1's transient
        // entities once its restart's marker is applied.
        let kept = eventually(T, || async {
            let q = api.get("/api/queues/%2F/on-1").await.code() == 200;
            let x = api.get("/api/exchanges/%2F/tx").await.code() == 200;
            (q && x).then_some(())
        })
        .await;
        assert!(kept.is_some(), "{} lacks node 1's transient queue or the exchange", n.name);
    }
}
