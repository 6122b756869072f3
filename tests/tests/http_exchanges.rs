//! `/api/exchanges` and `/api/bindings`: declare, list, bind exchange to
//! queue and to exchange, route a published message through them, delete
//! bindings by `properties_key`, and the bad inputs.

use warren_tests::Server;
use warren_tests::http::{Api, json};

#[tokio::test]
async fn exchanges_crud_and_refusals() {
    let s = Server::start();
    let api = Api::new(&s);
    let r = api.put("/api/exchanges/%2F/logs", json!({"type": "topic", "durable": "true"})).await;
    assert_eq!(r.code(), 201, "{:?}", r.body);
    assert_eq!(api.put("/api/exchanges/%2F/logs", json!({"type": "topic"})).await.code(), 204);
    let r = api.put("/api/exchanges/%2F/logs", json!({"type": "fanout"})).await;
    assert_eq!(r.code(), 400);
    let x = api.ok("/api/exchanges/%2F/logs").await;
    assert_eq!(
        (x["type"].as_str(), x["durable"].as_bool(), x["internal"].as_bool()),
        (Some("topic"), Some(true), Some(false))
    );
    assert!(x["message_stats"]["publish_in"].is_u64());
    // The default exchange is `amq.default` in URLs and "" in bodies.
    assert_eq!(api.ok("/api/exchanges/%2F/amq.default").await["name"], "");
    let all = api.ok("/api/exchanges/%2F").await;
    assert_eq!(all.as_array().unwrap().len(), 8);
    assert_eq!(api.ok("/api/exchanges").await.as_array().unwrap().len(), 8);
    let page = api.ok("/api/exchanges?page=1&page_size=2&name=amq.&sort=name").await;
    assert_eq!(
        (page["filtered_count"].as_u64(), page["items"][0]["name"].as_str()),
        (Some(6), Some("amq.direct"))
    );
    assert_eq!(api.get("/api/exchanges/nope").await.code(), 404);
    for (path, body, code) in [
        ("/api/exchanges/%2F/x1", json!({"type": "nonsense"}), 400),
        ("/api/exchanges/%2F/x1", json!({}), 400),
        ("/api/exchanges/%2F/x1", json!({"type": "direct", "internal": "maybe"}), 400),
        ("/api/exchanges/%2F/x1", json!({"type": "direct", "typo": 1}), 400),
        ("/api/exchanges/%2F/", json!({"type": "direct"}), 400),
        ("/api/exchanges/%2F/amq.new", json!({"type": "direct"}), 401),
        ("/api/exchanges/%2F/amq.default", json!({"type": "direct"}), 401),
        ("/api/exchanges/missing/x1", json!({"type": "direct"}), 404),
    ] {
        let r = api.put(path, body.clone()).await;
        assert_eq!(r.code(), code, "{path} {body}: {:?}", r.body);
    }
    assert_eq!(api.get("/api/exchanges/%2F/x1").await.code(), 404);
    assert_eq!(api.delete("/api/exchanges/%2F/amq.direct").await.code(), 401);
    assert_eq!(api.delete("/api/exchanges/%2F/missing").await.code(), 404);
    assert_eq!(api.delete("/api/exchanges/%2F/logs").await.code(), 204);
    assert_eq!(api.get("/api/exchanges/%2F/logs").await.code(), 404);
}

#[tokio::test]
async fn bindings_route_and_delete() {
    let s = Server::start();
    let api = Api::new(&s);
    api.put("/api/exchanges/%2F/ex1", json!({"type": "topic"})).await;
    api.put("/api/exchanges/%2F/ex2", json!({"type": "fanout"})).await;
    api.put("/api/queues/%2F/bq", json!({})).await;
    let r = api.post("/api/bindings/%2F/e/ex1/e/ex2", json!({"routing_key": "a.*"})).await;
    assert_eq!(r.code(), 201, "{:?}", r.body);
    let r = api.post("/api/bindings/%2F/e/ex2/q/bq", json!({"routing_key": "", "arguments": {"x": 1}})).await;
    assert_eq!(r.code(), 201);
    let loc = r.headers["location"].to_str().unwrap().to_owned();
    let r = api.post("/api/bindings/%2F/e/ex1/q/bq", json!({"routing_key": "a b"})).await;
    assert_eq!(r.code(), 201);
    // Route a message ex1 -> ex2 -> bq.
    let r = api
        .post(
            "/api/exchanges/%2F/ex1/publish",
            json!({"routing_key": "a.b", "payload": "via", "payload_encoding": "string", "properties": {}}),
        )
        .await;
    assert_eq!(r.body, json!({"routed": true}));
    assert_eq!(api.ok("/api/queues/%2F/bq").await["messages"], 1);
    // Listings.
    let ee = api.ok("/api/bindings/%2F/e/ex1/e/ex2").await;
    assert_eq!(ee[0]["properties_key"], "a.%2A");
    assert_eq!(api.ok("/api/bindings/%2F/e/ex1/e/ex2/a.%252A").await["destination_type"], "exchange");
    let between = api.ok("/api/bindings/%2F/e/ex1/q/bq").await;
    assert_eq!(between[0]["routing_key"], "a b");
    assert_eq!(between[0]["properties_key"], "a+b");
    let src = api.ok("/api/exchanges/%2F/ex1/bindings/source").await;
    assert_eq!(src.as_array().unwrap().len(), 2);
    let dst = api.ok("/api/exchanges/%2F/ex2/bindings/destination").await;
    assert_eq!(dst[0]["source"], "ex1");
    let qb = api.ok("/api/queues/%2F/bq/bindings").await;
    assert_eq!(qb.as_array().unwrap().len(), 3, "default, ex1 and ex2: {qb}");
    assert_eq!(qb[0]["source"], "", "the default exchange's implicit binding first");
    let all = api.ok("/api/bindings/%2F").await;
    assert_eq!(all.as_array().unwrap().len(), 4);
    assert_eq!(api.ok("/api/bindings").await.as_array().unwrap().len(), 4);
    // Show and delete by properties key (the Location header).
    let one = api.ok(&format!("/api/bindings/%2F/e/ex2/q/bq/{}", loc.replace('~', "%7E"))).await;
    assert_eq!(one["arguments"], json!({"x": 1}));
    assert_eq!(api.delete(&format!("/api/bindings/%2F/e/ex2/q/bq/{loc}")).await.code(), 204);
    assert_eq!(api.get(&format!("/api/bindings/%2F/e/ex2/q/bq/{loc}")).await.code(), 404);
    assert_eq!(api.delete("/api/bindings/%2F/e/ex1/q/bq/a%2Bb").await.code(), 204);
    assert_eq!(api.delete("/api/bindings/%2F/e/ex1/e/ex2/a.%252A").await.code(), 204);
    assert_eq!(api.ok("/api/bindings/%2F").await.as_array().unwrap().len(), 1);
    // Bad bindings.
    for (path, body, code) in [
        ("/api/bindings/%2F/e/missing/q/bq", json!({}), 404),
        ("/api/bindings/%2F/e/ex1/q/missing", json!({}), 404),
        ("/api/bindings/nope/e/ex1/q/bq", json!({}), 404),
        ("/api/bindings/%2F/e/ex1/q/bq", json!({"routing_key": 5}), 400),
        ("/api/bindings/%2F/e/ex1/q/bq", json!({"routing_key": "k", "bogus": true}), 400),
        ("/api/bindings/%2F/e/amq.default/q/bq", json!({}), 401),
    ] {
        let r = api.post(path, body.clone()).await;
        assert_eq!(r.code(), code, "{path} {body}: {:?}", r.body);
    }
    assert_eq!(api.ok("/api/bindings/%2F").await.as_array().unwrap().len(), 1);
}
