//! The command-line tools over TLS: `warrenctl -n https://...` against the
//! management API's HTTPS listener and `warren-perf --uri amqps://...`
//! against the AMQPS listener, both trusting the test CA given with
//! `--cacert` (certificates made at test time, rcgen), presenting a client
//! certificate with `--cert`/`--key` where the listener asks for one, and
//! failing with a one-line reason, promptly, when the CA is not given.
//! Plain `http://` and `amqp://` keep working beside them.

mod ctl_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ctl_common::{Run, run_raw, table};
use serde_json::Value;
use warren_tests::Server;
use warren_tests::lapin::options::QueueDeclareOptions;
use warren_tests::lapin::types::FieldTable;
use warren_tests::pki::{Pki, free_port, make_pki, write_other_ca};

/// A server with an AMQPS listener (client certificates verified when
/// given) and an HTTPS management listener, plus `extra` warren.conf lines;
/// returns it with the two TLS ports.
fn start(pki: &Pki, extra: &str) -> (Server, u16, u16) {
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
             ssl_options.verify = verify_peer\n\
             ssl_options.fail_if_no_peer_cert = false\n\
             management.ssl.port = {https}\n\
             management.ssl.ip = 127.0.0.1\n\
             management.ssl.cacertfile = {d}/ca.pem\n\
             management.ssl.certfile = {d}/server.pem\n\
             management.ssl.keyfile = {d}/server_key.pem\n\
             {extra}"
        ),
    )
    .unwrap();
    let server = Server::start_with(&["--config", conf.to_str().unwrap()]);
    for listener in ["AMQP 0-9-1/TLS listener", "HTTPS listener"] {
        assert!(server.wait_for_log(listener, Duration::from_secs(20)), "{}", server.log_text());
    }
    (server, amqps, https)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// warrenctl with `args`, timed: a TLS failure must not wait for a timeout.
fn ctl_timed(args: &[&str]) -> (Run, Duration) {
    let t = Instant::now();
    let run = run_raw(args, None);
    (run, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warrenctl_over_https() {
    let pki = make_pki();
    let (server, _, https) = start(&pki, "");
    let ca = pki.dir.join("ca.pem");
    let node = format!("https://localhost:{https}");
    let ctl = |extra: &[&str]| {
        let mut args = vec!["-n", node.as_str(), "-t", "20"];
        args.extend_from_slice(extra);
        ctl_timed(&args)
    };

    // A queue declared over plain AMQP shows in list_queues over HTTPS.
    let (_conn, ch) = server.channel().await;
    let (q, opts) = ("tls-tools-q".into(), QueueDeclareOptions::default());
    ch.queue_declare(q, opts, FieldTable::default()).await.unwrap();
    let plain = format!("127.0.0.1:{}", server.http_port);

    let (run, _) = ctl(&["--cacert", path(&ca), "list_queues", "name", "messages"]);
    let rows = table(run.ok());
    assert!(rows.iter().any(|r| r == &["tls-tools-q", "0"]), "{run:?}");
    let (run, _) = ctl(&["--cacert", path(&ca), "status"]);
    assert!(run.ok().contains("Uptime (seconds)"), "{run:?}");
    // The certificate names 127.0.0.1 too; and the flag may follow the verb.
    let by_ip = format!("https://127.0.0.1:{https}");
    let run = run_raw(&["ping", "-n", &by_ip, "--cacert", path(&ca)], None);
    run.ok();
    // The CA from the environment and from the config file.
    let conf = pki.dir.join("warrenctl.conf");
    std::fs::write(&conf, format!("node = {node}\ncacert = {}\n", ca.display())).unwrap();
    let out = Command::new(ctl_common::ctl_bin())
        .args(["list_queues", "name"])
        .env("WARRENCTL_CONFIG_FILE", &conf)
        .env_remove("WARRENCTL_NODE")
        .env_remove("WARRENCTL_CACERT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("tls-tools-q"), "{out:?}");

    // No CA: the system's CAs do not know the test CA. A wrong CA: the
    // same. Both fail at once with the reason and what to do, exit 69.
    let other = pki.dir.join("other_ca.pem");
    write_other_ca(&pki.dir);
    for extra in [vec![], vec!["--cacert", path(&other)]] {
        let mut args = extra.clone();
        args.push("list_queues");
        let (run, took) = ctl(&args);
        run.fails(69, "TLS handshake with node 'https://localhost:");
        assert!(run.stderr.contains("invalid peer certificate"), "{run:?}");
        assert!(run.stderr.contains("--cacert"), "{run:?}");
        assert!(took < Duration::from_secs(10), "took {took:?}: {run:?}");
    }
    // --insecure accepts any certificate.
    let (run, _) = ctl(&["--insecure", "list_queues"]);
    run.ok();
    // A --cacert that cannot be read, or holds no certificate: 78.
    let (run, _) = ctl(&["--cacert", "/nonexistent/ca.pem", "status"]);
    run.fails(78, "cannot read --cacert /nonexistent/ca.pem");
    let (run, _) = ctl(&["--cacert", path(&pki.dir.join("warren.conf")), "status"]);
    run.fails(78, "no PEM certificate");
    // Plain HTTP on the HTTPS port does not pass for an answer; HTTPS on
    // the plain port fails as TLS.
    let (run, took) = ctl_timed(&["-n", &format!("http://127.0.0.1:{https}"), "-t", "5", "status"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(took < Duration::from_secs(20), "took {took:?}: {run:?}");
    let (run, _) = ctl_timed(&["-n", &format!("https://{plain}"), "--cacert", path(&ca), "status"]);
    run.fails(69, "TLS handshake");
    // The plain listener, as before.
    run_raw(&["-n", &plain, "list_queues"], None).ok();
    let _ = std::fs::remove_dir_all(&pki.dir);
}

#[test]
fn warrenctl_with_a_client_certificate() {
    let pki = make_pki();
    let extra = "management.ssl.verify = verify_peer\nmanagement.ssl.fail_if_no_peer_cert = true\n";
    let (_server, _, https) = start(&pki, extra);
    let ca = pki.dir.join("ca.pem");
    let (cert, key) = pki.write_client_pem("ops");
    let node = format!("https://localhost:{https}");
    let base = ["-n", node.as_str(), "--cacert", path(&ca), "-t", "20"];

    let mut args = base.to_vec();
    args.extend(["--cert", path(&cert), "--key", path(&key), "list_users"]);
    assert!(run_raw(&args, None).ok().contains("guest"));

    // Without a certificate the listener refuses the handshake.
    let mut args = base.to_vec();
    args.push("list_users");
    let (run, took) = ctl_timed(&args);
    run.fails(69, "the node asks for a client certificate: pass --cert FILE --key FILE");
    assert!(took < Duration::from_secs(10), "took {took:?}: {run:?}");
    // --cert alone is a usage error.
    let mut args = base.to_vec();
    args.extend(["--cert", path(&cert), "list_users"]);
    run_raw(&args, None).fails(64, "--cert and --key go together");
    let _ = std::fs::remove_dir_all(&pki.dir);
}

/// `warren-perf` sits next to `warren-server` (both built by `cargo build`).
fn perf_bin() -> PathBuf {
    let bin = warren_tests::server_bin().with_file_name("warren-perf");
    assert!(
        bin.exists(),
        "{} does not exist: build it first (cargo build --workspace --bins)",
        bin.display()
    );
    bin
}

/// Runs warren-perf; its exit code, the JSON summary (if any) and stderr.
fn perf(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(perf_bin()).args(args).output().expect("run warren-perf");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), summary, stderr)
}

/// A small backlog run (300 messages, with confirms) that must come back
/// complete: everything confirmed, queued and consumed, no error.
fn backlog(uri: &str, queue: &str, tls: &[&str]) {
    let mut args = vec!["backlog", "--uri", uri, "-u", queue, "--count", "300", "-c", "100", "--json"];
    args.extend_from_slice(tls);
    let (code, s, stderr) = perf(&args);
    assert_eq!(code, 0, "{s}\n{stderr}");
    for field in ["published", "confirmed", "queued", "consumed"] {
        assert_eq!(s[field], 300, "{field}: {s}\n{stderr}");
    }
    assert_eq!(s["errors"], serde_json::json!([]), "{s}");
}

#[test]
fn warren_perf_over_amqps() {
    let pki = make_pki();
    let (server, amqps, _) = start(
        &pki,
        "auth_mechanisms.1 = PLAIN\nauth_mechanisms.2 = EXTERNAL\nssl_cert_login_from = common_name\n",
    );
    let ca = pki.dir.join("ca.pem");
    let uri = format!("amqps://guest:guest@localhost:{amqps}/%2f");
    backlog(&uri, "perf-tls", &["--cacert", path(&ca)]);

    // Throughput for a second at a bounded rate, producer and consumer
    // each on its own TLS connection.
    let (code, s, stderr) = perf(&[
        "throughput",
        "--uri",
        &uri,
        "--cacert",
        path(&ca),
        "-u",
        "perf-tls-rate",
        "-z",
        "1",
        "-r",
        "300",
        "--json",
    ]);
    assert_eq!(code, 0, "{s}\n{stderr}");
    let published = s["checks"]["published_total"].as_u64().unwrap();
    assert!(published > 0, "{s}");
    assert_eq!(s["checks"]["consumed_total"], published, "{s}");

    // EXTERNAL: the client certificate (CN=app) is the login.
    let ctl = |args: &[&str]| {
        let node = format!("127.0.0.1:{}", server.http_port);
        let mut all = vec!["-n", node.as_str()];
        all.extend_from_slice(args);
        run_raw(&all, None).ok().to_owned()
    };
    ctl(&["add_user", "app", "x"]);
    ctl(&["set_permissions", "app", ".*", ".*", ".*"]);
    let (cert, key) = pki.write_client_pem("app");
    let external = format!("amqps://localhost:{amqps}/%2f?auth_mechanism=external");
    backlog(&external, "perf-external", &["--cacert", path(&ca), "--cert", path(&cert), "--key", path(&key)]);
    // Without the certificate the broker offers no EXTERNAL: refused.
    let (code, _, stderr) = perf(&["queue-churn", "--uri", &external, "--cacert", path(&ca), "--count", "1"]);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("503"), "{stderr}");

    // Without the CA: the handshake fails at once, with the reason.
    let t = Instant::now();
    let (code, _, stderr) = perf(&["queue-churn", "--uri", &uri, "--count", "1"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("TLS handshake with localhost:"), "{stderr}");
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");
    assert!(stderr.contains("with --cacert FILE"), "{stderr}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // TLS options with a plain URI are a mistake, said so.
    let plain = format!("amqp://guest:guest@127.0.0.1:{}/%2f", server.amqp_port);
    let (code, _, stderr) = perf(&["queue-churn", "--uri", &plain, "--cacert", path(&ca)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("are for amqps:// URIs"), "{stderr}");
    // Plain AMQP, as before.
    backlog(&plain, "perf-plain", &[]);
    let _ = std::fs::remove_dir_all(&pki.dir);
}
