//! Policies and operator policies apply to live queues and exchanges at
//! once, and the API shows what is in effect.

use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::FieldTable;
use serde_json::json;
use warren_tests::http::Api;
use warren_tests::{Server, unique};

async fn ready(ch: &lapin::Channel, q: &str) -> u32 {
    ch.queue_declare(
        q.into(),
        QueueDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    )
    .await
    .unwrap()
    .message_count()
}

async fn publish(ch: &lapin::Channel, x: &str, key: &str, n: usize) {
    for i in 0..n {
        ch.basic_publish(
            x.into(),
            key.into(),
            Default::default(),
            i.to_string().as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_policy_change_applies_to_a_live_queue_and_operator_policies_cap_it() {
    let s = Server::start();
    let api = Api::new(&s);
    let (_c, ch) = s.channel().await;
    let q = unique("pol");
    // The queue exists before any policy.
    ch.queue_declare(q.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
    publish(&ch, "", &q, 5).await;
    assert_eq!(ready(&ch, &q).await, 5);

    let policy = |max: u64| json!({"pattern": "^pol-", "apply-to": "queues", "priority": 1, "definition": {"max-length": max}});
    assert_eq!(api.put("/api/policies/%2F/cap", policy(2)).await.code(), 201);
    // drop-head applies at once: the three oldest go.
    assert_eq!(ready(&ch, &q).await, 2);
    let shown = api.ok(&format!("/api/queues/%2F/{q}")).await;
    assert_eq!(shown["policy"], "cap");
    assert_eq!(shown["effective_policy_definition"]["max-length"], 2);

    // A looser policy lets the queue grow again.
    assert_eq!(api.put("/api/policies/%2F/cap", policy(4)).await.code(), 204);
    publish(&ch, "", &q, 5).await;
    assert_eq!(ready(&ch, &q).await, 4);

    // An operator policy caps what the user's policy allows.
    let op = json!({"pattern": ".*", "apply-to": "queues", "definition": {"max-length": 3}});
    assert!(api.put("/api/operator-policies/%2F/ops", op).await.code() < 300);
    assert_eq!(ready(&ch, &q).await, 3);
    let shown = api.ok(&format!("/api/queues/%2F/{q}")).await;
    assert_eq!(shown["operator_policy"], "ops");

    // Without policies the limit is gone.
    assert_eq!(api.delete("/api/operator-policies/%2F/ops").await.code(), 204);
    assert_eq!(api.delete("/api/policies/%2F/cap").await.code(), 204);
    publish(&ch, "", &q, 5).await;
    assert_eq!(ready(&ch, &q).await, 8);
    assert!(api.ok(&format!("/api/queues/%2F/{q}")).await["policy"].is_null());
}

#[tokio::test]
async fn policies_set_message_ttl_dead_lettering_and_alternate_exchanges() {
    let s = Server::start();
    let api = Api::new(&s);
    let (_c, ch) = s.channel().await;
    let (q, dead, x, ae_q) = (unique("ttl"), unique("dead"), unique("x"), unique("ae"));
    ch.queue_declare(dead.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.queue_declare(q.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
    let p = json!({"pattern": format!("^{q}$"), "definition": {
        "message-ttl": 50, "dead-letter-exchange": "", "dead-letter-routing-key": dead}});
    assert_eq!(api.put("/api/policies/%2F/ttl", p).await.code(), 201);
    publish(&ch, "", &q, 1).await;
    let moved = warren_tests::eventually(std::time::Duration::from_secs(5), || async {
        (ready(&ch, &dead).await == 1).then_some(())
    })
    .await;
    assert!(moved.is_some(), "the policy's TTL and dead-letter settings apply");

    ch.exchange_declare(
        x.as_str().into(),
        lapin::ExchangeKind::Direct,
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_declare(ae_q.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
    let p = json!({"pattern": format!("^{x}$"), "apply-to": "exchanges", "definition": {"alternate-exchange": "amq.fanout"}});
    assert_eq!(api.put("/api/policies/%2F/ae", p).await.code(), 201);
    ch.queue_bind(
        ae_q.as_str().into(),
        "amq.fanout".into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, &x, "unbound-key", 1).await;
    assert_eq!(ready(&ch, &ae_q).await, 1);
    assert_eq!(api.ok(&format!("/api/exchanges/%2F/{x}")).await["policy"], "ae");
}
