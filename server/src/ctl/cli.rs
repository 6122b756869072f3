//! The command line: rabbitmqctl's global flags and verbs, with its names,
//! arguments and default columns.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::output::Format;

#[derive(Parser, Debug)]
#[command(
    name = "warrenctl",
    version,
    about = "Manage a Warren node over its management API, with rabbitmqctl's verbs",
    after_help = "Exit codes (as rabbitmqctl): 0 ok, 64 usage, 65 data error (no such object, bad argument), \
69 node unavailable, 70 software error, 75 timeout, 77 authentication or permission refused.\n\
Credentials and node also come from WARRENCTL_NODE, WARRENCTL_USERNAME, WARRENCTL_PASSWORD \
(and WARRENCTL_CACERT, WARRENCTL_CERT, WARRENCTL_KEY), \
or from a file ($WARRENCTL_CONFIG_FILE, else ~/.warrenctl.conf) with lines `node = HOST:PORT`, \
`username = NAME`, `password = PASS`, `cacert = FILE`, `cert = FILE`, `key = FILE` \
(78 when that file is wrong).",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// The node's management listener: host:port, http://host:port or
    /// https://host:port.
    #[arg(
        id = "ctl_node",
        short = 'n',
        long = "node",
        value_name = "[SCHEME://]HOST:PORT",
        global = true,
        env = "WARRENCTL_NODE",
        default_value = "localhost:15672"
    )]
    pub node: String,
    /// Management user (administrator for most verbs).
    #[arg(
        id = "ctl_username",
        long = "username",
        value_name = "USERNAME",
        global = true,
        env = "WARRENCTL_USERNAME",
        default_value = "guest"
    )]
    pub username: String,
    /// Password of --username.
    #[arg(
        id = "ctl_password",
        long = "password",
        value_name = "PASSWORD",
        global = true,
        env = "WARRENCTL_PASSWORD",
        default_value = "guest",
        hide_env_values = true
    )]
    pub password: String,
    /// PEM file of the CA(s) an https:// node's certificate must chain to,
    /// trusted instead of the system's.
    #[arg(id = "ctl_cacert", long = "cacert", value_name = "FILE", global = true, env = "WARRENCTL_CACERT")]
    pub cacert: Option<PathBuf>,
    /// PEM client certificate to present to an https:// node (with --key).
    #[arg(id = "ctl_cert", long = "cert", value_name = "FILE", global = true, env = "WARRENCTL_CERT")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(id = "ctl_key", long = "key", value_name = "FILE", global = true, env = "WARRENCTL_KEY")]
    pub key: Option<PathBuf>,
    /// Accept any certificate from an https:// node (no check at all; for tests).
    #[arg(id = "ctl_insecure", long = "insecure", global = true)]
    pub insecure: bool,
    /// Virtual host, for the verbs that act in one.
    #[arg(
        id = "ctl_vhost",
        short = 'p',
        long = "vhost",
        value_name = "VHOST",
        global = true,
        default_value = "/"
    )]
    pub vhost: String,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "table")]
    pub formatter: Format,
    /// Leave out informational messages.
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
    /// Leave out informational messages and table headers.
    #[arg(short = 's', long, global = true)]
    pub silent: bool,
    /// Seconds to wait for the node to answer (await_startup: to start).
    #[arg(short = 't', long, global = true)]
    pub timeout: Option<u64>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
#[command(rename_all = "snake_case")]
pub enum Cmd {
    // ----- users
    /// Creates a user; the password is read from standard input when not given.
    AddUser { username: String, password: Option<String> },
    /// Deletes a user.
    DeleteUser { username: String },
    /// Changes a user's password.
    ChangePassword { username: String, password: String },
    /// Checks a user's credentials.
    AuthenticateUser { username: String, password: String },
    /// Sets a user's tags (administrator, monitoring, policymaker, management); none clears them.
    SetUserTags { username: String, tags: Vec<String> },
    /// Lists users [columns: user tags].
    ListUsers { columns: Vec<String> },
    // ----- vhosts
    /// Creates a virtual host.
    AddVhost {
        vhost: String,
        #[arg(long)]
        description: Option<String>,
        /// Comma-separated tags.
        #[arg(long)]
        tags: Option<String>,
        /// classic or quorum.
        #[arg(long = "default-queue-type")]
        default_queue_type: Option<String>,
    },
    /// Deletes a virtual host and everything in it.
    DeleteVhost { vhost: String },
    /// Lists virtual hosts [columns: name description tags tracing default_queue_type messages ...].
    ListVhosts { columns: Vec<String> },
    // ----- permissions
    /// Sets a user's configure, write and read permissions (regexes) in a vhost (-p).
    SetPermissions { username: String, configure: String, write: String, read: String },
    /// Revokes a user's permissions in a vhost (-p).
    ClearPermissions { username: String },
    /// Lists the permissions in a vhost (-p) [user configure write read].
    ListPermissions,
    /// Lists a user's permissions in every vhost [vhost configure write read].
    ListUserPermissions { username: String },
    /// Sets a user's topic permissions on an exchange in a vhost (-p).
    SetTopicPermissions { username: String, exchange: String, write: String, read: String },
    /// Revokes a user's topic permissions in a vhost (-p): on one exchange, or on all.
    ClearTopicPermissions { username: String, exchange: Option<String> },
    /// Lists the topic permissions in a vhost (-p) [user exchange write read].
    ListTopicPermissions,
    // ----- policies
    /// Sets a policy: NAME PATTERN DEFINITION (a JSON object), in a vhost (-p).
    SetPolicy(PolicyArgs),
    /// Clears a policy in a vhost (-p).
    ClearPolicy { name: String },
    /// Lists the policies in a vhost (-p) [vhost name pattern apply-to definition priority].
    ListPolicies,
    /// Sets an operator policy (caps on queue settings): NAME PATTERN DEFINITION.
    SetOperatorPolicy(PolicyArgs),
    /// Clears an operator policy in a vhost (-p).
    ClearOperatorPolicy { name: String },
    /// Lists the operator policies in a vhost (-p).
    ListOperatorPolicies,
    // ----- runtime parameters
    /// Sets a runtime parameter: COMPONENT NAME VALUE (JSON), in a vhost (-p).
    SetParameter { component: String, name: String, value: String },
    /// Clears a runtime parameter in a vhost (-p).
    ClearParameter { component: String, name: String },
    /// Lists the runtime parameters in a vhost (-p) [component name value].
    ListParameters,
    // ----- listing
    /// Lists queues in a vhost (-p) [default: name messages; also messages_ready
    /// messages_unacknowledged consumers durable auto_delete exclusive arguments node policy state type vhost ...].
    ListQueues { columns: Vec<String> },
    /// Lists exchanges in a vhost (-p) [default: name type; also durable auto_delete internal arguments policy vhost].
    ListExchanges { columns: Vec<String> },
    /// Lists bindings in a vhost (-p) [default: source_name source_kind destination_name
    /// destination_kind routing_key arguments; also vhost properties_key].
    ListBindings { columns: Vec<String> },
    /// Lists client connections [default: user peer_host peer_port state; also name vhost
    /// channels protocol auth_mechanism client_properties connected_at timeout frame_max recv_oct send_oct ...].
    ListConnections { columns: Vec<String> },
    /// Lists channels [default: pid user consumer_count messages_unacknowledged; also name
    /// vhost number prefetch_count confirm transactional ...].
    ListChannels { columns: Vec<String> },
    /// Lists consumers in a vhost (-p) [default: queue_name channel_pid consumer_tag
    /// ack_required prefetch_count active arguments; also exclusive].
    ListConsumers { columns: Vec<String> },
    // ----- queues
    /// Removes every ready message from a queue in a vhost (-p).
    PurgeQueue { queue: String },
    /// Deletes a queue in a vhost (-p).
    DeleteQueue {
        queue: String,
        /// Only if it has no consumers.
        #[arg(short = 'u', long = "if-unused")]
        if_unused: bool,
        /// Only if it holds no messages.
        #[arg(short = 'e', long = "if-empty")]
        if_empty: bool,
    },
    // ----- replicated queues (rabbitmq-queues)
    /// Adds a member (replica) of a quorum queue in a vhost (-p) on NODE.
    AddMember {
        queue: String,
        node: String,
        /// promotable (default) or voter: a new member always catches up, then votes.
        #[arg(long, default_value = "promotable")]
        membership: String,
    },
    /// Removes the member (replica) of a quorum queue in a vhost (-p) on NODE.
    DeleteMember { queue: String, node: String },
    /// Adds a member on NODE to every matching quorum queue: all, or even (those with an even number of members).
    Grow {
        node: String,
        strategy: String,
        /// Regular expression matched against vhost names.
        #[arg(long = "vhost-pattern", default_value = ".*")]
        vhost_pattern: String,
        /// Regular expression matched against queue names.
        #[arg(long = "queue-pattern", default_value = ".*")]
        queue_pattern: String,
        /// Only list queues which reported an error.
        #[arg(long = "errors-only")]
        errors_only: bool,
    },
    /// Removes the members on NODE of every quorum queue.
    Shrink {
        node: String,
        /// Only list queues which reported an error.
        #[arg(long = "errors-only")]
        errors_only: bool,
    },
    /// Each member of a replicated queue in a vhost (-p): node, Raft state, log indexes, term.
    QuorumStatus { queue: String },
    /// Moves leaders of replicated queues (all, classic or quorum) so that each node leads about as many.
    Rebalance {
        #[arg(value_name = "all|classic|quorum")]
        kind: String,
        /// Regular expression matched against vhost names.
        #[arg(long = "vhost-pattern", default_value = ".*")]
        vhost_pattern: String,
        /// Regular expression matched against queue names.
        #[arg(long = "queue-pattern", default_value = ".*")]
        queue_pattern: String,
    },
    // ----- node
    /// Closes a client connection (by the name list_connections shows) with a reason.
    CloseConnection { connection: String, explanation: String },
    /// The node's status: versions, uptime, listeners, alarms, memory, disk.
    Status,
    /// The settings in force, under their warren.conf keys.
    Environment,
    /// The cluster's status: its members, which are running, and the leader, with rabbitmqctl's sections.
    ClusterStatus,
    /// Resets this node (its definitions and messages are discarded) and joins the cluster of NODE; stop_app first.
    JoinCluster {
        /// A member of the cluster to join, NAME@HOST.
        node: String,
        /// Where NODE's cluster listener is, HOST:PORT (default: NODE's host, port 25672).
        #[arg(long)]
        address: Option<String>,
        /// Join as a disc node (the only kind Warren has).
        #[arg(long)]
        disc: bool,
        /// RAM nodes do not exist in Warren: refused.
        #[arg(long)]
        ram: bool,
    },
    /// Removes NODE from the cluster (run it on another member).
    ForgetClusterNode { node: String },
    /// Stops the AMQP application (listeners closed, clients disconnected); the process and management API keep running.
    StopApp,
    /// Starts the AMQP application again after stop_app.
    StartApp,
    /// Re-reads the AMQPS and HTTPS listeners' and the cluster link's certificate, key and CA files (as SIGHUP); open connections and links stay.
    ReloadCertificates,
    /// Stops the node (the process exits).
    Stop,
    /// Waits until the node has started and its AMQP application runs (-t seconds, default 300).
    AwaitStartup,
    /// Checks that the node is up and answering.
    Ping,
    // ----- definitions
    /// Writes the definitions (users, vhosts, permissions, queues, exchanges, bindings, policies, parameters) as JSON to FILE or - (stdout).
    ExportDefinitions { file: PathBuf },
    /// Imports definitions from a JSON file, or - (stdin), as exported by RabbitMQ or Warren.
    ImportDefinitions { file: PathBuf },
    // ----- shell
    /// Prints a shell completion script: warrenctl completion bash > /etc/bash_completion.d/warrenctl
    Completion { shell: clap_complete::Shell },
}

#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    pub name: String,
    /// A regular expression matched against queue or exchange names.
    pub pattern: String,
    /// A JSON object, e.g. '{"max-length": 1000}'.
    pub definition: String,
    /// Higher wins when several match.
    #[arg(long, default_value_t = 0)]
    pub priority: i64,
    /// all, queues, exchanges, classic_queues or quorum_queues.
    #[arg(long, default_value = "all")]
    pub apply_to: String,
}
