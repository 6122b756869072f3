//! TLS on the inter-node link (`cluster.tls = true`, docs/cluster.md), with
//! real warren-server processes on loopback and certificates made at test
//! time: three TLS nodes form a cluster and forward and consume over it; a
//! node whose certificate another CA signed cannot join, nor can a node
//! without TLS (nor a TLS node a plain cluster); the cluster port really
//! speaks TLS, both ways; and a node's link certificate is reloaded
//! (`reload_certificates`) for the links made after, in both directions,
//! while the links already up stay up.

mod cluster_support;

use std::path::PathBuf;

use cluster_support::{Node, SECRET, T, form};
use futures_lite::StreamExt;
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::FieldTable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use warren_tests::eventually;
use warren_tests::http::json;
use warren_tests::pki::{Pki, connector, make_pki, server_cert_cn, write_other_ca};

/// A warren.conf in the PKI's directory, named `name`, with `body`.
fn conf(pki: &Pki, name: &str, body: &str) -> PathBuf {
    let path = pki.dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// Cluster TLS with the test CA and its certificate for localhost.
fn tls_conf(pki: &Pki) -> PathBuf {
    let d = pki.dir.display();
    conf(
        pki,
        "cluster-tls.conf",
        &format!(
            "cluster.tls = true\n\
             cluster.tls.cacertfile = {d}/ca.pem\n\
             cluster.tls.certfile = {d}/server.pem\n\
             cluster.tls.keyfile = {d}/server_key.pem\n"
        ),
    )
}

fn tls_node(n: usize, conf: &std::path::Path) -> Node {
    let node = Node::start_with(n, SECRET, &["--config", conf.to_str().unwrap()]);
    assert!(node.server.log_text().contains("cluster link: TLS (mutual, CA "), "{}", node.server.log_text());
    node
}

/// join_cluster `seed` from `node` (its app stopped first): the answer.
async fn try_join(node: &Node, seed: &Node) -> warren_tests::http::Reply {
    let api = node.api();
    assert_eq!(api.post("/api/node/stop_app", json!({})).await.code(), 204);
    api.post("/api/node/join_cluster", json!({"node": seed.name, "address": seed.address()})).await
}

#[tokio::test]
async fn three_tls_nodes_forward_and_consume_over_tls() {
    let pki = make_pki();
    let c = tls_conf(&pki);
    // The third node names no cluster.tls files: it uses ssl_options'.
    let d = pki.dir.display();
    let fallback = conf(
        &pki,
        "fallback.conf",
        &format!(
            "cluster.tls = true\n\
             ssl_options.cacertfile = {d}/ca.pem\n\
             ssl_options.certfile = {d}/server.pem\n\
             ssl_options.keyfile = {d}/server_key.pem\n"
        ),
    );
    let nodes = form([tls_node(1, &c), tls_node(2, &c), tls_node(3, &fallback)]).await;
    assert!(nodes[2].server.log_text().contains("CN=warren test CA"), "{}", nodes[2].server.log_text());

    // A queue homed on node one, published to through node two and
    // consumed through node three.
    let (_c1, ch1) = nodes[0].server.channel().await;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch1.queue_declare("over-tls".into(), durable, FieldTable::default()).await.unwrap();
    for n in &nodes[1..] {
        let api = n.api();
        let seen = eventually(T, || async {
            (api.get("/api/queues/%2F/over-tls").await.code() == 200).then_some(())
        });
        assert!(seen.await.is_some());
    }
    let (_c3, ch3) = nodes[2].server.channel().await;
    let mut consumer = ch3
        .basic_consume("over-tls".into(), "c".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let (_c2, ch2) = nodes[1].server.channel().await;
    ch2.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    for k in 0..20 {
        let props = BasicProperties::default().with_delivery_mode(2);
        let confirm = ch2
            .basic_publish(
                "".into(),
                "over-tls".into(),
                BasicPublishOptions::default(),
                format!("m{k}").as_bytes(),
                props,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
    }
    for k in 0..20 {
        let d = tokio::time::timeout(T, consumer.next()).await.expect("a delivery in time").unwrap().unwrap();
        assert_eq!(d.data, format!("m{k}").into_bytes());
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    let api1 = nodes[0].api();
    let empty = eventually(T, || async {
        let q = api1.ok("/api/queues/%2F/over-tls").await;
        (q["messages"] == 0).then_some(())
    });
    assert!(empty.await.is_some(), "{}", api1.ok("/api/queues/%2F/over-tls").await);
}

#[tokio::test]
async fn a_node_whose_certificate_another_ca_signed_cannot_join() {
    let pki = make_pki();
    write_other_ca(&pki.dir);
    let seed = tls_node(1, &tls_conf(&pki));
    let d = pki.dir.display();

    // It trusts the cluster's CA, but its own certificate is another
    // CA's: the seed refuses it during the TLS handshake.
    let rogue_conf = conf(
        &pki,
        "rogue.conf",
        &format!(
            "cluster.tls = true\n\
             cluster.tls.cacertfile = {d}/ca.pem\n\
             cluster.tls.certfile = {d}/other_server.pem\n\
             cluster.tls.keyfile = {d}/other_server_key.pem\n"
        ),
    );
    let rogue = tls_node(2, &rogue_conf);
    let r = try_join(&rogue, &seed).await;
    assert_eq!(r.code(), 503, "{}", r.body);
    assert!(r.reason().contains("TLS"), "{}", r.body);
    assert!(r.reason().contains("certificate"), "{}", r.body);
    assert!(seed.server.wait_for_log("TLS handshake failed", T), "{}", seed.server.log_text());
    assert!(seed.server.log_text().contains("invalid peer certificate"), "{}", seed.server.log_text());

    // It trusts only its own CA: it refuses the seed's certificate itself.
    let stranger_conf = conf(
        &pki,
        "stranger.conf",
        &format!(
            "cluster.tls = true\n\
             cluster.tls.cacertfile = {d}/other_ca.pem\n\
             cluster.tls.certfile = {d}/other_server.pem\n\
             cluster.tls.keyfile = {d}/other_server_key.pem\n"
        ),
    );
    let stranger = tls_node(3, &stranger_conf);
    let r = try_join(&stranger, &seed).await;
    assert_eq!(r.code(), 503, "{}", r.body);
    assert!(r.reason().contains("TLS handshake failed: invalid peer certificate"), "{}", r.body);
    assert!(
        stranger.server.wait_for_log("join_cluster warren-1@127.0.0.1 at", T),
        "{}",
        stranger.server.log_text()
    );

    // Nobody joined anything.
    for n in [&seed, &rogue, &stranger] {
        assert_eq!(n.status().await["clustered"], json!(false));
    }
}

#[tokio::test]
async fn tls_and_plain_nodes_do_not_link() {
    let pki = make_pki();
    let tls_seed = tls_node(1, &tls_conf(&pki));
    let plain = Node::start(2, SECRET);
    assert!(plain.server.log_text().contains("cluster link: plain TCP"), "{}", plain.server.log_text());

    // A plain node cannot join a TLS cluster: the TLS node tells it why.
    let r = try_join(&plain, &tls_seed).await;
    assert_eq!(r.code(), 503, "{}", r.body);
    assert!(r.reason().contains("requires TLS"), "{}", r.body);
    assert!(tls_seed.server.wait_for_log("refused a plain-TCP peer", T), "{}", tls_seed.server.log_text());

    // Nor a TLS node a plain one.
    let api = plain.api();
    assert_eq!(api.post("/api/node/start_app", json!({})).await.code(), 204);
    let tls_joiner = tls_node(3, &tls_conf(&pki));
    let r = try_join(&tls_joiner, &plain).await;
    assert_eq!(r.code(), 503, "{}", r.body);
    assert!(r.reason().contains("TLS handshake failed"), "{}", r.body);
    assert!(plain.server.wait_for_log("refused a TLS peer", T), "{}", plain.server.log_text());

    for n in [&tls_seed, &plain, &tls_joiner] {
        assert_eq!(n.status().await["clustered"], json!(false));
    }
}

#[tokio::test]
async fn the_cluster_port_speaks_tls_both_ways() {
    let pki = make_pki();
    let node = tls_node(1, &tls_conf(&pki));
    let port = node.cluster_port;

    // A client with a certificate the CA signed completes a TLS handshake,
    // and is shown the node's certificate.
    let cn = server_cert_cn(port, connector(&pki, Some(&pki.client))).await.unwrap();
    assert_eq!(cn, "localhost");

    // Without a client certificate, the session is refused.
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let refused = async {
        let mut tls = connector(&pki, None).connect(name, tcp).await?;
        tls.write_all(b"\0\0\0\x01\x80").await?;
        let mut buf = [0u8; 16];
        match tls.read(&mut buf).await? {
            0 => Err(std::io::Error::other("closed")),
            _ => Ok(()),
        }
    };
    assert!(tokio::time::timeout(T, refused).await.unwrap().is_err());
    assert!(node.server.wait_for_log("TLS handshake failed", T), "{}", node.server.log_text());

    // A plain handshake frame is answered, in plain, with the refusal.
    let mut raw = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    raw.write_all(b"\0\0\0\x01\x80").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(T, raw.read_to_end(&mut answer)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&answer).contains("requires TLS"), "{answer:?}");

    // What the node sends when it dials another: a TLS ClientHello (a
    // handshake record, 22, of TLS 1.x), not a plain frame.
    let fake = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_addr = fake.local_addr().unwrap().to_string();
    let first_bytes = tokio::spawn(async move {
        let (mut s, _) = fake.accept().await.unwrap();
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).await.unwrap();
        buf
    });
    let api = node.api();
    assert_eq!(api.post("/api/node/stop_app", json!({})).await.code(), 204);
    let r = api.post("/api/node/join_cluster", json!({"node": "fake@127.0.0.1", "address": fake_addr})).await;
    assert_eq!(r.code(), 503, "{}", r.body);
    let first = tokio::time::timeout(T, first_bytes).await.unwrap().unwrap();
    assert_eq!(first[0], 22, "{first:?}");
    assert_eq!(first[1], 3, "{first:?}");
}

/// Publishes `body` to the default exchange with routing key `queue` and
/// waits for its confirm.
async fn publish_confirmed(ch: &lapin::Channel, queue: &str, body: &str) {
    let props = BasicProperties::default().with_delivery_mode(2);
    let confirm = ch
        .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), body.as_bytes(), props)
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack(), "{body}");
}

/// Whether `node` logged a line with every one of `parts`.
fn logged(node: &Node, parts: &[&str]) -> bool {
    node.server.log_text().lines().any(|l| parts.iter().all(|p| l.contains(p)))
}

async fn until_logged(node: &Node, parts: &[&str]) -> bool {
    eventually(T, || async { logged(node, parts).then_some(()) }).await.is_some()
}

#[tokio::test]
async fn the_link_certificate_reloads_for_new_links_and_old_links_stay_up() {
    let pki = make_pki();
    // Node one has certificate files of its own, which are renewed.
    pki.write_server_cert("first", "node1");
    let d = pki.dir.display();
    let one_conf = conf(
        &pki,
        "node1.conf",
        &format!(
            "cluster.tls = true\n\
             cluster.tls.cacertfile = {d}/ca.pem\n\
             cluster.tls.certfile = {d}/node1.pem\n\
             cluster.tls.keyfile = {d}/node1_key.pem\n"
        ),
    );
    let c = tls_conf(&pki);
    let [one, mut two, three] = form([tls_node(1, &one_conf), tls_node(2, &c), tls_node(3, &c)]).await;
    let client = Some(&pki.client);
    assert_eq!(server_cert_cn(one.cluster_port, connector(&pki, client)).await.unwrap(), "first");
    // Node two's links to and from node one, and the certificate each
    // shows it.
    let to_one = ["cluster link to warren-1@127.0.0.1", "CN=first"];
    let from_one = ["cluster link from warren-1@127.0.0.1", "CN=first"];
    assert!(until_logged(&two, &to_one).await, "{}", two.server.log_text());
    assert!(until_logged(&two, &from_one).await, "{}", two.server.log_text());

    // A queue homed on node one, published to through node two.
    let (_c1, ch1) = one.server.channel().await;
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch1.queue_declare("on-one".into(), durable, FieldTable::default()).await.unwrap();
    let api2 = two.api();
    let seen =
        eventually(T, || async { (api2.get("/api/queues/%2F/on-one").await.code() == 200).then_some(()) });
    assert!(seen.await.is_some());
    let (_c2, ch2) = two.server.channel().await;
    ch2.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    publish_confirmed(&ch2, "on-one", "before").await;

    // New files change nothing until the reload; then the cluster port
    // shows the new certificate.
    pki.write_server_cert("renewed", "node1");
    assert_eq!(server_cert_cn(one.cluster_port, connector(&pki, client)).await.unwrap(), "first");
    let r = one.api().post("/api/node/reload_certificates", json!({})).await;
    assert_eq!(r.code(), 200, "{}", r.body);
    assert_eq!(r.body["reloaded"], json!(["cluster link"]), "{}", r.body);
    assert!(one.server.wait_for_log("cluster link: reloaded the TLS certificate and key", T));
    assert_eq!(server_cert_cn(one.cluster_port, connector(&pki, client)).await.unwrap(), "renewed");

    // The links already up stay up: node two still publishes to node one
    // over the link it had, not a new one.
    publish_confirmed(&ch2, "on-one", "after the reload").await;
    assert!(
        !logged(&two, &["cluster link to warren-1@127.0.0.1", "CN=renewed"]),
        "{}",
        two.server.log_text()
    );
    assert!(
        !logged(&two, &["cluster link from warren-1@127.0.0.1", "CN=renewed"]),
        "{}",
        two.server.log_text()
    );

    // Node two crashes and comes back: both new links, the one it dials
    // to node one and the one node one dials to it, carry the new
    // certificate, and the cluster forms again.
    two.server.crash_and_restart();
    let to_one = ["cluster link to warren-1@127.0.0.1", "CN=renewed"];
    let from_one = ["cluster link from warren-1@127.0.0.1", "CN=renewed"];
    assert!(until_logged(&two, &to_one).await, "{}", two.server.log_text());
    assert!(until_logged(&two, &from_one).await, "{}", two.server.log_text());
    for n in [&one, &two, &three] {
        n.until_running(3).await;
    }
    let (_c2, ch2) = two.server.channel().await;
    ch2.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    publish_confirmed(&ch2, "on-one", "after the restart").await;
    let api1 = one.api();
    let three_in =
        eventually(T, || async { (api1.ok("/api/queues/%2F/on-one").await["messages"] == 3).then_some(()) });
    assert!(three_in.await.is_some(), "{}", api1.ok("/api/queues/%2F/on-one").await);

    // A file that does not load: the reload fails with the reason, as the
    // listeners' does, and the last good certificate stays in force.
    std::fs::write(pki.dir.join("node1.pem"), "not a certificate\n").unwrap();
    let r = one.api().post("/api/node/reload_certificates", json!({})).await;
    assert_eq!(r.code(), 500, "{}", r.body);
    assert!(r.reason().contains("cluster link: no certificate in"), "{}", r.body);
    assert!(r.reason().contains("still using the previous certificate"), "{}", r.body);
    assert!(one.server.wait_for_log("cannot reload TLS certificates: cluster link", T));
    assert_eq!(server_cert_cn(one.cluster_port, connector(&pki, client)).await.unwrap(), "renewed");
    let _ = std::fs::remove_dir_all(&pki.dir);
}
