//! A cluster that behaves as one broker (issue 20, section 3): what a
//! client does through one node holds on every node, as it would on one
//! RabbitMQ broker behind a load balancer.

mod cluster_support;

use cluster_support::{Node, SECRET, T, cluster_of_three, form};
use warren_tests::eventually;
use warren_tests::http::{Api, json};

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
        let refused = eventually(T, || async {
            (Api::bearer(&n.server, &token).get("/api/whoami").await.code() == 401).then_some(())
        });
        assert!(refused.await.is_some(), "{} still takes the old session", n.name);
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
