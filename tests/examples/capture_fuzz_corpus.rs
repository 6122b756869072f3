//! Seeds the fuzz corpora (`fuzz/corpus/`) from real traffic: starts a
//! warren-server, puts a TCP proxy in front of it that records what each
//! client sends, runs a few lapin sessions through the proxy (publishes
//! with headers and every property, consumes, acks, nacks, rejects, gets,
//! confirms, transactions, declares and binds with arguments) and writes:
//!
//! - `channel/<session>`: each connection's client-to-server bytes;
//! - `frames/<session>-<n>`: the same streams behind the target's selector
//!   byte (frame_max and read chunk size);
//! - `field_table/<n>`: the field tables the sessions sent, encoded;
//! - `definitions/export.json`: the definitions the server exports after.
//!
//! Run (the server binary built first):
//! `cargo run -p warren-tests --example capture_fuzz_corpus -- <out-dir>`,
//! then minimise into `fuzz/corpus/` with `cargo fuzz cmin` (README,
//! "Fuzzing").

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use warren_tests::Server;

type Streams = Arc<Mutex<Vec<Arc<Mutex<Vec<u8>>>>>>;

/// Forwards connections on `listener` to `upstream`, recording what each
/// client sends.
async fn proxy(listener: TcpListener, upstream: String, streams: Streams) {
    loop {
        let Ok((client, _)) = listener.accept().await else { return };
        let Ok(server) = TcpStream::connect(&upstream).await else { return };
        let record = Arc::new(Mutex::new(Vec::new()));
        streams.lock().unwrap().push(record.clone());
        let (mut cr, mut cw) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        tokio::spawn(async move {
            let mut buf = vec![0; 64 * 1024];
            while let Ok(n) = cr.read(&mut buf).await {
                if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                record.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            let _ = sw.shutdown().await;
        });
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
            let _ = cw.shutdown().await;
        });
    }
}

fn headers() -> FieldTable {
    let mut inner = FieldTable::default();
    inner.insert("count".into(), AMQPValue::LongLongInt(2));
    inner.insert("reason".into(), AMQPValue::LongString("rejected".into()));
    let mut t = FieldTable::default();
    t.insert("x-death".into(), AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(inner)])));
    t.insert("flag".into(), AMQPValue::Boolean(true));
    t.insert("i8".into(), AMQPValue::ShortShortInt(-3));
    t.insert("u16".into(), AMQPValue::ShortUInt(7));
    t.insert("i32".into(), AMQPValue::LongInt(-40000));
    t.insert("f64".into(), AMQPValue::Double(1.25));
    t.insert("ts".into(), AMQPValue::Timestamp(1_700_000_000));
    t.insert("bytes".into(), AMQPValue::ByteArray(vec![0, 1, 254].into()));
    t.insert("nothing".into(), AMQPValue::Void);
    t.insert("name".into(), AMQPValue::LongString(LongString::from("héllo")));
    t
}

fn every_property() -> BasicProperties {
    BasicProperties::default()
        .with_content_type(ShortString::from("application/json"))
        .with_content_encoding(ShortString::from("utf-8"))
        .with_headers(headers())
        .with_delivery_mode(2)
        .with_priority(5)
        .with_correlation_id(ShortString::from("corr-1"))
        .with_reply_to(ShortString::from("replies"))
        .with_expiration(ShortString::from("60000"))
        .with_message_id(ShortString::from("m-1"))
        .with_timestamp(1_700_000_000)
        .with_type(ShortString::from("kind"))
        .with_user_id(ShortString::from("guest"))
        .with_app_id(ShortString::from("capture"))
}

async fn sessions(uri: &str) {
    let c = Connection::connect(uri, ConnectionProperties::default()).await.expect("connect");

    // Topology with arguments.
    let ch = c.create_channel().await.unwrap();
    let mut qargs = FieldTable::default();
    qargs.insert("x-message-ttl".into(), AMQPValue::LongInt(60_000));
    qargs.insert("x-max-length".into(), AMQPValue::LongInt(1000));
    qargs.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("dlx".into()));
    ch.exchange_declare("dlx".into(), ExchangeKind::Fanout, Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.exchange_declare("logs".into(), ExchangeKind::Topic, Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.exchange_declare("hdrs".into(), ExchangeKind::Headers, Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.queue_declare("work".into(), QueueDeclareOptions { durable: true, ..Default::default() }, qargs)
        .await
        .unwrap();
    ch.queue_declare("dead".into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.queue_bind("dead".into(), "dlx".into(), "".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    for key in ["kern.*", "*.critical", "audit.#", "#"] {
        ch.queue_bind("work".into(), "logs".into(), key.into(), Default::default(), FieldTable::default())
            .await
            .unwrap();
    }
    let mut match_args = FieldTable::default();
    match_args.insert("x-match".into(), AMQPValue::LongString("any".into()));
    match_args.insert("flag".into(), AMQPValue::Boolean(true));
    ch.queue_bind("work".into(), "hdrs".into(), "".into(), Default::default(), match_args).await.unwrap();

    // Publishes: every property, headers, several body frames, mandatory.
    let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    ch.basic_publish("logs".into(), "kern.critical".into(), Default::default(), b"{}", every_property())
        .await
        .unwrap();
    ch.basic_publish("".into(), "work".into(), Default::default(), &big, BasicProperties::default())
        .await
        .unwrap();
    ch.basic_publish(
        "hdrs".into(),
        "".into(),
        BasicPublishOptions { mandatory: true, ..Default::default() },
        b"h",
        BasicProperties::default().with_headers(headers()),
    )
    .await
    .unwrap();
    ch.basic_publish("".into(), "work".into(), Default::default(), b"", BasicProperties::default())
        .await
        .unwrap();

    // Consume with prefetch: ack, nack (requeue and not), reject; get.
    // Each session is a connection of its own, and each a corpus file run
    // on a fresh broker: it declares what it uses.
    let c = Connection::connect(uri, ConnectionProperties::default()).await.expect("connect");
    let ch = c.create_channel().await.unwrap();
    ch.queue_declare("c".into(), Default::default(), FieldTable::default()).await.unwrap();
    for i in 0..4u8 {
        ch.basic_publish("".into(), "c".into(), Default::default(), &[i], every_property()).await.unwrap();
    }
    ch.basic_qos(3, Default::default()).await.unwrap();
    let mut consumer =
        ch.basic_consume("c".into(), "ctag".into(), Default::default(), FieldTable::default()).await.unwrap();
    for i in 0..4 {
        let Ok(Some(Ok(d))) = tokio::time::timeout(std::time::Duration::from_secs(5), consumer.next()).await
        else {
            break;
        };
        let settled = match i {
            0 => d.ack(BasicAckOptions::default()).await,
            1 => d.nack(BasicNackOptions { requeue: true, ..Default::default() }).await,
            2 => d.reject(BasicRejectOptions { requeue: false }).await,
            _ => d.ack(BasicAckOptions { multiple: true }).await,
        };
        settled.unwrap();
    }
    ch.basic_cancel("ctag".into(), Default::default()).await.unwrap();
    let _ = ch.basic_get("c".into(), BasicGetOptions { no_ack: false }).await.unwrap();
    ch.basic_recover(BasicRecoverOptions { requeue: true }).await.unwrap();
    ch.close(200, "bye".into()).await.unwrap();

    // Publisher confirms.
    let c = Connection::connect(uri, ConnectionProperties::default()).await.expect("connect");
    let ch = c.create_channel().await.unwrap();
    ch.queue_declare("cq".into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    for i in 0..3 {
        ch.basic_publish("".into(), "cq".into(), Default::default(), &[i], every_property())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    ch.close(200, "bye".into()).await.unwrap();

    // Transactions.
    let c = Connection::connect(uri, ConnectionProperties::default()).await.expect("connect");
    let ch = c.create_channel().await.unwrap();
    ch.exchange_declare("logs".into(), ExchangeKind::Topic, Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.exchange_declare("hdrs".into(), ExchangeKind::Headers, Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.queue_declare("tq".into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.queue_declare("dead".into(), Default::default(), FieldTable::default()).await.unwrap();
    ch.queue_bind("tq".into(), "logs".into(), "#".into(), Default::default(), FieldTable::default())
        .await
        .unwrap();
    ch.tx_select().await.unwrap();
    ch.basic_publish("".into(), "tq".into(), Default::default(), b"tx", BasicProperties::default())
        .await
        .unwrap();
    ch.tx_commit().await.unwrap();
    ch.basic_publish("".into(), "tq".into(), Default::default(), b"no", BasicProperties::default())
        .await
        .unwrap();
    ch.tx_rollback().await.unwrap();
    ch.queue_purge("tq".into(), Default::default()).await.unwrap();
    ch.queue_unbind("tq".into(), "logs".into(), "#".into(), FieldTable::default()).await.unwrap();
    ch.exchange_delete("hdrs".into(), Default::default()).await.unwrap();
    ch.queue_delete("dead".into(), Default::default()).await.unwrap();
    c.close(200, "bye".into()).await.unwrap();
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[tokio::main]
async fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: capture_fuzz_corpus <out-dir>"));
    let server = Server::start();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let streams: Streams = Arc::default();
    tokio::spawn(proxy(listener, server.addr(), streams.clone()));
    // frame_max 4096: bodies of a few KB take several body frames.
    let uri = format!("amqp://guest:guest@127.0.0.1:{port}/%2f?frame_max=4096");
    sessions(&uri).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let streams = streams.lock().unwrap().clone();
    for (i, s) in streams.iter().enumerate() {
        let bytes = s.lock().unwrap().clone();
        write(&out.join("channel"), &format!("session-{i}"), &bytes);
        // frame_max 131072 read in 1-byte and 43-byte chunks; 4096 in 1-byte chunks.
        for (n, selector) in [1u8, 19, 0].into_iter().enumerate() {
            let mut b = vec![selector];
            b.extend_from_slice(&bytes);
            write(&out.join("frames"), &format!("session-{i}-{n}"), &b);
        }
    }
    let mut qargs = FieldTable::default();
    qargs.insert("x-message-ttl".into(), AMQPValue::LongInt(60_000));
    for (i, t) in [headers(), qargs, FieldTable::default()].iter().enumerate() {
        let b = cookie_factory::gen_simple(amq_protocol::types::generation::gen_field_table(t), Vec::new())
            .unwrap();
        write(&out.join("field_table"), &format!("table-{i}"), &b);
    }
    let defs = reqwest::Client::new()
        .get(format!("{}/api/definitions", server.http_url()))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    write(&out.join("definitions"), "export.json", &defs);
    println!("wrote {} sessions to {}", streams.len(), out.display());
}
