//! The node: `status`, `environment`, `cluster_status`, `stop_app`,
//! `start_app`, `stop`, `await_startup`, `ping`, `close_connection`,
//! `reload_certificates`. The node-side actions are the admin-only
//! `/api/node/...` endpoints.

use std::fmt::Write;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::client::seg;
use super::{CtlError, Ctx, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE, R};

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn gb(v: &Value, k: &str) -> String {
    match v.get(k).and_then(Value::as_f64) {
        Some(b) => format!("{:.4} gb", b / 1e9),
        None => "(unknown)".into(),
    }
}

fn strings(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn purpose(protocol: &str) -> &'static str {
    match protocol {
        "amqp" => "AMQP 0-9-1",
        "http" => "HTTP API",
        _ => "",
    }
}

fn node_status(c: &Ctx) -> R<Value> {
    c.client.get("/api/node/status")
}

pub fn status(c: &Ctx) -> R<()> {
    let st = node_status(c)?;
    c.out.info(&format!("Status of node {} ...", s(&st, "node")));
    c.out.object(&st, || {
        let mut t = String::new();
        let _ = writeln!(t, "Runtime\n");
        let _ = writeln!(t, "OS PID: {}", st["pid"]);
        let os = s(&st, "os");
        let _ = writeln!(t, "OS: {}", if os == "linux" { "Linux" } else { os });
        let _ = writeln!(t, "Uptime (seconds): {}", st["uptime_seconds"]);
        let _ = writeln!(t, "Is under maintenance?: false");
        let _ = writeln!(
            t,
            "Warren version: {} (RabbitMQ {} compatible)",
            s(&st, "product_version"),
            s(&st, "rabbitmq_version")
        );
        let _ = writeln!(t, "Node name: {}", s(&st, "node"));
        let _ = writeln!(t, "AMQP application running: {}", st["app_running"]);
        let _ = writeln!(t, "Processors: {}", st["processors"]);
        let list = |t: &mut String, title: &str, items: Vec<String>, none: &str| {
            let _ = writeln!(t, "\n{title}\n");
            if items.is_empty() {
                let _ = writeln!(t, "{none}");
            }
            for i in items {
                let _ = writeln!(t, " * {i}");
            }
        };
        list(&mut t, "Config files", strings(&st, "config_files"), "(none)");
        list(&mut t, "Log file(s)", strings(&st, "log_files"), " * <stdout>");
        let _ = writeln!(t, "\nData directory\n\nNode data directory: {}", s(&st, "data_dir"));
        list(
            &mut t,
            "Alarms",
            strings(&st, "alarms").into_iter().map(|a| format!("resource alarm: {a}")).collect(),
            "(none)",
        );
        let _ = writeln!(t, "\nMemory\n");
        let _ = writeln!(t, "Total memory used: {}", gb(&st, "mem_used"));
        let _ = writeln!(t, "Calculation strategy: rss");
        let _ = writeln!(t, "Memory high watermark: {}", gb(&st, "mem_limit"));
        let _ = writeln!(t, "\nFile Descriptors\n");
        let _ = writeln!(t, "Total: {}, limit: {}", st["fd_used"], st["fd_total"]);
        let _ = writeln!(t, "\nFree Disk Space\n");
        let _ = writeln!(t, "Low free disk space watermark: {}", gb(&st, "disk_free_limit"));
        let _ = writeln!(t, "Free disk space: {}", gb(&st, "disk_free"));
        let _ = writeln!(t, "\nTotals\n");
        let _ = writeln!(t, "Connection count: {}", st["connections"]);
        let _ = writeln!(t, "Queue count: {}", st["queues"]);
        let _ = writeln!(t, "Virtual host count: {}", st["virtual_hosts"]);
        let _ = writeln!(t, "\nListeners\n");
        for l in st["listeners"].as_array().into_iter().flatten() {
            let _ = writeln!(
                t,
                "Interface: {}, port: {}, protocol: {}, purpose: {}",
                s(l, "ip_address"),
                l["port"],
                s(l, "protocol"),
                purpose(s(l, "protocol"))
            );
        }
        t
    });
    Ok(())
}

pub fn environment(c: &Ctx) -> R<()> {
    let node = s(&node_status(c)?, "node").to_owned();
    let env = c.client.get("/api/node/environment")?;
    c.out.info(&format!("Application environment of node {node} ..."));
    c.out.object(&env, || {
        let mut t = String::new();
        for (k, v) in env.as_object().into_iter().flatten() {
            let text = match v {
                Value::Null => "(unset)".to_owned(),
                other => super::output::cell(other),
            };
            let _ = writeln!(t, "{k} = {text}");
        }
        t
    });
    Ok(())
}

pub fn cluster_status(c: &Ctx) -> R<()> {
    let st = node_status(c)?;
    let cs = c.client.get("/api/node/cluster_status")?;
    let node = s(&st, "node").to_owned();
    let members = strings(&cs, "disk_nodes");
    let running = strings(&cs, "running_nodes");
    let leader = cs["leader"].as_str().map(str::to_owned);
    let partitions = cs.get("partitions").cloned().unwrap_or_else(|| json!({}));
    let alarms: Vec<Value> = strings(&st, "alarms")
        .into_iter()
        .map(|a| json!({"node": node, "type": "resource", "resource": a}))
        .collect();
    let listeners: Vec<Value> = st["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            json!({"node": node, "interface": l["ip_address"], "port": l["port"], "protocol": l["protocol"],
                   "purpose": purpose(s(l, "protocol"))})
        })
        .collect();
    let out = json!({
        "cluster_name": st["cluster_name"],
        "disk_nodes": members,
        "ram_nodes": [],
        "running_nodes": running,
        "leader": leader,
        "versions": {node.as_str(): {"warren_version": st["product_version"], "rabbitmq_version": st["rabbitmq_version"]}},
        "cpu_cores": {node.as_str(): st["processors"]},
        "maintenance_status": {node.as_str(): "not under maintenance"},
        "alarms": alarms,
        "partitions": partitions,
        "listeners": {node.as_str(): listeners},
        "feature_flags": [],
    });
    c.out.info(&format!("Cluster status of node {node} ..."));
    c.out.object(&out, || {
        let mut t = String::new();
        let _ = writeln!(t, "Basics\n\nCluster name: {}", s(&st, "cluster_name"));
        if let Some(l) = &leader {
            let _ = writeln!(t, "Metadata leader: {l}");
        }
        let _ = writeln!(t, "\nDisk Nodes\n");
        for n in &members {
            let _ = writeln!(t, "{n}");
        }
        let _ = writeln!(t, "\nRunning Nodes\n");
        for n in &running {
            let _ = writeln!(t, "{n}");
        }
        let _ = writeln!(
            t,
            "\nVersions\n\n{node}: Warren {} (RabbitMQ {} compatible)",
            s(&st, "product_version"),
            s(&st, "rabbitmq_version")
        );
        let _ = writeln!(t, "\nCPU Cores\n\nNode: {node}, available CPU cores: {}", st["processors"]);
        let _ = writeln!(t, "\nMaintenance status\n\nNode: {node}, status: not under maintenance");
        let _ = writeln!(t, "\nAlarms\n");
        if alarms.is_empty() {
            let _ = writeln!(t, "(none)");
        }
        for a in &alarms {
            let _ = writeln!(t, "Resource alarm: {} on node {node}", s(a, "resource"));
        }
        let _ = writeln!(t, "\nNetwork Partitions\n");
        let cut: Vec<(&String, &Value)> = partitions.as_object().into_iter().flatten().collect();
        if cut.is_empty() {
            let _ = writeln!(t, "(none)");
        }
        for (n, unreachable) in cut {
            let names: Vec<&str> =
                unreachable.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let _ = writeln!(t, "Node {n} cannot communicate with {}", names.join(", "));
        }
        if let Some(why) = cs["minority"].as_str() {
            let _ = writeln!(t, "\nWarning: {why}");
        }
        let _ = writeln!(t, "\nListeners\n");
        for l in &listeners {
            let _ = writeln!(
                t,
                "Node: {node}, interface: {}, port: {}, protocol: {}, purpose: {}",
                s(l, "interface"),
                l["port"],
                s(l, "protocol"),
                s(l, "purpose")
            );
        }
        let _ = writeln!(t, "\nFeature flags\n\n(none)");
        t
    });
    Ok(())
}

pub fn join_cluster(c: &Ctx, target: &str, address: Option<&str>, ram: bool) -> R<()> {
    if ram {
        return Err(CtlError::new(EX_USAGE, "Warren has no RAM nodes: every node is a disc node"));
    }
    let node = s(&node_status(c)?, "node").to_owned();
    c.out.info(&format!("Clustering node {node} with {target}"));
    let mut body = json!({ "node": target });
    if let Some(a) = address {
        body["address"] = json!(a);
    }
    c.client.post("/api/node/join_cluster", &body)?;
    Ok(())
}

pub fn forget_cluster_node(c: &Ctx, target: &str) -> R<()> {
    c.out.info(&format!("Removing node {target} from the cluster"));
    c.client.post("/api/node/forget_cluster_node", &json!({ "node": target }))?;
    Ok(())
}

pub fn stop_app(c: &Ctx) -> R<()> {
    let node = s(&node_status(c)?, "node").to_owned();
    c.out.info(&format!("Stopping the Warren application on node {node} ..."));
    c.client.post("/api/node/stop_app", &json!({}))?;
    Ok(())
}

pub fn start_app(c: &Ctx) -> R<()> {
    let node = s(&node_status(c)?, "node").to_owned();
    c.out.info(&format!("Starting node {node} ..."));
    c.client.post("/api/node/start_app", &json!({}))?;
    Ok(())
}

/// Has the node read its TLS certificates again; a failure (a bad file)
/// is the node's message, and the old certificates stay in use.
pub fn reload_certificates(c: &Ctx) -> R<()> {
    let node = s(&node_status(c)?, "node").to_owned();
    c.out.info(&format!("Reloading TLS certificates on node {node} ..."));
    let answer: Value = c.client.post_read("/api/node/reload_certificates", &json!({}))?;
    let reloaded: Vec<&str> = answer["reloaded"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match reloaded.is_empty() {
        true => c.out.info("No TLS listener to reload"),
        false => c.out.info(&format!("Reloaded the TLS certificates of: {}", reloaded.join(", "))),
    }
    Ok(())
}

/// Asks the node to exit, then waits until it no longer answers.
pub fn stop(c: &Ctx) -> R<()> {
    let node = s(&node_status(c)?, "node").to_owned();
    c.out.info(&format!("Stopping and halting node {node} ..."));
    c.client.post("/api/node/stop", &json!({}))?;
    let deadline = Instant::now() + Duration::from_secs(c.timeout.unwrap_or(60));
    loop {
        match c.client.reach("/api/whoami") {
            Err(e) if e.code == EX_UNAVAILABLE => return Ok(()),
            _ if Instant::now() > deadline => {
                return Err(CtlError::new(EX_TEMPFAIL, format!("node {node} did not stop in time")));
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Polls until the node answers and its AMQP application runs.
pub fn await_startup(c: &Ctx) -> R<()> {
    let secs = c.timeout.unwrap_or(300);
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match c.client.try_get::<Value>("/api/node/status") {
            Ok(Ok(st)) if st["app_running"] == json!(true) => return Ok(()),
            Ok(Err(r)) => return Err(c.client.refused(r)),
            Ok(Ok(_)) => {}
            Err(e) if e.code == EX_UNAVAILABLE || e.code == EX_TEMPFAIL => {}
            Err(e) => return Err(e),
        }
        if Instant::now() > deadline {
            return Err(CtlError::new(
                EX_TEMPFAIL,
                format!("timed out after {secs} s waiting for node '{}' to start", c.client.node),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Any answer from the management listener means the node is up.
pub fn ping(c: &Ctx) -> R<()> {
    c.out.info(&format!(
        "Will ping node {}. This only checks that the node is up and answering.",
        c.client.node
    ));
    c.client.reach("/api/whoami")?;
    c.out.done("Ping succeeded");
    Ok(())
}

pub fn close_connection(c: &Ctx, name: &str, explanation: &str) -> R<()> {
    c.out.info(&format!("Closing connection {name}, reason: {explanation}..."));
    match c.client.try_delete(&format!("/api/connections/{}", seg(name)), Some(explanation))? {
        Ok(_) => Ok(()),
        Err(r) if r.status == reqwest::StatusCode::NOT_FOUND => {
            Err(CtlError::data(format!("connection '{name}' does not exist")))
        }
        Err(r) => Err(c.client.refused(r)),
    }
}
