//! `warrenctl`: rabbitmqctl's verbs against a Warren node's management API.
//!
//! - [`cli`]: the flags and verbs (clap);
//! - [`client`]: HTTP or HTTPS with Basic auth, failures mapped to exit
//!   codes;
//! - [`output`]: the banner, then an aligned table, CSV or JSON;
//! - one module per verb family: [`users`], [`vhosts`], [`permissions`],
//!   [`policies`] (and runtime parameters), [`lists`] (list_queues and
//!   friends, with their columns), [`queues`], [`replicas`]
//!   (rabbitmq-queues' verbs: add_member, grow, quorum_status, rebalance...),
//!   [`node`] (status, stop_app, ping...), [`definitions`].

pub mod cli;
pub mod client;
pub mod config_file;
pub mod definitions;
pub mod lists;
pub mod node;
pub mod output;
pub mod permissions;
pub mod policies;
pub mod queues;
pub mod replicas;
pub mod users;
pub mod vhosts;

use std::time::Duration;

use clap::{CommandFactory, Parser};

use cli::{Cli, Cmd};
use client::Client;
use output::Out;

pub const EX_OK: i32 = 0;
pub const EX_USAGE: i32 = 64;
pub const EX_DATAERR: i32 = 65;
pub const EX_UNAVAILABLE: i32 = 69;
pub const EX_SOFTWARE: i32 = 70;
pub const EX_TEMPFAIL: i32 = 75;
pub const EX_NOPERM: i32 = 77;
pub const EX_CONFIG: i32 = 78;

/// A failure: its exit code and the one line printed after "Error: ".
#[derive(Debug)]
pub struct CtlError {
    pub code: i32,
    pub message: String,
}

impl CtlError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        CtlError { code, message: message.into() }
    }
    pub fn data(message: impl Into<String>) -> Self {
        Self::new(EX_DATAERR, message)
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(EX_USAGE, message)
    }
}

pub type R<T> = Result<T, CtlError>;

/// What a verb works with.
pub struct Ctx {
    pub client: Client,
    pub out: Out,
    pub vhost: String,
    pub timeout: Option<u64>,
}

/// Parses a JSON argument (policy definition, parameter value).
pub fn json_arg(what: &str, text: &str) -> R<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| CtlError::data(format!("{what} is not valid JSON ({e}): {text}")))
}

/// Runs warrenctl with the process's arguments; returns the exit code.
pub fn main() -> i32 {
    if let Err(e) = config_file::apply() {
        eprintln!("Error: {e}");
        return EX_CONFIG;
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => EX_OK,
                _ => EX_USAGE,
            };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(()) => EX_OK,
        Err(e) => {
            eprintln!("Error: {}", e.message.split_whitespace().collect::<Vec<_>>().join(" "));
            e.code
        }
    }
}

fn run(cli: Cli) -> R<()> {
    if let Cmd::Completion { shell } = &cli.cmd {
        clap_complete::generate(*shell, &mut Cli::command(), "warrenctl", &mut std::io::stdout());
        return Ok(());
    }
    let request_timeout = match (&cli.cmd, cli.timeout) {
        (Cmd::AwaitStartup, _) | (_, None) => Duration::from_secs(60),
        (_, Some(t)) => Duration::from_secs(t.max(1)),
    };
    let tls = client::TlsOptions { cacert: cli.cacert, cert: cli.cert, key: cli.key, insecure: cli.insecure };
    let ctx = Ctx {
        client: Client::new(&cli.node, &cli.username, &cli.password, request_timeout, &tls)?,
        out: Out { format: cli.formatter, quiet: cli.quiet, silent: cli.silent },
        vhost: cli.vhost,
        timeout: cli.timeout,
    };
    let c = &ctx;
    match cli.cmd {
        Cmd::AddUser { username, password } => users::add(c, &username, password),
        Cmd::DeleteUser { username } => users::delete(c, &username),
        Cmd::ChangePassword { username, password } => users::change_password(c, &username, &password),
        Cmd::AuthenticateUser { username, password } => users::authenticate(c, &username, &password),
        Cmd::SetUserTags { username, tags } => users::set_tags(c, &username, &tags),
        Cmd::ListUsers { columns } => users::list(c, &columns),
        Cmd::AddVhost { vhost, description, tags, default_queue_type } => {
            vhosts::add(c, &vhost, description, tags, default_queue_type)
        }
        Cmd::DeleteVhost { vhost } => vhosts::delete(c, &vhost),
        Cmd::ListVhosts { columns } => vhosts::list(c, &columns),
        Cmd::SetPermissions { username, configure, write, read } => {
            permissions::set(c, &username, &configure, &write, &read)
        }
        Cmd::ClearPermissions { username } => permissions::clear(c, &username),
        Cmd::ListPermissions => permissions::list(c),
        Cmd::ListUserPermissions { username } => permissions::list_user(c, &username),
        Cmd::SetTopicPermissions { username, exchange, write, read } => {
            permissions::set_topic(c, &username, &exchange, &write, &read)
        }
        Cmd::ClearTopicPermissions { username, exchange } => {
            permissions::clear_topic(c, &username, exchange.as_deref())
        }
        Cmd::ListTopicPermissions => permissions::list_topic(c),
        Cmd::SetPolicy(a) => policies::set(c, policies::Kind::Policy, &a),
        Cmd::ClearPolicy { name } => policies::clear(c, policies::Kind::Policy, &name),
        Cmd::ListPolicies => policies::list(c, policies::Kind::Policy),
        Cmd::SetOperatorPolicy(a) => policies::set(c, policies::Kind::Operator, &a),
        Cmd::ClearOperatorPolicy { name } => policies::clear(c, policies::Kind::Operator, &name),
        Cmd::ListOperatorPolicies => policies::list(c, policies::Kind::Operator),
        Cmd::SetParameter { component, name, value } => policies::set_parameter(c, &component, &name, &value),
        Cmd::ClearParameter { component, name } => policies::clear_parameter(c, &component, &name),
        Cmd::ListParameters => policies::list_parameters(c),
        Cmd::ListQueues { columns } => lists::queues(c, &columns),
        Cmd::ListExchanges { columns } => lists::exchanges(c, &columns),
        Cmd::ListBindings { columns } => lists::bindings(c, &columns),
        Cmd::ListConnections { columns } => lists::connections(c, &columns),
        Cmd::ListChannels { columns } => lists::channels(c, &columns),
        Cmd::ListConsumers { columns } => lists::consumers(c, &columns),
        Cmd::PurgeQueue { queue } => queues::purge(c, &queue),
        Cmd::DeleteQueue { queue, if_unused, if_empty } => queues::delete(c, &queue, if_unused, if_empty),
        Cmd::AddMember { queue, node, membership } => replicas::add_member(c, &queue, &node, &membership),
        Cmd::DeleteMember { queue, node } => replicas::delete_member(c, &queue, &node),
        Cmd::Grow { node, strategy, vhost_pattern, queue_pattern, errors_only } => {
            replicas::grow(c, &node, &strategy, &vhost_pattern, &queue_pattern, errors_only)
        }
        Cmd::Shrink { node, errors_only } => replicas::shrink(c, &node, errors_only),
        Cmd::QuorumStatus { queue } => replicas::quorum_status(c, &queue),
        Cmd::Rebalance { kind, vhost_pattern, queue_pattern } => {
            replicas::rebalance(c, &kind, &vhost_pattern, &queue_pattern)
        }
        Cmd::CloseConnection { connection, explanation } => {
            node::close_connection(c, &connection, &explanation)
        }
        Cmd::Status => node::status(c),
        Cmd::Environment => node::environment(c),
        Cmd::ClusterStatus => node::cluster_status(c),
        Cmd::JoinCluster { node, address, disc: _, ram } => {
            node::join_cluster(c, &node, address.as_deref(), ram)
        }
        Cmd::ForgetClusterNode { node } => node::forget_cluster_node(c, &node),
        Cmd::StopApp => node::stop_app(c),
        Cmd::StartApp => node::start_app(c),
        Cmd::ReloadCertificates => node::reload_certificates(c),
        Cmd::Stop => node::stop(c),
        Cmd::AwaitStartup => node::await_startup(c),
        Cmd::Ping => node::ping(c),
        Cmd::ExportDefinitions { file } => definitions::export(c, &file),
        Cmd::ImportDefinitions { file } => definitions::import(c, &file),
        Cmd::Completion { .. } => unreachable!("handled above"),
    }
}
