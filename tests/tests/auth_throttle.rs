//! Safe on a real network (issue 21, item 2): failed logins are answered
//! later and later per client address and per user name, a right password
//! never waits, every failure is logged and counted, and the counts are
//! served at `/api/auth/attempts/{node}` as RabbitMQ serves them.
//!
//! Clients on 127.0.0.2, 127.0.0.3, ... are distinct addresses (all of
//! 127/8 is loopback), so one server sees several clients.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, channel, connection};
use warren_tests::Server;
use warren_tests::http::{Api, json};
use warren_tests::raw::Raw;

/// Two failures free, then 400 ms, 800 ms, 1600 ms (the cap).
const THROTTLE: &str = "login_throttle.free_failures = 2\n\
                        login_throttle.initial_delay = 400\n\
                        login_throttle.max_delay = 1600\n\
                        login_throttle.quiet_period = 60000\n";

fn start(conf: &str) -> Server {
    let dir = std::env::temp_dir().join(warren_tests::unique("warren-auth"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("warren.conf");
    std::fs::write(&path, conf).unwrap();
    Server::start_with(&["--config", path.to_str().unwrap()])
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A PLAIN login from `from`: whether the broker went on to tune, and how
/// long its answer took.
async fn amqp_login(s: &Server, from: &str, user: &str, pass: &str) -> (bool, Duration) {
    let t = Duration::from_secs(10);
    let mut r = Raw::connect_from(&s.addr(), ip(from)).await;
    r.send(b"AMQP\x00\x00\x09\x01").await;
    let start = r.method(t).await;
    assert!(matches!(start, Some((_, AMQPClass::Connection(connection::AMQPMethod::Start(_))))), "{start:?}");
    let sent = Instant::now();
    r.send_frame(start_ok(user, pass)).await;
    let tuned =
        matches!(r.method(t).await, Some((_, AMQPClass::Connection(connection::AMQPMethod::Tune(_)))));
    (tuned, sent.elapsed())
}

fn start_ok(user: &str, pass: &str) -> AMQPFrame {
    AMQPFrame::Method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: Default::default(),
            mechanism: "PLAIN".into(),
            response: format!("\0{user}\0{pass}").as_str().into(),
            locale: "en_US".into(),
        })),
    )
}

async fn http_login(s: &Server, from: &str, user: &str, pass: &str) -> (u16, Duration) {
    let api = Api::as_user_from(s, user, pass, ip(from));
    let t = Instant::now();
    let code = api.get("/api/whoami").await.code();
    (code, t.elapsed())
}

async fn add_user(s: &Server, name: &str, pass: &str) {
    let admin = Api::new(s);
    let r = admin.put(&format!("/api/users/{name}"), json!({"password": pass, "tags": "management"})).await;
    assert_eq!(r.code(), 201, "{:?}", r.body);
    let perms = json!({"configure": ".*", "write": ".*", "read": ".*"});
    let r = admin.put(&format!("/api/permissions/%2F/{name}"), perms).await;
    assert_eq!(r.code(), 201, "{:?}", r.body);
}

/// Well under the first delay (400 ms), with room for a password check.
const PROMPT: Duration = Duration::from_millis(350);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_wait_longer_and_longer_but_right_passwords_do_not() {
    let s = start(THROTTLE);
    add_user(&s, "victim", "right").await;
    add_user(&s, "bystander", "fine").await;
    // Each right password logs in once, so its later logins cost no
    // password check and their times measure only the throttle.
    assert!(amqp_login(&s, "127.0.0.9", "victim", "right").await.0);
    assert!(amqp_login(&s, "127.0.0.9", "bystander", "fine").await.0);

    // From 127.0.0.2, wrong passwords for victim: two answered at once,
    // then each waits twice as long as the one before.
    let mut took = Vec::new();
    for i in 0..4 {
        let (ok, t) = amqp_login(&s, "127.0.0.2", "victim", &format!("guess-{i}")).await;
        assert!(!ok, "a wrong password was accepted");
        took.push(t);
    }
    assert!(took[0] < PROMPT && took[1] < PROMPT, "the free failures waited: {took:?}");
    assert!(took[2] >= Duration::from_millis(400), "the third failure was not delayed: {took:?}");
    assert!(took[3] >= Duration::from_millis(800), "the delay did not double: {took:?}");

    // The throttled address gets a right password answered at once, AMQP
    // and HTTP alike.
    let (ok, t) = amqp_login(&s, "127.0.0.2", "victim", "right").await;
    assert!(ok && t < PROMPT, "a right password from the throttled address: {ok} in {t:?}");
    let (code, t) = http_login(&s, "127.0.0.2", "victim", "right").await;
    assert!(code == 200 && t < PROMPT, "HTTP: {code} in {t:?}");

    // Its wrong passwords for anyone wait (the address is throttled),
    // over HTTP Basic too: the cap, 1600 ms.
    let (code, t) = http_login(&s, "127.0.0.2", "bystander", "guess").await;
    assert_eq!(code, 401);
    assert!(t >= Duration::from_millis(1600), "a failure from the throttled address took {t:?}");

    // Another address: bystander's failures are free there, but victim's
    // name is throttled wherever the guesses come from.
    let (ok, t) = amqp_login(&s, "127.0.0.3", "bystander", "guess").await;
    assert!(!ok && t < PROMPT, "a first failure from a fresh address took {t:?}");
    let (ok, t) = amqp_login(&s, "127.0.0.3", "victim", "guess").await;
    assert!(!ok && t >= Duration::from_millis(1600), "a failure for the throttled user name took {t:?}");
    // And victim, logging in rightly from a third address, never waits.
    let (ok, t) = amqp_login(&s, "127.0.0.4", "victim", "right").await;
    assert!(ok && t < PROMPT, "victim's right password from elsewhere: {ok} in {t:?}");
    let (code, t) = http_login(&s, "127.0.0.4", "victim", "right").await;
    assert!(code == 200 && t < PROMPT, "HTTP: {code} in {t:?}");

    // The dashboard's login endpoint is throttled the same way.
    let api = Api::as_user_from(&s, "victim", "right", ip("127.0.0.2"));
    let t = Instant::now();
    let r = api.post("/api/login", json!({"username": "victim", "password": "nope"})).await;
    assert_eq!(r.code(), 401);
    assert!(t.elapsed() >= Duration::from_millis(1600), "POST /api/login failure took {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_logged_counted_and_served_as_rabbitmq_serves_them() {
    let s = start("");
    let admin = Api::new(&s);
    add_user(&s, "watcher", "w").await;
    // Refused: an unknown user and a wrong password (AMQP and HTTP), and a
    // right password from a user the management API does not admit.
    assert!(!amqp_login(&s, "127.0.0.2", "nobody", "pw-SECRET-1").await.0);
    assert!(!amqp_login(&s, "127.0.0.2", "watcher", "pw-SECRET-2").await.0);
    assert!(amqp_login(&s, "127.0.0.2", "watcher", "w").await.0);
    assert_eq!(http_login(&s, "127.0.0.3", "watcher", "pw-SECRET-3").await.0, 401);
    let r = admin.put("/api/users/plain", json!({"password": "p", "tags": ""})).await;
    assert_eq!(r.code(), 201);
    let (code, _) = http_login(&s, "127.0.0.3", "plain", "p").await;
    assert_eq!(code, 401);

    // Each refusal is a warning naming the user and the address, never
    // the password.
    assert!(
        s.wait_for_log("amqp091 login failed for user 'nobody' from 127.0.0.2", Duration::from_secs(5)),
        "{}",
        s.log_text()
    );
    assert!(s.wait_for_log("http login failed for user 'watcher' from 127.0.0.3", Duration::from_secs(5)));
    assert!(s.wait_for_log("http login refused for user 'plain' from 127.0.0.3", Duration::from_secs(5)));
    let log = s.log_text();
    assert!(!log.contains("pw-SECRET"), "a password was logged:\n{log}");
    assert!(log.lines().any(|l| l.contains("WARN") && l.contains("'nobody'")), "{log}");

    let node = admin.ok("/api/overview").await["node"].as_str().unwrap().to_owned();
    let monitor = Api::as_user_from(&s, "guest", "guest", ip("127.0.0.1"));
    let by_protocol = monitor.ok(&format!("/api/auth/attempts/{node}")).await;
    let amqp = by_protocol.as_array().unwrap().iter().find(|e| e["protocol"] == "amqp091").unwrap().clone();
    assert_eq!(
        amqp,
        json!({"protocol": "amqp091", "auth_attempts": 3, "auth_attempts_failed": 2, "auth_attempts_succeeded": 1})
    );
    let http = by_protocol.as_array().unwrap().iter().find(|e| e["protocol"] == "http").unwrap().clone();
    assert_eq!(http["auth_attempts_failed"], 2, "{http}");
    assert!(http["auth_attempts_succeeded"].as_u64().unwrap() >= 1, "{http}");

    let sources = monitor.ok(&format!("/api/auth/attempts/{node}/source")).await;
    let find = |addr: &str, user: &str, protocol: &str| {
        sources
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["remote_address"] == addr && e["username"] == user && e["protocol"] == protocol)
            .cloned()
    };
    assert_eq!(
        find("127.0.0.2", "watcher", "amqp091"),
        Some(json!({"remote_address": "127.0.0.2", "username": "watcher", "protocol": "amqp091",
                    "auth_attempts": 2, "auth_attempts_failed": 1, "auth_attempts_succeeded": 1}))
    );
    assert_eq!(find("127.0.0.2", "nobody", "amqp091").unwrap()["auth_attempts_failed"], 1);
    assert_eq!(find("127.0.0.3", "plain", "http").unwrap()["auth_attempts_failed"], 1);

    // The Prometheus counters.
    let metrics = reqwest_text(&format!("{}/metrics", s.http_url())).await;
    assert!(metrics.contains("rabbitmq_auth_attempts_failed_total{protocol=\"amqp091\"} 2"), "{metrics}");
    assert!(metrics.contains("rabbitmq_auth_attempts_succeeded_total{protocol=\"amqp091\"} 1"), "{metrics}");
    assert!(metrics.contains("# TYPE rabbitmq_auth_attempts_total counter"), "{metrics}");

    // Another node's name is 404; a user without monitoring is refused;
    // DELETE (administrator) resets.
    assert_eq!(monitor.get("/api/auth/attempts/rabbit@elsewhere").await.code(), 404);
    assert_eq!(Api::as_user(&s, "watcher", "w").get(&format!("/api/auth/attempts/{node}")).await.code(), 401);
    assert_eq!(
        Api::as_user(&s, "watcher", "w").delete(&format!("/api/auth/attempts/{node}")).await.code(),
        401
    );
    assert_eq!(admin.delete(&format!("/api/auth/attempts/{node}/source")).await.code(), 204);
    let after = monitor.ok(&format!("/api/auth/attempts/{node}")).await;
    assert!(after.as_array().unwrap().iter().all(|e| e["protocol"] != "amqp091"), "{after}");
}

async fn reqwest_text(url: &str) -> String {
    warren_tests::http::reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// As RabbitMQ: deleting a user closes its connections with 320
/// CONNECTION_FORCED; changing its password does not (RabbitMQ's
/// `change_password` only notifies `user_password_changed`, which nothing
/// closes connections on), but the old password no longer logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_closes_its_connections_and_a_password_change_does_not() {
    let s = start("");
    add_user(&s, "leaver", "one").await;
    let admin = Api::new(&s);
    let mut conn = open_as(&s, "leaver", "one").await;
    let mut other = open_as(&s, "guest", "guest").await;

    let r = admin.put("/api/users/leaver", json!({"password": "two", "tags": "management"})).await;
    assert_eq!(r.code(), 204, "{:?}", r.body);
    assert!(!amqp_login(&s, "127.0.0.1", "leaver", "one").await.0);
    assert!(amqp_login(&s, "127.0.0.1", "leaver", "two").await.0);
    channel_opens(&mut conn, 2).await;

    assert_eq!(admin.delete("/api/users/leaver").await.code(), 204);
    let (code, text) = conn.expect_connection_close().await;
    assert_eq!((code, text.as_str()), (320, "CONNECTION_FORCED - user 'leaver' is deleted"));
    channel_opens(&mut other, 2).await;
}

async fn open_as(s: &Server, user: &str, pass: &str) -> Raw {
    let t = Duration::from_secs(5);
    let mut r = Raw::connect(&s.addr()).await;
    r.send(b"AMQP\x00\x00\x09\x01").await;
    r.method(t).await.expect("connection.start");
    r.send_frame(start_ok(user, pass)).await;
    let Some((_, AMQPClass::Connection(connection::AMQPMethod::Tune(tune)))) = r.method(t).await else {
        panic!("no tune for {user}")
    };
    let tune_ok =
        connection::TuneOk { channel_max: tune.channel_max, frame_max: tune.frame_max, heartbeat: 0 };
    r.send_frame(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::TuneOk(tune_ok)))).await;
    let open = connection::Open { virtual_host: "/".into() };
    r.send_frame(AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Open(open)))).await;
    let ok = r.method(t).await;
    assert!(matches!(ok, Some((_, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))))), "{ok:?}");
    r
}

async fn channel_opens(r: &mut Raw, ch: u16) {
    r.send_frame(AMQPFrame::Method(ch, AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))))
        .await;
    let ok = r.method(Duration::from_secs(5)).await;
    assert!(matches!(ok, Some((_, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))))), "{ok:?}");
}
