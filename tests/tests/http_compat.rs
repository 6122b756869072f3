//! What RabbitMQ's own tools read from and send to the management API:
//! every field of a node, the deprecated `/api/healthchecks/node`, and the
//! refusals of malformed bodies (not an object, ill-typed policy values,
//! incomplete publishes, bodies over `management.http.max_body_size`).

use serde_json::Value;
use warren_tests::Server;
use warren_tests::http::{Api, json, reqwest::Method};

/// Every field RabbitMQ 3.10's `/api/nodes/{name}` has, with its JSON type.
const NODE_FIELDS: &[(&str, &str)] = &[
    ("name", "string"),
    ("type", "string"),
    ("running", "bool"),
    ("os_pid", "string"),
    ("partitions", "array"),
    ("fd_used", "number"),
    ("fd_total", "number"),
    ("sockets_used", "number"),
    ("sockets_total", "number"),
    ("mem_used", "number"),
    ("mem_limit", "number"),
    ("mem_alarm", "bool"),
    ("mem_calculation_strategy", "string"),
    ("disk_free", "number"),
    ("disk_free_limit", "number"),
    ("disk_free_alarm", "bool"),
    ("proc_used", "number"),
    ("proc_total", "number"),
    ("rates_mode", "string"),
    ("uptime", "number"),
    ("run_queue", "number"),
    ("processors", "number"),
    ("exchange_types", "array"),
    ("auth_mechanisms", "array"),
    ("applications", "array"),
    ("contexts", "array"),
    ("log_files", "array"),
    ("db_dir", "string"),
    ("config_files", "array"),
    ("net_ticktime", "number"),
    ("enabled_plugins", "array"),
    ("ra_open_file_metrics", "object"),
    ("cluster_links", "array"),
    ("metrics_gc_queue_length", "object"),
    ("fd_used_details", "object"),
    ("sockets_used_details", "object"),
    ("mem_used_details", "object"),
    ("disk_free_details", "object"),
    ("proc_used_details", "object"),
    ("gc_num", "number"),
    ("gc_num_details", "object"),
    ("gc_bytes_reclaimed", "number"),
    ("gc_bytes_reclaimed_details", "object"),
    ("context_switches", "number"),
    ("context_switches_details", "object"),
    ("io_read_count", "number"),
    ("io_read_bytes", "number"),
    ("io_read_avg_time", "number"),
    ("io_write_count", "number"),
    ("io_write_bytes", "number"),
    ("io_write_avg_time", "number"),
    ("io_sync_count", "number"),
    ("io_sync_avg_time", "number"),
    ("io_seek_count", "number"),
    ("io_seek_avg_time", "number"),
    ("io_reopen_count", "number"),
    ("mnesia_ram_tx_count", "number"),
    ("mnesia_disk_tx_count", "number"),
    ("msg_store_read_count", "number"),
    ("msg_store_write_count", "number"),
    ("queue_index_write_count", "number"),
    ("queue_index_read_count", "number"),
    ("io_read_count_details", "object"),
    ("io_write_bytes_details", "object"),
    ("connection_created", "number"),
    ("connection_created_details", "object"),
    ("connection_closed", "number"),
    ("channel_created", "number"),
    ("channel_closed", "number"),
    ("queue_declared", "number"),
    ("queue_created", "number"),
    ("queue_deleted", "number"),
    ("queue_deleted_details", "object"),
];

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check_node(n: &Value) {
    let missing: Vec<String> = NODE_FIELDS
        .iter()
        .filter(|(k, t)| type_of(&n[*k]) != *t)
        .map(|(k, t)| format!("{k}: want {t}, got {}", n[*k]))
        .collect();
    assert!(missing.is_empty(), "node fields missing or mistyped:\n{}\n{n:#}", missing.join("\n"));
}

#[tokio::test]
async fn nodes_have_every_field_rabbitmq_returns() {
    let s = Server::start();
    let api = Api::new(&s);
    let (_c, _ch) = s.channel().await;
    let nodes = api.ok("/api/nodes").await;
    check_node(&nodes[0]);
    let name = nodes[0]["name"].as_str().unwrap().to_owned();
    let n = api.ok(&format!("/api/nodes/{name}")).await;
    check_node(&n);
    // Figures with a meaning here are real ones.
    assert!(n["proc_used"].as_u64().unwrap() >= 2, "{n}");
    assert!(n["proc_total"].as_u64().unwrap() >= n["proc_used"].as_u64().unwrap());
    assert!(n["sockets_used"].as_u64().unwrap() >= 1);
    assert!(n["sockets_total"].as_u64().unwrap() >= n["sockets_used"].as_u64().unwrap());
    assert!(n["os_pid"].as_str().unwrap().parse::<u32>().is_ok());
    assert_eq!(n["rates_mode"], "basic");
    assert!(n["processors"].as_u64().unwrap() >= 1);
    assert_eq!(n["connection_created"], 1, "{n}");
    assert_eq!(n["partitions"], json!([]));
    let mechs: Vec<&str> =
        n["auth_mechanisms"].as_array().unwrap().iter().filter_map(|m| m["name"].as_str()).collect();
    assert!(mechs.contains(&"PLAIN") && mechs.contains(&"AMQPLAIN"), "{mechs:?}");
    assert!(n["db_dir"].as_str().unwrap().contains(s.data_dir.to_str().unwrap()), "{}", n["db_dir"]);
    assert!(n["exchange_types"].as_array().unwrap().iter().any(|x| x["name"] == "topic"));
}

#[tokio::test]
async fn deprecated_node_healthcheck_is_served() {
    let s = Server::start();
    let api = Api::new(&s);
    assert_eq!(api.ok("/api/healthchecks/node").await, json!({"status": "ok"}));
    let name = api.ok("/api/overview").await["node"].as_str().unwrap().to_owned();
    assert_eq!(api.ok(&format!("/api/healthchecks/node/{name}")).await, json!({"status": "ok"}));
    assert_eq!(api.get("/api/healthchecks/node/rabbit@elsewhere").await.code(), 404);
    assert_eq!(Api::anonymous(&s).get("/api/healthchecks/node").await.code(), 401);
}

/// Request bodies that are JSON but not an object are refused as RabbitMQ
/// refuses them (`not_json`), instead of reading as an empty object.
#[tokio::test]
async fn bodies_that_are_not_objects_are_refused() {
    let s = Server::start();
    let api = Api::new(&s);
    let endpoints = [
        (Method::PUT, "/api/queues/%2F/q-array"),
        (Method::PUT, "/api/users/u-array"),
        (Method::PUT, "/api/exchanges/%2F/x-array"),
        (Method::PUT, "/api/vhosts/v-array"),
        (Method::PUT, "/api/permissions/%2F/guest"),
        (Method::PUT, "/api/policies/%2F/p-array"),
        (Method::POST, "/api/exchanges/%2F/amq.default/publish"),
        (Method::POST, "/api/definitions"),
    ];
    for (method, path) in endpoints {
        for body in ["[]", "3", "[{\"password\": \"x\"}]"] {
            let r = api.raw(method.clone(), path, Some(body.into())).await;
            assert_eq!(r.code(), 400, "{method} {path} {body}: {:?}", r.body);
            assert_eq!(
                r.body,
                json!({"error": "bad_request", "reason": "not_json"}),
                "{method} {path} {body}"
            );
        }
        let r = api.raw(method.clone(), path, Some("\"x\"".into())).await;
        assert_eq!(r.code(), 400, "{method} {path}: {:?}", r.body);
        assert!(r.reason().contains("JSON-decoded to a string"), "{:?}", r.body);
    }
    assert_eq!(api.get("/api/users/u-array").await.code(), 404, "no user made from []");
    assert_eq!(api.get("/api/queues/%2F/q-array").await.code(), 404);
}

#[tokio::test]
async fn policy_values_are_validated_per_key() {
    let s = Server::start();
    let api = Api::new(&s);
    let put = |def: Value| {
        let api = api.clone();
        async move { api.put("/api/policies/%2F/p", json!({"pattern": ".*", "definition": def})).await }
    };
    let refused = [
        (json!({"max-length": "ten"}), "<<\"ten\">> is not a valid maximum length"),
        (json!({"max-length": -1}), "-1 is not a valid maximum length"),
        (json!({"max-length-bytes": 1.5}), "1.5 is not a valid maximum length in bytes"),
        (json!({"message-ttl": "1000"}), "<<\"1000\">> is not a valid message TTL"),
        (json!({"expires": 0}), "0 is not a valid queue expiry"),
        (json!({"delivery-limit": -3}), "-3 is not a valid delivery limit"),
        (json!({"overflow": "drop-tail"}), "<<\"drop-tail\">> is not a valid overflow value"),
        (json!({"dead-letter-exchange": 5}), "5 is not a valid dead letter exchange name"),
        (json!({"dead-letter-routing-key": true}), "true is not a valid dead letter routing key"),
        (json!({"alternate-exchange": ["x"]}), "[<<\"x\">>] is not a valid alternate exchange name"),
        (json!({"queue-mode": "eager"}), "<<\"eager\">> is not a valid queue-mode value"),
        (json!({"ha-mode": "some"}), "<<\"some\">> is not a valid ha-mode value"),
        (
            json!({"ha-mode": "exactly", "ha-params": "2"}),
            "ha-mode=\"exactly\" takes an integer, <<\"2\">> given",
        ),
        (json!({"ha-mode": "all", "ha-params": 2}), "ha-mode=\"all\" does not take parameters"),
        (
            json!({"ha-params": 2}),
            "ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown",
        ),
    ];
    for (def, why) in refused {
        let r = put(def.clone()).await;
        assert_eq!(r.code(), 400, "{def}: {:?}", r.body);
        assert_eq!(r.body["error"], "bad_request");
        assert_eq!(r.reason(), format!("Validation failed\n\n{why}\n"), "{def}");
    }
    assert_eq!(api.get("/api/policies/%2F/p").await.code(), 404);
    // What was valid stays valid.
    for def in [
        json!({"max-length": 10, "overflow": "reject-publish", "dead-letter-exchange": "dlx"}),
        json!({"message-ttl": 0, "expires": 1, "queue-mode": "lazy", "delivery-limit": 0}),
        json!({"ha-mode": "exactly", "ha-params": 2, "ha-sync-mode": "automatic"}),
        json!({"ha-mode": "nodes", "ha-params": ["warren@a"]}),
        json!({"max-age": "7D", "queue-version": 2, "queue-leader-locator": "balanced"}),
    ] {
        assert!([201, 204].contains(&put(def.clone()).await.code()), "{def}");
    }
    // Operator policies too.
    let r = api
        .put("/api/operator-policies/%2F/op", json!({"pattern": ".*", "definition": {"max-length": "ten"}}))
        .await;
    assert_eq!(r.code(), 400);
    assert_eq!(r.reason(), "Validation failed\n\n<<\"ten\">> is not a valid maximum length\n");
}

#[tokio::test]
async fn publish_needs_every_field_and_a_valid_delivery_mode() {
    let s = Server::start();
    let api = Api::new(&s);
    assert_eq!(api.put("/api/queues/%2F/pq", json!({})).await.code(), 201);
    let path = "/api/exchanges/%2F/amq.default/publish";
    let r = api.post(path, json!({"routing_key": "pq", "payload": "x", "payload_encoding": "string"})).await;
    assert_eq!((r.code(), r.reason()), (400, "[{key_missing,properties}]"), "{:?}", r.body);
    let r = api.post(path, json!({"payload": "x", "properties": {}})).await;
    assert_eq!(
        (r.code(), r.reason()),
        (400, "[{key_missing,routing_key},{key_missing,payload_encoding}]"),
        "{:?}",
        r.body
    );
    for mode in [0, 3, 9] {
        let body = json!({"routing_key": "pq", "payload": "x", "payload_encoding": "string",
                          "properties": {"delivery_mode": mode}});
        let r = api.post(path, body).await;
        assert_eq!(r.code(), 400, "{mode}: {:?}", r.body);
        assert_eq!(
            r.reason(),
            format!("406 PRECONDITION_FAILED - invalid message: {{delivery_mode_unknown,{mode}}}")
        );
    }
    assert_eq!(api.ok("/api/queues/%2F/pq").await["messages"], 0);
    for mode in [1, 2] {
        let body = json!({"routing_key": "pq", "payload": "x", "payload_encoding": "string",
                          "properties": {"delivery_mode": mode}});
        assert_eq!(api.post(path, body).await.body, json!({"routed": true}));
    }
}

#[tokio::test]
async fn request_bodies_are_capped_by_max_body_size() {
    let dir = std::env::temp_dir().join(warren_tests::unique("warren-body-limit"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("warren.conf");
    std::fs::write(&conf, "management.http.max_body_size = 4096\n").unwrap();
    let s = Server::start_with(&["--config", conf.to_str().unwrap()]);
    let api = Api::new(&s);
    // Just under the limit passes; one byte over is refused, on every
    // endpoint that reads a body, definitions included.
    let body = |size: usize| {
        // `{"description":"` and `","tags":""}` around the padding.
        format!("{{\"description\":\"{}\",\"tags\":\"\"}}", "d".repeat(size - 28))
    };
    let (ok, over) = (body(4096), body(4097));
    assert_eq!((ok.len(), over.len()), (4096, 4097));
    assert_eq!(api.raw(Method::PUT, "/api/vhosts/small", Some(ok)).await.code(), 201);
    for (method, path) in [
        (Method::PUT, "/api/vhosts/big"),
        (Method::POST, "/api/definitions"),
        (Method::PUT, "/api/queues/%2F/big"),
        (Method::POST, "/api/exchanges/%2F/amq.default/publish"),
    ] {
        let r = api.raw(method.clone(), path, Some(over.clone())).await;
        assert_eq!(
            (r.code(), &r.body),
            (400, &json!({"error": "bad_request", "reason": "Exceeded HTTP request body size limit"})),
            "{method} {path}"
        );
    }
    assert_eq!(api.get("/api/vhosts/big").await.code(), 404);
    // The setting is shown by `environment`.
    let env = api.ok("/api/node/environment").await;
    assert!(env.to_string().contains("management.http.max_body_size"), "{env}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `management.tcp.ip` puts the management listener on that interface
/// only, as in RabbitMQ (it used to be read and then ignored: the listener
/// took the AMQP interfaces).
#[tokio::test]
async fn management_tcp_ip_picks_the_management_interface() {
    let dir = std::env::temp_dir().join(warren_tests::unique("warren-mgmt-ip"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("warren.conf");
    std::fs::write(&conf, "management.tcp.ip = 127.0.0.2\n").unwrap();
    let s = Server::start_with(&["--config", conf.to_str().unwrap()]);
    assert!(
        s.wait_for_log("started HTTP listener on 127.0.0.2:", std::time::Duration::from_secs(20)),
        "{}",
        s.log_text()
    );
    let port = s.http_port;
    assert!(tokio::net::TcpStream::connect(("127.0.0.2", port)).await.is_ok(), "nothing on 127.0.0.2:{port}");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "the management listener is also on 127.0.0.1:{port}"
    );
    // AMQP keeps its own interface.
    let (_c, _ch) = s.channel().await;
}
