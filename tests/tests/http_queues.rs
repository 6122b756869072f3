//! `/api/queues`: declare, show, list with paging, sorting, filtering and
//! columns, purge, get with every ack mode, delete with conditions, and
//! every bad input, which must change nothing.

use warren_tests::Server;
use warren_tests::http::{Api, enc, json};

#[tokio::test]
async fn declare_show_delete() {
    let s = Server::start();
    let api = Api::new(&s);
    let r = api.put("/api/queues/%2F/q1", json!({"durable": true, "arguments": {"x-max-length": 10}})).await;
    assert_eq!(r.code(), 201, "{:?}", r.body);
    // Same again: 204; rabbitmqadmin's string booleans are accepted.
    let r = api.put("/api/queues/%2F/q1", json!({"durable": "true", "auto_delete": "false", "arguments": {"x-max-length": 10}, "vhost": "/", "name": "q1"})).await;
    assert_eq!(r.code(), 204, "{:?}", r.body);
    // Inequivalent: 400 with the broker's explanation.
    let r = api.put("/api/queues/%2F/q1", json!({"durable": false})).await;
    assert_eq!(r.code(), 400);
    assert!(r.reason().contains("inequivalent arg 'durable'"), "{}", r.reason());
    let q = api.ok("/api/queues/%2F/q1").await;
    assert_eq!(q["name"], "q1");
    assert_eq!(q["vhost"], "/");
    assert_eq!(q["durable"], true);
    assert_eq!(q["arguments"], json!({"x-max-length": 10}));
    assert_eq!(q["messages"], 0);
    assert_eq!(q["messages_details"]["rate"], 0.0);
    assert_eq!(q["type"], "classic");
    assert!(q["message_stats"]["publish"].is_u64());
    // A name with odd characters round-trips through the URL.
    let odd = "a b/c%d";
    assert_eq!(api.put(&format!("/api/queues/%2F/{}", enc(odd)), json!({})).await.code(), 201);
    assert_eq!(api.ok(&format!("/api/queues/%2F/{}", enc(odd))).await["name"], odd);
    assert_eq!(api.delete("/api/queues/%2F/q1").await.code(), 204);
    assert_eq!(api.get("/api/queues/%2F/q1").await.code(), 404);
    assert_eq!(api.delete("/api/queues/%2F/q1").await.code(), 404);
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let s = Server::start();
    let api = Api::new(&s);
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("/api/queues/%2F/bad", Some("{\"durable\": tru".into()), 400),
        ("/api/queues/%2F/bad", Some("[1,2]".into()), 400),
        ("/api/queues/%2F/bad", Some(json!({"durable": true, "colour": "red"}).to_string()), 400),
        ("/api/queues/%2F/bad", Some(json!({"durable": "yes"}).to_string()), 400),
        ("/api/queues/%2F/bad", Some(json!({"durable": 1}).to_string()), 400),
        ("/api/queues/%2F/bad", Some(json!({"arguments": "x"}).to_string()), 400),
        ("/api/queues/%2F/bad", Some(json!({"name": "other"}).to_string()), 400),
        ("/api/queues/%2F/bad", Some(json!({"exclusive": true}).to_string()), 400),
        ("/api/queues/%2F/", Some("{}".into()), 400),
        ("/api/queues/nope/bad", Some("{}".into()), 404),
        ("/api/queues/%2F/amq.reserved", Some("{}".into()), 401),
    ];
    for (path, body, code) in cases {
        let r = api.raw(reqwest::Method::PUT, path, body.clone()).await;
        assert_eq!(r.code(), code, "PUT {path} {body:?}: {:?}", r.body);
        if code == 400 {
            assert_eq!(r.body["error"], "bad_request");
            assert!(!r.reason().is_empty());
        }
    }
    let long = "x".repeat(256);
    let r = api.put(&format!("/api/queues/%2F/{long}"), json!({})).await;
    assert_eq!(r.code(), 400);
    assert!(r.reason().contains("too long"), "{}", r.reason());
    let ok = "y".repeat(255);
    assert_eq!(api.put(&format!("/api/queues/%2F/{ok}"), json!({})).await.code(), 201);
    // Nothing but the valid one was created.
    let names: Vec<String> = api
        .ok("/api/queues")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap().into())
        .collect();
    assert_eq!(names, vec![ok]);
    assert_eq!(api.get("/api/queues/nope").await.code(), 404);
    assert_eq!(api.get("/api/queues/nope").await.reason(), "vhost_not_found");
    assert_eq!(api.get("/api/queues/%2F/missing").await.code(), 404);
}

#[tokio::test]
async fn paging_sorting_filtering_columns() {
    let s = Server::start();
    let api = Api::new(&s);
    for i in 0..25 {
        api.put(&format!("/api/queues/%2F/page-{i:02}"), json!({"durable": i % 2 == 0})).await;
    }
    api.put("/api/queues/%2F/other", json!({})).await;
    let p = api.ok("/api/queues?page=2&page_size=10&name=page").await;
    assert_eq!(p["total_count"], 26);
    assert_eq!(p["filtered_count"], 25);
    assert_eq!(p["item_count"], 10);
    assert_eq!(p["page"], 2);
    assert_eq!(p["page_size"], 10);
    assert_eq!(p["page_count"], 3);
    assert_eq!(p["items"][0]["name"], "page-10");
    let p = api.ok("/api/queues?page=1&page_size=5&name=%5Epage-0%5B13%5D&use_regex=true").await;
    let names: Vec<&str> =
        p["items"].as_array().unwrap().iter().map(|q| q["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["page-01", "page-03"]);
    let p = api.ok("/api/queues?page=1&page_size=3&sort=name&sort_reverse=true&columns=name,durable").await;
    assert_eq!(p["items"][0], json!({"name": "page-24", "durable": true}));
    let p = api.ok("/api/queues?sort=durable&columns=name").await;
    assert_eq!(p.as_array().unwrap().len(), 26);
    assert_eq!(p[0].as_object().unwrap().len(), 1);

    // Numeric sorts, paged and filtered: page-NN holds NN % 7 messages.
    for i in 0..25 {
        for _ in 0..(i % 7) {
            let body = json!({"routing_key": format!("page-{i:02}"), "payload": "x", "payload_encoding": "string",
                              "properties": {}});
            assert_eq!(api.post("/api/exchanges/%2F/amq.default/publish", body).await.code(), 200);
        }
    }
    let depths = |p: &serde_json::Value| -> Vec<(String, u64)> {
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| (q["name"].as_str().unwrap().to_owned(), q["messages"].as_u64().unwrap()))
            .collect()
    };
    let p = api.ok("/api/queues?page=1&page_size=4&name=page&sort=messages&sort_reverse=true").await;
    assert_eq!(p["filtered_count"], 25);
    let want: Vec<(String, u64)> =
        [20, 13, 6, 19].iter().map(|i| (format!("page-{i:02}"), (i % 7) as u64)).collect();
    assert_eq!(depths(&p), want, "deepest first; equal depths in reverse name order");
    let p = api.ok("/api/queues?page=2&page_size=5&name=page&sort=message_stats.publish").await;
    let got = depths(&p);
    assert!(got.windows(2).all(|w| w[0].1 <= w[1].1), "{got:?}");
    assert_eq!(got[0].1, 1, "page 2 of an ascending sort starts after the four empty queues and one with 1");
    // A field that has no quick path still sorts, through the full objects.
    let p = api.ok("/api/queues?page=1&page_size=3&name=page&sort=arguments&sort_reverse=true").await;
    assert_eq!(p["item_count"], 3);
    // page_size over the cap, bad numbers, out of range and bad regex.
    for q in [
        "page=1&page_size=501",
        "page=0",
        "page=x",
        "page=9&page_size=10",
        "page=66833911488106608&page_size=356",
        "page=1&name=(&use_regex=true",
    ] {
        let r = api.get(&format!("/api/queues?{q}")).await;
        assert_eq!(r.code(), 400, "{q}: {:?}", r.body);
    }
    let r = api.get("/api/queues?page=1&page_size=501").await;
    assert_eq!(r.body["error"], "invalid_pagination_parameters", "RabbitMQ's error name");
    let p = api.ok("/api/queues?page=1&page_size=500").await;
    assert_eq!(p["item_count"], 26);
}

#[tokio::test]
async fn publish_get_ackmodes_purge_and_conditional_delete() {
    let s = Server::start();
    let api = Api::new(&s);
    api.put("/api/queues/%2F/work", json!({})).await;
    for i in 0..4 {
        let body = json!({"routing_key": "work", "payload": format!("m{i}"), "payload_encoding": "string",
                          "properties": {"delivery_mode": 2, "headers": {"n": i}}});
        let r = api.post("/api/exchanges/%2F/amq.default/publish", body).await;
        assert_eq!(r.body, json!({"routed": true}));
    }
    let get = |count: u64, ackmode: &str| json!({"count": count, "ackmode": ackmode, "encoding": "auto", "truncate": 50000});
    // ack_requeue_true: look, leave them there, now redelivered.
    let got = api.post("/api/queues/%2F/work/get", get(2, "ack_requeue_true")).await.body;
    assert_eq!(got.as_array().unwrap().len(), 2);
    assert_eq!(got[0]["payload"], "m0");
    assert_eq!(got[0]["message_count"], 3);
    assert_eq!(got[0]["properties"]["headers"]["n"], 0);
    assert_eq!(got[0]["properties"]["delivery_mode"], 2);
    assert_eq!(api.ok("/api/queues/%2F/work").await["messages"], 4);
    let got = api.post("/api/queues/%2F/work/get", get(1, "reject_requeue_true")).await.body;
    assert_eq!(got[0]["redelivered"], true);
    // ack_requeue_false takes one for good; reject_requeue_false too.
    let got = api.post("/api/queues/%2F/work/get", get(1, "ack_requeue_false")).await.body;
    assert_eq!(got[0]["payload"], "m0");
    let got = api.post("/api/queues/%2F/work/get", get(1, "reject_requeue_false")).await.body;
    assert_eq!(got[0]["payload"], "m1");
    assert_eq!(api.ok("/api/queues/%2F/work").await["messages"], 2);
    // base64 and truncation.
    let got = api
        .post(
            "/api/queues/%2F/work/get",
            json!({"count": "1", "ackmode": "ack_requeue_true", "encoding": "base64", "truncate": 1}),
        )
        .await
        .body;
    assert_eq!(got[0]["payload_encoding"], "base64");
    assert_eq!(got[0]["payload"], "bQ==");
    assert_eq!(got[0]["payload_bytes"], 2);
    // Bad get bodies change nothing.
    for body in [
        json!({"count": 1, "ackmode": "sometimes", "encoding": "auto"}),
        json!({"count": 1, "ackmode": "ack_requeue_false", "encoding": "utf-16"}),
        json!({"count": -1, "ackmode": "ack_requeue_false", "encoding": "auto"}),
        json!({"count": 1, "ackmode": "ack_requeue_false"}),
        json!({"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto", "extra": 1}),
    ] {
        assert_eq!(api.post("/api/queues/%2F/work/get", body.clone()).await.code(), 400, "{body}");
    }
    assert_eq!(api.ok("/api/queues/%2F/work").await["messages"], 2);
    // Conditional delete, purge.
    let r = api.delete("/api/queues/%2F/work?if-empty=true").await;
    assert_eq!(r.code(), 400, "{:?}", r.body);
    assert_eq!(api.delete("/api/queues/%2F/work/contents").await.code(), 204);
    assert_eq!(api.ok("/api/queues/%2F/work").await["messages"], 0);
    assert_eq!(api.delete("/api/queues/%2F/work?if-empty=true&if-unused=true").await.code(), 204);
    // Unroutable publish and bad publishes.
    let r = api
        .post(
            "/api/exchanges/%2F/amq.default/publish",
            json!({"routing_key": "none", "payload": "x", "payload_encoding": "string", "properties": {}}),
        )
        .await;
    assert_eq!(r.body, json!({"routed": false}));
    for body in [
        json!({"routing_key": "x", "payload": "x", "payload_encoding": "rot13", "properties": {}}),
        json!({"routing_key": "x", "payload": "%%%", "payload_encoding": "base64", "properties": {}}),
        json!({"routing_key": "x", "payload": "x", "payload_encoding": "string", "properties": {"colour": 1}}),
        json!({"routing_key": "x", "payload": "x", "payload_encoding": "string", "properties": {"delivery_mode": "x"}}),
        json!({"payload": "x", "payload_encoding": "string", "properties": {}}),
    ] {
        let r = api.post("/api/exchanges/%2F/amq.default/publish", body.clone()).await;
        assert_eq!(r.code(), 400, "{body}");
    }
    assert_eq!(api.post("/api/exchanges/%2F/missing/publish", json!({})).await.code(), 404);
    assert_eq!(api.post("/api/queues/%2F/missing/get", json!({})).await.code(), 404);
}
