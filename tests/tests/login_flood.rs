//! Wrong passwords cost the broker time, never memory (issue 17, item 2).
//!
//! Checking an argon2id password fills 19 MiB. Before the fix, a burst of
//! wrong-password logins for an existing user ran one check per blocking
//! thread at once, and glibc's malloc kept the freed blocks: the process
//! grew by hundreds of MB to GBs and never shrank. These tests flood a real
//! server with failed logins, AMQP and HTTP Basic at once, and look at its
//! resident size and at how long a correct login takes meanwhile.

use std::time::{Duration, Instant};

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, connection};
use tokio::task::JoinSet;
use warren_tests::Server;
use warren_tests::http::{Api, json};
use warren_tests::raw::Raw;

/// One PLAIN login over raw frames: true when the broker goes on to
/// `connection.tune`, false when it refuses (or the handshake times out).
async fn amqp_login(addr: &str, user: &str, pass: &str) -> bool {
    let t = Duration::from_secs(60);
    let mut r = Raw::connect(addr).await;
    r.send(b"AMQP\x00\x00\x09\x01").await;
    let start = r.method(t).await;
    assert!(matches!(start, Some((_, AMQPClass::Connection(connection::AMQPMethod::Start(_))))), "{start:?}");
    r.send_frame(AMQPFrame::Method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: Default::default(),
            mechanism: "PLAIN".into(),
            response: format!("\0{user}\0{pass}").as_str().into(),
            locale: "en_US".into(),
        })),
    ))
    .await;
    matches!(r.method(t).await, Some((_, AMQPClass::Connection(connection::AMQPMethod::Tune(_)))))
}

async fn http_login(s: &Server, user: &str, pass: &str) -> bool {
    Api::as_user(s, user, pass).get("/api/whoami").await.code() == 200
}

const AMQP_ATTEMPTS: usize = 120;
const AMQP_AT_ONCE: usize = 30;
const HTTP_ATTEMPTS: usize = 200;
const HTTP_AT_ONCE: usize = 50;

/// Failed logins as `user`, AMQP and HTTP Basic side by side, each kind
/// `*_AT_ONCE` at a time. Every one must be refused.
async fn flood(s: &Server, user: &str) {
    let mut kinds = JoinSet::new();
    let addr = s.addr();
    let u = user.to_owned();
    kinds.spawn(async move {
        let mut running: JoinSet<bool> = JoinSet::new();
        for i in 0..AMQP_ATTEMPTS {
            if running.len() >= AMQP_AT_ONCE {
                assert!(!running.join_next().await.unwrap().unwrap(), "a wrong AMQP password was accepted");
            }
            let (addr, u) = (addr.clone(), u.clone());
            running.spawn(async move { amqp_login(&addr, &u, &format!("wrong-{i}")).await });
        }
        while let Some(r) = running.join_next().await {
            assert!(!r.unwrap(), "a wrong AMQP password was accepted");
        }
    });
    let apis: Vec<Api> = (0..HTTP_ATTEMPTS).map(|i| Api::as_user(s, user, &format!("bad-{i}"))).collect();
    kinds.spawn(async move {
        let mut running: JoinSet<u16> = JoinSet::new();
        for api in apis {
            if running.len() >= HTTP_AT_ONCE {
                assert_eq!(running.join_next().await.unwrap().unwrap(), 401);
            }
            running.spawn(async move { api.get("/api/whoami").await.code() });
        }
        while let Some(r) = running.join_next().await {
            assert_eq!(r.unwrap(), 401);
        }
    });
    while let Some(r) = kinds.join_next().await {
        r.unwrap();
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_leave_memory_flat_and_correct_logins_fast() {
    let s = Server::start();
    let admin = Api::new(&s);
    for name in ["victim", "late"] {
        let r = admin
            .put(&format!("/api/users/{name}"), json!({"password": "right", "tags": "management"}))
            .await;
        assert_eq!(r.code(), 201, "{:?}", r.body);
        let r = admin
            .put(
                &format!("/api/permissions/%2F/{name}"),
                json!({"configure": ".*", "write": ".*", "read": ".*"}),
            )
            .await;
        assert_eq!(r.code(), 201, "{:?}", r.body);
    }

    // Warm-up: logins that work (they are cached from now on), a few
    // failed ones, and the same flood for a user that does not exist,
    // which costs no password check: the connections, tasks and buffers a
    // flood needs are then part of the baseline, and only what the
    // password checks cost is left to measure.
    assert!(amqp_login(&s.addr(), "guest", "guest").await);
    assert!(http_login(&s, "guest", "guest").await);
    for i in 0..4 {
        assert!(!amqp_login(&s.addr(), "victim", &format!("warm-{i}")).await);
        assert!(!http_login(&s, "victim", &format!("warm-{i}")).await);
    }
    flood(&s, "nobody").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = s.rss_kib();

    // The flood, with correct logins going on meanwhile: guest's (cached)
    // every 100 ms, and a first login of another user halfway through.
    let started = Instant::now();
    let probe = {
        let (addr, http) = (s.addr(), Api::new(&s));
        tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            let mut n = 0;
            loop {
                let t = Instant::now();
                assert!(
                    amqp_login(&addr, "guest", "guest").await,
                    "guest's AMQP login failed during the flood"
                );
                assert_eq!(
                    http.get("/api/whoami").await.code(),
                    200,
                    "guest's HTTP login failed during the flood"
                );
                worst = worst.max(t.elapsed());
                n += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                if n >= 10 && started.elapsed() > Duration::from_secs(3) {
                    return (n, worst);
                }
            }
        })
    };
    let late = {
        let api = Api::as_user(&s, "late", "right");
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let t = Instant::now();
            let code = api.get("/api/whoami").await.code();
            (code, t.elapsed())
        })
    };
    flood(&s, "victim").await;
    let flood_took = started.elapsed();
    let (probes, worst) = probe.await.unwrap();
    let (late_code, late_took) = late.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = s.rss_kib();
    eprintln!(
        "RSS before the flood {:.1} MiB, after {:.1} MiB; {} failed logins took {:.1} s; \
         a cached correct login (AMQP + HTTP) took at most {} ms over {probes} tries; \
         a first correct login during the flood took {} ms",
        mib(before),
        mib(after),
        AMQP_ATTEMPTS + HTTP_ATTEMPTS,
        flood_took.as_secs_f64(),
        worst.as_millis(),
        late_took.as_millis(),
    );
    assert!(
        after <= before + 8 * 1024,
        "failed logins grew the broker from {:.1} MiB to {:.1} MiB",
        mib(before),
        mib(after)
    );
    assert!(worst < Duration::from_secs(1), "a cached correct login took {worst:?} during the flood");
    assert_eq!(late_code, 200, "a first correct login during the flood was refused");
    // Password checks take turns by client address and user name, so
    // another user's first login waits for about one check, not for the
    // flood.
    assert!(
        late_took < Duration::from_secs(1),
        "another user's first login took {late_took:?} during the flood"
    );

    // Still refusing and accepting as before.
    assert!(!amqp_login(&s.addr(), "victim", "wrong").await);
    assert!(amqp_login(&s.addr(), "victim", "right").await);
    assert!(http_login(&s, "victim", "right").await);
}
