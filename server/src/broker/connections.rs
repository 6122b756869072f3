//! The registry of open AMQP connections, for listing, closing them from the
//! management side, and closing a vhost's connections when it is deleted.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::SystemTime;

use amq_protocol::types::FieldTable;
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;

use super::consumer::{Outbound, Outbox};
use super::stats::Counter;

/// What the management side can see of one channel. The connection task
/// updates it as it works; readers only load atomics.
#[derive(Default, Debug)]
pub struct ChannelStats {
    pub number: u16,
    pub prefetch_count: AtomicU32,
    pub global_prefetch_count: AtomicU32,
    pub consumer_count: AtomicU32,
    pub unacked: AtomicU32,
    pub confirm: AtomicBool,
    pub transactional: AtomicBool,
    pub publish: Counter,
    pub confirm_sent: Counter,
    pub return_unroutable: Counter,
    pub deliver: Counter,
    pub deliver_no_ack: Counter,
    pub get: Counter,
    pub get_no_ack: Counter,
    pub ack: Counter,
    pub redeliver: Counter,
}

pub struct ConnectionInfo {
    pub id: u64,
    pub name: String,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub user: String,
    pub vhost: String,
    pub connected_at: SystemTime,
    pub client_properties: FieldTable,
    pub frame_max: u32,
    pub channel_max: u16,
    pub heartbeat: u16,
    pub auth_mechanism: String,
    /// The TLS session, if the client came over the AMQPS listener.
    pub tls: Option<crate::tls::TlsInfo>,
    pub outbox: Arc<Outbox>,
    pub channels: AtomicU32,
    pub recv_oct: AtomicU64,
    pub send_oct: AtomicU64,
    /// The connection's open channels, by number.
    pub channel_stats: Mutex<BTreeMap<u16, std::sync::Arc<ChannelStats>>>,
}

impl ConnectionInfo {
    pub fn force_close(&self, reason: &str) {
        self.outbox.push(Outbound::ForceClose { reason: reason.to_owned() });
    }

    pub fn channel_count(&self) -> u32 {
        self.channels.load(Ordering::Relaxed)
    }

    pub fn channels(&self) -> Vec<std::sync::Arc<ChannelStats>> {
        self.channel_stats.lock().values().cloned().collect()
    }
}

#[derive(Default)]
pub struct Connections {
    map: RwLock<FxHashMap<u64, Arc<ConnectionInfo>>>,
    pub churn: Churn,
    pub admission: Admission,
}

/// The node's caps on AMQP connections: sockets still in their handshake
/// (in all and per client address), and open connections. Each admitted
/// one holds a ticket that gives its place back when dropped, however its
/// task ends.
#[derive(Default)]
pub struct Admission {
    state: Arc<Mutex<AdmissionState>>,
}

#[derive(Default)]
struct AdmissionState {
    handshakes: usize,
    by_address: FxHashMap<IpAddr, usize>,
    open: usize,
}

/// Why a socket was not admitted to its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crowded {
    Node(usize),
    Address(usize),
}

impl std::fmt::Display for Crowded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Crowded::Node(n) => write!(f, "{n} connections are in their handshake already"),
            Crowded::Address(n) => {
                write!(f, "{n} connections from this address are in their handshake already")
            }
        }
    }
}

/// A place among the handshakes in progress.
pub struct HandshakeTicket {
    state: Arc<Mutex<AdmissionState>>,
    ip: IpAddr,
}

impl Drop for HandshakeTicket {
    fn drop(&mut self) {
        let mut st = self.state.lock();
        st.handshakes -= 1;
        if let Some(n) = st.by_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                st.by_address.remove(&self.ip);
            }
        }
    }
}

/// A place among the open connections.
pub struct OpenTicket {
    state: Arc<Mutex<AdmissionState>>,
}

impl Drop for OpenTicket {
    fn drop(&mut self) {
        self.state.lock().open -= 1;
    }
}

impl Admission {
    /// A place for a new socket from `ip` to do its handshake, if fewer
    /// than `max` are at it, and fewer than `per_address` from `ip`.
    pub fn handshake(&self, ip: IpAddr, max: usize, per_address: usize) -> Result<HandshakeTicket, Crowded> {
        let ip = ip.to_canonical();
        let mut st = self.state.lock();
        if st.handshakes >= max {
            return Err(Crowded::Node(st.handshakes));
        }
        let n = st.by_address.get(&ip).copied().unwrap_or(0);
        if n >= per_address {
            return Err(Crowded::Address(n));
        }
        *st.by_address.entry(ip).or_default() += 1;
        st.handshakes += 1;
        Ok(HandshakeTicket { state: self.state.clone(), ip })
    }

    /// A place for one more open connection, if fewer than `max` are open.
    pub fn open(&self, max: Option<usize>) -> Option<OpenTicket> {
        let mut st = self.state.lock();
        if max.is_some_and(|m| st.open >= m) {
            return None;
        }
        st.open += 1;
        Some(OpenTicket { state: self.state.clone() })
    }

    /// (handshakes in progress, open connections).
    pub fn counts(&self) -> (usize, usize) {
        let st = self.state.lock();
        (st.handshakes, st.open)
    }
}

/// Connections and channels opened and closed since the node started:
/// RabbitMQ's churn counters (`connection_created`, ... in `/api/nodes`).
#[derive(Default)]
pub struct Churn {
    pub connection_created: AtomicU64,
    pub connection_closed: AtomicU64,
    pub channel_created: AtomicU64,
    pub channel_closed: AtomicU64,
}

impl Churn {
    pub fn channel_opened(&self) {
        self.channel_created.fetch_add(1, Ordering::Relaxed);
    }
    pub fn channel_closed(&self) {
        self.channel_closed.fetch_add(1, Ordering::Relaxed);
    }
}

impl Connections {
    pub fn register(&self, info: Arc<ConnectionInfo>) {
        self.churn.connection_created.fetch_add(1, Ordering::Relaxed);
        self.map.write().insert(info.id, info);
    }

    pub fn unregister(&self, id: u64) {
        if let Some(gone) = self.map.write().remove(&id) {
            self.churn.connection_closed.fetch_add(1, Ordering::Relaxed);
            // Channels still open close with their connection.
            let open = gone.channel_stats.lock().len() as u64;
            self.churn.channel_closed.fetch_add(open, Ordering::Relaxed);
        }
    }

    pub fn get(&self, id: u64) -> Option<Arc<ConnectionInfo>> {
        self.map.read().get(&id).cloned()
    }

    pub fn find_by_name(&self, name: &str) -> Option<Arc<ConnectionInfo>> {
        self.map.read().values().find(|c| c.name == name).cloned()
    }

    pub fn list(&self) -> Vec<Arc<ConnectionInfo>> {
        let mut v: Vec<_> = self.map.read().values().cloned().collect();
        v.sort_by_key(|c| c.id);
        v
    }

    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many open connections match.
    pub fn count(&self, matches: impl Fn(&ConnectionInfo) -> bool) -> usize {
        self.map.read().values().filter(|c| matches(c)).count()
    }

    /// A figure summed over the open connections.
    pub fn sum(&self, figure: impl Fn(&ConnectionInfo) -> u64) -> u64 {
        self.map.read().values().map(|c| figure(c)).sum()
    }

    pub fn close_vhost(&self, vhost: &str, reason: &str) {
        for c in self.list() {
            if c.vhost == vhost {
                c.force_close(reason);
            }
        }
    }

    pub fn close_user(&self, user: &str, reason: &str) {
        for c in self.list() {
            if c.user == user {
                c.force_close(reason);
            }
        }
    }
}
