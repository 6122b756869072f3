//! Queue and exchange declarations, bindings and routing, against a real
//! server with lapin.

use std::time::Duration;

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ExchangeKind};
use warren_tests::{Server, reply_code, reply_text, unique};

fn args(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

async fn get_body(ch: &lapin::Channel, q: &str) -> Option<Vec<u8>> {
    ch.basic_get(q.into(), BasicGetOptions { no_ack: true }).await.unwrap().map(|m| m.delivery.data)
}

#[tokio::test]
async fn server_named_queue_and_redeclare_and_passive() {
    let s = Server::start();
    let (_c, ch) = s.channel().await;
    let q = ch.queue_declare("".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    let name = q.name().as_str().to_owned();
    assert!(name.starts_with("amq.gen-") && name.len() == 30, "{name}");
    // Same arguments again: fine.
    let q2 = ch
        .queue_declare(name.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    assert_eq!(q2.name().as_str(), name);
    ch.basic_publish("".into(), name.as_str().into(), Default::default(), b"x", BasicProperties::default())
        .await
        .unwrap();
    let passive = ch
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(passive.message_count(), 1);
    // Passive declare of a missing queue: 404 and the channel closes.
    let err = ch
        .queue_declare(
            "missing".into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&err), Some(404));
    assert_eq!(reply_text(&err), "NOT_FOUND - no queue 'missing' in vhost '/'");
}

#[tokio::test]
async fn inequivalent_redeclare_is_406_with_rabbitmq_text() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    let q = unique("lqz1");
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions { durable: true, ..Default::default() },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let err = ch
        .queue_declare(q.as_str().into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&err), Some(406));
    assert_eq!(
        reply_text(&err),
        format!(
            "PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{q}' in vhost '/': received 'false' but current is 'true'"
        )
    );
    // The connection survives a channel error.
    let ch2 = c.create_channel().await.unwrap();
    let ttl1 = args(&[("x-message-ttl", AMQPValue::LongInt(1000))]);
    let ttl2 = args(&[("x-message-ttl", AMQPValue::LongInt(2000))]);
    let q2 = unique("ttl");
    ch2.queue_declare(q2.as_str().into(), QueueDeclareOptions::default(), ttl1).await.unwrap();
    let err = ch2.queue_declare(q2.as_str().into(), QueueDeclareOptions::default(), ttl2).await.unwrap_err();
    assert_eq!(reply_code(&err), Some(406));
    assert!(reply_text(&err).contains("inequivalent arg 'x-message-ttl'"), "{}", reply_text(&err));
}

#[tokio::test]
async fn extension_arguments_are_validated_and_stored() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    // Celery's pidbox queues carry TTL and expiry: accepted.
    let q = unique("celery.pidbox");
    let a = args(&[("x-message-ttl", AMQPValue::LongInt(300000)), ("x-expires", AMQPValue::LongInt(10000))]);
    ch.queue_declare(q.as_str().into(), QueueDeclareOptions::default(), a.clone()).await.unwrap();
    ch.queue_declare(q.as_str().into(), QueueDeclareOptions::default(), a).await.unwrap();
    let bad = args(&[("x-max-length", AMQPValue::LongInt(-1))]);
    let err = ch.queue_declare("neg".into(), QueueDeclareOptions::default(), bad).await.unwrap_err();
    assert_eq!(reply_code(&err), Some(406));
    assert_eq!(
        reply_text(&err),
        "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'neg' in vhost '/': {value_negative,-1}"
    );
    let ch = c.create_channel().await.unwrap();
    let err = ch
        .queue_declare(
            "s".into(),
            QueueDeclareOptions::default(),
            args(&[("x-message-ttl", AMQPValue::LongString("x".into()))]),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&err), Some(406));
}

#[tokio::test]
async fn reserved_names_and_default_exchange_are_protected() {
    let s = Server::start();
    let c = s.connect().await;
    let ch = c.create_channel().await.unwrap();
    let err = ch
        .queue_declare("amq.mine".into(), QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&err), Some(403));
    assert_eq!(reply_text(&err), "ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'");
    let ch = c.create_channel().await.unwrap();
    let err = ch
        .exchange_declare("amq.mine".into(), ExchangeKind::Direct, Default::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&err), Some(403));
    let ch = c.create_channel().await.unwrap();
    let err = ch.exchange_delete("amq.direct".into(), Default::default()).await.unwrap_err();
    assert_eq!(reply_code(&err), Some(403));
    let ch = c.create_channel().await.unwrap();
    let err = ch
        .queue_bind("q".into(), "".into(), "q".into(), Default::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&err), Some(403));
    // Redeclaring a predeclared exchange with its own properties is fine.
    let ch = c.create_channel().await.unwrap();
    ch.exchange_declare(
        "amq.direct".into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions { durable: true, ..Default::default() },
        FieldTable::default(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn exchange_declare_rules() {
    let s = Server::start();
    let c = s.connect().await;
    let ch = c.create_channel().await.unwrap();
    let x = unique("m1");
    ch.exchange_declare(x.as_str().into(), ExchangeKind::Fanout, Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let err = ch
        .exchange_declare(x.as_str().into(), ExchangeKind::Direct, Default::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(
        reply_text(&err),
        format!(
            "PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{x}' in vhost '/': received 'direct' but current is 'fanout'"
        )
    );
    let ch = c.create_channel().await.unwrap();
    let err = ch
        .exchange_declare(
            "nope".into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_text(&err), "NOT_FOUND - no exchange 'nope' in vhost '/'");
    // Unknown type is a connection error (503 COMMAND_INVALID).
    let ch = c.create_channel().await.unwrap();
    let err = ch
        .exchange_declare(
            "weird".into(),
            ExchangeKind::Custom("x-unknown".into()),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&err), Some(503), "{err:?}");
    assert!(!c.status().connected());
}

#[tokio::test]
async fn delete_rules_if_unused_if_empty_and_idempotence() {
    let s = Server::start();
    let (c, ch) = s.channel().await;
    let q = unique("q");
    ch.queue_declare(q.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.basic_publish("".into(), q.as_str().into(), Default::default(), b"1", BasicProperties::default())
        .await
        .unwrap();
    let err = ch
        .queue_delete(q.as_str().into(), QueueDeleteOptions { if_empty: true, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(reply_text(&err), format!("PRECONDITION_FAILED - queue '{q}' in vhost '/' not empty"));
    let ch = c.create_channel().await.unwrap();
    let _consumer = ch
        .basic_consume(q.as_str().into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    let ch2 = c.create_channel().await.unwrap();
    let err = ch2
        .queue_delete(q.as_str().into(), QueueDeleteOptions { if_unused: true, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(reply_text(&err), format!("PRECONDITION_FAILED - queue '{q}' in vhost '/' in use"));
    let ch3 = c.create_channel().await.unwrap();
    ch3.queue_delete(q.as_str().into(), Default::default()).await.unwrap();
    // Deleting again, or deleting what never existed, succeeds.
    assert_eq!(ch3.queue_delete(q.as_str().into(), Default::default()).await.unwrap(), 0);
    ch3.exchange_delete("never-was".into(), Default::default()).await.unwrap();
    let x = unique("x");
    ch3.exchange_declare(x.as_str().into(), ExchangeKind::Direct, Default::default(), FieldTable::default())
        .await
        .unwrap();
    let q2 = unique("q");
    ch3.queue_declare(q2.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
    ch3.queue_bind(
        q2.as_str().into(),
        x.as_str().into(),
        "k".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let err = ch3
        .exchange_delete(x.as_str().into(), ExchangeDeleteOptions { if_unused: true, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(reply_code(&err), Some(406));
}

#[tokio::test]
async fn direct_fanout_topic_and_headers_routing() {
    let s = Server::start();
    let (_c, ch) = s.channel().await;
    let mk = |p: &str| unique(p);
    let (qa, qb) = (mk("a"), mk("b"));
    for q in [&qa, &qb] {
        ch.queue_declare(q.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
    }
    let bind = |q: String, x: String, k: &'static str, a: FieldTable| {
        let ch = ch.clone();
        async move {
            ch.queue_bind(q.as_str().into(), x.as_str().into(), k.into(), Default::default(), a)
                .await
                .unwrap()
        }
    };
    let publish = |x: String, k: &'static str, props: BasicProperties| {
        let ch = ch.clone();
        async move {
            ch.basic_publish(x.as_str().into(), k.into(), Default::default(), k.as_bytes(), props)
                .await
                .unwrap();
        }
    };
    // direct: a binds nb and bnb, b binds nb.
    let d = mk("m2");
    ch.exchange_declare(d.as_str().into(), ExchangeKind::Direct, Default::default(), FieldTable::default())
        .await
        .unwrap();
    bind(qa.clone(), d.clone(), "nb", FieldTable::default()).await;
    bind(qa.clone(), d.clone(), "bnb", FieldTable::default()).await;
    bind(qb.clone(), d.clone(), "nb", FieldTable::default()).await;
    publish(d.clone(), "bnb", BasicProperties::default()).await;
    assert_eq!(get_body(&ch, &qa).await.as_deref(), Some(&b"bnb"[..]));
    assert_eq!(get_body(&ch, &qb).await, None);
    publish(d.clone(), "nb", BasicProperties::default()).await;
    assert_eq!(get_body(&ch, &qa).await.as_deref(), Some(&b"nb"[..]));
    assert_eq!(get_body(&ch, &qb).await.as_deref(), Some(&b"nb"[..]));
    // topic
    let t = mk("m3");
    ch.exchange_declare(t.as_str().into(), ExchangeKind::Topic, Default::default(), FieldTable::default())
        .await
        .unwrap();
    bind(qa.clone(), t.clone(), "lqz.#", FieldTable::default()).await;
    bind(qb.clone(), t.clone(), "lqz.*", FieldTable::default()).await;
    publish(t.clone(), "lqz.handsome", BasicProperties::default()).await;
    publish(t.clone(), "lqz.handsome.xx", BasicProperties::default()).await;
    assert_eq!(get_body(&ch, &qa).await.as_deref(), Some(&b"lqz.handsome"[..]));
    assert_eq!(get_body(&ch, &qa).await.as_deref(), Some(&b"lqz.handsome.xx"[..]));
    assert_eq!(get_body(&ch, &qb).await.as_deref(), Some(&b"lqz.handsome"[..]));
    assert_eq!(get_body(&ch, &qb).await, None);
    // fanout ignores the key, and a queue bound twice gets one copy.
    let f = mk("m1");
    ch.exchange_declare(f.as_str().into(), ExchangeKind::Fanout, Default::default(), FieldTable::default())
        .await
        .unwrap();
    bind(qa.clone(), f.clone(), "x", FieldTable::default()).await;
    bind(qa.clone(), f.clone(), "y", FieldTable::default()).await;
    bind(qb.clone(), f.clone(), "", FieldTable::default()).await;
    publish(f.clone(), "whatever", BasicProperties::default()).await;
    assert!(get_body(&ch, &qa).await.is_some());
    assert_eq!(get_body(&ch, &qa).await, None);
    assert!(get_body(&ch, &qb).await.is_some());
    // headers: all (default) and any.
    let h = mk("h");
    ch.exchange_declare(h.as_str().into(), ExchangeKind::Headers, Default::default(), FieldTable::default())
        .await
        .unwrap();
    let s1 = |v: &str| AMQPValue::LongString(v.into());
    bind(qa.clone(), h.clone(), "", args(&[("format", s1("pdf")), ("type", s1("report"))])).await;
    bind(
        qb.clone(),
        h.clone(),
        "",
        args(&[("x-match", s1("any")), ("format", s1("pdf")), ("type", s1("log"))]),
    )
    .await;
    let with = |pairs: &[(&str, AMQPValue)]| BasicProperties::default().with_headers(args(pairs));
    publish(h.clone(), "k1", with(&[("format", s1("pdf"))])).await;
    assert_eq!(get_body(&ch, &qa).await, None);
    assert_eq!(get_body(&ch, &qb).await.as_deref(), Some(&b"k1"[..]));
    publish(h.clone(), "k2", with(&[("format", s1("pdf")), ("type", s1("report"))])).await;
    assert_eq!(get_body(&ch, &qa).await.as_deref(), Some(&b"k2"[..]));
    assert_eq!(get_body(&ch, &qb).await.as_deref(), Some(&b"k2"[..]));
    // amq.match is a predeclared headers exchange.
    ch.exchange_declare(
        "amq.match".into(),
        ExchangeKind::Headers,
        ExchangeDeclareOptions { passive: true, ..Default::default() },
        FieldTable::default(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn exchange_to_exchange_bindings_and_unbind() {
    let s = Server::start();
    let (_c, ch) = s.channel().await;
    let (up, down, q) = (unique("up"), unique("down"), unique("q"));
    ch.exchange_declare(up.as_str().into(), ExchangeKind::Topic, Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.exchange_declare(
        down.as_str().into(),
        ExchangeKind::Fanout,
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_declare(q.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.queue_bind(
        q.as_str().into(),
        down.as_str().into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.exchange_bind(
        down.as_str().into(),
        up.as_str().into(),
        "a.*".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    // A loop back must not make routing spin.
    ch.exchange_bind(
        up.as_str().into(),
        down.as_str().into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.basic_publish(
        up.as_str().into(),
        "a.b".into(),
        Default::default(),
        b"hop",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    ch.basic_publish(up.as_str().into(), "z".into(), Default::default(), b"no", BasicProperties::default())
        .await
        .unwrap();
    assert_eq!(get_body(&ch, &q).await.as_deref(), Some(&b"hop"[..]));
    assert_eq!(get_body(&ch, &q).await, None);
    ch.exchange_unbind(
        down.as_str().into(),
        up.as_str().into(),
        "a.*".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_unbind(q.as_str().into(), down.as_str().into(), "".into(), FieldTable::default()).await.unwrap();
    ch.basic_publish(
        down.as_str().into(),
        "".into(),
        Default::default(),
        b"gone",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    assert_eq!(get_body(&ch, &q).await, None);
}

#[tokio::test]
async fn exclusive_queue_is_locked_to_its_connection_and_dies_with_it() {
    let s = Server::start();
    let (c1, ch1) = s.channel().await;
    let q = ch1
        .queue_declare(
            "".into(),
            QueueDeclareOptions { exclusive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let name = q.name().as_str().to_owned();
    let (_c2, ch2) = s.channel().await;
    let err = ch2
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&err), Some(405), "{}", reply_text(&err));
    assert!(reply_text(&err).starts_with(&format!(
        "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}' in vhost '/'"
    )));
    c1.close(200, "bye".into()).await.unwrap();
    let (_c3, ch3) = s.channel().await;
    let gone = warren_tests::eventually(Duration::from_secs(5), || {
        let ch3 = ch3.clone();
        let name = name.clone();
        async move {
            match ch3
                .queue_declare(
                    name.as_str().into(),
                    QueueDeclareOptions { passive: true, ..Default::default() },
                    FieldTable::default(),
                )
                .await
            {
                Err(e) if reply_code(&e) == Some(404) => Some(()),
                _ => None,
            }
        }
    })
    .await;
    assert!(gone.is_some(), "exclusive queue outlived its connection");
}

#[tokio::test]
async fn purge_and_most_recently_declared_queue_shortcut() {
    let s = Server::start();
    let (_c, ch) = s.channel().await;
    let q = unique("p");
    ch.queue_declare(q.as_str().into(), Default::default(), FieldTable::default()).await.unwrap();
    for _ in 0..3 {
        ch.basic_publish("".into(), q.as_str().into(), Default::default(), b"m", BasicProperties::default())
            .await
            .unwrap();
    }
    // queue.purge with an empty name means the last queue declared on the channel.
    assert_eq!(ch.queue_purge("".into(), Default::default()).await.unwrap(), 3);
    let after = ch
        .queue_declare(
            q.as_str().into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(after.message_count(), 0);
}
