//! Starting and stopping a node: bind the listeners, serve until a signal,
//! then close client connections with CONNECTION_FORCED and exit.
//!
//! [`App`] is the AMQP side of a running node, which `warrenctl stop_app`
//! stops (listeners closed, clients disconnected) and `start_app` starts
//! again on the same addresses, while the process and its management API
//! keep running; `warrenctl stop` asks the whole node to exit. SIGHUP (and
//! `warrenctl reload_certificates`) has the AMQPS and HTTPS listeners and
//! the cluster link read their certificate files again, without closing
//! any connection or link.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::cluster::node::Cluster;
use crate::cluster::secret::Secret;
use crate::config::Config;

pub struct Node {
    pub broker: Arc<Broker>,
    pub amqp_addrs: Vec<SocketAddr>,
    pub http_addrs: Vec<SocketAddr>,
    pub app: Arc<App>,
    tasks: Vec<JoinHandle<()>>,
}

/// The AMQP listeners of a node, which can be stopped and started again.
pub struct App {
    broker: Arc<Broker>,
    /// The addresses bound at start (ports resolved), rebound by `start`.
    addrs: Vec<SocketAddr>,
    /// The AMQPS listeners' addresses, and their TLS settings.
    tls_addrs: Vec<SocketAddr>,
    tls: Option<Arc<crate::tls::Reloadable>>,
    /// The HTTPS listener's TLS settings, reloaded with the AMQPS ones.
    https_tls: Option<Arc<crate::tls::Reloadable>>,
    running: parking_lot::Mutex<Option<Vec<JoinHandle<()>>>>,
    /// Serialises stop and start.
    change: tokio::sync::Mutex<()>,
    stop_node: tokio::sync::Notify,
    /// This node's cluster side (its listener, and the cluster once it
    /// joined one); set at start.
    cluster: std::sync::OnceLock<Arc<Cluster>>,
}

impl App {
    /// The cluster side, once its listener runs.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    /// The cluster, while this node is a member of one.
    pub fn clustered(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get().filter(|c| c.is_clustered())
    }

    /// The AMQP listeners' addresses while the app runs; none when stopped.
    pub fn listeners(&self) -> Vec<SocketAddr> {
        if self.is_running() { self.addrs.clone() } else { Vec::new() }
    }

    /// The AMQPS listeners' addresses while the app runs.
    pub fn tls_listeners(&self) -> Vec<SocketAddr> {
        if self.is_running() { self.tls_addrs.clone() } else { Vec::new() }
    }

    pub fn is_running(&self) -> bool {
        self.running.lock().is_some()
    }

    /// Closes the AMQP listeners and every client connection
    /// (CONNECTION_FORCED). False if the app was already stopped.
    pub async fn stop(&self) -> bool {
        let _guard = self.change.lock().await;
        let Some(tasks) = self.running.lock().take() else { return false };
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await; // the listener socket is closed once the task is gone
        }
        close_connections(&self.broker).await;
        tracing::info!("stopped the AMQP application (stop_app); the management API keeps running");
        true
    }

    /// Listens again on the addresses of the first start. False if the app
    /// was already running.
    pub async fn start(&self) -> std::io::Result<bool> {
        let _guard = self.change.lock().await;
        if self.is_running() {
            return Ok(false);
        }
        let mut listeners = Vec::new();
        let plain = self.addrs.iter().map(|a| (a, None));
        let tls = self.tls_addrs.iter().map(|a| (a, self.tls.clone()));
        for (addr, tls) in plain.chain(tls) {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            listeners.push((l, tls));
        }
        let mut tasks = Vec::new();
        for (l, tls) in listeners {
            let kind = if tls.is_some() { "AMQP 0-9-1/TLS" } else { "AMQP 0-9-1" };
            tracing::info!("started {kind} listener on {}", l.local_addr()?);
            tasks.push(tokio::spawn(crate::amqp::accept_loop(self.broker.clone(), l, tls)));
        }
        *self.running.lock() = Some(tasks);
        Ok(true)
    }

    /// Reads the AMQPS and HTTPS listeners' and the cluster link's
    /// certificate, key and CA files again (SIGHUP, `warrenctl
    /// reload_certificates`). New connections and links use them; open
    /// ones are untouched. One whose new files do not make a valid
    /// configuration keeps its old one; the errors are returned (and
    /// logged). Gives those reloaded.
    pub fn reload_certificates(&self) -> Result<Vec<&'static str>, String> {
        let mut done = Vec::new();
        let mut errors = Vec::new();
        for r in [&self.tls, &self.https_tls].into_iter().flatten() {
            match r.reload() {
                Ok(()) => done.push(r.what),
                Err(e) => errors.push(e),
            }
        }
        if let Some(link) = self.cluster().and_then(|c| c.link_tls()) {
            match link.reload() {
                Ok(()) => done.push(crate::cluster::tls::WHAT),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() { Ok(done) } else { Err(errors.join("; ")) }
    }

    /// Asks the node to shut down (`warrenctl stop`).
    pub fn request_stop(&self) {
        self.stop_node.notify_one();
    }

    /// Resolves when [`request_stop`](Self::request_stop) was called.
    pub async fn stop_requested(&self) {
        self.stop_node.notified().await;
    }
}

async fn bind_all(config: &Config, port: u16) -> std::io::Result<Vec<TcpListener>> {
    bind_addrs(config.listen_addrs(port), config.bind.is_empty()).await
}

/// Listens on `addrs`; with `any`, they are every interface, and an IPv6
/// one falls back to every IPv4 interface on a host without IPv6.
async fn bind_addrs(addrs: Vec<SocketAddr>, any: bool) -> std::io::Result<Vec<TcpListener>> {
    let mut out = Vec::new();
    for addr in addrs {
        match TcpListener::bind(addr).await {
            Ok(l) => out.push(l),
            // No IPv6 on this host: fall back to every IPv4 interface.
            Err(_) if any && addr.is_ipv6() => {
                out.push(TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], addr.port()))).await?)
            }
            Err(e) => {
                return Err(std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")));
            }
        }
    }
    Ok(out)
}

impl Node {
    pub async fn start(config: Config) -> anyhow::Result<Node> {
        let listeners = bind_all(&config, config.amqp_port).await?;
        let tls = match config.amqps_port {
            Some(_) => Some(Arc::new(
                crate::tls::Reloadable::new("AMQPS", config.tls.clone())
                    .map_err(|e| anyhow::anyhow!("TLS (ssl_options): {e}"))?,
            )),
            None => None,
        };
        if config.auth_mechanisms.iter().any(|m| m == "EXTERNAL")
            && (config.amqps_port.is_none() || !config.tls.verify_peer)
        {
            tracing::warn!(
                "auth_mechanisms lists EXTERNAL, but no AMQPS listener asks for client certificates \
                 (listeners.ssl.default and ssl_options.verify = verify_peer): EXTERNAL will never be offered"
            );
        }
        let tls_listeners = match config.amqps_port {
            Some(port) => bind_all(&config, port).await?,
            None => Vec::new(),
        };
        // management.tcp.ip: the management listener on that interface only.
        let http_listeners = match config.http_bind {
            Some(ip) => bind_addrs(vec![SocketAddr::new(ip, config.http_port)], false).await?,
            None => bind_all(&config, config.http_port).await?,
        };
        let https = match config.https_port {
            Some(port) => {
                let acceptor = crate::tls::Reloadable::new("HTTPS", config.https_tls.clone())
                    .map_err(|e| anyhow::anyhow!("HTTPS (management.ssl): {e}"))?;
                let acceptor = Arc::new(acceptor);
                let listeners = match config.https_bind {
                    Some(ip) => bind_addrs(vec![SocketAddr::new(ip, port)], false).await?,
                    None => bind_all(&config, port).await?,
                };
                Some((acceptor, listeners))
            }
            None => None,
        };
        let broker = Broker::new(config).await?;
        let mut amqp_addrs = Vec::new();
        let mut amqp_tasks = Vec::new();
        let mut tasks = Vec::new();
        let b = broker.clone();
        broker.alarms.set_limits(broker.alarm_limits());
        tasks.push(tokio::spawn(sweep(broker.clone())));
        tasks.push(tokio::spawn(async move { b.alarms.monitor().await }));
        for l in listeners {
            let addr = l.local_addr()?;
            tracing::info!("started AMQP 0-9-1 listener on {addr}");
            amqp_addrs.push(addr);
            amqp_tasks.push(tokio::spawn(crate::amqp::accept_loop(broker.clone(), l, None)));
        }
        let mut tls_addrs = Vec::new();
        for l in tls_listeners {
            let addr = l.local_addr()?;
            tracing::info!("started AMQP 0-9-1/TLS listener on {addr}");
            tls_addrs.push(addr);
            amqp_tasks.push(tokio::spawn(crate::amqp::accept_loop(broker.clone(), l, tls.clone())));
        }
        let app = Arc::new(App {
            broker: broker.clone(),
            addrs: amqp_addrs.clone(),
            tls_addrs,
            tls,
            https_tls: https.as_ref().map(|(a, _)| a.clone()),
            running: parking_lot::Mutex::new(Some(amqp_tasks)),
            change: tokio::sync::Mutex::new(()),
            stop_node: tokio::sync::Notify::new(),
            cluster: Default::default(),
        });
        let http_addrs = http_listeners.iter().map(|l| l.local_addr()).collect::<Result<Vec<_>, _>>()?;
        let https_addrs = match &https {
            Some((_, listeners)) => {
                listeners.iter().map(|l| l.local_addr()).collect::<Result<Vec<_>, _>>()?
            }
            None => Vec::new(),
        };
        let secret = cluster_secret(&broker.config)?;
        start_cluster(&broker, &app, secret.clone()).await?;
        let stats = Arc::new(crate::http::stats::Stats::default());
        let ctx = Arc::new(crate::http::ApiState {
            broker: broker.clone(),
            stats: stats.clone(),
            jwt: crate::http::auth::JwtKeys::new(broker.config.jwt_secret.as_deref(), Some(&secret)),
            app: app.clone(),
            http_addrs: http_addrs.clone(),
            https_addrs,
        });
        if let Some(c) = app.cluster() {
            // What this node says about itself to the others, as its API
            // describes it (a weak reference: the API state holds the app,
            // which holds the cluster).
            let weak = Arc::downgrade(&ctx);
            c.set_info(Arc::new(move || {
                weak.upgrade().map(|ctx| crate::http::api::overview::node_info(&ctx))
            }));
        }
        for (l, addr) in http_listeners.into_iter().zip(&http_addrs) {
            tracing::info!("started HTTP listener on {addr}");
            tasks.push(tokio::spawn(crate::http::serve(ctx.clone(), l)));
        }
        if let Some((acceptor, listeners)) = https {
            for l in listeners {
                tracing::info!("started HTTPS listener on {}", l.local_addr()?);
                tasks.push(tokio::spawn(crate::http::https::serve(ctx.clone(), l, acceptor.clone())));
            }
        }
        tasks.push(tokio::spawn(reload_on_sighup(app.clone())));
        let interval = broker.config.stats_interval;
        if let Some(c) = app.cluster() {
            tasks.push(tokio::spawn(refresh_remote_counts(c.clone(), broker.config.stats_interval)));
        }
        if !interval.is_zero() {
            tasks.push(tokio::spawn(crate::http::stats::run(broker.clone(), stats, interval)));
        }
        Ok(Node { broker, amqp_addrs, http_addrs, app, tasks })
    }

    /// Stops accepting, asks every client to go with CONNECTION_FORCED and
    /// waits a little for them to do so.
    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(amqp) = self.app.running.lock().take() {
            for t in amqp {
                t.abort();
            }
        }
        close_connections(&self.broker).await;
        if let Some(c) = self.app.cluster() {
            c.stop().await;
        }
        self.broker.close().await;
        tracing::info!("stopped");
    }
}

/// The cluster secret: configured, or read from its file (created with a
/// random secret when missing).
fn cluster_secret(c: &Config) -> anyhow::Result<Secret> {
    let path = match (&c.cluster_secret, &c.cluster_secret_file) {
        (Some(s), _) => return Ok(Secret::new(s.as_bytes())),
        (None, Some(path)) => path.clone(),
        (None, None) => Secret::default_path(),
    };
    Secret::load_or_create(&path)
        .map_err(|e| anyhow::anyhow!("cannot read the cluster secret from {}: {e}", path.display()))
}

/// Opens the cluster listener, on which other nodes can reach this one and
/// ask to join it, and rejoins the cluster if this node was in one.
async fn start_cluster(broker: &Arc<Broker>, app: &Arc<App>, secret: Secret) -> anyhow::Result<()> {
    let c = &broker.config;
    let port = c.cluster_port();
    // One address, the one other nodes are told to use: the configured
    // interface when there is exactly one, else every interface.
    let ip = match c.bind.as_slice() {
        [ip] => *ip,
        _ => std::net::IpAddr::from([0u8; 4]),
    };
    let listener = match TcpListener::bind(SocketAddr::new(ip, port)).await {
        Ok(l) => l,
        // The default port (AMQP + 20000) may be taken, by RabbitMQ's own
        // distribution port say: then any free port, which is logged.
        Err(e) if c.cluster_port.is_none() && port != 0 => {
            tracing::warn!("cannot listen for cluster nodes on {ip}:{port} ({e}); using a free port instead");
            TcpListener::bind(SocketAddr::new(ip, 0)).await?
        }
        Err(e) => return Err(anyhow::anyhow!("cannot listen for cluster nodes on {ip}:{port}: {e}")),
    };
    let bound = listener.local_addr()?;
    let host = if ip.is_unspecified() {
        c.node_name.split_once('@').map(|(_, h)| h.to_owned()).unwrap_or_else(crate::config::hostname)
    } else {
        ip.to_string()
    };
    let advertised = format!("{host}:{}", bound.port());
    let tls = crate::cluster::tls::LinkTls::from_options(&c.cluster_tls.or_amqps(&c.tls))
        .map_err(|e| anyhow::anyhow!("cannot set up TLS on the cluster link: {e}"))?
        .map(Arc::new);
    match &tls {
        Some(t) => tracing::info!("cluster link: TLS ({})", t.description()),
        None => tracing::info!("cluster link: plain TCP (cluster.tls is off)"),
    }
    let cluster = crate::cluster::node::Cluster::start(broker, listener, advertised.clone(), secret, tls)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the cluster listener: {e}"))?;
    let _ = app.cluster.set(cluster);
    tracing::info!("started cluster listener on {bound} (advertised as {advertised})");
    Ok(())
}

/// In a cluster, fetches the counts of the queues other nodes hold, at the
/// stats interval (5 s by default; at least 1 s).
async fn refresh_remote_counts(c: Arc<Cluster>, period: Duration) {
    let period = period.max(Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if c.is_clustered() {
            c.refresh_remote_counts().await;
            c.check_links().await;
        }
    }
}

/// Asks every client to go with CONNECTION_FORCED and waits up to 5 s for
/// their connections to end (stop_app and shutdown; never a hot path).
async fn close_connections(broker: &crate::broker::Broker) {
    for c in broker.connections.list() {
        c.force_close("broker forced connection closure with reason 'shutdown'");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !broker.connections.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Expires messages (TTL) and unused queues (`x-expires`) ten times a
/// second. Queues with nothing that can expire cost one atomic load.
async fn sweep(broker: Arc<Broker>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = crate::broker::queue::now_ms();
        for v in broker.vhosts() {
            // A queue expires on its home node only, which proposes the
            // deletion for the whole cluster.
            for q in v.queues().into_iter().filter(|q| q.is_held_here()) {
                if q.sweep(now) {
                    tracing::info!("queue '{}' in vhost '{}' expired (x-expires)", q.name, v.name);
                    let _ = broker
                        .apply(crate::definitions::DefinitionCommand::DeleteQueue {
                            vhost: v.name.to_string(),
                            name: q.name.to_string(),
                            if_unused: false,
                            if_empty: false,
                            requester: None,
                        })
                        .await;
                }
            }
        }
    }
}

/// Reloads the TLS certificates on each SIGHUP, as `warrenctl
/// reload_certificates` does.
async fn reload_on_sighup(app: Arc<App>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot handle SIGHUP (certificate reload): {e}");
            return;
        }
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received, reloading TLS certificates");
        match app.reload_certificates() {
            Ok(done) if done.is_empty() => tracing::info!("no TLS listener to reload"),
            Ok(_) | Err(_) => {} // each listener logged its outcome
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
}
