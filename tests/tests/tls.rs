//! AMQPS at the frame level: a warren-server with `listeners.ssl.default`
//! and `ssl_options` (rabbitmq.conf's keys) in its warren.conf, certificates
//! made at test time (rcgen), and a rustls client speaking raw AMQP over
//! TLS. With `verify = verify_peer` and `fail_if_no_peer_cert = true`, a
//! client without a certificate signed by the CA is refused at the TLS
//! handshake, one with such a certificate gets `connection.start`, and the
//! plain listener serves throughout. (pika's round trip over TLS is in
//! tests/python/test_tls.py.)

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use warren_tests::Server;
use warren_tests::pki::{Pki, connector, free_port, make_pki};

fn start(pki: &Pki) -> (Server, u16) {
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
             ssl_options.fail_if_no_peer_cert = true\n\
             ssl_options.versions.1 = tlsv1.3\n\
             ssl_options.versions.2 = tlsv1.2\n"
        ),
    )
    .unwrap();
    let server = Server::start_with(&["--config", conf.to_str().unwrap()]);
    assert!(server.wait_for_log("AMQP 0-9-1/TLS listener", Duration::from_secs(20)), "{}", server.log_text());
    (server, port)
}

/// Sends the AMQP protocol header over TLS and returns the first bytes of
/// the answer, or the error that ended the exchange.
async fn hello(port: u16, connector: TlsConnector) -> Result<Vec<u8>, std::io::Error> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(b"AMQP\x00\x00\x09\x01").await?;
    let mut buf = vec![0u8; 11];
    tokio::time::timeout(Duration::from_secs(10), tls.read_exact(&mut buf)).await??;
    Ok(buf)
}

#[tokio::test]
async fn amqps_with_client_certificates() {
    let pki = make_pki();
    let (server, port) = start(&pki);

    // A client certificate signed by the CA: connection.start (a method
    // frame on channel 0, class 10, method 10).
    let start = hello(port, connector(&pki, Some(&pki.client))).await.expect("TLS with a good certificate");
    assert_eq!(start[0], 1, "a method frame: {start:?}");
    assert_eq!(&start[1..3], &[0, 0], "on channel 0");
    assert_eq!(&start[7..11], &[0, 10, 0, 10], "connection.start: {start:?}");

    // No certificate, or one the CA did not sign: refused, without AMQP.
    for (what, cert) in [("no certificate", None), ("a stranger's certificate", Some(&pki.stranger))] {
        let r = hello(port, connector(&pki, cert)).await;
        assert!(r.is_err(), "{what} was let in: {r:?}");
    }

    // Plain AMQP on the TLS port gets no AMQP answer.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    plain.write_all(b"AMQP\x00\x00\x09\x01").await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(15), plain.read(&mut buf)).await;
    if let Ok(Ok(n)) = n {
        assert!(n == 0 || buf[0] != 1, "plain AMQP was answered on the TLS port: {:?}", &buf[..n]);
    }

    // The plain listener still serves, and a good client still gets in.
    let (_c, ch) = server.channel().await;
    ch.queue_declare("after-tls".into(), Default::default(), Default::default()).await.unwrap();
    hello(port, connector(&pki, Some(&pki.client))).await.expect("TLS again");
    let _ = std::fs::remove_dir_all(&pki.dir);
}

/// A client offering only `suite`, trusting the test CA.
fn connector_offering(pki: &Pki, suite: tokio_rustls::rustls::CipherSuite) -> TlsConnector {
    use std::sync::Arc;
    use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.retain(|s| s.suite() == suite);
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// `ssl_options.ciphers.N` (OpenSSL's names, as in rabbitmq.conf) limits
/// the suites the AMQPS listener accepts: a client offering only a listed
/// one (TLS 1.3 or 1.2) is served, one offering only another is refused
/// at the handshake; a name rustls does not implement stops the node with
/// the list of those it does.
#[tokio::test]
async fn ciphers_limit_the_suites_a_listener_accepts() {
    use tokio_rustls::rustls::CipherSuite as S;
    let pki = make_pki();
    let port = free_port();
    let d = pki.dir.display();
    let conf = pki.dir.join("ciphers.conf");
    let write = |ciphers: &str| {
        std::fs::write(
            &conf,
            format!(
                "listeners.ssl.default = {port}\n\
                 ssl_options.certfile = {d}/server.pem\n\
                 ssl_options.keyfile = {d}/server_key.pem\n{ciphers}"
            ),
        )
        .unwrap()
    };
    write(
        "ssl_options.ciphers.1 = TLS_AES_256_GCM_SHA384\nssl_options.ciphers.2 = ECDHE-ECDSA-AES256-GCM-SHA384\n",
    );
    let server = Server::start_with(&["--config", conf.to_str().unwrap()]);
    assert!(server.wait_for_log("AMQP 0-9-1/TLS listener", Duration::from_secs(20)), "{}", server.log_text());
    for (suite, served) in [
        (S::TLS13_AES_256_GCM_SHA384, true),
        (S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, true),
        (S::TLS13_AES_128_GCM_SHA256, false),
        (S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, false),
    ] {
        let got = hello(port, connector_offering(&pki, suite)).await;
        match served {
            true => assert_eq!(&got.expect("served")[..4], &[1, 0, 0, 0], "{suite:?}: connection.start"),
            false => assert!(got.is_err(), "{suite:?} was accepted: {got:?}"),
        }
    }
    drop(server);

    write("ssl_options.ciphers.1 = DES-CBC3-SHA\n");
    let out = std::process::Command::new(warren_tests::server_bin())
        .args(["--amqp-port", "0", "--http-port", "0", "--bind", "127.0.0.1", "--config"])
        .arg(&conf)
        .arg("--data-dir")
        .arg(pki.dir.join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cipher 'DES-CBC3-SHA' is not supported (supported: TLS_AES_256_GCM_SHA384"),
        "{stderr}"
    );
}
