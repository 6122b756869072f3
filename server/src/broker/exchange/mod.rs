//! Exchanges: named routers from a message's routing key (and headers) to
//! queues and other exchanges.
//!
//! Each exchange type is a small router in its own file; `Exchange` holds the
//! binding list (the source of truth, used for listing and equality) and the
//! type's index built from it (used for routing). Both live behind one
//! `RwLock`: publishes take the read side, binds and unbinds the write side.

mod direct;
mod fanout;
mod headers;
pub(crate) mod topic;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use amq_protocol::types::FieldTable;
use parking_lot::RwLock;
use smallvec::SmallVec;

use super::queue::Queue;
use super::stats::ExchangeStats;

use crate::definitions::ExchangeType;
pub use headers::HeadersMatcher;
pub use topic::TopicTrie;

/// What kind of object a binding leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestKind {
    Queue,
    Exchange,
}

impl DestKind {
    /// `queue` or `exchange`: RabbitMQ's `destination_type`, the kind in
    /// definition commands and the store, and the resource kind of
    /// permission checks.
    pub fn as_str(self) -> &'static str {
        match self {
            DestKind::Queue => "queue",
            DestKind::Exchange => "exchange",
        }
    }

    /// Reads [`DestKind::as_str`]'s words back; anything but `exchange` is a
    /// queue, as the store has always read them.
    pub fn from_name(kind: &str) -> DestKind {
        match kind {
            "exchange" => DestKind::Exchange,
            _ => DestKind::Queue,
        }
    }
}

/// Where a binding leads.
#[derive(Clone)]
pub enum Destination {
    Queue(Arc<Queue>),
    Exchange(Arc<Exchange>),
}

impl Destination {
    pub fn name(&self) -> &str {
        match self {
            Destination::Queue(q) => &q.name,
            Destination::Exchange(x) => &x.name,
        }
    }

    pub fn kind(&self) -> DestKind {
        match self {
            Destination::Queue(_) => DestKind::Queue,
            Destination::Exchange(_) => DestKind::Exchange,
        }
    }

    pub fn same(&self, other: &Destination) -> bool {
        match (self, other) {
            (Destination::Queue(a), Destination::Queue(b)) => Arc::ptr_eq(a, b),
            (Destination::Exchange(a), Destination::Exchange(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind().as_str(), self.name())
    }
}

#[derive(Clone, Debug)]
pub struct Binding {
    pub destination: Destination,
    pub routing_key: Box<str>,
    pub arguments: FieldTable,
}

impl Binding {
    fn same(&self, other: &Binding) -> bool {
        self.destination.same(&other.destination)
            && self.routing_key == other.routing_key
            && self.arguments == other.arguments
    }
}

/// A binding as seen from outside: for listings and definitions export.
#[derive(Clone, Debug)]
pub struct BindingInfo {
    pub source: Arc<str>,
    pub destination: Arc<str>,
    pub destination_kind: DestKind,
    pub routing_key: Box<str>,
    pub arguments: FieldTable,
}

enum Router {
    Direct(direct::DirectRouter),
    Fanout(fanout::FanoutRouter),
    Topic(TopicTrie),
    Headers(headers::HeadersRouter),
}

impl Router {
    fn new(kind: ExchangeType) -> Self {
        match kind {
            ExchangeType::Direct => Router::Direct(Default::default()),
            ExchangeType::Fanout => Router::Fanout(Default::default()),
            ExchangeType::Topic => Router::Topic(Default::default()),
            ExchangeType::Headers => Router::Headers(Default::default()),
        }
    }

    fn add(&mut self, b: &Binding) {
        match self {
            Router::Direct(r) => r.add(&b.routing_key, b.destination.clone()),
            Router::Fanout(r) => r.add(b.destination.clone()),
            Router::Topic(r) => r.add(&b.routing_key, b.destination.clone()),
            Router::Headers(r) => r.add(&b.arguments, b.destination.clone()),
        }
    }

    fn remove(&mut self, b: &Binding) {
        match self {
            Router::Direct(r) => r.remove(&b.routing_key, &b.destination),
            Router::Fanout(r) => r.remove(&b.destination),
            Router::Topic(r) => r.remove(&b.routing_key, &b.destination),
            Router::Headers(r) => r.remove(&b.arguments, &b.destination),
        }
    }

    fn route(&self, key: &str, headers: Option<&FieldTable>, out: &mut Vec<Destination>) {
        match self {
            Router::Direct(r) => r.route(key, out),
            Router::Fanout(r) => r.route(out),
            Router::Topic(r) => r.route(key, out),
            Router::Headers(r) => r.route(headers, out),
        }
    }
}

struct Bindings {
    list: Vec<Binding>,
    router: Router,
}

pub struct Exchange {
    pub name: Arc<str>,
    pub vhost: Arc<str>,
    pub kind: ExchangeType,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
    bindings: RwLock<Bindings>,
    deleted: AtomicBool,
    /// The alternate exchange in effect (argument, else policy), and the
    /// policy applied.
    alternate: RwLock<Option<Arc<str>>>,
    policy: RwLock<Option<String>>,
    pub stats: ExchangeStats,
}

/// The queues a message reaches. Most messages reach one or a few.
pub type RouteTargets = SmallVec<[Arc<Queue>; 4]>;

impl Exchange {
    pub fn new(
        name: Arc<str>,
        vhost: Arc<str>,
        kind: ExchangeType,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    ) -> Self {
        Exchange {
            name,
            vhost,
            kind,
            durable,
            auto_delete,
            internal,
            arguments,
            bindings: RwLock::new(Bindings { list: Vec::new(), router: Router::new(kind) }),
            deleted: AtomicBool::new(false),
            alternate: RwLock::new(None),
            policy: RwLock::new(None),
            stats: ExchangeStats::default(),
        }
    }

    /// Where unroutable messages go, if anywhere.
    pub fn alternate(&self) -> Option<Arc<str>> {
        self.alternate.read().clone()
    }

    pub fn policy(&self) -> Option<String> {
        self.policy.read().clone()
    }

    /// Takes the settings of the policy in effect (the `alternate-exchange`
    /// argument wins over the policy's).
    pub fn apply_policy(&self, policies: &super::policy::VhostPolicies) {
        let p = super::policy::select(&policies.policies, super::policy::Target::Exchange, &self.name);
        let from_arg = super::args::as_str_arg(&self.arguments, "alternate-exchange");
        let from_policy = p.and_then(|p| p.definition.get("alternate-exchange")?.as_str().map(str::to_owned));
        *self.alternate.write() = from_arg.or(from_policy).map(Into::into);
        *self.policy.write() = p.map(|p| p.name.clone());
    }

    pub fn is_default(&self) -> bool {
        self.name.is_empty()
    }

    pub fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// Adds a binding; false when the same binding already exists.
    pub fn bind(&self, b: Binding) -> bool {
        let mut g = self.bindings.write();
        if g.list.iter().any(|x| x.same(&b)) {
            return false;
        }
        g.router.add(&b);
        g.list.push(b);
        true
    }

    /// Removes a binding; false when there was no such binding.
    pub fn unbind(&self, b: &Binding) -> bool {
        let mut g = self.bindings.write();
        let Some(pos) = g.list.iter().position(|x| x.same(b)) else {
            return false;
        };
        let removed = g.list.remove(pos);
        g.router.remove(&removed);
        true
    }

    /// Removes every binding to `dest`; returns how many there were.
    pub fn unbind_destination(&self, dest: &Destination) -> usize {
        let mut g = self.bindings.write();
        let Bindings { list, router } = &mut *g;
        let before = list.len();
        list.retain(|b| {
            if b.destination.same(dest) {
                router.remove(b);
                false
            } else {
                true
            }
        });
        before - list.len()
    }

    pub fn clear_bindings(&self) {
        let mut g = self.bindings.write();
        g.list.clear();
        g.router = Router::new(self.kind);
    }

    pub fn binding_count(&self) -> usize {
        self.bindings.read().list.len()
    }

    pub fn has_binding(&self, b: &Binding) -> bool {
        self.bindings.read().list.iter().any(|x| x.same(b))
    }

    pub fn bindings(&self) -> Vec<BindingInfo> {
        self.bindings
            .read()
            .list
            .iter()
            .map(|b| BindingInfo {
                source: self.name.clone(),
                destination: match &b.destination {
                    Destination::Queue(q) => q.name.clone(),
                    Destination::Exchange(x) => x.name.clone(),
                },
                destination_kind: b.destination.kind(),
                routing_key: b.routing_key.clone(),
                arguments: b.arguments.clone(),
            })
            .collect()
    }

    /// Direct destinations of one routing step (no exchange-to-exchange
    /// expansion); the vhost does the expansion.
    pub fn route_step(&self, key: &str, headers: Option<&FieldTable>, out: &mut Vec<Destination>) {
        self.bindings.read().router.route(key, headers, out);
    }

    /// Routes through this exchange and any exchanges bound to it, collecting
    /// each queue once. Loops between exchanges are cut by a visited list.
    pub fn route(&self, key: &str, headers: Option<&FieldTable>, out: &mut RouteTargets) {
        let mut step = Vec::new();
        self.route_step(key, headers, &mut step);
        if step.is_empty() {
            return;
        }
        let mut visited: SmallVec<[*const Exchange; 4]> = SmallVec::new();
        visited.push(self as *const Exchange);
        let mut pending = step;
        while let Some(dest) = pending.pop() {
            match dest {
                Destination::Queue(q) => {
                    if !out.iter().any(|x| Arc::ptr_eq(x, &q)) {
                        out.push(q);
                    }
                }
                Destination::Exchange(x) => {
                    let p = Arc::as_ptr(&x);
                    if visited.contains(&p) || x.is_deleted() {
                        continue;
                    }
                    visited.push(p);
                    x.route_step(key, headers, &mut pending);
                }
            }
        }
    }
}
