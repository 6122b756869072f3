//! The EXTERNAL SASL mechanism (RabbitMQ's rabbitmq_auth_mechanism_ssl):
//! with `auth_mechanisms.1 = EXTERNAL` a TLS client whose certificate the
//! CA signed logs in as the user its certificate names, with no password.
//! lapin speaks AMQP through a local TLS relay carrying the client's
//! certificate (lapin is built here without a TLS stack); raw frames check
//! the `mechanisms` offered in `connection.start` and the refusals.

use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, connection};
use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use rcgen::{CertificateParams, DnType, SanType};
use warren_tests::http::{Api, enc, json};
use warren_tests::pki::{Pki, connector, free_port, make_pki, tls_relay};
use warren_tests::raw::Raw;
use warren_tests::{Server, reply_code, reply_text};

/// A server with an AMQPS listener (client certificates verified when
/// given, not required) and `extra` lines of warren.conf.
fn start(pki: &Pki, extra: &str) -> (Server, u16) {
    let port = free_port();
    let conf = pki.dir.join("warren.conf");
    let d = pki.dir.display();
    std::fs::write(
        &conf,
        format!(
            "listeners.ssl.default = {port}\n\
             ssl_options.cacertfile = {d}/ca.pem\n\
             ssl_options.certfile = {d}/server.pem\n\
             ssl_options.keyfile = {d}/server_key.pem\n\
             ssl_options.verify = verify_peer\n\
             ssl_options.fail_if_no_peer_cert = false\n\
             {extra}"
        ),
    )
    .unwrap();
    let server = Server::start_with(&["--config", conf.to_str().unwrap()]);
    assert!(server.wait_for_log("AMQP 0-9-1/TLS listener", Duration::from_secs(20)), "{}", server.log_text());
    (server, port)
}

/// A passwordless user with every permission on `/`.
async fn add_user(server: &Server, name: &str) {
    let api = Api::new(server);
    assert_eq!(api.put(&format!("/api/users/{}", enc(name)), json!({"tags": ""})).await.code(), 201);
    let perms = json!({"configure": ".*", "write": ".*", "read": ".*"});
    assert_eq!(api.put(&format!("/api/permissions/%2F/{}", enc(name)), perms).await.code(), 201);
}

/// The `mechanisms` of `connection.start` on a raw connection to `addr`,
/// and the connection, ready for its `start-ok`.
async fn mechanisms(addr: &str) -> (String, Raw) {
    let mut r = Raw::connect(addr).await;
    r.send(b"AMQP\x00\x00\x09\x01").await;
    match r.method(Duration::from_secs(5)).await {
        Some((0, AMQPClass::Connection(connection::AMQPMethod::Start(s)))) => (s.mechanisms.to_string(), r),
        other => panic!("expected connection.start, got {other:?}"),
    }
}

/// Answers `connection.start` with `mechanism` (and an empty response, as
/// EXTERNAL clients send), announcing authentication_failure_close.
async fn start_ok(r: &mut Raw, mechanism: &str) {
    let mut caps = FieldTable::default();
    caps.insert("authentication_failure_close".into(), AMQPValue::Boolean(true));
    let mut props = FieldTable::default();
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    r.send_frame(AMQPFrame::Method(
        0,
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: props,
            mechanism: mechanism.into(),
            response: "".into(),
            locale: "en_US".into(),
        })),
    ))
    .await;
}

async fn connect_external(port: u16) -> Result<Connection, lapin::Error> {
    let uri = format!("amqp://127.0.0.1:{port}/%2f?auth_mechanism=external");
    tokio::time::timeout(Duration::from_secs(15), Connection::connect(&uri, ConnectionProperties::default()))
        .await
        .expect("lapin's connect ended")
}

/// A client certificate's parameters with subject C=FR, O=Warren Tests,
/// CN=`cn`, and the user name RabbitMQ makes of it.
fn client_with_subject(cn: &str) -> (rcgen::CertificateParams, String) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    // Empty first: rcgen's default name holds a CN, which would stay first.
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CountryName, "FR");
    p.distinguished_name.push(DnType::OrganizationName, "Warren Tests");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = rcgen::date_time_ymd(2025, 1, 2);
    p.not_after = rcgen::date_time_ymd(2045, 6, 30);
    (p, format!("CN={cn},O=Warren Tests,C=FR"))
}

#[tokio::test]
async fn external_login_by_distinguished_name() {
    let pki = make_pki();
    let (server, port) = start(&pki, "auth_mechanisms.1 = EXTERNAL\nauth_mechanisms.2 = PLAIN\n");
    let (params, dn) = client_with_subject("app");
    let nodes = Api::new(&server).ok("/api/nodes").await;
    let enabled: Vec<_> = nodes[0]["auth_mechanisms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["enabled"] == true)
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(enabled, ["PLAIN", "EXTERNAL"], "{nodes}");
    add_user(&server, &dn).await;
    let app = pki.issue(params);

    // EXTERNAL offered first to a client with a certificate, then PLAIN;
    // a TLS client without one, or a plain TCP client, gets PLAIN only.
    let relay = tls_relay(port, connector(&pki, Some(&app))).await;
    let (m, _r) = mechanisms(&format!("127.0.0.1:{relay}")).await;
    assert_eq!(m, "EXTERNAL PLAIN");
    let anonymous_relay = tls_relay(port, connector(&pki, None)).await;
    assert_eq!(mechanisms(&format!("127.0.0.1:{anonymous_relay}")).await.0, "PLAIN");
    let (m, mut plain) = mechanisms(&server.addr()).await;
    assert_eq!(m, "PLAIN");
    // EXTERNAL over plain TCP (never offered there) is refused as RabbitMQ
    // refuses a mechanism it did not offer: 503 COMMAND_INVALID.
    start_ok(&mut plain, "EXTERNAL").await;
    let (code, text) = plain.expect_connection_close().await;
    assert_eq!((code, text.as_str()), (503, "COMMAND_INVALID - unknown authentication mechanism 'EXTERNAL'"));

    // lapin logs in with its certificate, as the user the DN names, and works.
    let conn = connect_external(relay)
        .await
        .unwrap_or_else(|e| panic!("EXTERNAL login: {e}\n{}", server.log_text()));
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare("by-certificate".into(), Default::default(), Default::default()).await.unwrap();
    let api = Api::new(&server);
    let listed = warren_tests::eventually(Duration::from_secs(10), || {
        let api = api.clone();
        async move {
            let v = api.ok("/api/connections").await;
            v.as_array().unwrap().iter().find(|c| c["auth_mechanism"] == "EXTERNAL").cloned()
        }
    })
    .await
    .expect("the EXTERNAL connection is listed");
    assert_eq!(listed["user"], dn.as_str());
    assert_eq!(listed["ssl"], true);
    // The certificate, as RabbitMQ shows it, in the list and on its own.
    let one = api.ok(&format!("/api/connections/{}", enc(listed["name"].as_str().unwrap()))).await;
    for c in [&listed, &one] {
        assert_eq!(c["peer_cert_subject"], dn.as_str(), "{c}");
        assert_eq!(c["peer_cert_issuer"], "CN=warren test CA", "{c}");
        assert_eq!(c["peer_cert_validity"], "2025-01-02T00:00:00Z - 2045-06-30T00:00:00Z", "{c}");
        assert_eq!(c["ssl_protocol"], "tlsv1.3", "{c}");
        assert_eq!(c["ssl_key_exchange"], "any", "{c}");
        assert_eq!(c["ssl_hash"], "aead", "{c}");
    }
    // Over TLS without a client certificate: the TLS fields, no peer_cert_*.
    let guest = Connection::connect(
        &format!("amqp://guest:guest@127.0.0.1:{anonymous_relay}/%2f"),
        ConnectionProperties::default(),
    )
    .await
    .expect("PLAIN over TLS without a client certificate");
    let no_cert = warren_tests::eventually(Duration::from_secs(10), || {
        let api = api.clone();
        async move {
            let v = api.ok("/api/connections").await;
            v.as_array().unwrap().iter().find(|c| c["user"] == "guest" && c["ssl"] == true).cloned()
        }
    })
    .await
    .expect("the TLS connection without certificate is listed");
    assert_eq!(no_cert["ssl_key_exchange"], "any", "{no_cert}");
    for field in ["peer_cert_subject", "peer_cert_issuer", "peer_cert_validity"] {
        assert_eq!(no_cert.get(field), Some(&serde_json::Value::Null), "{field}: {no_cert}");
    }
    guest.close(200, "bye".into()).await.unwrap();

    // A certificate naming no user: 403 ACCESS_REFUSED.
    let (params, _) = client_with_subject("nobody");
    let nobody = tls_relay(port, connector(&pki, Some(&pki.issue(params)))).await;
    let e = connect_external(nobody).await.expect_err("a certificate of no user got in");
    assert_eq!(reply_code(&e), Some(403), "{e}");
    assert!(reply_text(&e).contains("Login was refused using authentication mechanism EXTERNAL"), "{e}");
    let logged = "login failed for user 'CN=nobody,O=Warren Tests,C=FR'";
    assert!(server.wait_for_log(logged, Duration::from_secs(5)), "{}", server.log_text());

    // lapin asking for EXTERNAL over plain TCP gets the same.
    let e = connect_external(server.amqp_port).await.expect_err("EXTERNAL over plain TCP got in");
    assert_eq!(reply_code(&e), Some(503), "{e}");

    // PLAIN still works alongside; AMQPLAIN, not listed, is refused.
    let (_c, _ch) = server.channel().await;
    let (_, mut r) = mechanisms(&server.addr()).await;
    start_ok(&mut r, "AMQPLAIN").await;
    assert_eq!(r.expect_connection_close().await.0, 503);
    conn.close(200, "bye".into()).await.unwrap();
    let _ = std::fs::remove_dir_all(&pki.dir);
}

#[tokio::test]
async fn external_login_by_subject_alternative_name() {
    let pki = make_pki();
    let (server, port) = start(
        &pki,
        "auth_mechanisms.1 = EXTERNAL\n\
         ssl_cert_login_from = subject_alternative_name\n\
         ssl_cert_login_san_type = email\n\
         ssl_cert_login_san_index = 1\n",
    );
    add_user(&server, "second@example.com").await;
    let env = Api::new(&server).ok("/api/node/environment").await;
    assert_eq!(env["auth_mechanisms"], json!(["EXTERNAL"]), "{env}");
    assert_eq!(env["ssl_cert_login_from"], "subject_alternative_name", "{env}");
    assert_eq!(env["ssl_cert_login_san_type"], "email", "{env}");
    assert_eq!(env["ssl_cert_login_san_index"], 1, "{env}");
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "not-the-user");
    p.subject_alt_names = vec![
        SanType::DnsName("app.example.com".try_into().unwrap()),
        SanType::Rfc822Name("first@example.com".try_into().unwrap()),
        SanType::Rfc822Name("second@example.com".try_into().unwrap()),
    ];
    let relay = tls_relay(port, connector(&pki, Some(&pki.issue(p)))).await;
    // Only EXTERNAL is configured: PLAIN is not offered, even to guest.
    let (m, mut r) = mechanisms(&format!("127.0.0.1:{relay}")).await;
    assert_eq!(m, "EXTERNAL");
    start_ok(&mut r, "PLAIN").await;
    assert_eq!(r.expect_connection_close().await.0, 503);

    let conn = connect_external(relay)
        .await
        .unwrap_or_else(|e| panic!("EXTERNAL login: {e}\n{}", server.log_text()));
    conn.create_channel().await.unwrap();
    let api = Api::new(&server);
    let users = warren_tests::eventually(Duration::from_secs(10), || {
        let api = api.clone();
        async move {
            let v = api.ok("/api/connections").await;
            let users: Vec<String> =
                v.as_array().unwrap().iter().filter_map(|c| c["user"].as_str().map(str::to_owned)).collect();
            (!users.is_empty()).then_some(users)
        }
    })
    .await
    .expect("the connection is listed");
    assert_eq!(users, ["second@example.com"]);

    // A certificate with one email only has no second one: refused.
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "second@example.com");
    p.subject_alt_names = vec![SanType::Rfc822Name("second@example.com".try_into().unwrap())];
    let relay = tls_relay(port, connector(&pki, Some(&pki.issue(p)))).await;
    let e = connect_external(relay).await.expect_err("a certificate without a second email got in");
    assert_eq!(reply_code(&e), Some(403), "{e}");
    let logged = "EXTERNAL login refused: no name found";
    assert!(server.wait_for_log(logged, Duration::from_secs(5)), "{}", server.log_text());
    let _ = std::fs::remove_dir_all(&pki.dir);
}

#[tokio::test]
async fn external_not_offered_unless_configured() {
    let pki = make_pki();
    let (server, port) = start(&pki, "");
    let relay = tls_relay(port, connector(&pki, Some(&pki.client))).await;
    let (m, mut r) = mechanisms(&format!("127.0.0.1:{relay}")).await;
    assert_eq!(m, "PLAIN AMQPLAIN");
    start_ok(&mut r, "EXTERNAL").await;
    let (code, text) = r.expect_connection_close().await;
    assert_eq!((code, text.as_str()), (503, "COMMAND_INVALID - unknown authentication mechanism 'EXTERNAL'"));
    let nodes = Api::new(&server).ok("/api/nodes").await;
    let external =
        nodes[0]["auth_mechanisms"].as_array().unwrap().iter().find(|m| m["name"] == "EXTERNAL").cloned();
    assert_eq!(external.expect("EXTERNAL is listed")["enabled"], false);
    let _ = std::fs::remove_dir_all(&pki.dir);
}
