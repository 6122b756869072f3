//! `warren-perf`: a load generator for any AMQP 0-9-1 broker, in the spirit
//! of RabbitMQ's PerfTest and LavinMQ's lavinmqperf.
//!
//! A tour of the modules:
//! - [`wire`]: the hot frames (publish, deliver, ack, confirm) by hand;
//! - [`client`]: connection handshake, channel 1 and the slow methods;
//! - [`tls`]: the rustls client for `amqps://` URIs;
//! - [`publisher`] and [`consumer`]: the batched write and read loops;
//! - [`stats`]: counters, latency histograms, the per-second report;
//! - [`modes`]: throughput, latency, backlog, the churns and the loopback
//!   ceiling, each a function from options to a summary.

mod client;
mod consumer;
mod modes;
mod publisher;
mod stats;
mod tls;
mod wire;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "warren-perf", version, about = "Load generator for AMQP 0-9-1 brokers")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Debug)]
enum Mode {
    /// Producers and consumers as fast as they go (or at --rate): rates per
    /// second, latency percentiles at the end.
    Throughput(LoadArgs),
    /// Fixed-rate publishing (--rate, default 1000 msg/s per producer) with
    /// latency percentiles.
    Latency(LoadArgs),
    /// Publish --count messages with no consumer running, wait until the
    /// queues hold them, then drain them: publish rate and drain rate.
    Backlog(LoadArgs),
    /// Open and close --count connections, one after the other.
    ConnectionChurn(ChurnArgs),
    /// Declare and delete --count queues, one after the other.
    QueueChurn(ChurnArgs),
    /// No broker: stream publish frames through a loopback socket to a
    /// reader that parses them, with the publisher's batching. The ceiling
    /// a broker's end-to-end rate can be compared with.
    LoopbackCeiling(CeilingArgs),
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Broker URI, amqp:// or amqps:// (TLS; port 5671 by default); the vhost
    /// is the path, URL-encoded (%2f is "/"). ?auth_mechanism=external logs
    /// in with the --cert client certificate.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub uri: String,
    /// amqps://: PEM file of the CA(s) the broker's certificate must chain
    /// to (default: the system's).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// amqps://: PEM client certificate to present (with --key).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// amqps://: PEM private key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Print a JSON summary on stdout (the per-second lines go to stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    #[command(flatten)]
    pub common: Common,
    /// Producers, each with its own connection.
    #[arg(short = 'x', long, default_value_t = 1)]
    pub producers: usize,
    /// Consumers, each with its own connection.
    #[arg(short = 'y', long, default_value_t = 1)]
    pub consumers: usize,
    /// Message body size in bytes (16 or more carries the latency stamp and
    /// the order check, 8 or more the stamp only).
    #[arg(short = 's', long, default_value_t = 16)]
    pub size: usize,
    /// Run time in seconds (throughput and latency; default: until Ctrl-C).
    #[arg(short = 'z', long)]
    pub time: Option<f64>,
    /// Publish rate limit per producer, in messages per second.
    #[arg(short = 'r', long)]
    pub rate: Option<f64>,
    /// Persistent messages (delivery mode 2) to durable queues.
    #[arg(long)]
    pub persistent: bool,
    /// Message flags, as PerfTest takes them: persistent, mandatory.
    #[arg(short = 'f', long = "flag", value_parser = ["persistent", "mandatory"])]
    pub flags: Vec<String>,
    /// Use publisher confirms with at most this many unconfirmed messages
    /// per producer.
    #[arg(short = 'c', long)]
    pub confirm: Option<u32>,
    /// Consume with no-ack (automatic acknowledgement).
    #[arg(short = 'a', long)]
    pub autoack: bool,
    /// With manual acks, ack with `multiple` every this many messages
    /// (0 or 1: each message is acked on its own).
    #[arg(short = 'A', long, default_value_t = 0)]
    pub multi_ack_every: u32,
    /// basic.qos prefetch count per consumer (0: unlimited).
    #[arg(short = 'q', long, default_value_t = 0)]
    pub prefetch: u16,
    /// Queue name.
    #[arg(short = 'u', long, default_value = "warren-perf")]
    pub queue: String,
    /// Many queues: a name with %d, numbered from --queue-pattern-from to
    /// --queue-pattern-to. Consumers take them round-robin, and each
    /// producer publishes round-robin over its share.
    #[arg(long)]
    pub queue_pattern: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub queue_pattern_from: u32,
    #[arg(long, default_value_t = 1)]
    pub queue_pattern_to: u32,
    /// Exchange to publish to; default: the default exchange for direct,
    /// `warren-perf.<type>` for the other types.
    #[arg(short = 'e', long)]
    pub exchange: Option<String>,
    /// Exchange type: direct, fanout, topic, headers.
    #[arg(short = 't', long, default_value = "direct")]
    pub exchange_type: String,
    /// Routing key (default: the queue names).
    #[arg(short = 'k', long)]
    pub routing_key: Option<String>,
    /// Declare quorum queues (x-queue-type=quorum, durable).
    #[arg(long)]
    pub quorum_queue: bool,
    /// Declare durable queues even for transient messages.
    #[arg(long)]
    pub durable: bool,
    /// Leave the queues (and the exchange) in place at the end.
    #[arg(long)]
    pub keep_queues: bool,
    /// Backlog: messages to publish in all.
    #[arg(long, default_value_t = 1_000_000)]
    pub count: u64,
    /// Seconds to wait at the end for consumers to catch up (and, in
    /// backlog mode, for the queue to fill and to drain before giving up).
    #[arg(long, default_value_t = 10.0)]
    pub drain_timeout: f64,
    /// Backlog: seconds to hold the full backlog before draining (after
    /// printing "backlog ready" on stderr), for measuring the broker.
    #[arg(long, default_value_t = 0.0)]
    pub hold: f64,
}

impl LoadArgs {
    pub fn persistent(&self) -> bool {
        self.persistent || self.flags.iter().any(|f| f == "persistent")
    }

    pub fn mandatory(&self) -> bool {
        self.flags.iter().any(|f| f == "mandatory")
    }
}

#[derive(Args, Debug, Clone)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub common: Common,
    /// How many connections or queues.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// queue-churn: name prefix of the queues.
    #[arg(long, default_value = "warren-perf-churn-")]
    pub queue_prefix: String,
    /// queue-churn: declare durable queues.
    #[arg(long)]
    pub durable: bool,
    /// queue-churn: only declare, and leave the queues in place.
    #[arg(long)]
    pub keep_queues: bool,
}

#[derive(Args, Debug, Clone)]
pub struct CeilingArgs {
    /// Message body size in bytes.
    #[arg(short = 's', long, default_value_t = 16)]
    pub size: usize,
    /// Run time in seconds.
    #[arg(short = 'z', long, default_value_t = 10.0)]
    pub time: f64,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Mode::Throughput(a) | Mode::Latency(a) | Mode::Backlog(a) = &cli.mode
        && a.rate.is_some_and(|r| !(r > 0.0 && r.is_finite()))
    {
        eprintln!("warren-perf: --rate must be a positive number of messages per second");
        std::process::exit(2);
    }
    let result = match cli.mode {
        Mode::Throughput(a) => modes::load::run(a, modes::load::Kind::Throughput).await,
        Mode::Latency(a) => modes::load::run(a, modes::load::Kind::Latency).await,
        Mode::Backlog(a) => modes::backlog::run(a).await,
        Mode::ConnectionChurn(a) => modes::churn::connections(a).await,
        Mode::QueueChurn(a) => modes::churn::queues(a).await,
        Mode::LoopbackCeiling(a) => modes::ceiling::run(a).await,
    };
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("warren-perf: {e:#}");
            std::process::exit(2);
        }
    }
}
