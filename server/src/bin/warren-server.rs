//! `warren-server`: runs a Warren node.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use warren::config::Config;
use warren::server::{Node, shutdown_signal};

#[derive(Parser, Debug)]
#[command(name = "warren-server", version, about = "An AMQP 0-9-1 message broker compatible with RabbitMQ")]
struct Args {
    /// AMQP port (0 picks a free one; the chosen port is logged).
    #[arg(long, default_value_t = 5672)]
    amqp_port: u16,
    /// Management HTTP port.
    #[arg(long, default_value_t = 15672)]
    http_port: u16,
    /// Where definitions and messages are stored.
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// Interface to listen on; repeat for several. Default: every interface,
    /// IPv6 and IPv4.
    #[arg(long)]
    bind: Vec<IpAddr>,
    /// Heartbeat interval proposed to clients, in seconds (0 disables).
    #[arg(long, default_value_t = 60)]
    heartbeat: u16,
    /// Seconds a client has to complete the AMQP handshake, and that a frame
    /// may stay half-received.
    #[arg(long, default_value_t = 10)]
    handshake_timeout: u64,
    /// Minutes a dashboard login token stays valid
    /// (management.login_session_timeout).
    #[arg(long, default_value_t = 480)]
    login_session_timeout: u64,
    /// Key signing dashboard login tokens; random per start when unset,
    /// which logs everybody out at a restart.
    #[arg(long, env = "WARREN_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Milliseconds between samples of the message counters into rates
    /// (collect_statistics_interval); 0 turns the sampler off.
    #[arg(long, default_value_t = 5000)]
    stats_interval_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARREN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let args = Args::parse();
    let config = Config {
        bind: args.bind,
        amqp_port: args.amqp_port,
        http_port: args.http_port,
        data_dir: args.data_dir,
        heartbeat: args.heartbeat,
        handshake_timeout: Duration::from_secs(args.handshake_timeout),
        login_session_timeout: Duration::from_secs(args.login_session_timeout.max(1) * 60),
        jwt_secret: args.jwt_secret,
        stats_interval: Duration::from_millis(args.stats_interval_ms),
        ..Config::default()
    };
    tracing::info!(
        "starting Warren {} as node {} (data dir {})",
        env!("CARGO_PKG_VERSION"),
        config.node_name,
        config.data_dir.display()
    );
    if config.default_user == "guest" && config.default_pass == "guest" {
        tracing::warn!(
            "the default user 'guest' with password 'guest' is active; it may only connect from localhost"
        );
    }
    let node = Node::start(config).await?;
    shutdown_signal().await;
    node.shutdown().await;
    Ok(())
}
