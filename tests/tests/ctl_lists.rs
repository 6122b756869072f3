//! warrenctl's listing verbs (queues, exchanges, bindings, connections,
//! channels, consumers) with their default and chosen columns, and the
//! queue and connection verbs, against live lapin clients.

mod ctl_common;

use std::time::Duration;

use ctl_common::{ctl, table};
use futures_lite::StreamExt;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{Value, json};
use warren_tests::{Server, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_queue_verbs() {
    let s = Server::start();
    let (conn, ch) = s.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(10));
    ch.queue_declare("orders".into(), QueueDeclareOptions { durable: true, ..Default::default() }, args)
        .await
        .unwrap();
    ch.queue_declare("work".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    ch.queue_bind(
        "orders".into(),
        "amq.direct".into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    for q in ["orders", "orders", "orders", "work"] {
        ch.basic_publish(
            "".into(),
            q.into(),
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let cons_ch = conn.create_channel().await.unwrap();
    cons_ch.basic_qos(5, BasicQosOptions::default()).await.unwrap();
    let mut consumer = cons_ch
        .basic_consume("work".into(), "ctag".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let _unacked = consumer.next().await.unwrap().unwrap();

    // list_queues: default columns, then chosen ones in JSON.
    let out = ctl(&s, &["list_queues"]);
    let rows = table(out.ok());
    assert_eq!(rows[0], ["Listing queues for vhost / ..."]);
    assert_eq!(rows[1], ["name", "messages"]);
    assert!(rows.contains(&vec!["orders".into(), "3".into()]), "{rows:?}");
    assert!(rows.contains(&vec!["work".into(), "1".into()]), "{rows:?}");
    let cols = "name messages_ready messages_unacknowledged consumers durable auto_delete exclusive arguments node policy state type";
    let mut args = vec!["--formatter", "json", "list_queues"];
    args.extend(cols.split(' '));
    let qs = ctl(&s, &args).json();
    let by_name = |name: &str| qs.as_array().unwrap().iter().find(|q| q["name"] == name).cloned().unwrap();
    let orders = by_name("orders");
    assert_eq!(orders["messages_ready"], 3);
    assert_eq!(orders["durable"], true);
    assert_eq!(orders["exclusive"], false);
    assert_eq!(orders["arguments"], json!({"x-max-length": 10}));
    assert_eq!(orders["type"], "classic");
    assert_eq!(orders["state"], "running");
    assert!(orders["node"].as_str().unwrap().starts_with("warren@"), "{orders}");
    let work = by_name("work");
    assert_eq!(
        (work["messages_ready"].clone(), work["messages_unacknowledged"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(work["consumers"], 1);
    assert_eq!(orders.as_object().unwrap().len(), 12, "exactly the asked columns: {orders}");
    ctl(&s, &["list_queues", "bogus"]).fails(64, "invalid column 'bogus'");
    ctl(&s, &["list_queues", "-p", "nowhere"]).fails(65, "virtual host 'nowhere' does not exist");

    // list_exchanges
    let rows = table(ctl(&s, &["-q", "list_exchanges"]).ok());
    assert_eq!(rows[0], ["name", "type"]);
    assert!(rows.contains(&vec!["amq.topic".into(), "topic".into()]), "{rows:?}");
    let xs =
        ctl(&s, &["--formatter", "json", "list_exchanges", "name", "type", "durable", "internal"]).json();
    assert!(
        xs.as_array()
            .unwrap()
            .contains(&json!({"name": "amq.direct", "type": "direct", "durable": true, "internal": false}))
    );

    // list_bindings
    let bs = ctl(&s, &["--formatter", "json", "list_bindings"]).json();
    assert!(
        bs.as_array().unwrap().contains(&json!({"source_name": "amq.direct", "source_kind": "exchange",
        "destination_name": "orders", "destination_kind": "queue", "routing_key": "k", "arguments": {}})),
        "{bs}"
    );
    let rows =
        table(ctl(&s, &["-q", "list_bindings", "source_name", "destination_name", "routing_key"]).ok());
    assert_eq!(rows[0], ["source_name", "destination_name", "routing_key"]);
    assert!(rows.contains(&vec!["amq.direct".into(), "orders".into(), "k".into()]), "{rows:?}");

    // list_connections, list_channels, list_consumers
    let rows = table(ctl(&s, &["-q", "list_connections"]).ok());
    assert_eq!(rows[0], ["user", "peer_host", "peer_port", "state"]);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[1][0].as_str(), rows[1][1].as_str(), rows[1][3].as_str()),
        ("guest", "127.0.0.1", "running")
    );
    let conns =
        ctl(&s, &["--formatter", "json", "list_connections", "name", "user", "vhost", "channels"]).json();
    let conn_name = conns[0]["name"].as_str().unwrap().to_owned();
    assert_eq!((conns[0]["vhost"].clone(), conns[0]["channels"].clone()), (json!("/"), json!(2)));
    let chans = ctl(&s, &["--formatter", "json", "list_channels"]).json();
    assert_eq!(chans.as_array().unwrap().len(), 2);
    let consuming = chans.as_array().unwrap().iter().find(|c| c["consumer_count"] == 1).unwrap();
    assert_eq!(
        (consuming["user"].clone(), consuming["messages_unacknowledged"].clone()),
        (json!("guest"), json!(1))
    );
    assert!(consuming["pid"].as_str().unwrap().contains(&conn_name), "{consuming}");
    let rows = table(ctl(&s, &["-q", "list_channels"]).ok());
    assert_eq!(rows[0], ["pid", "user", "consumer_count", "messages_unacknowledged"]);
    let cs = ctl(&s, &["--formatter", "json", "list_consumers"]).json();
    assert_eq!(cs.as_array().unwrap().len(), 1, "{cs}");
    let c0 = &cs[0];
    assert_eq!((c0["queue_name"].clone(), c0["consumer_tag"].clone()), (json!("work"), json!("ctag")));
    assert_eq!(
        (c0["ack_required"].clone(), c0["prefetch_count"].clone(), c0["active"].clone()),
        (json!(true), json!(5), json!(true))
    );
    assert_eq!(c0["channel_pid"], consuming["pid"]);
    let rows = table(ctl(&s, &["-q", "list_consumers"]).ok());
    assert_eq!(
        rows[0],
        [
            "queue_name",
            "channel_pid",
            "consumer_tag",
            "ack_required",
            "prefetch_count",
            "active",
            "arguments"
        ]
    );

    // purge_queue, delete_queue
    ctl(&s, &["purge_queue", "orders"]).ok();
    let q = ctl(&s, &["--formatter", "json", "list_queues", "name", "messages"]).json();
    assert!(q.as_array().unwrap().contains(&json!({"name": "orders", "messages": 0})), "{q}");
    ctl(&s, &["purge_queue", "nope"]).fails(65, "queue 'nope' in vhost '/' does not exist");
    ctl(&s, &["delete_queue", "--if-unused", "work"]).fails(65, "");
    let out = ctl(&s, &["delete_queue", "orders"]);
    assert!(out.ok().contains("Queue was successfully deleted with 0 messages"), "{out:?}");
    ctl(&s, &["delete_queue", "orders"]).fails(65, "queue 'orders' in vhost '/' does not exist");

    // close_connection: the client is told, and the connection goes.
    ctl(&s, &["close_connection", &conn_name, "go away"]).ok();
    let gone = eventually(Duration::from_secs(10), || async {
        let v: Value = ctl(&s, &["--formatter", "json", "list_connections"]).json();
        v.as_array().unwrap().is_empty().then_some(())
    })
    .await;
    assert!(gone.is_some(), "the connection was not closed");
    assert!(!conn.status().connected());
    ctl(&s, &["close_connection", "nope", "x"]).fails(65, "connection 'nope' does not exist");
}
