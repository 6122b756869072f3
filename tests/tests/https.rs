//! The management API over HTTPS: a warren-server with `management.ssl.*`
//! (rabbitmq.conf's keys) in its warren.conf, certificates made at test
//! time (rcgen), and a rustls client sending raw HTTP/1.1. The HTTPS
//! listener answers the API with HSTS, plain HTTP sent to it gets no HTTP
//! answer, and the plain listener keeps serving, without HSTS.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use warren_tests::Server;
use warren_tests::http::Api;
use warren_tests::pki::{Pki, connector, free_port, make_pki};

const GET_OVERVIEW: &[u8] = b"GET /api/overview HTTP/1.1\r\nHost: localhost\r\n\
    Authorization: Basic Z3Vlc3Q6Z3Vlc3Q=\r\nConnection: close\r\n\r\n";

fn start(pki: &Pki, extra: &str) -> (Server, u16) {
    let port = free_port();
    let conf = pki.dir.join("warren.conf");
    let d = pki.dir.display();
    std::fs::write(
        &conf,
        format!(
            "management.ssl.port = {port}\n\
             management.ssl.ip = 127.0.0.1\n\
             management.ssl.cacertfile = {d}/ca.pem\n\
             management.ssl.certfile = {d}/server.pem\n\
             management.ssl.keyfile = {d}/server_key.pem\n{extra}"
        ),
    )
    .unwrap();
    let server = Server::start_with(&["--config", conf.to_str().unwrap()]);
    assert!(server.wait_for_log("HTTPS listener", Duration::from_secs(20)), "{}", server.log_text());
    (server, port)
}

/// Sends `request` over TLS and returns everything the server sent back.
async fn exchange(port: u16, connector: TlsConnector, request: &[u8]) -> std::io::Result<String> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await?;
    tls.write_all(request).await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await??;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The status code, the headers (lower-cased names) and the body.
fn parse(response: &str) -> (u16, Vec<(String, String)>, &str) {
    let (head, body) = response.split_once("\r\n\r\n").expect("a complete HTTP response");
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body)
}

#[tokio::test]
async fn api_over_https_with_hsts() {
    let pki = make_pki();
    let (server, port) = start(&pki, "");

    let response = exchange(port, connector(&pki, None), GET_OVERVIEW).await.expect("HTTPS exchange");
    let (status, headers, body) = parse(&response);
    assert_eq!(status, 200, "{response}");
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(header("strict-transport-security"), Some("max-age=31536000"), "{response}");
    assert_eq!(header("content-type"), Some("application/json"), "{response}");
    let overview: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    assert!(overview["node"].is_string(), "{overview}");

    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    plain.write_all(GET_OVERVIEW).await.unwrap();
    let mut buf = [0u8; 64];
    if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(15), plain.read(&mut buf)).await {
        assert!(!buf[..n].starts_with(b"HTTP/"), "plain HTTP was answered: {:?}", &buf[..n]);
    }

    // The plain listener still serves, without HSTS; HTTPS still works.
    let r = Api::new(&server).get("/api/overview").await;
    assert_eq!(r.code(), 200);
    assert!(r.headers.get("strict-transport-security").is_none(), "{:?}", r.headers);
    let again = exchange(port, connector(&pki, None), GET_OVERVIEW).await.expect("HTTPS again");
    assert_eq!(parse(&again).0, 200, "{again}");
    let _ = std::fs::remove_dir_all(&pki.dir);
}

#[tokio::test]
async fn https_client_certificates() {
    let pki = make_pki();
    let extra = "management.ssl.verify = verify_peer\nmanagement.ssl.fail_if_no_peer_cert = true\n";
    let (_server, port) = start(&pki, extra);

    let response = exchange(port, connector(&pki, Some(&pki.client)), GET_OVERVIEW).await;
    let response = response.expect("HTTPS with a good certificate");
    assert_eq!(parse(&response).0, 200, "{response}");
    for (what, cert) in [("no certificate", None), ("a stranger's certificate", Some(&pki.stranger))] {
        let r = exchange(port, connector(&pki, cert), GET_OVERVIEW).await;
        assert!(r.is_err(), "{what} was let in: {r:?}");
    }
    let _ = std::fs::remove_dir_all(&pki.dir);
}

/// `/api/overview` lists the TLS listeners with RabbitMQ's protocol names
/// (`amqp/ssl`, `https`) beside the plain ones, and the health checks
/// `port-listener` and `protocol-listener` know them.
#[tokio::test]
async fn the_overview_lists_the_tls_listeners() {
    let pki = make_pki();
    let amqps = free_port();
    let d = pki.dir.display();
    let extra = format!(
        "listeners.ssl.default = {amqps}\n\
         ssl_options.cacertfile = {d}/ca.pem\n\
         ssl_options.certfile = {d}/server.pem\n\
         ssl_options.keyfile = {d}/server_key.pem\n"
    );
    let (server, https) = start(&pki, &extra);
    let api = Api::new(&server);
    let overview = api.ok("/api/overview").await;
    let listed: Vec<(String, u64)> = overview["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["protocol"].as_str().unwrap().to_owned(), l["port"].as_u64().unwrap()))
        .collect();
    for want in [("amqp/ssl", u64::from(amqps)), ("https", u64::from(https))] {
        assert!(listed.contains(&(want.0.to_owned(), want.1)), "{want:?} not in {listed:?}");
    }
    assert!(listed.iter().any(|(p, _)| p == "amqp") && listed.iter().any(|(p, _)| p == "http"), "{listed:?}");
    for path in [
        format!("/api/health/checks/port-listener/{amqps}"),
        format!("/api/health/checks/port-listener/{https}"),
        "/api/health/checks/protocol-listener/https".to_owned(),
        "/api/health/checks/protocol-listener/amqp%2Fssl".to_owned(),
    ] {
        let r = api.get(&path).await;
        assert_eq!(r.code(), 200, "{path}: {}", r.body);
    }
}
