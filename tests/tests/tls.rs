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
