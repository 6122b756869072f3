//! Users and permissions made through the API rule the AMQP side: without
//! configure permission a queue.declare is 403 ACCESS_REFUSED, without any
//! permission on a vhost connection.open is 530 NOT_ALLOWED.

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use warren_tests::http::{Api, json};
use warren_tests::{Server, reply_code, reply_text};

#[tokio::test]
async fn permissions_set_over_http_apply_to_amqp() {
    let s = Server::start();
    let api = Api::new(&s);
    api.put("/api/users/app", json!({"password": "pw", "tags": ""})).await;
    api.put("/api/vhosts/locked", json!({})).await;
    let r =
        api.put("/api/permissions/%2F/app", json!({"configure": "^app-", "write": ".*", "read": ".*"})).await;
    assert_eq!(r.code(), 201);

    let c =
        Connection::connect(&s.uri_as("app", "pw", "%2f"), ConnectionProperties::default()).await.unwrap();
    let ch = c.create_channel().await.unwrap();
    ch.queue_declare("app-ok".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    let err = ch
        .queue_declare("other".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&err), Some(403));
    assert_eq!(
        reply_text(&err),
        "ACCESS_REFUSED - access to queue 'other' in vhost '/' refused for user 'app'"
    );

    // No permissions at all on the vhost: refused at connection.open.
    let err = Connection::connect(&s.uri_as("app", "pw", "locked"), ConnectionProperties::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&err), Some(530), "{err:?}");
    assert!(
        reply_text(&err).contains("access to vhost 'locked' refused for user 'app'"),
        "{}",
        reply_text(&err)
    );

    // Granting over HTTP opens it; revoking closes it again for new ones.
    api.put("/api/permissions/locked/app", json!({"configure": "", "write": "", "read": ""})).await;
    let c2 =
        Connection::connect(&s.uri_as("app", "pw", "locked"), ConnectionProperties::default()).await.unwrap();
    drop(c2);
    assert_eq!(api.delete("/api/permissions/locked/app").await.code(), 204);
    assert!(
        Connection::connect(&s.uri_as("app", "pw", "locked"), ConnectionProperties::default()).await.is_err()
    );

    // The same user's queue declare over HTTP is refused just as well, and
    // a user without management tags cannot use the API at all.
    assert_eq!(Api::as_user(&s, "app", "pw").get("/api/overview").await.code(), 401);
    api.put("/api/users/app", json!({"tags": "management"})).await;
    let app = Api::as_user(&s, "app", "pw");
    assert_eq!(app.put("/api/queues/%2F/other", json!({})).await.code(), 401);
    assert_eq!(app.put("/api/queues/%2F/app-two", json!({})).await.code(), 201);
    assert_eq!(api.get("/api/queues/%2F/other").await.code(), 404);
}

/// Publishes one message to the default exchange and waits for its confirm;
/// a refused publish closes the channel, which is the error returned.
async fn publish_default(c: &Connection, queue: &str) -> Result<(), lapin::Error> {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
    let ch = c.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let confirm = ch
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            b"m",
            lapin::BasicProperties::default(),
        )
        .await?;
    confirm.await?;
    // Any synchronous method brings the channel close out, should the
    // publish have been refused.
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    )
    .await?;
    Ok(())
}

/// RabbitMQ checks permissions on the default exchange against the name
/// `amq.default`: a write pattern naming it grants publishing there, over
/// AMQP and over HTTP, and a refusal names `exchange 'amq.default'`.
#[tokio::test]
async fn the_default_exchange_is_checked_as_amq_default() {
    let s = Server::start();
    let api = Api::new(&s);
    for user in ["named", "other"] {
        api.put(&format!("/api/users/{user}"), json!({"password": "pw", "tags": "management"})).await;
    }
    let granted = json!({"configure": "^myapp.*", "write": r"^(myapp.*|amq\.default)$", "read": ".*"});
    assert_eq!(api.put("/api/permissions/%2F/named", granted).await.code(), 201);
    let without = json!({"configure": "^myapp.*", "write": "^myapp.*", "read": ".*"});
    assert_eq!(api.put("/api/permissions/%2F/other", without).await.code(), 201);
    assert_eq!(api.put("/api/queues/%2F/myapp-q", json!({})).await.code(), 201);

    let named =
        Connection::connect(&s.uri_as("named", "pw", "%2f"), ConnectionProperties::default()).await.unwrap();
    publish_default(&named, "myapp-q")
        .await
        .expect("amq.default in the write pattern grants the default exchange");
    let other =
        Connection::connect(&s.uri_as("other", "pw", "%2f"), ConnectionProperties::default()).await.unwrap();
    let err = publish_default(&other, "myapp-q").await.unwrap_err();
    assert_eq!(reply_code(&err), Some(403), "{err:?}");
    assert_eq!(
        reply_text(&err),
        "ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'other'"
    );
    assert_eq!(api.ok("/api/queues/%2F/myapp-q").await["messages"], 1);

    // The same rule over HTTP.
    let body =
        json!({"routing_key": "myapp-q", "payload": "h", "payload_encoding": "string", "properties": {}});
    let r =
        Api::as_user(&s, "named", "pw").post("/api/exchanges/%2F/amq.default/publish", body.clone()).await;
    assert_eq!((r.code(), &r.body), (200, &json!({"routed": true})));
    // RabbitMQ's API publishes on a channel and reports the channel's
    // close: 400 with the AMQP code and text.
    let r = Api::as_user(&s, "other", "pw").post("/api/exchanges/%2F/amq.default/publish", body).await;
    assert_eq!(r.code(), 400, "{:?}", r.body);
    assert_eq!(
        r.reason(),
        "403 ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'other'"
    );
}

/// Topic permissions (RabbitMQ 3.7+): on a topic exchange for which a user
/// has one, publishing needs the routing key to match its write pattern
/// and binding or unbinding its read pattern, with `{username}` expanded;
/// other exchanges, and topic exchanges without one, are not restricted.
#[tokio::test]
async fn topic_permissions_restrict_routing_keys_on_topic_exchanges() {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions};
    let s = Server::start();
    let api = Api::new(&s);
    api.put("/api/users/tp", json!({"password": "pw", "tags": "management"})).await;
    api.put("/api/permissions/%2F/tp", json!({"configure": ".*", "write": ".*", "read": ".*"})).await;
    let r = api
        .put(
            "/api/topic-permissions/%2F/tp",
            json!({"exchange": "amq.topic", "write": "^out\\.{username}\\.", "read": "^in\\."}),
        )
        .await;
    assert!(r.code() == 201 || r.code() == 204, "{}", r.body);
    let c = Connection::connect(&s.uri_as("tp", "pw", "%2f"), ConnectionProperties::default()).await.unwrap();

    let publish = |key: &'static str, x: &'static str| {
        let c = &c;
        async move {
            let ch = c.create_channel().await.unwrap();
            ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
            ch.basic_publish(x.into(), key.into(), BasicPublishOptions::default(), b"m", Default::default())
                .await?
                .await?;
            // A refused publish closes the channel; a round trip shows it.
            ch.queue_declare("tp-probe".into(), QueueDeclareOptions::default(), FieldTable::default())
                .await?;
            Ok::<(), lapin::Error>(())
        }
    };
    publish("out.tp.x", "amq.topic").await.expect("a key the write pattern allows");
    let err = publish("out.other.x", "amq.topic").await.expect_err("a key it does not allow");
    assert_eq!(reply_code(&err), Some(403), "{err:?}");
    assert_eq!(
        reply_text(&err),
        "ACCESS_REFUSED - write access to topic 'out.other.x' in exchange 'amq.topic' in vhost '/' refused for user 'tp'"
    );
    // amq.direct is not a topic exchange; amq.match has no topic permission.
    publish("anything", "amq.direct").await.expect("not a topic exchange");

    let ch = c.create_channel().await.unwrap();
    ch.queue_declare("tp-q".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    ch.queue_bind(
        "tp-q".into(),
        "amq.topic".into(),
        "in.#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("a key the read pattern allows");
    ch.queue_unbind("tp-q".into(), "amq.topic".into(), "in.#".into(), FieldTable::default())
        .await
        .expect("unbinding it");
    let err = ch
        .queue_bind(
            "tp-q".into(),
            "amq.topic".into(),
            "secret.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect_err("a key the read pattern does not allow");
    assert_eq!(reply_code(&err), Some(403));
    assert!(reply_text(&err).contains("read access to topic 'secret.#' in exchange 'amq.topic'"), "{err:?}");

    // The HTTP API applies the same rules.
    let tp = Api::as_user(&s, "tp", "pw");
    let body =
        json!({"routing_key": "out.other.y", "payload": "x", "payload_encoding": "string", "properties": {}});
    let r = tp.post("/api/exchanges/%2F/amq.topic/publish", body).await;
    assert_eq!(r.code(), 400, "{}", r.body);
    assert!(r.reason().contains("write access to topic 'out.other.y'"), "{}", r.body);
    let body =
        json!({"routing_key": "out.tp.y", "payload": "x", "payload_encoding": "string", "properties": {}});
    assert_eq!(tp.post("/api/exchanges/%2F/amq.topic/publish", body).await.code(), 200);
    let r = tp.post("/api/bindings/%2F/e/amq.topic/q/tp-q", json!({"routing_key": "secret.x"})).await;
    assert!(r.code() >= 400, "{}", r.body);
    let r = tp.post("/api/bindings/%2F/e/amq.topic/q/tp-q", json!({"routing_key": "in.x"})).await;
    assert_eq!(r.code(), 201, "{}", r.body);
}
