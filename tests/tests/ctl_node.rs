//! warrenctl's node verbs: status, environment, cluster_status, ping,
//! await_startup, stop_app and start_app (the AMQP side really stops while
//! HTTP keeps answering), stop, definitions export and import, and the
//! errors for an unreachable node and a configuration file with a typo.

mod ctl_common;

use std::time::Duration;

use ctl_common::{ctl, ctl_stdin, run_raw};
use lapin::{Connection, ConnectionProperties};
use serde_json::{Value, json};
use warren_tests::Server;

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "warrenctl-test-{}-{}",
        std::process::id(),
        warren_tests::unique("d")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// GET as guest with the async client, on a runtime of its own.
fn http_get(s: &Server, path: &str) -> (u16, Value) {
    let url = format!("{}{path}", s.http_url());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let r = reqwest::Client::new().get(&url).basic_auth("guest", Some("guest")).send().await.unwrap();
            let code = r.status().as_u16();
            let text = r.text().await.unwrap();
            (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
        })
    })
    .join()
    .unwrap()
}

#[test]
fn status_environment_cluster_status_and_ping() {
    let conf = temp("warren.conf");
    std::fs::write(&conf, "# tutorial settings\nheartbeat = 30\ncluster_name = tutorial\n").unwrap();
    let s = Server::start_with(&["--config", conf.to_str().unwrap()]);

    let out = ctl(&s, &["status"]);
    let text = out.ok();
    assert!(text.starts_with("Status of node warren@"), "{text}");
    for section in [
        "Runtime",
        "Config files",
        "Data directory",
        "Alarms",
        "Memory",
        "File Descriptors",
        "Free Disk Space",
        "Totals",
        "Listeners",
    ] {
        assert!(text.lines().any(|l| l == section), "no section {section}:\n{text}");
    }
    assert!(text.contains(&format!(" * {}", conf.display())), "{text}");
    assert!(text.contains(&format!("Interface: 127.0.0.1, port: {}, protocol: amqp", s.amqp_port)), "{text}");
    assert!(text.contains("AMQP application running: true"), "{text}");
    let st = ctl(&s, &["--formatter", "json", "status"]).json();
    assert_eq!(st["app_running"], true);
    assert_eq!(st["product_name"], "Warren");
    assert_eq!(st["config_files"], json!([conf.display().to_string()]));
    assert_eq!(st["cluster_name"], "tutorial");
    assert!(st["pid"].as_u64().unwrap() > 0);

    let env = ctl(&s, &["environment"]);
    assert!(env.ok().lines().any(|l| l == "heartbeat = 30"), "{env:?}");
    assert!(env.ok().lines().any(|l| l == "loopback_users = [guest]"), "{env:?}");
    let env = ctl(&s, &["--formatter", "json", "environment"]).json();
    assert_eq!((env["heartbeat"].clone(), env["cluster_name"].clone()), (json!(30), json!("tutorial")));
    assert_eq!(env["default_user"], "guest");

    let cs = ctl(&s, &["cluster_status"]);
    let text = cs.ok();
    for section in [
        "Basics",
        "Disk Nodes",
        "Running Nodes",
        "Versions",
        "Maintenance status",
        "Alarms",
        "Network Partitions",
        "Listeners",
        "Feature flags",
    ] {
        assert!(text.lines().any(|l| l == section), "no section {section}:\n{text}");
    }
    assert!(text.contains("Cluster name: tutorial"), "{text}");
    let cs = ctl(&s, &["--formatter", "json", "cluster_status"]).json();
    let node = st["node"].as_str().unwrap();
    assert_eq!(cs["running_nodes"], json!([node]));
    assert_eq!(cs["disk_nodes"], json!([node]));
    assert_eq!(cs["cluster_name"], "tutorial");

    assert!(ctl(&s, &["ping"]).ok().contains("Ping succeeded"));
    assert_eq!(ctl(&s, &["-q", "ping"]).ok().trim(), "Ping succeeded");
    ctl(&s, &["await_startup"]).ok();

    // A non-admin is refused the node endpoints.
    ctl(&s, &["add_user", "mon", "pw"]).ok();
    ctl(&s, &["set_user_tags", "mon", "monitoring"]).ok();
    ctl(&s, &["--username", "mon", "--password", "pw", "status"]).fails(77, "Not administrator user");
    ctl(&s, &["--username", "mon", "--password", "pw", "stop_app"]).fails(77, "Not administrator user");
}

#[test]
fn unreachable_node_bad_credentials_and_timeouts() {
    let node = format!("127.0.0.1:{}", dead_port());
    for verb in [&["ping"][..], &["list_queues"], &["status"], &["add_user", "a", "b"]] {
        let mut args = vec!["-n", node.as_str()];
        args.extend_from_slice(verb);
        run_raw(&args, None).fails(69, &format!("unable to perform an operation on node '{node}'"));
    }
    run_raw(&["-n", &node, "-t", "1", "await_startup"], None).fails(75, "timed out");
    let s = Server::start();
    ctl(&s, &["--password", "nope", "list_users"]).fails(77, "authentication as user 'guest' failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_app_closes_amqp_and_start_app_reopens_it() {
    let mut s = Server::start();
    let conn = s.connect().await;
    let out = ctl(&s, &["stop_app"]);
    assert!(out.ok().starts_with("Stopping the Warren application on node warren@"), "{out:?}");
    // The client was disconnected and the port is closed; HTTP still answers.
    for _ in 0..200 {
        if !conn.status().connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!conn.status().connected(), "the AMQP client is still connected");
    assert!(std::net::TcpStream::connect(s.addr()).is_err(), "the AMQP port still accepts");
    assert!(Connection::connect(&s.uri(), ConnectionProperties::default()).await.is_err());
    let st = ctl(&s, &["--formatter", "json", "status"]).json();
    assert_eq!(st["app_running"], false);
    assert!(st["listeners"].as_array().unwrap().iter().all(|l| l["protocol"] != "amqp"), "{st}");
    let (_, overview) = http_get(&s, "/api/overview");
    assert!(overview["listeners"].as_array().unwrap().iter().all(|l| l["protocol"] != "amqp"), "{overview}");
    assert_eq!(http_get(&s, "/api/health/checks/protocol-listener/amqp").0, 503);
    assert_eq!(http_get(&s, &format!("/api/health/checks/port-listener/{}", s.amqp_port)).0, 503);
    assert_eq!(http_get(&s, "/api/health/checks/ready-to-serve-clients").0, 503);
    assert_eq!(http_get(&s, "/api/nodes").1[0]["running"], false);
    assert_eq!(ctl(&s, &["--formatter", "json", "cluster_status"]).json()["running_nodes"], json!([]));
    // ping checks the node, await_startup the application.
    ctl(&s, &["ping"]).ok();
    ctl(&s, &["-t", "1", "await_startup"]).fails(75, "timed out");
    ctl(&s, &["stop_app"]).ok(); // stopping a stopped app is fine

    let out = ctl(&s, &["start_app"]);
    assert!(out.ok().starts_with("Starting node warren@"), "{out:?}");
    ctl(&s, &["await_startup"]).ok();
    let conn = s.connect().await;
    assert!(conn.status().connected());
    let (_, overview) = http_get(&s, "/api/overview");
    assert!(
        overview["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["protocol"] == "amqp" && l["port"] == s.amqp_port),
        "{overview}"
    );
    assert_eq!(http_get(&s, "/api/health/checks/ready-to-serve-clients").0, 200);
    assert_eq!(http_get(&s, "/api/nodes").1[0]["running"], true);

    // stop: the process exits.
    let out = ctl(&s, &["stop"]);
    assert!(out.ok().starts_with("Stopping and halting node warren@"), "{out:?}");
    let mut exited = false;
    for _ in 0..400 {
        if !s.is_running() {
            exited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(exited, "warren-server still runs after stop");
    ctl(&s, &["ping"]).fails(69, "unable to perform an operation");
}

#[test]
fn definitions_export_and_import() {
    let s = Server::start();
    ctl(&s, &["add_vhost", "shop"]).ok();
    ctl(&s, &["add_user", "clerk", "pw"]).ok();
    ctl(&s, &["set_permissions", "-p", "shop", "clerk", ".*", ".*", ".*"]).ok();
    ctl(&s, &["set_policy", "-p", "shop", "ttl", ".*", r#"{"message-ttl": 60000}"#]).ok();
    let file = temp("defs.json");
    let out = ctl(&s, &["export_definitions", file.to_str().unwrap()]);
    assert!(out.ok().contains("Exporting definitions in JSON to a file at"), "{out:?}");
    let defs: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(defs["vhosts"].as_array().unwrap().iter().any(|v| v["name"] == "shop"), "{defs}");
    assert!(defs["users"].as_array().unwrap().iter().any(|u| u["name"] == "clerk"), "{defs}");
    let to_stdout = ctl(&s, &["export_definitions", "-"]).json();
    assert_eq!(to_stdout["vhosts"], defs["vhosts"]);

    // Into a fresh node, from the file and from standard input.
    let t = Server::start();
    ctl(&t, &["import_definitions", file.to_str().unwrap()]).ok();
    let vs = ctl(&t, &["--formatter", "json", "list_vhosts"]).json();
    assert!(vs.as_array().unwrap().contains(&json!({"name": "shop"})), "{vs}");
    let ps = ctl(&t, &["--formatter", "json", "list_policies", "-p", "shop"]).json();
    assert_eq!(ps[0]["name"], "ttl");
    ctl(&t, &["authenticate_user", "clerk", "pw"]).ok();
    ctl(&t, &["delete_vhost", "shop"]).ok();
    ctl_stdin(&t, &["import_definitions", "-"], &std::fs::read(&file).unwrap()).ok();
    assert!(
        ctl(&t, &["--formatter", "json", "list_vhosts"])
            .json()
            .as_array()
            .unwrap()
            .contains(&json!({"name": "shop"}))
    );

    ctl_stdin(&t, &["import_definitions", "-"], b"{not json").fails(65, "not valid JSON");
    ctl(&t, &["import_definitions", "/nonexistent/defs.json"])
        .fails(65, "cannot read /nonexistent/defs.json");
    let bad = temp("bad.json");
    std::fs::write(
        &bad,
        r#"{"policies": [{"vhost": "/", "name": "p", "pattern": ".*", "definition": {"max-lenght": 1}}]}"#,
    )
    .unwrap();
    ctl(&t, &["import_definitions", bad.to_str().unwrap()]).fails(65, "max-lenght");
}

#[test]
fn a_configuration_file_with_a_typo_names_the_line() {
    let conf = temp("typo.conf");
    std::fs::write(&conf, "# warren.conf\nheartbeat = 30\nloopbak_users.guest = false\n").unwrap();
    let data = temp("data");
    let out = std::process::Command::new(warren_tests::server_bin())
        .args(["--amqp-port", "0", "--http-port", "0", "--bind", "127.0.0.1", "--config"])
        .arg(&conf)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().find(|l| l.starts_with("Error: ")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains(&format!("{}:3: unknown key 'loopbak_users.guest'", conf.display())), "{line}");
    assert!(line.contains("did you mean 'loopback_users.guest'"), "{line}");

    std::fs::write(&conf, "heartbeat = often\n").unwrap();
    let out =
        std::process::Command::new(warren_tests::server_bin()).arg("--config").arg(&conf).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(":1: 'heartbeat' = 'often': expected a whole number"), "{stderr}");
}
