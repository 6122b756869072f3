//! Connections, channels and consumers as the API shows them, closing a
//! connection with a reason, and the sampled rates and history, with real
//! AMQP clients (lapin, and raw frames for the close).

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use warren_tests::http::{Api, enc, json};
use warren_tests::raw::Raw;
use warren_tests::{Server, eventually};

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn connections_channels_consumers_and_rates() {
    let s = Server::start_with(&["--stats-interval-ms", "200"]);
    let api = Api::new(&s);
    let (c, ch) = s.channel().await;
    ch.basic_qos(7, BasicQosOptions::default()).await.unwrap();
    ch.queue_declare("cq".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    let _consumer = ch
        .basic_consume("cq".into(), "ctag".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let pub_ch = c.create_channel().await.unwrap();
    for i in 0..5 {
        pub_ch
            .basic_publish(
                "".into(),
                "cq".into(),
                BasicPublishOptions::default(),
                format!("m{i}").as_bytes(),
                BasicProperties::default(),
            )
            .await
            .unwrap();
    }

    let conns = api.ok("/api/connections").await;
    assert_eq!(conns.as_array().unwrap().len(), 1);
    let conn = &conns[0];
    assert_eq!((conn["user"].as_str(), conn["vhost"].as_str()), (Some("guest"), Some("/")));
    assert_eq!(conn["port"], s.amqp_port);
    assert_eq!(conn["protocol"], "AMQP 0-9-1");
    assert!(conn["client_properties"]["product"].is_string(), "{conn}");
    let name = conn["name"].as_str().unwrap().to_owned();
    assert_eq!(api.ok(&format!("/api/connections/{}", enc(&name))).await["name"], name);
    assert_eq!(api.ok("/api/vhosts/%2F/connections").await.as_array().unwrap().len(), 1);
    assert_eq!(api.get("/api/vhosts/nope/connections").await.code(), 404);
    assert_eq!(api.get("/api/connections/nope").await.code(), 404);

    let chans = api.ok(&format!("/api/connections/{}/channels", enc(&name))).await;
    assert_eq!(chans.as_array().unwrap().len(), 2);
    let first =
        chans.as_array().unwrap().iter().find(|c| c["consumer_count"] == 1).expect("consuming channel");
    assert_eq!(first["prefetch_count"], 7);
    assert_eq!(first["connection_details"]["name"], name);
    let chan_name = first["name"].as_str().unwrap().to_owned();
    assert_eq!(api.ok(&format!("/api/channels/{}", enc(&chan_name))).await["number"], first["number"]);
    assert_eq!(api.ok("/api/channels").await.as_array().unwrap().len(), 2);
    assert_eq!(api.ok("/api/vhosts/%2F/channels").await.as_array().unwrap().len(), 2);

    let consumers = api.ok("/api/consumers").await;
    assert_eq!(consumers[0]["consumer_tag"], "ctag");
    assert_eq!(consumers[0]["queue"], json!({"name": "cq", "vhost": "/"}));
    assert_eq!(consumers[0]["ack_required"], true);
    assert_eq!(consumers[0]["channel_details"]["connection_name"], name);
    assert_eq!(api.ok("/api/consumers/%2F").await.as_array().unwrap().len(), 1);
    assert_eq!(api.get("/api/consumers/nope").await.code(), 404);
    // A single queue's object carries its consumers (lists do not), as in RabbitMQ.
    let q = api.ok("/api/queues/%2F/cq").await;
    assert_eq!(q["consumer_details"].as_array().map(Vec::len), Some(1), "{q}");
    assert_eq!(q["consumer_details"][0]["consumer_tag"], "ctag");
    assert_eq!(q["consumer_details"][0]["prefetch_count"], 7);
    assert_eq!(q["consumer_details"][0]["activity_status"], "up");
    let listed = api.ok("/api/queues?name=cq").await;
    assert!(listed[0].get("consumer_details").is_none(), "{listed}");
    let o = api.ok("/api/overview").await;
    assert_eq!(o["object_totals"]["connections"], 1);
    assert_eq!(o["object_totals"]["channels"], 2);
    assert_eq!(o["object_totals"]["consumers"], 1);

    // The sampler turns counters into totals, rates and history.
    let stats = eventually(T, || async {
        let o = api.ok("/api/overview?msg_rates_age=60&msg_rates_incr=1").await;
        let samples = o["message_stats"]["publish_details"]["samples"].as_array().map_or(0, Vec::len);
        (o["message_stats"]["publish"] == 5 && o["message_stats"]["deliver"] == 5 && samples >= 2)
            .then_some(o)
    })
    .await
    .expect("overview totals reach the publishes");
    assert!(stats["message_stats"]["publish_details"]["samples"].as_array().unwrap().len() >= 2);
    let q =
        api.ok("/api/queues/%2F/cq?lengths_age=60&lengths_incr=1&msg_rates_age=60&msg_rates_incr=1").await;
    assert_eq!(q["message_stats"]["publish"], 5);
    assert_eq!(q["messages_unacknowledged"], 5);
    let samples = q["messages_details"]["samples"].as_array().unwrap();
    assert!(!samples.is_empty());
    assert!(samples[0]["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    assert!(q["messages_details"]["avg"].is_number());
    let ch_stats = api.ok(&format!("/api/channels/{}", enc(&chan_name))).await;
    assert_eq!(ch_stats["message_stats"]["deliver"], 5);
    let v = api.ok("/api/vhosts/%2F").await;
    assert_eq!(v["message_stats"]["publish"], 5);
    assert_eq!(v["messages_unacknowledged"], 5);
    let metrics = api.get("/metrics").await.body.as_str().unwrap().to_owned();
    assert!(metrics.contains("rabbitmq_global_messages_received_total 5"), "{metrics}");
    assert!(metrics.contains("rabbitmq_queue_messages_unacked 5"), "{metrics}");
    drop(c);
}

#[tokio::test]
async fn single_active_consumer_shows_who_is_active_and_who_waits() {
    let s = Server::start();
    let api = Api::new(&s);
    let (_c, ch) = s.channel().await;
    let mut args = FieldTable::default();
    args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    ch.queue_declare("sac".into(), QueueDeclareOptions::default(), args).await.unwrap();
    // Kept alive: lapin cancels a consumer when it is dropped.
    let mut consumers = Vec::new();
    for tag in ["first", "second"] {
        let c = ch
            .basic_consume("sac".into(), tag.into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .unwrap();
        consumers.push(c);
    }
    let q = api.ok("/api/queues/%2F/sac").await;
    let status = |tag: &str| {
        let c = q["consumer_details"].as_array().unwrap().iter().find(|c| c["consumer_tag"] == tag).cloned();
        c.map(|c| (c["active"].clone(), c["activity_status"].clone()))
    };
    assert_eq!(status("first"), Some((json!(true), json!("single_active"))), "{q}");
    assert_eq!(status("second"), Some((json!(false), json!("waiting"))), "{q}");
}

#[tokio::test]
async fn delete_closes_a_connection_with_the_reason() {
    let s = Server::start();
    let api = Api::new(&s);
    let mut raw = Raw::open(&s.addr()).await;
    let name = eventually(T, || async {
        api.ok("/api/connections")
            .await
            .as_array()
            .and_then(|a| a.first())
            .map(|c| c["name"].as_str().unwrap().to_owned())
    })
    .await
    .expect("the connection is listed");
    // A user that is neither the owner nor an administrator may not close it.
    api.put("/api/users/mon", json!({"password": "pw", "tags": "monitoring"})).await;
    let path = format!("/api/connections/{}", enc(&name));
    let r = Api::as_user(&s, "mon", "pw").delete(&path).await;
    assert_eq!(r.code(), 401);
    let r = api.raw_with(reqwest::Method::DELETE, &path, None, &[("x-reason", "maintenance now")]).await;
    assert_eq!(r.code(), 204);
    let (code, text) = raw.expect_connection_close().await;
    assert_eq!(code, 320);
    assert_eq!(text, "CONNECTION_FORCED - maintenance now");
    eventually(T, || async { api.ok("/api/connections").await.as_array().unwrap().is_empty().then_some(()) })
        .await
        .expect("the connection goes away");
}

/// A client reaching the dual-stack listener (`[::]`) over IPv4 has an
/// IPv4-mapped address (`::ffff:127.0.0.1`) on the socket; RabbitMQ shows
/// the IPv4 address, in `peer_host`, `host` and the connection's name.
#[tokio::test]
async fn ipv4_clients_of_the_dual_stack_listener_show_as_ipv4() {
    let s = Server::start_with(&["--bind", "::"]);
    let marker = "started AMQP 0-9-1 listener on [::]:";
    assert!(s.wait_for_log(marker, T), "{}", s.log_text());
    let log = s.log_text();
    let port: u16 = log.lines().find_map(|l| l.split(marker).nth(1)).unwrap().trim().parse().unwrap();
    let uri = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    // guest is loopback-only: a mapped loopback address must count as one.
    let _c = lapin::Connection::connect(&uri, lapin::ConnectionProperties::default()).await.unwrap();
    let api = Api::new(&s);
    // The connection is listed once its open is done, a moment after the
    // client's connect returns.
    let conns = eventually(T, || async {
        let c = api.ok("/api/connections").await;
        (!c.as_array().is_none_or(|a| a.is_empty())).then_some(c)
    })
    .await
    .expect("the connection is listed");
    let conn = &conns[0];
    assert_eq!(conn["peer_host"], "127.0.0.1", "{conn}");
    assert_eq!(conn["host"], "127.0.0.1", "{conn}");
    assert_eq!(conn["port"], port);
    // Not TLS: RabbitMQ's TLS fields are there, and null.
    assert_eq!(conn["ssl"], false, "{conn}");
    for field in [
        "ssl_protocol",
        "ssl_cipher",
        "ssl_key_exchange",
        "ssl_hash",
        "peer_cert_subject",
        "peer_cert_issuer",
        "peer_cert_validity",
    ] {
        assert_eq!(conn.get(field), Some(&serde_json::Value::Null), "{field}: {conn}");
    }
    let name = conn["name"].as_str().unwrap();
    let peer_port = conn["peer_port"].as_u64().unwrap();
    assert_eq!(name, format!("127.0.0.1:{peer_port} -> 127.0.0.1:{port}"));
    assert_eq!(api.ok(&format!("/api/connections/{}", enc(name))).await["peer_host"], "127.0.0.1");
}
