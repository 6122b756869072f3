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
    /// The AMQPS (TLS) listener's port (`listeners.ssl.*`); none by default.
    pub amqps_port: Option<u16>,
    /// `ssl_options.*`, for the AMQPS listener.
    pub tls: crate::tls::TlsOptions,
    pub http_port: u16,
    /// The management API's HTTPS listener (`management.ssl.port`), its
    /// interface (`management.ssl.ip`; default: as `bind`) and TLS options
    /// (`management.ssl.*`); none by default.
    pub https_port: Option<u16>,
    pub https_bind: Option<IpAddr>,
    pub https_tls: crate::tls::TlsOptions,
    /// The SASL mechanisms offered in `connection.start`, in this order
    /// (`auth_mechanisms.N`; PLAIN and AMQPLAIN by default). EXTERNAL is
    /// offered only to a TLS client that presented a verified certificate.
    pub auth_mechanisms: Vec<String>,
    /// Where an EXTERNAL login's user name comes from in the certificate
    /// (`ssl_cert_login_from`, `ssl_cert_login_san_type`,
    /// `ssl_cert_login_san_index`).
    pub cert_login: crate::tls::CertLogin,
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
    /// Open AMQP connections on this node (`connection_max`; None:
    /// `infinity`, RabbitMQ's default). One more is refused at
    /// `connection.open` with 530, as in RabbitMQ.
    pub connection_max: Option<usize>,
    /// AMQP connections still in their handshake, in all and from one
    /// client address (`unauthenticated_connection_max`,
    /// `unauthenticated_connection_max_per_address`); a socket beyond
    /// either is closed at once.
    pub unauthenticated_connection_max: usize,
    pub unauthenticated_connection_max_per_address: usize,
    /// How failed logins are slowed down (`login_throttle.*`).
    pub login_throttle: crate::broker::password::ThrottleSettings,
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
    /// The largest request body the management API reads, in bytes
    /// (`management.http.max_body_size`); larger ones are answered 400.
    pub max_body_size: usize,
    /// The key that signs login tokens. None: a key derived from the
    /// cluster secret, the same on every node that shares it.
    pub jwt_secret: Option<String>,
    /// How often the management side samples the message counters into
    /// rates and history (RabbitMQ's `collect_statistics_interval`). Zero
    /// turns the sampler off.
    pub stats_interval: Duration,
    /// How many metadata changes a cluster node applies between snapshots
    /// of the metadata, after which the log they cover is removed (as
    /// Ra's `snapshot_interval`). A member that missed more than that
    /// catches up from a snapshot instead of the log.
    pub metadata_snapshot_every: u64,
    /// The configuration file read at start, for the banner and `environment`.
    pub config_file: Option<PathBuf>,
    /// The port other nodes of a cluster reach this one on
    /// (`cluster.listener.port`); None: the AMQP port + 20000, as
    /// RabbitMQ's distribution port (0 when that does not fit or the AMQP
    /// port is 0, which picks a free port).
    pub cluster_port: Option<u16>,
    /// The cluster secret (`cluster_secret`); None: read from
    /// `cluster_secret_file`, else `~/.warren.cookie` (created if missing).
    pub cluster_secret: Option<String>,
    pub cluster_secret_file: Option<PathBuf>,
    /// TLS on the inter-node link (`cluster.tls`, `cluster.tls.*`).
    pub cluster_tls: crate::cluster::tls::ClusterTlsOptions,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: Vec::new(),
            amqp_port: 5672,
            amqps_port: None,
            tls: Default::default(),
            https_port: None,
            https_bind: None,
            https_tls: Default::default(),
            auth_mechanisms: vec!["PLAIN".to_owned(), "AMQPLAIN".to_owned()],
            cert_login: Default::default(),
            http_port: 15672,
            data_dir: PathBuf::from("./data"),
            node_name: default_node_name(),
            cluster_name: default_node_name(),
            heartbeat: 60,
            frame_max: 131_072,
            channel_max: 2047,
            max_message_size: 16 * 1024 * 1024,
            handshake_timeout: Duration::from_secs(10),
            connection_max: None,
            unauthenticated_connection_max: 1024,
            unauthenticated_connection_max_per_address: 128,
            login_throttle: Default::default(),
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
            // RabbitMQ's default (MANAGEMENT_DEFAULT_HTTP_MAX_BODY_SIZE).
            max_body_size: 20_000_000,
            jwt_secret: None,
            stats_interval: Duration::from_secs(5),
            metadata_snapshot_every: 5000,
            config_file: None,
            cluster_port: None,
            cluster_secret: None,
            cluster_secret_file: None,
            cluster_tls: Default::default(),
        }
    }
}

impl Config {
    pub fn cluster_port(&self) -> u16 {
        self.cluster_port.unwrap_or_else(|| match self.amqp_port {
            0 => 0,
            p => p.checked_add(20000).unwrap_or(0),
        })
    }

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
