//! The per-vhost and per-user limits set through `/api/vhost-limits` and
//! `/api/user-limits` (issue 21, item 3), enforced as RabbitMQ enforces
//! them: vhost `max-connections` and user `max-connections` at
//! `connection.open` (530, class 10 method 40), user `max-channels` at
//! `channel.open` (the connection closes with 530, class 0 method 0, as
//! RabbitMQ's channel limit has no method), vhost `max-queues` at the
//! declaration of a new queue (406 on the channel; 400 over HTTP). Each
//! test checks the offender's close frame, that everyone else is still
//! served, and that changing or clearing the limit takes effect at once.
//! A definitions import that would pass a vhost's `max-queues` is refused
//! whole, and the aliveness test's queue counts as any other.

mod ctl_common;

use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, channel, connection, queue};
use warren_tests::Server;
use warren_tests::http::{Api, enc, json};
use warren_tests::raw::Raw;

const T: Duration = Duration::from_secs(5);

fn method(ch: u16, m: AMQPClass) -> AMQPFrame {
    AMQPFrame::Method(ch, m)
}

/// A vhost, and users (each with its name as password) with every
/// permission on it and on "/".
async fn setup(api: &Api, vhost: &str, users: &[&str]) {
    assert_eq!(api.put(&format!("/api/vhosts/{}", enc(vhost)), json!({})).await.code(), 201);
    for u in users {
        let r = api.put(&format!("/api/users/{u}"), json!({"password": u, "tags": ""})).await;
        assert_eq!(r.code(), 201, "{:?}", r.body);
    }
    for u in users.iter().chain(&["guest"]) {
        for v in [vhost, "/"] {
            let r = api
                .put(
                    &format!("/api/permissions/{}/{u}", enc(v)),
                    json!({"configure": ".*", "write": ".*", "read": ".*"}),
                )
                .await;
            assert!(matches!(r.code(), 201 | 204), "{:?}", r.body);
        }
    }
}

async fn set_limit(api: &Api, kind: &str, owner: &str, name: &str, value: i64) {
    let r = api.put(&format!("/api/{kind}-limits/{}/{name}", enc(owner)), json!({"value": value})).await;
    assert_eq!(r.code(), 204, "{:?}", r.body);
}

async fn clear_limit(api: &Api, kind: &str, owner: &str, name: &str) {
    let r = api.delete(&format!("/api/{kind}-limits/{}/{name}", enc(owner))).await;
    assert_eq!(r.code(), 204, "{:?}", r.body);
}

/// Logs in as `user` (password: its name) and opens `vhost`: the open
/// connection, or the connection.close that refused it.
async fn open_as(addr: &str, user: &str, vhost: &str) -> Result<Raw, connection::Close> {
    let mut r = Raw::connect(addr).await;
    r.send(b"AMQP\x00\x00\x09\x01").await;
    r.method(T).await.expect("connection.start");
    let start_ok = connection::StartOk {
        client_properties: Default::default(),
        mechanism: "PLAIN".into(),
        response: format!("\0{user}\0{user}").into(),
        locale: "en_US".into(),
    };
    r.send_frame(method(0, AMQPClass::Connection(connection::AMQPMethod::StartOk(start_ok)))).await;
    let Some((_, AMQPClass::Connection(connection::AMQPMethod::Tune(tune)))) = r.method(T).await else {
        panic!("no connection.tune for {user}")
    };
    let ok = connection::TuneOk { channel_max: tune.channel_max, frame_max: tune.frame_max, heartbeat: 0 };
    r.send_frame(method(0, AMQPClass::Connection(connection::AMQPMethod::TuneOk(ok)))).await;
    let open = connection::Open { virtual_host: vhost.into() };
    r.send_frame(method(0, AMQPClass::Connection(connection::AMQPMethod::Open(open)))).await;
    match r.method(T).await {
        Some((0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_)))) => Ok(r),
        Some((0, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) => Err(c),
        other => panic!("no answer to connection.open: {other:?}"),
    }
}

async fn open_ok(addr: &str, user: &str, vhost: &str) -> Raw {
    match open_as(addr, user, vhost).await {
        Ok(r) => r,
        Err(c) => panic!("{user} refused on {vhost}: {c:?}"),
    }
}

/// Opening succeeds once the server has seen an earlier connection go.
async fn open_eventually(addr: &str, user: &str, vhost: &str) -> Raw {
    for _ in 0..50 {
        if let Ok(r) = open_as(addr, user, vhost).await {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{user} never got in to {vhost}")
}

fn refusal(c: &connection::Close) -> (u16, &str, u16, u16) {
    (c.reply_code, c.reply_text.as_str(), c.class_id, c.method_id)
}

async fn close_channel(r: &mut Raw, ch: u16) {
    let close = channel::Close { reply_code: 200, reply_text: "bye".into(), class_id: 0, method_id: 0 };
    r.send_frame(method(ch, AMQPClass::Channel(channel::AMQPMethod::Close(close)))).await;
    let ok = r.method(T).await;
    assert!(matches!(ok, Some((_, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))))), "{ok:?}");
}

/// Declares a queue on an open channel: its declare-ok, or the
/// channel.close that refused it.
async fn declare(r: &mut Raw, ch: u16, name: &str) -> Result<(), channel::Close> {
    let d = queue::Declare { queue: name.into(), ..Default::default() };
    r.send_frame(method(ch, AMQPClass::Queue(queue::AMQPMethod::Declare(d)))).await;
    match r.method(T).await {
        Some((_, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_)))) => Ok(()),
        Some((c, AMQPClass::Channel(channel::AMQPMethod::Close(close)))) if c == ch => Err(close),
        other => panic!("no answer to queue.declare: {other:?}"),
    }
}

async fn declare_ok(r: &mut Raw, ch: u16, name: &str) {
    if let Err(c) = declare(r, ch, name).await {
        panic!("queue '{name}' refused: {c:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhost_max_connections_refuses_one_more_open_with_530() {
    let s = Server::start();
    let addr = s.addr();
    let api = Api::new(&s);
    setup(&api, "lim", &["alice"]).await;
    set_limit(&api, "vhost", "lim", "max-connections", 2).await;
    let mut a = open_ok(&addr, "guest", "lim").await;
    let mut b = open_ok(&addr, "alice", "lim").await;
    let c = open_as(&addr, "alice", "lim").await.err().expect("a third connection to 'lim'");
    assert_eq!(
        refusal(&c),
        (
            530,
            "NOT_ALLOWED - access to vhost 'lim' refused for user 'alice': connection limit (2) is reached",
            10,
            40
        )
    );
    // Other vhosts and the connections already open are served.
    let mut other = open_ok(&addr, "alice", "/").await;
    other.channel_works(1, T).await;
    a.channel_works(1, T).await;
    b.channel_works(1, T).await;
    // A raised limit lets one more in at once.
    set_limit(&api, "vhost", "lim", "max-connections", 3).await;
    let _c = open_ok(&addr, "alice", "lim").await;
    // 0 lets nobody in; a negative value is no limit, and so is none.
    set_limit(&api, "vhost", "lim", "max-connections", 0).await;
    let c = open_as(&addr, "guest", "lim").await.err().expect("no connection under a limit of 0");
    assert_eq!(
        refusal(&c),
        (
            530,
            "NOT_ALLOWED - access to vhost 'lim' refused for user 'guest': connection limit (0) is reached",
            10,
            40
        )
    );
    set_limit(&api, "vhost", "lim", "max-connections", -1).await;
    let _d = open_ok(&addr, "guest", "lim").await;
    set_limit(&api, "vhost", "lim", "max-connections", 1).await;
    assert!(open_as(&addr, "guest", "lim").await.is_err());
    clear_limit(&api, "vhost", "lim", "max-connections").await;
    let mut e = open_ok(&addr, "guest", "lim").await;
    e.channel_works(1, T).await;
    // The ones refused were never counted, and a closed one gives its
    // place back.
    set_limit(&api, "vhost", "lim", "max-connections", 5).await;
    drop(e);
    let _e = open_eventually(&addr, "guest", "lim").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_max_connections_refuses_that_user_only() {
    let s = Server::start();
    let addr = s.addr();
    let api = Api::new(&s);
    setup(&api, "lim", &["alice", "bob"]).await;
    set_limit(&api, "user", "alice", "max-connections", 1).await;
    let a = open_ok(&addr, "alice", "/").await;
    // Counted across vhosts.
    let c = open_as(&addr, "alice", "lim").await.err().expect("alice's second connection");
    assert_eq!(
        refusal(&c),
        (
            530,
            "NOT_ALLOWED - connection refused for user 'alice': user connection limit (1) is reached",
            10,
            40
        )
    );
    let mut b = open_ok(&addr, "bob", "lim").await;
    b.channel_works(1, T).await;
    let mut g = open_ok(&addr, "guest", "/").await;
    g.channel_works(1, T).await;
    // The first one's place comes back when it closes.
    drop(a);
    let a = open_eventually(&addr, "alice", "lim").await;
    // 0 refuses even the first; clearing the limit lifts it.
    drop(a);
    set_limit(&api, "user", "alice", "max-connections", 0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = open_as(&addr, "alice", "/").await.err().expect("no connection under a limit of 0");
    assert_eq!(
        c.reply_text.as_str(),
        "NOT_ALLOWED - connection refused for user 'alice': user connection limit (0) is reached"
    );
    clear_limit(&api, "user", "alice", "max-connections").await;
    let _a1 = open_ok(&addr, "alice", "/").await;
    let _a2 = open_ok(&addr, "alice", "/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_max_channels_counts_all_the_users_connections() {
    let s = Server::start();
    let addr = s.addr();
    let api = Api::new(&s);
    setup(&api, "lim", &["alice"]).await;
    set_limit(&api, "user", "alice", "max-channels", 2).await;
    let mut a = open_ok(&addr, "alice", "/").await;
    let mut b = open_ok(&addr, "alice", "lim").await;
    a.channel_works(1, T).await;
    b.channel_works(1, T).await;
    // A third channel, on either connection, closes that connection.
    let third = a.open_channel(2, T).await;
    let Some((0, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) = third else {
        panic!("expected connection.close, got {third:?}")
    };
    assert_eq!(
        refusal(&c),
        (
            530,
            "NOT_ALLOWED - number of channels opened for user 'alice' has reached the maximum allowed user limit of 2",
            0,
            0
        )
    );
    // Another user's channels are not counted; alice's other connection
    // goes on, and gets a place once the closed connection's are free.
    let mut g = open_ok(&addr, "guest", "/").await;
    for ch in 1..=3 {
        g.channel_works(ch, T).await;
    }
    declare_ok(&mut b, 1, "still-served").await;
    drop(a);
    let mut got = false;
    for _ in 0..50 {
        match b.open_channel(2, T).await {
            Some((_, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)))) => {
                got = true;
                break;
            }
            // The server had not seen `a` go: b is closed, start again.
            _ => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                b = open_ok(&addr, "alice", "lim").await;
                b.channel_works(1, T).await;
            }
        }
    }
    assert!(got, "a channel once the other connection's were gone");
    // Closing a channel gives its place back.
    close_channel(&mut b, 2).await;
    b.channel_works(3, T).await;
    // A raised limit, and no limit, take effect at once.
    set_limit(&api, "user", "alice", "max-channels", 3).await;
    b.channel_works(4, T).await;
    clear_limit(&api, "user", "alice", "max-channels").await;
    for ch in 5..=8 {
        b.channel_works(ch, T).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhost_max_queues_refuses_a_new_queue_with_406() {
    let s = Server::start();
    let addr = s.addr();
    let api = Api::new(&s);
    setup(&api, "lim", &[]).await;
    set_limit(&api, "vhost", "lim", "max-queues", 2).await;
    let mut r = open_ok(&addr, "guest", "lim").await;
    r.channel_works(1, T).await;
    declare_ok(&mut r, 1, "q1").await;
    declare_ok(&mut r, 1, "q2").await;
    let c = declare(&mut r, 1, "q3").await.expect_err("a third queue in 'lim'");
    assert_eq!(
        (c.reply_code, c.reply_text.as_str(), c.class_id, c.method_id),
        (
            406,
            "PRECONDITION_FAILED - cannot declare queue 'q3': queue limit in vhost 'lim' (2) is reached",
            50,
            10
        )
    );
    r.send_frame(method(1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})))).await;
    // The connection goes on: declaring an existing queue is no new queue.
    r.channel_works(2, T).await;
    declare_ok(&mut r, 2, "q1").await;
    // A server-named queue counts too.
    let c = declare(&mut r, 2, "").await.expect_err("a server-named queue");
    assert_eq!(c.reply_code, 406);
    assert!(
        c.reply_text.as_str().starts_with("PRECONDITION_FAILED - cannot declare queue 'amq.gen-"),
        "{c:?}"
    );
    // Over HTTP: RabbitMQ's 400 with the same reason.
    let put = api.put("/api/queues/lim/q4", json!({"durable": true})).await;
    assert_eq!(
        (put.code(), put.reason()),
        (400, "cannot declare queue 'q4': queue limit in vhost 'lim' (2) is reached")
    );
    assert_eq!(api.put("/api/queues/lim/q1", json!({"durable": false})).await.code(), 204);
    // Other vhosts are not limited.
    let mut other = open_ok(&addr, "guest", "/").await;
    other.channel_works(1, T).await;
    for q in ["a", "b", "c"] {
        declare_ok(&mut other, 1, q).await;
    }
    // A deleted queue frees a place; a raised or cleared limit takes
    // effect at once.
    assert_eq!(api.delete("/api/queues/lim/q2").await.code(), 204);
    r.channel_works(3, T).await;
    declare_ok(&mut r, 3, "q3").await;
    assert!(declare(&mut r, 3, "q4").await.is_err());
    set_limit(&api, "vhost", "lim", "max-queues", 3).await;
    assert_eq!(api.put("/api/queues/lim/q4", json!({})).await.code(), 201);
    set_limit(&api, "vhost", "lim", "max-queues", 0).await;
    assert_eq!(api.put("/api/queues/lim/q5", json!({})).await.code(), 400);
    clear_limit(&api, "vhost", "lim", "max-queues").await;
    assert_eq!(api.put("/api/queues/lim/q5", json!({})).await.code(), 201);
}

/// RabbitMQ's refusal of an import, from rabbit_definitions.erl.
fn import_refused(adding: usize, vhost: &str, limit: u64, has: usize) -> String {
    format!(
        "Adding {adding} queue(s) to virtual host \"{vhost}\" would exceed the limit of {limit} queue(s).\n\n\
         This virtual host currently has {has} queue(s) defined.\n\nImport aborted!"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_past_max_queues_is_refused_whole() {
    let s = Server::start();
    let api = Api::new(&s);
    setup(&api, "lim", &[]).await;
    set_limit(&api, "vhost", "lim", "max-queues", 2).await;
    assert_eq!(api.put("/api/queues/lim/q1", json!({})).await.code(), 201);
    // q1 exists, q2 and q3 are new (q3 named twice): 1 + 2 > 2.
    let doc = json!({
        "vhosts": [{"name": "fresh"}],
        "users": [{"name": "newbie", "password_hash": "", "tags": ""}],
        "exchanges": [{"vhost": "lim", "name": "x", "type": "fanout"}],
        "queues": [{"vhost": "lim", "name": "q1"}, {"vhost": "lim", "name": "q2"},
                   {"vhost": "lim", "name": "q3"}, {"vhost": "lim", "name": "q3"},
                   {"vhost": "/", "name": "elsewhere"}],
        "bindings": [{"vhost": "lim", "source": "x", "destination": "q2", "destination_type": "queue"}],
    });
    let r = api.post("/api/definitions", doc.clone()).await;
    assert_eq!((r.code(), r.reason()), (400, import_refused(2, "lim", 2, 1).as_str()), "{:?}", r.body);
    assert_eq!(r.body["error"], "bad_request");
    // Nothing was imported: not the users and vhosts RabbitMQ would have
    // added before its check, nor anything else.
    for path in [
        "/api/vhosts/fresh",
        "/api/users/newbie",
        "/api/exchanges/lim/x",
        "/api/queues/lim/q2",
        "/api/queues/%2F/elsewhere",
    ] {
        assert_eq!(api.get(path).await.code(), 404, "{path}");
    }
    // The same through a vhost's import, whose items name no vhost.
    let vdoc = json!({"queues": [{"name": "q1"}, {"name": "q2"}, {"name": "q3"}]});
    let r = api.post("/api/definitions/lim", vdoc.clone()).await;
    assert_eq!((r.code(), r.reason()), (400, import_refused(2, "lim", 2, 1).as_str()));
    // And through warrenctl, which prints the reason.
    let (s2, bytes) = (&s, serde_json::to_vec(&doc).unwrap());
    let run = tokio::task::block_in_place(|| ctl_common::ctl_stdin(s2, &["import_definitions", "-"], &bytes));
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("would exceed the limit of 2 queue(s)"), "{run:?}");
    assert_eq!(api.get("/api/queues/lim/q2").await.code(), 404);
    // Within the limit it goes through; at the limit, a document adding no
    // queue still does; a limit of 0 refuses any new one.
    let r = api.post("/api/definitions/lim", json!({"queues": [{"name": "q1"}, {"name": "q2"}]})).await;
    assert_eq!(r.code(), 204, "{:?}", r.body);
    let again = json!({"queues": [{"vhost": "lim", "name": "q1"}, {"vhost": "lim", "name": "q2"}],
                       "policies": [{"vhost": "lim", "name": "p", "pattern": "^q", "definition": {"max-length": 5}}]});
    assert_eq!(api.post("/api/definitions", again).await.code(), 204);
    assert_eq!(api.get("/api/policies/lim/p").await.code(), 200);
    set_limit(&api, "vhost", "lim", "max-queues", 0).await;
    let r = api.post("/api/definitions/lim", json!({"queues": [{"name": "q9"}]})).await;
    assert_eq!((r.code(), r.reason()), (400, import_refused(1, "lim", 0, 2).as_str()));
    // Other vhosts, and a cleared limit, are not held back.
    clear_limit(&api, "vhost", "lim", "max-queues").await;
    assert_eq!(api.post("/api/definitions", doc).await.code(), 204);
    for path in ["/api/vhosts/fresh", "/api/queues/lim/q3", "/api/queues/%2F/elsewhere"] {
        assert_eq!(api.get(path).await.code(), 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aliveness_test_queue_counts_toward_max_queues() {
    let s = Server::start();
    let api = Api::new(&s);
    setup(&api, "lim", &[]).await;
    set_limit(&api, "vhost", "lim", "max-queues", 0).await;
    // RabbitMQ 3.10's answer when the channel declaring the queue closes.
    let r = api.get("/api/aliveness-test/lim").await;
    assert_eq!(
        (r.code(), r.body["error"].as_str(), r.reason()),
        (
            400,
            Some("bad_request"),
            "406 PRECONDITION_FAILED - cannot declare queue 'aliveness-test': queue limit in vhost 'lim' (0) is reached"
        )
    );
    assert_eq!(api.get("/api/queues/lim/aliveness-test").await.code(), 404);
    assert_eq!(api.get("/api/aliveness-test/%2F").await.code(), 200);
    set_limit(&api, "vhost", "lim", "max-queues", 1).await;
    let r = api.get("/api/aliveness-test/lim").await;
    assert_eq!((r.code(), &r.body), (200, &json!({"status": "ok"})));
    // Its queue now exists: redeclaring it is no new queue.
    set_limit(&api, "vhost", "lim", "max-queues", 0).await;
    assert_eq!(api.get("/api/aliveness-test/lim").await.code(), 200);
}
