//! Authentication and tag rules of the management API, the login token,
//! and what lies outside `/api` (assets, security headers, metrics,
//! OpenAPI), against a real server.

use warren_tests::Server;
use warren_tests::http::{Api, json};

/// Creates a user with tags and, optionally, full permissions on `/`.
async fn user(api: &Api, name: &str, tags: &str, perms: bool) {
    let r = api.put(&format!("/api/users/{name}"), json!({"password": "pw", "tags": tags})).await;
    assert_eq!(r.code(), 201, "{:?}", r.body);
    if perms {
        let r = api
            .put(
                &format!("/api/permissions/%2F/{name}"),
                json!({"configure": ".*", "write": ".*", "read": ".*"}),
            )
            .await;
        assert_eq!(r.code(), 201, "{:?}", r.body);
    }
}

#[tokio::test]
async fn no_or_wrong_credentials_are_401_with_challenge() {
    let s = Server::start();
    let r = Api::anonymous(&s).get("/api/overview").await;
    assert_eq!(r.code(), 401);
    assert_eq!(r.headers["www-authenticate"], "Basic realm=\"Warren Management\"");
    assert_eq!(r.body["error"], "not_authorized");
    let r = Api::as_user(&s, "guest", "nope").get("/api/overview").await;
    assert_eq!(r.code(), 401);
    let r = Api::as_user(&s, "nobody", "guest").get("/api/queues").await;
    assert_eq!(r.code(), 401);
    // A garbled header is refused the same way.
    let r = Api::bearer(&s, "not-a-token").get("/api/overview").await;
    assert_eq!(r.code(), 401);
    assert!(r.headers.get("www-authenticate").is_none(), "no Basic challenge for a Bearer failure");
}

#[tokio::test]
async fn tags_decide_access_as_in_rabbitmq() {
    let s = Server::start();
    let admin = Api::new(&s);
    user(&admin, "plain", "", true).await;
    user(&admin, "mgmt", "management", true).await;
    user(&admin, "mon", "monitoring", false).await;
    user(&admin, "pol", "policymaker", true).await;
    admin.put("/api/vhosts/other", json!({})).await;
    admin.put("/api/queues/other/hidden", json!({})).await;
    admin.put("/api/queues/%2F/seen", json!({})).await;

    // No management tag at all: 401 "Not management user".
    let r = Api::as_user(&s, "plain", "pw").get("/api/overview").await;
    assert_eq!((r.code(), r.reason()), (401, "Not management user"));

    // management: own vhosts only, no admin endpoints.
    let mgmt = Api::as_user(&s, "mgmt", "pw");
    let names: Vec<String> = mgmt
        .ok("/api/queues")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap().into())
        .collect();
    assert_eq!(names, vec!["seen"]);
    assert_eq!(mgmt.ok("/api/queues/%2F").await.as_array().unwrap().len(), 1);
    // The overview counts only the vhosts a management user can see.
    assert_eq!(mgmt.ok("/api/overview").await["object_totals"]["queues"], 1);
    assert_eq!(admin.ok("/api/overview").await["object_totals"]["queues"], 2);
    let r = mgmt.get("/api/users").await;
    assert_eq!((r.code(), r.reason()), (401, "Not administrator user"));
    let r = mgmt.get("/api/queues/other").await;
    assert_eq!((r.code(), r.reason()), (401, "User not authorised to access virtual host"));
    let r = mgmt.put("/api/policies/%2F/p", json!({"pattern": ".*", "definition": {"max-length": 1}})).await;
    assert_eq!(r.code(), 401);
    let r = mgmt.put("/api/vhosts/new", json!({})).await;
    assert_eq!(r.code(), 401);
    assert!(admin.get("/api/vhosts/new").await.code() == 404, "a refused request changes nothing");

    // monitoring: sees everything, changes nothing outside its vhosts.
    let mon = Api::as_user(&s, "mon", "pw");
    assert_eq!(mon.ok("/api/queues").await.as_array().unwrap().len(), 2);
    assert_eq!(mon.ok("/api/nodes").await.as_array().unwrap().len(), 1);
    let r = mon.put("/api/queues/other/x", json!({})).await;
    assert_eq!(r.code(), 401);
    assert_eq!(admin.get("/api/queues/other/x").await.code(), 404);
    let r = mon.get("/api/users").await;
    assert_eq!(r.code(), 401);

    // policymaker: policies and parameters in its vhosts.
    let pol = Api::as_user(&s, "pol", "pw");
    let r = pol.put("/api/policies/%2F/p", json!({"pattern": ".*", "definition": {"max-length": 1}})).await;
    assert_eq!(r.code(), 201, "{:?}", r.body);
    let r = pol.put("/api/policies/other/p", json!({"pattern": ".*", "definition": {"max-length": 1}})).await;
    assert_eq!(r.code(), 401);
    let r = pol.get("/api/nodes").await;
    assert_eq!((r.code(), r.reason()), (401, "Not monitor user"));

    // whoami answers for everyone with a management tag.
    let me = mgmt.ok("/api/whoami").await;
    assert_eq!(me, json!({"name": "mgmt", "tags": ["management"]}));
}

#[tokio::test]
async fn login_token_works_as_bearer_and_dies_with_the_password() {
    let s = Server::start();
    let admin = Api::new(&s);
    user(&admin, "dash", "management", true).await;
    let anon = Api::anonymous(&s);
    let r = anon.post("/api/login", json!({"username": "dash", "password": "wrong"})).await;
    assert_eq!(r.code(), 401);
    let r = anon.post("/api/login", json!({"username": "dash"})).await;
    assert_eq!(r.code(), 400);
    let r = anon.post("/api/login", json!({"username": "dash", "password": "pw"})).await;
    assert_eq!(r.code(), 200, "{:?}", r.body);
    assert_eq!(r.body["name"], "dash");
    assert_eq!(r.body["expires_in"], 480 * 60);
    let token = r.body["token"].as_str().unwrap().to_owned();
    let bearer = Api::bearer(&s, &token);
    assert_eq!(bearer.ok("/api/whoami").await["name"], "dash");
    // A tampered token is refused.
    let mut bad = token.clone();
    bad.pop();
    assert_eq!(Api::bearer(&s, &bad).get("/api/whoami").await.code(), 401);
    // Changing the password ends the session.
    admin.put("/api/users/dash", json!({"password": "new", "tags": "management"})).await;
    assert_eq!(bearer.get("/api/whoami").await.code(), 401);
}

#[tokio::test]
async fn login_session_timeout_is_configurable() {
    let s = Server::start_with(&["--login-session-timeout", "1"]);
    let r = Api::anonymous(&s).post("/api/login", json!({"username": "guest", "password": "guest"})).await;
    assert_eq!(r.body["expires_in"], 60);
}

#[tokio::test]
async fn outside_api_assets_headers_metrics_and_openapi() {
    let s = Server::start();
    let anon = Api::anonymous(&s);
    let r = anon.get("/").await;
    assert_eq!(r.code(), 200);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(r.headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert!(r.headers.get("referrer-policy").is_some());
    for path in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2fetc%2fpasswd",
        "/js/../../Cargo.toml",
    ] {
        // Outside /api every GET is the dashboard's shell (its deep links)
        // or a 404; never a file.
        let r = anon.get(path).await;
        let html =
            r.headers.get("content-type").is_some_and(|t| t.to_str().unwrap().starts_with("text/html"));
        assert!(r.code() == 404 || html, "{path}: {}", r.code());
        assert!(!r.body.to_string().contains("root:"), "{path}");
    }
    let r = anon.get("/api/no-such-thing").await;
    assert_eq!((r.code(), r.body["error"].as_str()), (404, Some("not_found")));
    // Security headers are on API answers too.
    let r = Api::new(&s).get("/api/overview").await;
    assert_eq!(r.headers["x-content-type-options"], "nosniff");

    let r = anon.get("/metrics").await;
    assert_eq!(r.code(), 200);
    let text = r.body.as_str().unwrap().to_owned();
    for m in [
        "rabbitmq_queue_messages ",
        "rabbitmq_queue_messages_ready ",
        "rabbitmq_queue_messages_unacked ",
        "rabbitmq_connections ",
        "rabbitmq_channels ",
        "rabbitmq_global_messages_received_total ",
        "rabbitmq_global_messages_delivered_total ",
        "rabbitmq_global_messages_confirmed_total ",
    ] {
        assert!(text.contains(m), "missing {m} in\n{text}");
    }

    let doc = anon.ok("/api/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/api/queues/{vhost}/{name}"].is_object());
}
