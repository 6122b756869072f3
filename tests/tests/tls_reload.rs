//! Reloading TLS certificates without a restart: a node with AMQPS and
//! HTTPS listeners gets new certificate files, and after `warrenctl
//! reload_certificates` (or SIGHUP) new TLS clients are shown the new
//! certificate while a connection opened before keeps working; files that
//! do not load leave the previous certificate in force, with the reason.

mod ctl_common;

use std::time::Duration;

use ctl_common::ctl;
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use warren_tests::Server;
use warren_tests::http::{Api, json};
use warren_tests::pki::{Pki, connector, free_port, make_pki, server_cert_cn, tls_relay};

fn start(pki: &Pki) -> (Server, u16, u16) {
    let (amqps, https) = (free_port(), free_port());
    let conf = pki.dir.join("warren.conf");
    let d = pki.dir.display();
    std::fs::write(
        &conf,
        format!(
            "listeners.ssl.default = {amqps}\n\
             ssl_options.cacertfile = {d}/ca.pem\n\
             ssl_options.certfile = {d}/server.pem\n\
             ssl_options.keyfile = {d}/server_key.pem\n\
             management.ssl.port = {https}\n\
             management.ssl.cacertfile = {d}/ca.pem\n\
             management.ssl.certfile = {d}/server.pem\n\
             management.ssl.keyfile = {d}/server_key.pem\n"
        ),
    )
    .unwrap();
    let server = Server::start_with(&["--config", conf.to_str().unwrap()]);
    assert!(server.wait_for_log("HTTPS listener", Duration::from_secs(20)), "{}", server.log_text());
    (server, amqps, https)
}

/// The CN of the certificate the AMQPS and the HTTPS listener show now.
async fn shown(pki: &Pki, amqps: u16, https: u16) -> (String, String) {
    let a = server_cert_cn(amqps, connector(pki, None)).await.expect("AMQPS handshake");
    let h = server_cert_cn(https, connector(pki, None)).await.expect("HTTPS handshake");
    (a, h)
}

fn pair(cn: &str) -> (String, String) {
    (cn.to_owned(), cn.to_owned())
}

#[tokio::test]
async fn certificates_reload_without_dropping_connections() {
    let pki = make_pki();
    let (server, amqps, https) = start(&pki);
    assert_eq!(shown(&pki, amqps, https).await, pair("localhost"));

    // A client over TLS, before the change.
    let relay = tls_relay(amqps, connector(&pki, None)).await;
    let conn = Connection::connect(
        &format!("amqp://guest:guest@127.0.0.1:{relay}/%2f"),
        ConnectionProperties::default(),
    )
    .await
    .expect("AMQPS connection");
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare("reload".into(), QueueDeclareOptions::default(), Default::default()).await.unwrap();

    // New files alone change nothing until the reload.
    pki.rewrite_server_cert("second");
    assert_eq!(shown(&pki, amqps, https).await, pair("localhost"));
    let out = ctl(&server, &["reload_certificates"]);
    assert!(out.ok().contains("Reloaded the TLS certificates of: AMQPS, HTTPS"), "{out:?}");
    assert_eq!(shown(&pki, amqps, https).await, pair("second"));

    // The connection opened before still works, on its old session.
    ch.basic_publish(
        "".into(),
        "reload".into(),
        BasicPublishOptions::default(),
        b"still here",
        BasicProperties::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let got = ch.basic_get("reload".into(), BasicGetOptions { no_ack: true }).await.unwrap();
    assert_eq!(got.expect("the message").delivery.data, b"still here");

    // A file that does not load: a clear error, and the last good
    // certificate stays in force.
    std::fs::write(pki.dir.join("server.pem"), "not a certificate\n").unwrap();
    let out = ctl(&server, &["reload_certificates"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("cannot reload TLS certificates"), "{out:?}");
    assert!(out.stderr.contains("server.pem"), "{out:?}");
    assert!(out.stderr.contains("still using the previous certificate"), "{out:?}");
    let r = Api::new(&server).post("/api/node/reload_certificates", json!({})).await;
    assert_eq!(r.code(), 500, "{:?}", r.body);
    assert!(r.reason().contains("AMQPS: no certificate in"), "{:?}", r.body);
    assert_eq!(shown(&pki, amqps, https).await, pair("second"));

    // Administrators only.
    let api = Api::new(&server);
    assert_eq!(
        api.put("/api/users/watcher", json!({"password": "w", "tags": "monitoring"})).await.code(),
        201
    );
    let r = Api::as_user(&server, "watcher", "w").post("/api/node/reload_certificates", json!({})).await;
    assert_eq!(r.code(), 401, "{:?}", r.body);

    // SIGHUP does the same as warrenctl.
    pki.rewrite_server_cert("third");
    let pid = server.pid().expect("the server runs");
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGHUP) }, 0);
    assert!(server.wait_for_log("SIGHUP received", Duration::from_secs(10)), "{}", server.log_text());
    let third = warren_tests::eventually(Duration::from_secs(10), || async {
        (shown(&pki, amqps, https).await == pair("third")).then_some(())
    })
    .await;
    assert!(third.is_some(), "SIGHUP did not reload: {}", server.log_text());

    // And the first connection is still there.
    ch.queue_declare(
        "reload".into(),
        QueueDeclareOptions { passive: true, ..Default::default() },
        Default::default(),
    )
    .await
    .expect("the old connection after two reloads");
    conn.close(200, "bye".into()).await.unwrap();
    let _ = std::fs::remove_dir_all(&pki.dir);
}
