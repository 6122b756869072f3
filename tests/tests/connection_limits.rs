//! Safe on a real network (issue 21, item 3): the node's limits, each with
//! RabbitMQ's error for the client that crosses it, while everyone else is
//! served: `connection_max`, `channel_max`, `max_message_size`, and the
//! caps on sockets still in their handshake (Warren's own) with the
//! handshake timeout.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic, channel, connection};
use lapin::options::BasicGetOptions;
use lapin::types::FieldTable;
use warren_tests::Server;
use warren_tests::raw::Raw;

fn start(conf: &str) -> Server {
    let dir = std::env::temp_dir().join(warren_tests::unique("warren-limits"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("warren.conf");
    std::fs::write(&path, conf).unwrap();
    Server::start_with(&["--config", path.to_str().unwrap()])
}

const T: Duration = Duration::from_secs(5);

fn method(ch: u16, m: AMQPClass) -> AMQPFrame {
    AMQPFrame::Method(ch, m)
}

/// Header, start-ok as guest, tune-ok (with the server's values) and
/// connection.open: the reply to open is left for the test to read.
async fn up_to_open(addr: &str, from: IpAddr) -> (Raw, connection::Tune) {
    let mut r = Raw::connect_from(addr, from).await;
    r.send(b"AMQP\x00\x00\x09\x01").await;
    r.method(T).await.expect("connection.start");
    r.send_frame(method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: Default::default(),
            mechanism: "PLAIN".into(),
            response: "\0guest\0guest".into(),
            locale: "en_US".into(),
        })),
    ))
    .await;
    let Some((_, AMQPClass::Connection(connection::AMQPMethod::Tune(tune)))) = r.method(T).await else {
        panic!("no connection.tune")
    };
    let ok = connection::TuneOk { channel_max: tune.channel_max, frame_max: tune.frame_max, heartbeat: 0 };
    r.send_frame(method(0, AMQPClass::Connection(connection::AMQPMethod::TuneOk(ok)))).await;
    let open = connection::Open { virtual_host: "/".into() };
    r.send_frame(method(0, AMQPClass::Connection(connection::AMQPMethod::Open(open)))).await;
    (r, tune)
}

async fn open(addr: &str, from: &str) -> Raw {
    let (mut r, _) = up_to_open(addr, from.parse().unwrap()).await;
    let ok = r.method(T).await;
    assert!(matches!(ok, Some((_, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))))), "{ok:?}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_max_refuses_one_more_open_with_530() {
    let s = start("connection_max = 2\n");
    let addr = s.addr();
    let mut a = open(&addr, "127.0.0.1").await;
    let mut b = open(&addr, "127.0.0.2").await;
    // The third gets RabbitMQ's refusal at connection.open.
    let (mut c, _) = up_to_open(&addr, "127.0.0.3".parse().unwrap()).await;
    let (code, text) = c.expect_connection_close().await;
    assert_eq!(
        (code, text.as_str()),
        (530, "NOT_ALLOWED - connection refused: node connection limit (2) is reached")
    );
    // The two open ones are served, and when one goes, a place is free.
    a.channel_works(1, T).await;
    b.channel_works(1, T).await;
    drop(a);
    let mut d = None;
    for _ in 0..50 {
        let (mut r, _) = up_to_open(&addr, "127.0.0.3".parse().unwrap()).await;
        match r.method(T).await {
            Some((_, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_)))) => {
                d = Some(r);
                break;
            }
            // The server has not seen the first one go yet.
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    d.as_mut().expect("a place after a connection closed").channel_works(1, T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_max_is_negotiated_and_one_channel_more_is_530() {
    let s = start("channel_max = 3\n");
    let addr = s.addr();
    let (mut r, tune) = up_to_open(&addr, "127.0.0.1".parse().unwrap()).await;
    assert_eq!(tune.channel_max, 3);
    assert!(matches!(r.method(T).await, Some((_, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))))));
    let mut other = open(&addr, "127.0.0.1").await;
    for ch in 1..=3 {
        r.channel_works(ch, T).await;
    }
    r.send_frame(method(4, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})))).await;
    let (code, text) = r.expect_connection_close().await;
    assert_eq!(
        (code, text.as_str()),
        (530, "NOT_ALLOWED - number of channels opened (3) has reached the negotiated channel_max (3)")
    );
    other.channel_works(3, T).await;
}

fn publish(ch: u16, q: &str, size: usize) -> [AMQPFrame; 3] {
    let p = basic::Publish { exchange: "".into(), routing_key: q.into(), mandatory: false, immediate: false };
    let header = amq_protocol::frame::AMQPContentHeader {
        class_id: 60,
        body_size: size as u64,
        properties: Default::default(),
    };
    [
        method(ch, AMQPClass::Basic(basic::AMQPMethod::Publish(p))),
        AMQPFrame::Header(ch, header),
        AMQPFrame::Body(ch, vec![b'x'; size]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_above_max_message_size_is_406_on_its_channel_only() {
    let s = start("max_message_size = 1000\n");
    let (_c, lapin_ch) = s.channel().await;
    let q = lapin_ch.queue_declare("sizes".into(), Default::default(), FieldTable::default()).await.unwrap();
    let mut r = open(&s.addr(), "127.0.0.1").await;
    r.channel_works(1, T).await;
    r.channel_works(2, T).await;
    for f in publish(1, "sizes", 1001) {
        r.send_frame(f).await;
    }
    let close = loop {
        match r.method(T).await {
            Some((1, AMQPClass::Channel(channel::AMQPMethod::Close(c)))) => break c,
            Some(_) => continue,
            None => panic!("no channel.close for an oversized message"),
        }
    };
    assert_eq!(
        (close.reply_code, close.reply_text.as_str()),
        (406, "PRECONDITION_FAILED - message size 1001 is larger than configured max size 1000")
    );
    // The connection's other channel, and other connections, are served:
    // a message at the limit is taken.
    for f in publish(2, "sizes", 1000) {
        r.send_frame(f).await;
    }
    let got = warren_tests::eventually(T, || {
        let ch = lapin_ch.clone();
        async move { ch.basic_get("sizes".into(), BasicGetOptions { no_ack: true }).await.unwrap() }
    })
    .await
    .expect("the message at the limit");
    assert_eq!(got.delivery.data.len(), 1000);
    assert_eq!(q.message_count(), 0);
}

/// Reads until the server closes the socket or `wait` passes: true if it
/// closed, with no bytes sent.
async fn closed_at_once(r: &mut Raw, wait: Duration) -> bool {
    let (bytes, closed) = r.read_until_closed(wait).await;
    closed && bytes.is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_beyond_the_handshake_caps_are_closed_and_idle_ones_time_out() {
    let s = start(
        "unauthenticated_connection_max = 3\n\
         unauthenticated_connection_max_per_address = 2\n\
         handshake_timeout = 2000\n",
    );
    let addr = s.addr();
    let served = open(&addr, "127.0.0.1").await;
    // Two idle sockets from 127.0.0.2 fill its share; a third is closed.
    let idle = [
        Raw::connect_from(&addr, "127.0.0.2".parse().unwrap()).await,
        Raw::connect_from(&addr, "127.0.0.2".parse().unwrap()).await,
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = Raw::connect_from(&addr, "127.0.0.2".parse().unwrap()).await;
    assert!(closed_at_once(&mut third, Duration::from_secs(1)).await, "a third handshake from one address");
    // Another address still gets in, up to the node's cap of three.
    let mut from_3 = Raw::connect_from(&addr, "127.0.0.3".parse().unwrap()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut from_4 = Raw::connect_from(&addr, "127.0.0.4".parse().unwrap()).await;
    assert!(closed_at_once(&mut from_4, Duration::from_secs(1)).await, "a fourth handshake on the node");
    // The one in its handshake is served.
    from_3.send(b"AMQP\x00\x00\x09\x01").await;
    assert!(matches!(
        from_3.method(T).await,
        Some((_, AMQPClass::Connection(connection::AMQPMethod::Start(_))))
    ));
    // The idle ones are dropped after handshake_timeout, which frees
    // their places.
    let started = Instant::now();
    for mut r in idle {
        assert!(closed_at_once(&mut r, Duration::from_secs(4)).await, "an idle socket was kept");
    }
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    drop(from_3);
    let mut again = open(&addr, "127.0.0.2").await;
    again.channel_works(1, T).await;
    // The connection opened before all this was never disturbed.
    let mut served = served;
    served.channel_works(1, T).await;
}
