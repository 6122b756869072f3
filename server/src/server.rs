//! Starting and stopping a node: bind the listeners, serve until a signal,
//! then close client connections with CONNECTION_FORCED and exit.
//!
//! [`App`] is the AMQP side of a running node, which `warrenctl stop_app`
//! stops (listeners closed, clients disconnected) and `start_app` starts
//! again on the same addresses, while the process and its management API
//! keep running; `warrenctl stop` asks the whole node to exit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::broker::Broker;
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
    running: parking_lot::Mutex<Option<Vec<JoinHandle<()>>>>,
    /// Serialises stop and start.
    change: tokio::sync::Mutex<()>,
    stop_node: tokio::sync::Notify,
}

impl App {
    /// The AMQP listeners' addresses while the app runs; none when stopped.
    pub fn listeners(&self) -> Vec<SocketAddr> {
        if self.is_running() { self.addrs.clone() } else { Vec::new() }
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
        for addr in &self.addrs {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            listeners.push(l);
        }
        let mut tasks = Vec::new();
        for l in listeners {
            tracing::info!("started AMQP 0-9-1 listener on {}", l.local_addr()?);
            tasks.push(tokio::spawn(crate::amqp::accept_loop(self.broker.clone(), l)));
        }
        *self.running.lock() = Some(tasks);
        Ok(true)
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
    let mut out = Vec::new();
    for addr in config.listen_addrs(port) {
        match TcpListener::bind(addr).await {
            Ok(l) => out.push(l),
            // No IPv6 on this host: fall back to every IPv4 interface.
            Err(_) if config.bind.is_empty() && addr.is_ipv6() => {
                out.push(TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?)
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
        let http_listeners = bind_all(&config, config.http_port).await?;
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
            amqp_tasks.push(tokio::spawn(crate::amqp::accept_loop(broker.clone(), l)));
        }
        let app = Arc::new(App {
            broker: broker.clone(),
            addrs: amqp_addrs.clone(),
            running: parking_lot::Mutex::new(Some(amqp_tasks)),
            change: tokio::sync::Mutex::new(()),
            stop_node: tokio::sync::Notify::new(),
        });
        let http_addrs = http_listeners.iter().map(|l| l.local_addr()).collect::<Result<Vec<_>, _>>()?;
        let stats = Arc::new(crate::http::stats::Stats::default());
        let ctx = Arc::new(crate::http::ApiState {
            broker: broker.clone(),
            stats: stats.clone(),
            jwt: crate::http::auth::JwtKeys::new(broker.config.jwt_secret.as_deref()),
            app: app.clone(),
            http_addrs: http_addrs.clone(),
        });
        for (l, addr) in http_listeners.into_iter().zip(&http_addrs) {
            tracing::info!("started HTTP listener on {addr}");
            tasks.push(tokio::spawn(crate::http::serve(ctx.clone(), l)));
        }
        let interval = broker.config.stats_interval;
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
        self.broker.close().await;
        tracing::info!("stopped");
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
            for q in v.queues() {
                if q.sweep(now) {
                    tracing::info!("queue '{}' in vhost '{}' expired (x-expires)", q.name, v.name);
                    let _ = broker
                        .apply(crate::broker::DefinitionCommand::DeleteQueue {
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
