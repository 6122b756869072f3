//! Opening a connection: protocol header, start/start-ok (authentication),
//! tune/tune-ok, open/open-ok. Each step is a small function; any failure
//! ends the connection with RabbitMQ's reply code and text.
//!
//! The SASL mechanisms are PLAIN and AMQPLAIN (a user name and password)
//! and, as RabbitMQ's rabbitmq_auth_mechanism_ssl plugin does it,
//! EXTERNAL: the user named by the client's verified TLS certificate
//! (`ssl_cert_login_from`), with no password. `connection.start` offers
//! the configured ones (`auth_mechanisms.N`), EXTERNAL only to a client
//! that presented a certificate; a client choosing one not offered is
//! closed with COMMAND_INVALID, as in RabbitMQ.

use std::net::SocketAddr;
use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, connection};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use bytes::Buf;

use super::codec::{FRAME_MIN_SIZE, Frame, PROTOCOL_HEADER, read_frame};
use super::io::Io;
use super::session::ClientCaps;
use crate::broker::Broker;
use crate::broker::auth::{Protocol, Refusal};
use crate::broker::connections::OpenTicket;
use crate::broker::error::{BrokerError, ErrorKind};
use crate::broker::vhost::VHost;
use crate::definitions::User;

/// What a successful handshake settled.
pub struct Opened {
    pub user: Arc<User>,
    pub vhost: Arc<VHost>,
    pub frame_max: u32,
    pub channel_max: u16,
    pub heartbeat: u16,
    pub client_properties: FieldTable,
    pub caps: ClientCaps,
    pub mechanism: String,
    /// Its place under `connection_max`.
    pub ticket: OpenTicket,
}

/// Why a handshake ended without an open connection.
pub enum Refused {
    /// The socket failed or the client went away; nothing more to say.
    Gone,
    /// Close with this error (already logged).
    Error(BrokerError),
    /// Close with this error, naming `connection.open` as the method that
    /// failed, as RabbitMQ does for a refused open.
    AtOpen(BrokerError),
    /// Close silently: the peer did not speak AMQP 0-9-1, or failed
    /// authentication without asking for a close frame.
    Silent,
}

impl From<std::io::Error> for Refused {
    fn from(_: std::io::Error) -> Self {
        Refused::Gone
    }
}

pub fn server_properties(broker: &Broker) -> FieldTable {
    let mut caps = FieldTable::default();
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        caps.insert(cap.into(), AMQPValue::Boolean(true));
    }
    let s = |v: &str| AMQPValue::LongString(v.into());
    let mut p = FieldTable::default();
    p.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    p.insert("cluster_name".into(), s(&broker.config.cluster_name));
    p.insert("copyright".into(), s("Copyright (c) the Warren authors"));
    p.insert(
        "information".into(),
        s("Licensed under MIT or Apache-2.0. An AMQP 0-9-1 broker compatible with RabbitMQ."),
    );
    p.insert("platform".into(), s("Rust"));
    p.insert("product".into(), s("Warren"));
    p.insert("version".into(), s(env!("CARGO_PKG_VERSION")));
    p
}

async fn next_frame(io: &mut Io, frame_max: u32) -> Result<Frame, Refused> {
    loop {
        match read_frame(&mut io.rbuf, frame_max) {
            Ok(Some(Frame::Heartbeat(_))) => continue,
            Ok(Some(f)) => return Ok(f),
            Ok(None) => {
                if !io.read_some().await? {
                    return Err(Refused::Gone);
                }
            }
            Err(e) => return Err(Refused::Error(e)),
        }
    }
}

/// Waits for a connection-class method on channel 0.
async fn expect(io: &mut Io, frame_max: u32, state: &str) -> Result<connection::AMQPMethod, Refused> {
    match next_frame(io, frame_max).await? {
        Frame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(_))) => {
            io.out.method(0, &AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})));
            io.flush_all().await?;
            Err(Refused::Silent)
        }
        Frame::Method(0, AMQPClass::Connection(m)) => Ok(m),
        _ => Err(Refused::Error(BrokerError::channel_error(format!(
            "unexpected method in connection state {state}"
        )))),
    }
}

fn capability(props: &FieldTable, name: &str) -> bool {
    match props.inner().get("capabilities") {
        Some(AMQPValue::FieldTable(t)) => {
            matches!(t.inner().get(name), Some(AMQPValue::Boolean(true)))
        }
        _ => false,
    }
}

/// The mechanisms `auth_mechanisms.N` may name.
pub const MECHANISMS: &[&str] = &["PLAIN", "AMQPLAIN", "EXTERNAL"];

/// The configured mechanisms this client may use, in the configured order:
/// EXTERNAL only with a verified client certificate.
fn offered<'a>(broker: &'a Broker, tls: Option<&crate::tls::TlsInfo>) -> Vec<&'a str> {
    let has_cert = tls.is_some_and(|t| t.peer_cert.is_some());
    broker
        .config
        .auth_mechanisms
        .iter()
        .map(String::as_str)
        .filter(|m| *m != "EXTERNAL" || has_cert)
        .collect()
}

/// Decodes a SASL response into (username, password).
fn credentials(mechanism: &str, response: &LongString) -> Result<(String, Vec<u8>), BrokerError> {
    let bytes = response.as_bytes();
    match mechanism {
        "PLAIN" => {
            // [authzid] NUL authcid NUL passwd
            let parts: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
            if parts.len() != 3 {
                return Err(BrokerError::syntax_error(format!(
                    "response {:?} invalid",
                    String::from_utf8_lossy(bytes)
                )));
            }
            Ok((String::from_utf8_lossy(parts[1]).into_owned(), parts[2].to_vec()))
        }
        "AMQPLAIN" => {
            // A field table without its length prefix.
            let mut framed = (bytes.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(bytes);
            let table = amq_protocol::types::parsing::parse_field_table(&framed[..])
                .map(|(_, t)| t)
                .map_err(|_| BrokerError::syntax_error("AMQPLAIN response is not a field table"))?;
            let get = |k: &str| -> Option<Vec<u8>> {
                match table.inner().get(k)? {
                    AMQPValue::LongString(s) => Some(s.as_bytes().to_vec()),
                    AMQPValue::ShortString(s) => Some(s.as_str().as_bytes().to_vec()),
                    _ => None,
                }
            };
            match (get("LOGIN"), get("PASSWORD")) {
                (Some(u), Some(p)) => Ok((String::from_utf8_lossy(&u).into_owned(), p)),
                _ => Err(BrokerError::syntax_error("AMQPLAIN response lacks LOGIN or PASSWORD")),
            }
        }
        other => Err(BrokerError::command_invalid(format!("unknown authentication mechanism '{other}'"))),
    }
}

pub async fn run(
    io: &mut Io,
    broker: &Arc<Broker>,
    peer: SocketAddr,
    name: &str,
    tls: Option<&crate::tls::TlsInfo>,
) -> Result<Opened, Refused> {
    // 1. Protocol header.
    while io.rbuf.len() < 8 {
        if !io.read_some().await? {
            return Err(Refused::Gone);
        }
    }
    if &io.rbuf[..8] != PROTOCOL_HEADER {
        tracing::warn!("closing connection {name}: bad protocol header {:?}", &io.rbuf[..8]);
        io.out.raw(PROTOCOL_HEADER);
        io.flush_all().await?;
        return Err(Refused::Silent);
    }
    io.rbuf.advance(8);

    // 2. Start and authentication.
    io.out.method(
        0,
        &AMQPClass::Connection(connection::AMQPMethod::Start(connection::Start {
            version_major: 0,
            version_minor: 9,
            server_properties: server_properties(broker),
            mechanisms: offered(broker, tls).join(" ").into(),
            locales: "en_US".into(),
        })),
    );
    io.flush_all().await?;
    let connection::AMQPMethod::StartOk(start_ok) = expect(io, FRAME_MIN_SIZE, "starting").await? else {
        return Err(Refused::Error(BrokerError::channel_error(
            "unexpected method in connection state starting",
        )));
    };
    let mechanism = start_ok.mechanism.as_str().to_owned();
    if !offered(broker, tls).contains(&mechanism.as_str()) {
        return Err(Refused::Error(BrokerError::command_invalid(format!(
            "unknown authentication mechanism '{}'",
            mechanism.escape_debug()
        ))));
    }
    let (username, password) = if mechanism == "EXTERNAL" {
        // Offered only with a certificate, so there is one.
        let cert = tls.and_then(|t| t.peer_cert.as_deref()).ok_or(Refused::Silent)?;
        match broker.config.cert_login.user_name(cert) {
            Ok(user) => (user, None),
            Err(why) => {
                tracing::warn!(
                    "connection {name}: EXTERNAL login refused: {why} (certificate {})",
                    cert.subject
                );
                return Err(refuse(&start_ok.client_properties, &mechanism));
            }
        }
    } else {
        let (u, p) = credentials(&mechanism, &start_ok.response).map_err(Refused::Error)?;
        (u, Some(p))
    };
    let caps = ClientCaps {
        consumer_cancel_notify: capability(&start_ok.client_properties, "consumer_cancel_notify"),
        connection_blocked: capability(&start_ok.client_properties, "connection.blocked"),
    };
    // Counted, logged and (a wrong password) answered late by the broker.
    let loopback_only = |user: &User| {
        let refused =
            broker.config.loopback_users.contains(&user.name) && !crate::net::is_loopback(peer.ip());
        refused.then(|| format!("user '{}' can only connect via localhost", user.name))
    };
    let login =
        broker.authenticate_as(Protocol::Amqp091, &username, password, Some(peer.ip()), loopback_only).await;
    let user = match login {
        Ok(user) => user,
        Err(refusal) => {
            let why = match refusal {
                Refusal::InvalidCredentials => {
                    format!("user '{}' - invalid credentials", username.escape_debug())
                }
                Refusal::NotAllowed(why) => why,
            };
            tracing::debug!("connection {name}: {mechanism} login refused: {why}");
            return Err(refuse(&start_ok.client_properties, &mechanism));
        }
    };

    // 3. Tuning.
    let cfg = &broker.config;
    io.out.method(
        0,
        &AMQPClass::Connection(connection::AMQPMethod::Tune(connection::Tune {
            channel_max: cfg.channel_max,
            frame_max: cfg.frame_max,
            heartbeat: cfg.heartbeat,
        })),
    );
    io.flush_all().await?;
    let connection::AMQPMethod::TuneOk(tune) = expect(io, FRAME_MIN_SIZE, "tuning").await? else {
        return Err(Refused::Error(BrokerError::channel_error(
            "unexpected method in connection state tuning",
        )));
    };
    negotiate("frame_max", tune.frame_max, FRAME_MIN_SIZE, cfg.frame_max)?;
    negotiate("channel_max", u32::from(tune.channel_max), 1, u32::from(cfg.channel_max))?;
    io.out.frame_max = tune.frame_max;

    // 4. Open a vhost.
    let connection::AMQPMethod::Open(open) = expect(io, tune.frame_max, "opening").await? else {
        return Err(Refused::Error(BrokerError::channel_error(
            "unexpected method in connection state opening",
        )));
    };
    // RabbitMQ checks the node's cap first, then the vhost's and the
    // user's limits, then the user's access to the vhost.
    let Some(ticket) = broker.connections.admission.open(cfg.connection_max) else {
        let limit = cfg.connection_max.unwrap_or_default();
        return Err(Refused::AtOpen(BrokerError::not_allowed(format!(
            "connection refused: node connection limit ({limit}) is reached"
        ))));
    };
    let vname = open.virtual_host.as_str();
    let Some(vhost) = broker.vhost(vname) else {
        return Err(Refused::AtOpen(BrokerError::not_allowed(format!("vhost {vname} not found"))));
    };
    broker.check_connection_limits(vname, &user.name).map_err(Refused::AtOpen)?;
    if broker.auth.permissions(vname, &user.name).is_none() {
        return Err(Refused::AtOpen(BrokerError::not_allowed(format!(
            "access to vhost '{vname}' refused for user '{}'",
            user.name
        ))));
    }
    io.out.method(0, &AMQPClass::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {})));
    io.flush_all().await?;
    Ok(Opened {
        user,
        vhost,
        frame_max: tune.frame_max,
        channel_max: tune.channel_max,
        heartbeat: tune.heartbeat,
        client_properties: start_ok.client_properties,
        caps,
        mechanism,
        ticket,
    })
}

/// A refused login: ACCESS_REFUSED with RabbitMQ's text for a client
/// that announced `authentication_failure_close`, else the socket closes.
fn refuse(client_properties: &FieldTable, mechanism: &str) -> Refused {
    if capability(client_properties, "authentication_failure_close") {
        return Refused::Error(BrokerError::access_refused(format!(
            "Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
        )));
    }
    Refused::Silent
}

/// RabbitMQ's rule: a client value must be at least the minimum and, when
/// the server has a limit, not above it (0 means "no limit" and is above).
fn negotiate(field: &str, client: u32, min: u32, server: u32) -> Result<(), Refused> {
    let fail = |kind: &str, bound: &str, limit: u32| {
        let detail = if client == 0 { " (no limit)" } else { "" };
        Refused::Error(BrokerError::new(
            ErrorKind::NotAllowed,
            format!(
                "negotiated {field} = {client}{detail} is {kind} than the {bound} allowed value ({limit})"
            ),
        ))
    };
    if client != 0 && client < min {
        return Err(fail("lower", "minimum", min));
    }
    if server != 0 && (client == 0 || client > server) {
        return Err(fail("higher", "maximum", server));
    }
    Ok(())
}
