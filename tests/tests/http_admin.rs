//! Administration: vhosts, users, permissions, topic permissions,
//! parameters, policies, limits, definitions export and import (with a
//! RabbitMQ SHA-256 user), and the node-level endpoints and health checks.

use warren_tests::Server;
use warren_tests::http::{Api, json};

/// RabbitMQ's `rabbit_password_hashing_sha256` hash of "secret":
/// base64(salt ++ sha256(salt ++ "secret")) with the salt 01 02 03 04.
fn rabbit_hash() -> &'static str {
    "AQIDBDB9kM21iEUzN1lZ+6VReCsdNqS0sERdAQTcY6Xs3PMz"
}

#[tokio::test]
async fn vhosts_users_permissions() {
    let s = Server::start();
    let api = Api::new(&s);
    assert_eq!(api.put("/api/vhosts/dev", json!({"description": "d", "tags": "a,b"})).await.code(), 201);
    assert_eq!(api.put("/api/vhosts/dev", json!({"description": "e"})).await.code(), 204);
    let v = api.ok("/api/vhosts/dev").await;
    assert_eq!((v["description"].as_str(), v["tags"].clone()), (Some("e"), json!(["a", "b"])));
    assert_eq!(v["messages"], 0);
    assert_eq!(api.put("/api/vhosts/dev", json!({"tracing": true})).await.code(), 400);
    assert_eq!(api.put("/api/vhosts/x", json!({"description": 5})).await.code(), 400);
    assert_eq!(api.get("/api/vhosts/x").await.code(), 404);
    assert_eq!(api.ok("/api/vhosts").await.as_array().unwrap().len(), 2);

    assert_eq!(
        api.put("/api/users/bob", json!({"password": "pw", "tags": ["management"]})).await.code(),
        201
    );
    let u = api.ok("/api/users/bob").await;
    assert_eq!(u["tags"], json!(["management"]));
    assert_eq!(u["hashing_algorithm"], "argon2id");
    for body in [
        json!({"password": "a", "password_hash": "b"}),
        json!({"password_hash": "zz", "hashing_algorithm": "rabbit_password_hashing_md5"}),
        json!({"password_hash": "not base64!", "hashing_algorithm": "rabbit_password_hashing_sha256"}),
        json!({"password": 5}),
        json!({"tags": 5}),
        json!({"passwd": "x"}),
    ] {
        assert_eq!(api.put("/api/users/carol", body.clone()).await.code(), 400, "{body}");
    }
    assert_eq!(api.get("/api/users/carol").await.code(), 404);
    assert_eq!(api.put("/api/users/", json!({})).await.code(), 400);

    let p = json!({"configure": "^bob-", "write": ".*", "read": ".*"});
    assert_eq!(api.put("/api/permissions/dev/bob", p.clone()).await.code(), 201);
    assert_eq!(api.put("/api/permissions/dev/bob", p).await.code(), 204);
    assert_eq!(api.ok("/api/permissions/dev/bob").await["configure"], "^bob-");
    assert_eq!(api.ok("/api/users/bob/permissions").await.as_array().unwrap().len(), 1);
    // The creator of a vhost gets full permissions on it, as in RabbitMQ.
    assert_eq!(api.ok("/api/vhosts/dev/permissions").await.as_array().unwrap().len(), 2);
    assert_eq!(api.ok("/api/permissions/dev/guest").await["configure"], ".*");
    assert_eq!(api.ok("/api/permissions").await.as_array().unwrap().len(), 3);
    let bad = json!({"configure": "(", "write": "", "read": ""});
    assert_eq!(api.put("/api/permissions/dev/bob", bad).await.code(), 400);
    assert_eq!(api.ok("/api/permissions/dev/bob").await["configure"], "^bob-");
    let p = json!({"configure": "", "write": "", "read": ""});
    assert_eq!(api.put("/api/permissions/nope/bob", p.clone()).await.code(), 404);
    assert_eq!(api.put("/api/permissions/dev/nobody", p).await.code(), 404);
    assert_eq!(api.put("/api/permissions/dev/bob", json!({"configure": ""})).await.code(), 400);

    let tp = json!({"exchange": "amq.topic", "write": "^a", "read": ".*"});
    assert_eq!(api.put("/api/topic-permissions/dev/bob", tp).await.code(), 201);
    assert_eq!(api.ok("/api/topic-permissions/dev/bob").await[0]["write"], "^a");
    assert_eq!(api.ok("/api/topic-permissions").await.as_array().unwrap().len(), 1);
    assert_eq!(api.ok("/api/users/bob/topic-permissions").await.as_array().unwrap().len(), 1);
    assert_eq!(api.ok("/api/vhosts/dev/topic-permissions").await.as_array().unwrap().len(), 1);
    // ?exchange= clears one exchange's entry and keeps the others.
    let tp2 = json!({"exchange": "logs", "write": ".*", "read": ".*"});
    assert_eq!(api.put("/api/topic-permissions/dev/bob", tp2).await.code(), 204);
    assert_eq!(api.ok("/api/topic-permissions/dev/bob").await.as_array().unwrap().len(), 2);
    assert_eq!(api.delete("/api/topic-permissions/dev/bob?exchange=nope").await.code(), 404);
    assert_eq!(api.delete("/api/topic-permissions/dev/bob?exchange=logs").await.code(), 204);
    let left = api.ok("/api/topic-permissions/dev/bob").await;
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left[0]["exchange"], "amq.topic");
    assert_eq!(api.delete("/api/topic-permissions/dev/bob").await.code(), 204);
    assert_eq!(api.get("/api/topic-permissions/dev/bob").await.code(), 404);

    assert_eq!(api.put("/api/users/nop", json!({"tags": ""})).await.code(), 201);
    let without = api.ok("/api/users/without-permissions").await;
    assert_eq!(without.as_array().unwrap().iter().filter(|u| u["name"] == "nop").count(), 1);
    assert_eq!(api.post("/api/users/bulk-delete", json!({"users": ["nop", "ghost"]})).await.code(), 204);
    assert_eq!(api.get("/api/users/nop").await.code(), 404);

    assert_eq!(api.delete("/api/permissions/dev/bob").await.code(), 204);
    assert_eq!(api.delete("/api/permissions/dev/bob").await.code(), 404);
    assert_eq!(api.delete("/api/users/bob").await.code(), 204);
    assert_eq!(api.delete("/api/users/bob").await.code(), 404);
    assert_eq!(api.delete("/api/vhosts/dev").await.code(), 204);
    assert_eq!(api.delete("/api/vhosts/dev").await.code(), 404);
}

#[tokio::test]
async fn parameters_policies_limits() {
    let s = Server::start();
    let api = Api::new(&s);
    let r =
        api.put("/api/parameters/federation-upstream/%2F/up", json!({"value": {"uri": "amqp://x"}})).await;
    assert_eq!(r.code(), 201, "{:?}", r.body);
    assert_eq!(api.ok("/api/parameters/federation-upstream/%2F/up").await["value"]["uri"], "amqp://x");
    assert_eq!(api.ok("/api/parameters").await.as_array().unwrap().len(), 1);
    assert_eq!(api.ok("/api/parameters/federation-upstream").await.as_array().unwrap().len(), 1);
    assert_eq!(api.ok("/api/parameters/federation-upstream/%2F").await[0]["name"], "up");
    assert_eq!(api.get("/api/parameters/federation-upstream/nope").await.code(), 404);
    assert_eq!(api.put("/api/parameters/federation-upstream/%2F/up", json!({})).await.code(), 400);
    assert_eq!(api.put("/api/parameters/policy/%2F/p", json!({"value": {}})).await.code(), 400);
    assert_eq!(api.put("/api/parameters/c/nope/p", json!({"value": 1})).await.code(), 404);
    assert_eq!(api.delete("/api/parameters/federation-upstream/%2F/up").await.code(), 204);
    assert_eq!(api.get("/api/parameters/federation-upstream/%2F/up").await.code(), 404);

    assert_eq!(api.put("/api/global-parameters/g1", json!({"value": [1, 2]})).await.code(), 201);
    assert_eq!(api.ok("/api/global-parameters/g1").await["value"], json!([1, 2]));
    assert_eq!(api.delete("/api/global-parameters/g1").await.code(), 204);
    assert_eq!(api.put("/api/cluster-name", json!({"name": "rabbit-ish"})).await.code(), 204);
    assert_eq!(api.ok("/api/cluster-name").await["name"], "rabbit-ish");
    assert_eq!(api.put("/api/cluster-name", json!({"name": ""})).await.code(), 400);

    let pol =
        json!({"pattern": "^ha\\.", "definition": {"max-length": 5}, "priority": "3", "apply-to": "queues"});
    assert_eq!(api.put("/api/policies/%2F/cap", pol).await.code(), 201);
    let p = api.ok("/api/policies/%2F/cap").await;
    assert_eq!((p["priority"].as_i64(), p["apply-to"].as_str()), (Some(3), Some("queues")));
    assert_eq!(api.ok("/api/policies").await.as_array().unwrap().len(), 1);
    assert_eq!(api.ok("/api/policies/%2F").await.as_array().unwrap().len(), 1);
    for body in [
        json!({"pattern": "(", "definition": {"a": 1}}),
        json!({"pattern": ".*", "definition": {}}),
        json!({"pattern": ".*", "definition": {"a": 1}, "apply-to": "nothing"}),
        json!({"pattern": ".*", "definition": {"a": 1}, "priority": "high"}),
        json!({"pattern": ".*"}),
    ] {
        assert_eq!(api.put("/api/policies/%2F/bad", body.clone()).await.code(), 400, "{body}");
    }
    assert_eq!(api.get("/api/policies/%2F/bad").await.code(), 404);
    let op = json!({"pattern": ".*", "definition": {"max-length": 100}});
    assert_eq!(api.put("/api/operator-policies/%2F/op", op).await.code(), 201);
    assert_eq!(api.ok("/api/operator-policies").await.as_array().unwrap().len(), 1);
    assert_eq!(api.ok("/api/operator-policies/%2F").await.as_array().unwrap().len(), 1);
    assert_eq!(api.ok("/api/operator-policies/%2F/op").await["definition"], json!({"max-length": 100}));
    assert_eq!(api.delete("/api/operator-policies/%2F/op").await.code(), 204);
    assert_eq!(api.delete("/api/policies/%2F/cap").await.code(), 204);
    assert!(api.ok("/api/parameters").await.as_array().unwrap().is_empty(), "policies are not parameters");

    assert_eq!(api.put("/api/vhost-limits/%2F/max-queues", json!({"value": 10})).await.code(), 204);
    assert_eq!(api.ok("/api/vhost-limits/%2F").await[0]["value"], json!({"max-queues": 10}));
    assert_eq!(api.ok("/api/vhost-limits").await.as_array().unwrap().len(), 1);
    assert_eq!(api.put("/api/vhost-limits/%2F/max-fun", json!({"value": 1})).await.code(), 400);
    assert_eq!(api.put("/api/vhost-limits/%2F/max-queues", json!({"value": "many"})).await.code(), 400);
    assert_eq!(api.delete("/api/vhost-limits/%2F/max-queues").await.code(), 204);
    assert!(api.ok("/api/vhost-limits").await.as_array().unwrap().is_empty());

    assert_eq!(api.put("/api/user-limits/guest/max-channels", json!({"value": 5})).await.code(), 204);
    assert_eq!(api.ok("/api/user-limits/guest").await[0]["value"], json!({"max-channels": 5}));
    assert_eq!(api.ok("/api/users/guest").await["limits"], json!({"max-channels": 5}));
    assert_eq!(api.ok("/api/user-limits").await.as_array().unwrap().len(), 1);
    assert!(
        api.ok("/api/global-parameters")
            .await
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["name"] != "warren_user_limits")
    );
    assert_eq!(api.put("/api/user-limits/nobody/max-channels", json!({"value": 5})).await.code(), 404);
    assert_eq!(api.delete("/api/user-limits/guest/max-channels").await.code(), 204);
}

#[tokio::test]
async fn definitions_round_trip_and_rabbitmq_users() {
    let s = Server::start();
    let api = Api::new(&s);
    let defs = json!({
        "rabbit_version": "3.10.8",
        "users": [{"name": "old", "password_hash": rabbit_hash(),
                   "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "management",
                   "limits": {"max-connections": 3}}],
        "vhosts": [{"name": "imported", "metadata": {"description": "from RabbitMQ", "tags": []}}],
        "permissions": [{"user": "old", "vhost": "imported", "configure": ".*", "write": ".*", "read": ".*"}],
        "topic_permissions": [],
        "parameters": [],
        "global_parameters": [{"name": "cluster_name", "value": "imported-cluster"}],
        "policies": [{"vhost": "imported", "name": "p", "pattern": ".*", "apply-to": "queues",
                      "definition": {"message-ttl": 1000}, "priority": 0}],
        "queues": [{"name": "iq", "vhost": "imported", "durable": true, "auto_delete": false,
                    "arguments": {"x-queue-type": "classic"}}],
        "exchanges": [{"name": "ix", "vhost": "imported", "type": "direct", "durable": true,
                       "auto_delete": false, "internal": false, "arguments": {}}],
        "bindings": [{"source": "ix", "vhost": "imported", "destination": "iq", "destination_type": "queue",
                      "routing_key": "k", "arguments": {}}]
    });
    let r = api.post("/api/definitions", defs).await;
    assert!(matches!(r.code(), 201 | 204), "{:?}", r.body);
    assert_eq!(api.ok("/api/vhosts/imported").await["description"], "from RabbitMQ");
    assert_eq!(api.ok("/api/queues/imported/iq").await["durable"], true);
    assert_eq!(api.ok("/api/bindings/imported/e/ix/q/iq").await[0]["routing_key"], "k");
    assert_eq!(api.ok("/api/users/old").await["hashing_algorithm"], "rabbit_password_hashing_sha256");
    // The RabbitMQ hash logs in, and is upgraded to argon2id.
    let old = Api::as_user(&s, "old", "secret");
    assert_eq!(old.ok("/api/whoami").await["name"], "old");
    assert_eq!(api.ok("/api/users/old").await["hashing_algorithm"], "argon2id");
    assert_eq!(Api::as_user(&s, "old", "secret").get("/api/whoami").await.code(), 200);
    assert_eq!(Api::as_user(&s, "old", "wrong").get("/api/whoami").await.code(), 401);

    // Export, then import the export into a fresh node: the same objects.
    let exported = api.ok("/api/definitions").await;
    assert_eq!(exported["users"].as_array().unwrap().len(), 2);
    assert_eq!(exported["queues"][0]["name"], "iq");
    assert_eq!(exported["bindings"].as_array().unwrap().len(), 1);
    assert_eq!(
        exported["users"].as_array().unwrap().iter().find(|u| u["name"] == "old").unwrap()["limits"],
        json!({"max-connections": 3})
    );
    let r = api.get("/api/definitions?download=defs.json").await;
    assert!(r.headers["content-disposition"].to_str().unwrap().contains("defs.json"));
    let s2 = Server::start();
    let api2 = Api::new(&s2);
    let r = api2.post("/api/definitions", exported.clone()).await;
    assert_eq!(r.code(), 204, "{:?}", r.body);
    assert_eq!(api2.ok("/api/definitions").await["queues"], exported["queues"]);
    assert_eq!(Api::as_user(&s2, "old", "secret").get("/api/whoami").await.code(), 200);

    // Per-vhost export and import.
    let vdefs = api.ok("/api/definitions/imported").await;
    assert!(vdefs["queues"][0].get("vhost").is_none());
    api2.put("/api/vhosts/copy", json!({})).await;
    assert_eq!(api2.post("/api/definitions/copy", vdefs).await.code(), 204);
    assert_eq!(api2.ok("/api/queues/copy/iq").await["name"], "iq");

    // A bad document changes nothing.
    for bad in [
        json!({"queues": [{"name": "q", "vhost": "nope"}]}),
        json!({"vhosts": [{"name": "v2"}], "exchanges": [{"name": "x", "vhost": "v2", "type": "bogus"}]}),
        json!({"vhosts": [{"name": "v3"}], "permissions": [{"user": "guest", "vhost": "v3", "configure": "(", "write": "", "read": ""}]}),
        json!({"users": [{"name": "u", "password_hash": "x", "hashing_algorithm": "md5"}]}),
        json!({"vhosts": "no"}),
        json!([1]),
    ] {
        let r = api.post("/api/definitions", bad.clone()).await;
        assert_eq!(r.code(), 400, "{bad}: {:?}", r.body);
    }
    let r = api.raw(reqwest::Method::POST, "/api/definitions", Some("{\"vhosts\": [".into())).await;
    assert_eq!(r.code(), 400);
    assert_eq!(api.get("/api/vhosts/v2").await.code(), 404);
    assert_eq!(api.get("/api/vhosts/v3").await.code(), 404);
    assert_eq!(api.get("/api/users/u").await.code(), 404);
}

#[tokio::test]
async fn node_endpoints_and_health() {
    let s = Server::start();
    let api = Api::new(&s);
    let o = api.ok("/api/overview").await;
    for k in
        ["management_version", "product_name", "product_version", "rabbitmq_version", "cluster_name", "node"]
    {
        assert!(o[k].is_string(), "{k}");
    }
    assert!(
        o["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["protocol"] == "amqp" && l["port"] == s.amqp_port)
    );
    assert_eq!(o["object_totals"]["exchanges"], 7);
    assert!(o["queue_totals"]["messages_details"]["rate"].is_number());
    assert!(o["message_stats"]["publish_details"]["rate"].is_number());
    let nodes = api.ok("/api/nodes").await;
    let name = nodes[0]["name"].as_str().unwrap().to_owned();
    assert_eq!(name, o["node"]);
    let n = api.ok(&format!("/api/nodes/{name}")).await;
    assert!(n["mem_used"].as_u64().unwrap() > 1_000_000);
    assert!(n["fd_used"].as_u64().unwrap() > 0);
    assert!(n["disk_free"].as_u64().unwrap() > 0);
    assert!(n["uptime"].is_u64());
    assert_eq!(api.get("/api/nodes/rabbit@elsewhere").await.code(), 404);
    // Warren's addition: the node's queues and their messages.
    assert_eq!(api.put("/api/queues/%2F/nq", json!({})).await.code(), 201);
    for _ in 0..2 {
        let body =
            json!({"routing_key": "nq", "payload": "x", "payload_encoding": "string", "properties": {}});
        assert_eq!(api.post("/api/exchanges/%2F/amq.default/publish", body).await.code(), 200);
    }
    let t = &api.ok(&format!("/api/nodes/{name}")).await["queue_totals"];
    assert_eq!(*t, json!({"queues": 1, "messages": 2, "messages_ready": 2, "messages_unacknowledged": 0}));
    assert_eq!(api.delete("/api/queues/%2F/nq").await.code(), 204);
    assert_eq!(api.ok("/api/extensions").await, json!([]));
    assert_eq!(api.ok("/api/whoami").await, json!({"name": "guest", "tags": ["administrator"]}));

    assert_eq!(api.ok("/api/aliveness-test/%2F").await, json!({"status": "ok"}));
    assert_eq!(api.ok("/api/aliveness-test/%2F").await, json!({"status": "ok"}));
    assert_eq!(api.get("/api/aliveness-test/nope").await.code(), 404);
    for check in [
        "alarms",
        "local-alarms",
        "virtual-hosts",
        "node-is-quorum-critical",
        "node-is-mirror-sync-critical",
        "ready-to-serve-clients",
    ] {
        assert_eq!(api.ok(&format!("/api/health/checks/{check}")).await["status"], "ok", "{check}");
    }
    assert_eq!(api.ok(&format!("/api/health/checks/port-listener/{}", s.amqp_port)).await["status"], "ok");
    let r = api.get("/api/health/checks/port-listener/1").await;
    assert_eq!((r.code(), r.body["status"].as_str()), (503, Some("failed")));
    assert_eq!(api.ok("/api/health/checks/protocol-listener/amqp").await["status"], "ok");
    assert_eq!(api.get("/api/health/checks/protocol-listener/stomp").await.code(), 503);
}
