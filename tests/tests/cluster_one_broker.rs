//! A cluster that behaves as one broker (issue 20, section 3): what a
//! client does through one node holds on every node, as it would on one
//! RabbitMQ broker behind a load balancer.

mod cluster_support;

use cluster_support::{T, cluster_of_three};
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
