//! Shared by the cluster tests: a node of a cluster, a real warren-server
//! process on its own loopback ports, and a cluster of three formed with
//! join_cluster as the tutorial forms it.

#![allow(dead_code)]

use std::time::Duration;

use warren_tests::http::{Api, json};
use warren_tests::{Server, eventually};

pub const T: Duration = Duration::from_secs(20);
pub const SECRET: &str = "tutorial-cookie";

pub struct Node {
    pub name: String,
    pub cluster_port: u16,
    pub server: Server,
}

impl Node {
    pub fn start(n: usize, secret: &str) -> Node {
        Node::start_with(n, secret, &[])
    }

    /// A node started with `extra` flags besides the cluster's.
    pub fn start_with(n: usize, secret: &str, extra: &[&str]) -> Node {
        let name = format!("warren-{n}@127.0.0.1");
        // Stats (and the other nodes' queue counts) every 500 ms. The
        // cluster port is picked by the node, and kept for its restarts.
        let mut args = vec![
            "--nodename",
            &name,
            "--cluster-port",
            "0",
            "--cluster-secret",
            secret,
            "--stats-interval-ms",
            "500",
        ];
        args.extend_from_slice(extra);
        let mut server = Server::start_with(&args);
        const MARK: &str = "started cluster listener on ";
        assert!(server.wait_for_log(MARK, T), "{}", server.log_text());
        let log = server.log_text();
        let line = log.lines().find(|l| l.contains(MARK)).unwrap();
        let addr = line.split(MARK).nth(1).unwrap().split_whitespace().next().unwrap();
        let cluster_port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
        server.set_arg("--cluster-port", &cluster_port.to_string());
        Node { name, cluster_port, server }
    }

    pub fn api(&self) -> Api {
        Api::new(&self.server)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.cluster_port)
    }

    /// stop_app, join_cluster `seed`, start_app: the tutorial's sequence.
    pub async fn join(&self, seed: &Node) {
        let api = self.api();
        assert_eq!(api.post("/api/node/stop_app", json!({})).await.code(), 204);
        let r =
            api.post("/api/node/join_cluster", json!({"node": seed.name, "address": seed.address()})).await;
        assert_eq!(r.code(), 204, "{}\n{}", r.body, self.server.log_text());
        assert_eq!(api.post("/api/node/start_app", json!({})).await.code(), 204);
    }

    pub async fn status(&self) -> serde_json::Value {
        self.api().ok("/api/node/cluster_status").await
    }

    /// Waits until this node sees `running` running members and a leader.
    pub async fn until_running(&self, running: usize) -> serde_json::Value {
        eventually(T, || async {
            let st = self.status().await;
            let up = st["running_nodes"].as_array().cloned().unwrap_or_default();
            (up.len() == running && up.contains(&st["leader"])).then_some(st)
        })
        .await
        .unwrap_or_else(|| {
            panic!("{} never saw {running} running nodes: {}", self.name, self.server.log_text())
        })
    }
}

pub async fn cluster_of_three() -> [Node; 3] {
    form([Node::start(1, SECRET), Node::start(2, SECRET), Node::start(3, SECRET)]).await
}

/// The second and third nodes join the first; returns once every node sees
/// all three running.
pub async fn form(nodes: [Node; 3]) -> [Node; 3] {
    nodes[1].join(&nodes[0]).await;
    nodes[2].join(&nodes[0]).await;
    for n in &nodes {
        n.until_running(3).await;
    }
    nodes
}
