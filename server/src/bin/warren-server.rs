//! `warren-server`: runs a Warren node.
//!
//! Settings come, each overriding the one before, from the defaults, the
//! configuration file (`--config` or `$WARREN_CONFIG_FILE`, rabbitmq.conf
//! syntax), the environment (`WARREN_DEFAULT_USER`, `WARREN_DEFAULT_PASS`,
//! `WARREN_NODENAME`), and command-line flags.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use warren::config::Config;
use warren::server::{Node, shutdown_signal};

#[derive(Parser, Debug)]
#[command(name = "warren-server", version, about = "An AMQP 0-9-1 message broker compatible with RabbitMQ")]
struct Args {
    /// Configuration file in rabbitmq.conf syntax.
    #[arg(long, env = "WARREN_CONFIG_FILE")]
    config: Option<PathBuf>,
    /// AMQP port (listeners.tcp.default; 0 picks a free one, which is logged).
    #[arg(long)]
    amqp_port: Option<u16>,
    /// Management HTTP port (management.tcp.port; 0 picks a free one).
    #[arg(long)]
    http_port: Option<u16>,
    /// Where definitions and messages are stored (data_dir; default ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Interface to listen on; repeat for several. Default: every interface,
    /// IPv6 and IPv4.
    #[arg(long)]
    bind: Vec<IpAddr>,
    /// Heartbeat interval proposed to clients, in seconds; 0 disables.
    #[arg(long)]
    heartbeat: Option<u16>,
    /// Seconds a client has to complete the AMQP handshake, and that a frame
    /// may stay half-received.
    #[arg(long)]
    handshake_timeout: Option<u64>,
    /// Block publishers when free disk space falls below this many bytes
    /// (disk_free_limit.absolute).
    #[arg(long)]
    disk_free_limit: Option<u64>,
    /// Block publishers when memory use exceeds this fraction of RAM
    /// (vm_memory_high_watermark.relative).
    #[arg(long)]
    vm_memory_high_watermark: Option<f64>,
    /// Minutes a dashboard login token stays valid
    /// (management.login_session_timeout).
    #[arg(long)]
    login_session_timeout: Option<u64>,
    /// Key signing dashboard login tokens; when unset, derived from the
    /// cluster secret, so that every node sharing it accepts the tokens of
    /// the others.
    #[arg(long, env = "WARREN_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Milliseconds between samples of the message counters into rates
    /// (collect_statistics_interval); 0 turns the sampler off.
    #[arg(long)]
    stats_interval_ms: Option<u64>,
    /// Metadata changes between snapshots of the cluster's metadata (for
    /// tests that need a member to catch up from a snapshot).
    #[arg(long, hide = true)]
    metadata_snapshot_every: Option<u64>,
    /// The node's name, NAME@HOST (default warren@<hostname>).
    #[arg(long, env = "WARREN_NODENAME")]
    nodename: Option<String>,
    /// Port other cluster nodes reach this one on (cluster.listener.port;
    /// default the AMQP port + 20000; 0 picks a free one).
    #[arg(long)]
    cluster_port: Option<u16>,
    /// The secret shared by a cluster's nodes (cluster_secret); default
    /// read from ~/.warren.cookie, which is created if missing.
    #[arg(long, env = "WARREN_CLUSTER_SECRET", hide_env_values = true)]
    cluster_secret: Option<String>,
}

/// Exit status for a configuration error (EX_CONFIG).
const EXIT_CONFIG: i32 = 78;

fn configure(args: Args) -> Result<Config, String> {
    let mut c = Config::default();
    if let Some(path) = &args.config {
        warren::conf::load(path, &mut c).map_err(|e| e.to_string())?;
        c.config_file = Some(path.clone());
    }
    if let Ok(u) = std::env::var("WARREN_DEFAULT_USER") {
        c.default_user = u;
    }
    if let Ok(p) = std::env::var("WARREN_DEFAULT_PASS") {
        c.default_pass = p;
    }
    if let Some(n) = args.nodename.clone() {
        c.node_name = if n.contains('@') { n } else { format!("{n}@{}", warren::config::hostname()) };
    }
    if let Some(p) = args.cluster_port {
        c.cluster_port = Some(p);
    }
    if args.cluster_secret.is_some() {
        c.cluster_secret = args.cluster_secret.clone();
    }
    let Args { amqp_port, http_port, data_dir, bind, heartbeat, handshake_timeout, .. } = args;
    if let Some(v) = amqp_port {
        c.amqp_port = v;
    }
    if let Some(v) = http_port {
        c.http_port = v;
    }
    if let Some(v) = data_dir {
        c.data_dir = v;
    }
    if !bind.is_empty() {
        c.bind = bind;
    }
    if let Some(v) = heartbeat {
        c.heartbeat = v;
    }
    if let Some(v) = handshake_timeout {
        c.handshake_timeout = Duration::from_secs(v);
    }
    if let Some(v) = args.disk_free_limit {
        c.disk_free_limit = v;
    }
    if let Some(v) = args.vm_memory_high_watermark {
        c.memory_high_watermark_relative = v;
        c.memory_high_watermark_absolute = None;
    }
    if let Some(v) = args.login_session_timeout {
        c.login_session_timeout = Duration::from_secs(v.max(1) * 60);
    }
    if args.jwt_secret.is_some() {
        c.jwt_secret = args.jwt_secret;
    }
    if let Some(v) = args.stats_interval_ms {
        c.stats_interval = Duration::from_millis(v);
    }
    if let Some(v) = args.metadata_snapshot_every {
        c.metadata_snapshot_every = v.max(1);
    }
    Ok(c)
}

/// Logs to the console, and to `log.file` when configured, at
/// `log.console.level` (`WARREN_LOG` overrides with a tracing filter).
fn init_logging(c: &Config) -> Result<(), String> {
    let level = match c.log_level.as_str() {
        "debug" => "debug",
        "warning" => "warn",
        "error" | "critical" => "error",
        "none" => "off",
        _ => "info",
    };
    // openraft logs every failed heartbeat while a cluster node is down;
    // the cluster module logs leader and membership changes instead.
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("WARREN_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},openraft=off")))
    };
    let console = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_filter(filter());
    let file = match &c.log_file {
        None => None,
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
            Some(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_ansi(false)
                    .with_writer(std::sync::Mutex::new(f))
                    .with_filter(filter()),
            )
        }
    };
    tracing_subscriber::registry().with(console).with(file).init();
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = match configure(Args::parse()).and_then(|c| init_logging(&c).map(|_| c)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: {e}");
            std::process::exit(EXIT_CONFIG);
        }
    };
    tracing::info!("starting Warren {} as node {}", env!("CARGO_PKG_VERSION"), config.node_name);
    tracing::info!(
        "config file: {}",
        config.config_file.as_ref().map_or("(none)".to_owned(), |p| p.display().to_string())
    );
    tracing::info!("data dir: {}", config.data_dir.display());
    if config.default_user == "guest" && config.default_pass == "guest" {
        tracing::warn!(
            "the default user 'guest' with password 'guest' is active; it may only connect from localhost"
        );
    }
    let node = Node::start(config).await?;
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = node.app.stop_requested() => tracing::info!("stop requested through the management API (warrenctl stop)"),
    }
    node.shutdown().await;
    Ok(())
}
