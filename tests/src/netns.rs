//! A fault-injection harness: a cluster of real warren-server processes,
//! each in its own network namespace, that a test can partition, heal,
//! kill, restart, pause and resume while clients keep talking to it.
//!
//! The network of a cluster:
//!
//! ```text
//!   test process (root namespace) ── wfbrX (bridge, 10.250.X.1/24)
//!                                      ├─ wfXh0 ═ veth ═ eth0 in netns wfXn0: node 1, 10.250.X.11
//!                                      ├─ wfXh1 ═ veth ═ eth0 in netns wfXn1: node 2, 10.250.X.12
//!                                      └─ …
//! ```
//!
//! Only interfaces the harness creates are touched: a bridge and veth
//! pairs in the root namespace, on a private /24 (`10.250.X.0/24`) that no
//! route of the host already covers, claimed atomically by creating the
//! bridge `wfbrX` (another test, in this process or another, takes the
//! next X), so tests run in parallel. Each node listens on its own address
//! with the fixed ports 5672 (AMQP), 15672 (HTTP) and 25672 (cluster), and
//! the test reaches every node through the bridge.
//!
//! Partitions cut traffic between nodes only (clients still reach every
//! node, as Jepsen's clients do): inside each node's namespace a blackhole
//! route for every peer it must not reach, so both directions are dropped
//! (`iptables` and `nft` are not installed on the project's machines;
//! iproute2 is). `disconnect` takes a node's link down altogether, clients
//! included. Everything is removed on drop, panics included; a subnet left
//! behind by a test process that was killed is reclaimed by the next test
//! that finds its owner dead.
//!
//! Needs root and `ip netns`: [`Cluster::start`] returns `Err` with the
//! reason when they are missing, and [`skip_reason`] says whether to skip.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server_bin;

pub const AMQP_PORT: u16 = 5672;
pub const HTTP_PORT: u16 = 15672;
pub const CLUSTER_PORT: u16 = 25672;
const SECRET: &str = "faults-cookie";
/// Where a process records the subnets it claimed (one file per X with its pid).
const CLAIMS: &str = "/run/warren-faults";

/// Runs `ip` with `args`; its stderr on failure.
pub fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Why a namespace test cannot run here (not root, no `ip netns`), or
/// None when it can. `WARREN_REQUIRE_NETNS=1` makes the tests fail
/// instead of skipping.
pub fn skip_reason() -> Option<String> {
    static PROBED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let reason = PROBED.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Some("not root: network namespaces need root".to_owned());
        }
        let probe = format!("wfprobe{}", std::process::id());
        match ip(&["netns", "add", &probe]) {
            Ok(_) => {
                let _ = ip(&["netns", "del", &probe]);
                None
            }
            Err(e) => Some(format!("`ip netns add` fails: {e}")),
        }
    });
    if let Some(r) = &reason
        && std::env::var("WARREN_REQUIRE_NETNS").is_ok_and(|v| v == "1")
    {
        panic!("WARREN_REQUIRE_NETNS=1 but {r}");
    }
    reason.clone()
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// One warren-server process in its namespace.
pub struct NsNode {
    /// 0-based position in the cluster.
    pub index: usize,
    /// `warren-<index+1>@<ip>`.
    pub name: String,
    /// The network namespace's name.
    pub ns: String,
    /// The host end of its veth pair (on the bridge).
    pub veth: String,
    pub ip: String,
    pub data_dir: PathBuf,
    child: Option<Child>,
    paused: bool,
    log: Arc<Mutex<Vec<String>>>,
}

impl NsNode {
    pub fn uri(&self) -> String {
        format!("amqp://guest:guest@{}:{AMQP_PORT}/%2f", self.ip)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}:{HTTP_PORT}", self.ip)
    }

    pub fn cluster_address(&self) -> String {
        format!("{}:{CLUSTER_PORT}", self.ip)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The last `n` lines of its log (across restarts).
    pub fn tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap();
        log[log.len().saturating_sub(n)..].join("\n")
    }

    fn log_len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Starts the process (`ip netns exec` execs the server, so the
    /// child's pid is the server's).
    fn spawn(&mut self) {
        let (amqp, http, cluster) = (AMQP_PORT.to_string(), HTTP_PORT.to_string(), CLUSTER_PORT.to_string());
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns])
            .arg(server_bin())
            .args(["--bind", &self.ip, "--amqp-port", &amqp, "--http-port", &http])
            .args(["--cluster-port", &cluster, "--cluster-secret", SECRET, "--nodename", &self.name])
            .args(["--stats-interval-ms", "500"])
            .arg("--config")
            .arg(self.data_dir.with_extension("conf"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start warren-server in its namespace");
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = self.log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        self.child = Some(child);
        self.paused = false;
    }

    /// Waits until the log lines written since `from` show both listeners.
    async fn until_listening(&mut self, from: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let log = self.log.lock().unwrap();
                let new = &log[from.min(log.len())..];
                let amqp = new.iter().any(|l| l.contains("started AMQP 0-9-1 listener on "));
                let http = new.iter().any(|l| l.contains("started HTTP listener on "));
                if amqp && http {
                    return;
                }
            }
            if !self.is_running() || Instant::now() > deadline {
                panic!("{} did not start; log:\n{}", self.name, self.tail(80));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(pid) = self.pid() {
            // SAFETY: a signal to our own child.
            unsafe { libc::kill(pid as libc::pid_t, sig) };
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.paused = false;
    }
}

/// A cluster of warren-server nodes, each in its own network namespace.
pub struct Cluster {
    /// X of the subnet 10.250.X.0/24.
    pub subnet: u8,
    pub bridge: String,
    pub nodes: Vec<NsNode>,
    /// Node pairs (i < j) that cannot reach each other now.
    cuts: Mutex<BTreeSet<(usize, usize)>>,
    http: reqwest::Client,
    started: Instant,
}

/// Removes what a (possibly dead) owner of subnet `x` left behind.
fn clean_subnet(x: u8) {
    if let Ok(list) = ip(&["netns", "list"]) {
        let prefix = format!("wf{x}n");
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if ns.strip_prefix(&prefix).is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit())) {
                let _ = ip(&["netns", "del", ns]);
            }
        }
    }
    let _ = ip(&["link", "del", &format!("wfbr{x}")]);
    for i in 0..10 {
        let _ = ip(&["link", "del", &format!("wf{x}h{i}")]);
    }
    let _ = std::fs::remove_file(format!("{CLAIMS}/{x}"));
}

/// Claims a free 10.250.X.0/24: creates the bridge `wfbrX` (which fails
/// when another test holds X) and records this process as its owner.
fn claim_subnet() -> Result<u8, String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static TURN: AtomicU32 = AtomicU32::new(0);
    std::fs::create_dir_all(CLAIMS).map_err(|e| format!("cannot create {CLAIMS}: {e}"))?;
    let routes = ip(&["-o", "-4", "route", "show", "table", "all"])?;
    let start = std::process::id().wrapping_mul(31).wrapping_add(TURN.fetch_add(1, Ordering::Relaxed) * 7);
    for k in 0..254u32 {
        let x = ((start + k) % 254 + 1) as u8;
        let bridge = format!("wfbr{x}");
        let claim = format!("{CLAIMS}/{x}");
        // A subnet some route of the host already uses is not ours to take
        // (unless it is our own bridge's, left by a dead owner).
        let net = format!("10.250.{x}.");
        if routes.lines().any(|l| l.contains(&net) && !l.contains(&bridge)) {
            continue;
        }
        match ip(&["link", "add", "name", &bridge, "type", "bridge", "forward_delay", "0"]) {
            Ok(_) => {
                std::fs::write(&claim, std::process::id().to_string())
                    .map_err(|e| format!("cannot write {claim}: {e}"))?;
                return Ok(x);
            }
            Err(e) if e.contains("exists") => {
                let owner = std::fs::read_to_string(&claim).ok().and_then(|s| s.trim().parse::<i32>().ok());
                let stale = match owner {
                    Some(pid) => !pid_alive(pid),
                    // No claim file: the bridge is being made right now, or
                    // its owner died between the two steps; leave it.
                    None => false,
                };
                if stale {
                    clean_subnet(x);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err("no free subnet 10.250.X.0/24".into())
}

impl Cluster {
    /// Starts `n` nodes (3 or 5), each in its own namespace, and forms a
    /// cluster of them (the others join node 1). Err when the network
    /// cannot be built (not root, no `ip netns`).
    pub async fn start(n: usize) -> Result<Cluster, String> {
        assert!((1..=9).contains(&n), "1 to 9 nodes");
        let x = claim_subnet()?;
        let mut cluster = Cluster {
            subnet: x,
            bridge: format!("wfbr{x}"),
            nodes: Vec::new(),
            cuts: Mutex::default(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .connect_timeout(Duration::from_secs(2))
                .build()
                .expect("an HTTP client"),
            started: Instant::now(),
        };
        // From here on Drop cleans up whatever was made.
        cluster.build_network(n)?;
        for i in 0..n {
            cluster.nodes[i].spawn();
        }
        for node in cluster.nodes.iter_mut() {
            node.until_listening(0).await;
        }
        for i in 1..n {
            cluster.join(i, 0).await;
        }
        for i in 0..n {
            cluster.until_running(i, n).await;
        }
        eprintln!(
            "netns cluster of {n} on 10.250.{x}.0/24 formed in {:?}: {}",
            cluster.started.elapsed(),
            cluster.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")
        );
        Ok(cluster)
    }

    fn build_network(&mut self, n: usize) -> Result<(), String> {
        let x = self.subnet;
        let br = self.bridge.clone();
        ip(&["addr", "add", &format!("10.250.{x}.1/24"), "dev", &br])?;
        ip(&["link", "set", &br, "up"])?;
        for i in 0..n {
            let ns = format!("wf{x}n{i}");
            let veth = format!("wf{x}h{i}");
            let addr = format!("10.250.{x}.{}", 11 + i);
            // A veth end a dead run left behind (namespace teardown in the
            // kernel is lazy) would make the next `link add` fail.
            let _ = ip(&["link", "del", &veth]);
            ip(&["netns", "add", &ns])?;
            let data_dir = std::env::temp_dir().join(format!("warren-faults-{}-{x}-{i}", std::process::id()));
            let _ = std::fs::remove_dir_all(&data_dir);
            std::fs::create_dir_all(&data_dir).map_err(|e| e.to_string())?;
            // The test reaches the nodes from the bridge's address, as guest.
            std::fs::write(data_dir.with_extension("conf"), "loopback_users.guest = false\n")
                .map_err(|e| e.to_string())?;
            self.nodes.push(NsNode {
                index: i,
                name: format!("warren-{}@{addr}", i + 1),
                ns: ns.clone(),
                veth: veth.clone(),
                ip: addr.clone(),
                data_dir,
                child: None,
                paused: false,
                log: Arc::default(),
            });
            ip(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
            ip(&["link", "set", &veth, "master", &br, "up"])?;
            ip(&["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every node's AMQP URI, in order.
    pub fn uris(&self) -> Vec<String> {
        self.nodes.iter().map(NsNode::uri).collect()
    }

    /// The index of the node named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// GET `path` on node `i` as guest: the body when it answers 200.
    pub async fn get(&self, i: usize, path: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.nodes[i].http_url()))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json().await.ok()
    }

    async fn post(&self, i: usize, path: &str, body: Value) -> Result<(), String> {
        let r = self
            .http
            .post(format!("{}{path}", self.nodes[i].http_url()))
            .basic_auth("guest", Some("guest"))
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let code = r.status();
        let text = r.text().await.unwrap_or_default();
        if code.is_success() { Ok(()) } else { Err(format!("{code}: {text}")) }
    }

    /// stop_app, join_cluster `seed`, start_app on node `i`.
    async fn join(&self, i: usize, seed: usize) {
        let seed = &self.nodes[seed];
        let join = json!({"node": seed.name, "address": seed.cluster_address()});
        for (path, body) in [
            ("/api/node/stop_app", json!({})),
            ("/api/node/join_cluster", join),
            ("/api/node/start_app", json!({})),
        ] {
            if let Err(e) = self.post(i, path, body).await {
                panic!("{path} on {}: {e}\n{}", self.nodes[i].name, self.nodes[i].tail(60));
            }
        }
    }

    /// Waits until node `i` sees `running` running members and a leader.
    pub async fn until_running(&self, i: usize, running: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Some(st) = self.get(i, "/api/node/cluster_status").await {
                let up = st["running_nodes"].as_array().cloned().unwrap_or_default();
                if up.len() == running && up.contains(&st["leader"]) {
                    return;
                }
                last = st;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{} never saw {running} running nodes: {last}\n{}",
            self.nodes[i].name,
            self.nodes[i].tail(60)
        );
    }

    /// Waits until every node sees every node running.
    pub async fn until_all_running(&self) {
        for i in 0..self.len() {
            self.until_running(i, self.len()).await;
        }
    }

    /// The index of the node that leads `queue` (vhost `/`), as node `via` says.
    pub async fn leader_via(&self, via: usize, queue: &str) -> Option<usize> {
        let q = self.get(via, &format!("/api/queues/%2F/{queue}")).await?;
        self.index_of(q["leader"].as_str()?)
    }

    /// The leader of `queue` as the first node that answers says.
    pub async fn leader_of(&self, queue: &str) -> Option<usize> {
        for i in 0..self.len() {
            if let Some(l) = self.leader_via(i, queue).await {
                return Some(l);
            }
        }
        None
    }

    /// Waits until every node lists `queue` with `members` members, all
    /// online, and the same leader; returns the leader.
    pub async fn until_queue_healthy(&self, queue: &str, members: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        'again: while Instant::now() < deadline {
            let mut leader = None;
            for i in 0..self.len() {
                let Some(q) = self.get(i, &format!("/api/queues/%2F/{queue}")).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue 'again;
                };
                let count = |k: &str| q[k].as_array().map_or(0, Vec::len);
                let l = q["leader"].as_str().and_then(|l| self.index_of(l));
                let ok = count("members") == members && count("online") == members && l.is_some();
                if !ok || (leader.is_some() && leader != l) {
                    last = q;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue 'again;
                }
                leader = l;
            }
            return leader.unwrap();
        }
        let tails: String = self.nodes.iter().map(|n| format!("\n--- {}:\n{}", n.name, n.tail(40))).collect();
        panic!("{queue} never had {members} members online with one leader: {last}{tails}");
    }

    /// Waits until every member of `queue`'s group, as `quorum_status`
    /// through node `via` lists them, has applied the same log index and
    /// holds the same messages (count and digest); returns how many.
    pub async fn until_replicas_agree(&self, via: usize, queue: &str, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Some(rows) = self.get(via, &format!("/api/queues/quorum/%2F/{queue}/status")).await
                && let Some(list) = rows.as_array()
                && let Some(first) = list.first()
            {
                let keys = ["Contents Applied", "Contents Digest", "Messages"];
                if list.iter().all(|r| keys.iter().all(|k| r[*k] == first[*k]))
                    && let Some(n) = first["Messages"].as_u64()
                {
                    return n;
                }
                last = rows.clone();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the replicas of {queue} never agreed: {last:#}{}", self.tails(40));
    }

    // ---- network faults ----

    fn apply_cut(&self, i: usize, j: usize, on: bool) {
        let verb = if on { "add" } else { "del" };
        for (a, b) in [(i, j), (j, i)] {
            let peer = format!("{}/32", self.nodes[b].ip);
            if let Err(e) = ip(&["-n", &self.nodes[a].ns, "route", verb, "blackhole", &peer]) {
                panic!("cannot {verb} the cut {a}-{b}: {e}");
            }
        }
    }

    /// Cuts node pairs so that nodes in different `groups` cannot reach
    /// each other (nodes in no group reach everyone not cut otherwise).
    /// Adds to the cuts already in place.
    pub fn partition(&self, groups: &[&[usize]]) {
        let mut cuts = self.cuts.lock().unwrap();
        for (g, group) in groups.iter().enumerate() {
            for other in &groups[g + 1..] {
                for &i in group.iter() {
                    for &j in other.iter() {
                        let pair = (i.min(j), i.max(j));
                        if i != j && cuts.insert(pair) {
                            self.apply_cut(pair.0, pair.1, true);
                        }
                    }
                }
            }
        }
        eprintln!("[{:>6.2}s] partition {groups:?}", self.started.elapsed().as_secs_f64());
    }

    /// Node `i` can reach no other node (clients still reach it).
    pub fn isolate(&self, i: usize) {
        let rest: Vec<usize> = (0..self.len()).filter(|&j| j != i).collect();
        self.partition(&[&[i], &rest]);
    }

    /// Two halves: the first `len/2` nodes and the rest.
    pub fn halves(&self) {
        let (a, b): (Vec<usize>, Vec<usize>) = (0..self.len()).partition(|&i| i < self.len() / 2);
        self.partition(&[&a, &b]);
    }

    /// Jepsen's majorities ring: each node reaches its neighbours on the
    /// ring (a majority with itself for 5 nodes), but no two nodes see the
    /// same majority.
    pub fn majorities_ring(&self) {
        let n = self.len();
        let mut cuts = self.cuts.lock().unwrap();
        for i in 0..n {
            for j in i + 1..n {
                let d = (j - i).min(n - (j - i));
                if d > 1 && cuts.insert((i, j)) {
                    self.apply_cut(i, j, true);
                }
            }
        }
        eprintln!("[{:>6.2}s] majorities ring over {n} nodes", self.started.elapsed().as_secs_f64());
    }

    /// Removes every cut.
    pub fn heal(&self) {
        let mut cuts = self.cuts.lock().unwrap();
        for (i, j) in std::mem::take(&mut *cuts) {
            self.apply_cut(i, j, false);
        }
        eprintln!("[{:>6.2}s] healed", self.started.elapsed().as_secs_f64());
    }

    /// Takes node `i`'s link down: nothing reaches it, clients included.
    pub fn disconnect(&self, i: usize) {
        ip(&["link", "set", &self.nodes[i].veth, "down"]).expect("link down");
        eprintln!("[{:>6.2}s] disconnected {}", self.started.elapsed().as_secs_f64(), self.nodes[i].name);
    }

    pub fn reconnect(&self, i: usize) {
        ip(&["link", "set", &self.nodes[i].veth, "up"]).expect("link up");
        eprintln!("[{:>6.2}s] reconnected {}", self.started.elapsed().as_secs_f64(), self.nodes[i].name);
    }

    // ---- process faults ----

    /// kill -9 node `i`.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
        eprintln!("[{:>6.2}s] killed {}", self.started.elapsed().as_secs_f64(), self.nodes[i].name);
    }

    /// Starts node `i` again (same name, address and data dir) after a
    /// kill or stop; returns once it listens.
    pub async fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.kill();
        node.log.lock().unwrap().push("---- restart ----".into());
        let from = node.log_len();
        node.spawn();
        node.until_listening(from).await;
        eprintln!("[{:>6.2}s] restarted {}", self.started.elapsed().as_secs_f64(), self.nodes[i].name);
    }

    /// SIGTERM node `i` and wait for it to exit (up to 15 s, then SIGKILL).
    pub async fn stop(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.paused {
            node.signal(libc::SIGCONT);
        }
        node.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while node.is_running() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        node.kill();
        eprintln!("[{:>6.2}s] stopped {}", self.started.elapsed().as_secs_f64(), self.nodes[i].name);
    }

    /// SIGSTOP node `i`.
    pub fn pause(&mut self, i: usize) {
        self.nodes[i].signal(libc::SIGSTOP);
        self.nodes[i].paused = true;
        eprintln!("[{:>6.2}s] paused {}", self.started.elapsed().as_secs_f64(), self.nodes[i].name);
    }

    /// SIGCONT node `i`.
    pub fn resume(&mut self, i: usize) {
        self.nodes[i].signal(libc::SIGCONT);
        self.nodes[i].paused = false;
        eprintln!("[{:>6.2}s] resumed {}", self.started.elapsed().as_secs_f64(), self.nodes[i].name);
    }

    /// Stops and starts every node in turn, waiting after each until every
    /// node sees all of them running again (and `settle` more).
    pub async fn rolling_restart(&mut self, settle: Duration) {
        for i in 0..self.len() {
            self.stop(i).await;
            self.restart(i).await;
            self.until_all_running().await;
            tokio::time::sleep(settle).await;
        }
    }

    /// Seconds since the cluster was started, for log lines.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The last lines of every node's log.
    pub fn tails(&self, n: usize) -> String {
        self.nodes.iter().map(|node| format!("\n--- {}:\n{}", node.name, node.tail(n))).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut() {
            if node.paused {
                node.signal(libc::SIGCONT);
            }
            node.kill();
        }
        // WARREN_FAULTS_LOGS=DIR keeps every node's whole log there.
        if let Some(dir) = std::env::var_os("WARREN_FAULTS_LOGS") {
            let dir = PathBuf::from(dir);
            let _ = std::fs::create_dir_all(&dir);
            for node in &self.nodes {
                let file = dir.join(format!(
                    "{}-{}.log",
                    std::thread::current().name().unwrap_or("test"),
                    node.index + 1
                ));
                let _ = std::fs::write(&file, node.log_text());
            }
            eprintln!("node logs kept in {}", dir.display());
        }
        if std::thread::panicking() {
            for node in &self.nodes {
                eprintln!("--- {} log (last 150 lines) ---\n{}", node.name, node.tail(150));
            }
        }
        for node in &self.nodes {
            // Deleting the namespace deletes its end of the veth pair, and
            // so the pair, but the kernel may do it late: delete ours now.
            let _ = ip(&["link", "del", &format!("wf{}h{}", self.subnet, node.index)]);
            let _ = ip(&["netns", "del", &node.ns]);
            let _ = std::fs::remove_dir_all(&node.data_dir);
            let _ = std::fs::remove_file(node.data_dir.with_extension("conf"));
        }
        clean_subnet(self.subnet);
    }
}
