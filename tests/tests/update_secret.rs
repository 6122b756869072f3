//! `connection.update-secret` (RabbitMQ 3.8+; issue 17, item 6): the new
//! secret is the password of the connection's user, checked like a login.
//! A good one gets `update-secret-ok` and the connection goes on; a bad one
//! closes the connection as RabbitMQ does, 530 NOT_ALLOWED.

use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic, connection};
use warren_tests::Server;
use warren_tests::http::{Api, json};
use warren_tests::raw::Raw;
use warren_tests::{lapin, reply_code, reply_text};

const REFUSED: &str = "NOT_ALLOWED - New secret was refused by one of the backends";

fn update_secret(secret: &str) -> AMQPFrame {
    AMQPFrame::Method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::UpdateSecret(connection::UpdateSecret {
            new_secret: secret.into(),
            reason: "token refresh".into(),
        })),
    )
}

/// basic.qos on channel 1 answers qos-ok: the connection still works.
async fn still_works(r: &mut Raw) {
    r.send_frame(AMQPFrame::Method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos { prefetch_count: 5, global: false })),
    ))
    .await;
    let m = r.method(Duration::from_secs(5)).await;
    assert!(matches!(m, Some((1, AMQPClass::Basic(basic::AMQPMethod::QosOk(_))))), "{m:?}");
}

#[tokio::test]
async fn the_right_secret_gets_update_secret_ok_at_the_frame_level() {
    let s = Server::start();
    let mut r = Raw::open(&s.addr()).await;
    // Twice: a client may refresh as often as it likes. (The login made
    // "guest" a cached password; the lapin test below checks a new one.)
    for _ in 0..2 {
        r.send_frame(update_secret("guest")).await;
        let m = r.method(Duration::from_secs(10)).await;
        assert!(
            matches!(m, Some((0, AMQPClass::Connection(connection::AMQPMethod::UpdateSecretOk(_))))),
            "{m:?}"
        );
        still_works(&mut r).await;
    }
    assert!(s.wait_for_log("user 'guest' updated secret, reason: token refresh", Duration::from_secs(5)));
}

#[tokio::test]
async fn a_wrong_secret_closes_the_connection_with_530() {
    let s = Server::start();
    let mut r = Raw::open(&s.addr()).await;
    r.send_frame(update_secret("not-the-password")).await;
    let m = r.method(Duration::from_secs(10)).await;
    let Some((0, AMQPClass::Connection(connection::AMQPMethod::Close(c)))) = m else {
        panic!("expected connection.close, got {m:?}")
    };
    assert_eq!((c.reply_code, c.reply_text.as_str()), (530, REFUSED));
    assert_eq!((c.class_id, c.method_id), (10, 70));
    r.send_frame(AMQPFrame::Method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
    ))
    .await;
    let (_, closed) = r.read_until_closed(Duration::from_secs(5)).await;
    assert!(closed, "the broker kept the connection open");
}

#[tokio::test]
async fn lapin_update_secret_follows_a_password_change() {
    let s = Server::start();
    let admin = Api::new(&s);
    let r = admin.put("/api/users/rotating", json!({"password": "first", "tags": ""})).await;
    assert_eq!(r.code(), 201, "{:?}", r.body);
    let r = admin
        .put("/api/permissions/%2F/rotating", json!({"configure": ".*", "write": ".*", "read": ".*"}))
        .await;
    assert_eq!(r.code(), 201, "{:?}", r.body);

    let conn = lapin::Connection::connect(&s.uri_as("rotating", "first", "%2f"), Default::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    // The password changes; the client refreshes its secret on the open
    // connection, which keeps working.
    let r = admin.put("/api/users/rotating", json!({"password": "second", "tags": ""})).await;
    assert_eq!(r.code(), 204, "{:?}", r.body);
    conn.update_secret("second".into(), "rotation".into()).await.expect("update-secret-ok");
    ch.queue_declare("after-update".into(), Default::default(), Default::default()).await.expect("declare");

    // The old password is no longer a valid secret.
    let e = conn.update_secret("first".into(), "stale".into()).await.expect_err("a stale secret is refused");
    assert_eq!(reply_code(&e), Some(530), "{e}");
    assert_eq!(reply_text(&e), REFUSED);
}
