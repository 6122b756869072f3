//! Runtime configuration of a node. Built from command-line flags today;
//! the `warren.conf` file (rabbitmq.conf syntax) feeds the same struct.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// Interfaces to listen on. Empty means every interface, IPv6 and IPv4.
    pub bind: Vec<IpAddr>,
    pub amqp_port: u16,
    pub http_port: u16,
    pub data_dir: PathBuf,
    pub node_name: String,
    pub cluster_name: String,
    /// Heartbeat interval the server proposes, in seconds (0 disables).
    pub heartbeat: u16,
    pub frame_max: u32,
    pub channel_max: u16,
    pub max_message_size: usize,
    /// How long a client may take to complete the handshake, and how long
    /// a frame may stay half-received.
    pub handshake_timeout: Duration,
    pub default_user: String,
    pub default_pass: String,
    pub default_vhost: String,
    /// Users that may only connect from a loopback address.
    pub loopback_users: Vec<String>,
    /// Publishers are blocked above this fraction of the machine's memory,
    /// unless an absolute limit in bytes is given.
    pub memory_high_watermark_relative: f64,
    pub memory_high_watermark_absolute: Option<u64>,
    /// Publishers are blocked when the data directory's disk has less free
    /// space than this, in bytes.
    pub disk_free_limit: u64,
    /// The management listener's interface (default: as `bind`).
    pub http_bind: Option<IpAddr>,
    /// Tags and permissions (configure, write, read) of the default user.
    pub default_user_tags: Vec<String>,
    pub default_permissions: [String; 3],
    /// `debug`, `info`, `warning`, `error`, `critical` or `none`.
    pub log_level: String,
    pub log_file: Option<PathBuf>,
    /// How long a dashboard login token (`POST /api/login`) stays valid
    /// (`management.login_session_timeout`, in minutes in warren.conf).
    pub login_session_timeout: Duration,
    /// The key that signs login tokens. None: a random key per node start,
    /// so a restart logs everybody out.
    pub jwt_secret: Option<String>,
    /// How often the management side samples the message counters into
    /// rates and history (RabbitMQ's `collect_statistics_interval`). Zero
    /// turns the sampler off.
    pub stats_interval: Duration,
    /// The configuration file read at start, for the banner and `environment`.
    pub config_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: Vec::new(),
            amqp_port: 5672,
            http_port: 15672,
            data_dir: PathBuf::from("./data"),
            node_name: default_node_name(),
            cluster_name: default_node_name(),
            heartbeat: 60,
            frame_max: 131_072,
            channel_max: 2047,
            max_message_size: 16 * 1024 * 1024,
            handshake_timeout: Duration::from_secs(10),
            default_user: "guest".into(),
            default_pass: "guest".into(),
            default_vhost: "/".into(),
            loopback_users: vec!["guest".into()],
            memory_high_watermark_relative: 0.4,
            memory_high_watermark_absolute: None,
            disk_free_limit: 50_000_000,
            http_bind: None,
            default_user_tags: vec!["administrator".into()],
            default_permissions: [".*".into(), ".*".into(), ".*".into()],
            log_level: "info".into(),
            log_file: None,
            login_session_timeout: Duration::from_secs(480 * 60),
            jwt_secret: None,
            stats_interval: Duration::from_secs(5),
            config_file: None,
        }
    }
}

impl Config {
    /// The addresses a listener on `port` binds: the configured interfaces,
    /// or `[::]` (which also takes IPv4 on Linux) when none are given.
    pub fn listen_addrs(&self, port: u16) -> Vec<SocketAddr> {
        if self.bind.is_empty() {
            vec![SocketAddr::from(([0u16; 8], port))]
        } else {
            self.bind.iter().map(|ip| SocketAddr::new(*ip, port)).collect()
        }
    }
}

/// The short host name.
pub fn hostname() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    host.split('.').next().unwrap_or("localhost").to_owned()
}

/// `warren@<hostname>`, like RabbitMQ's `rabbit@<hostname>`.
pub fn default_node_name() -> String {
    format!("warren@{}", hostname())
}
