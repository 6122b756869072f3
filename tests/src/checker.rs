//! A Jepsen-style checker for replicated queues: publishers send unique,
//! checksummed messages with confirms through every node (reconnecting to
//! any node that answers when theirs fails), consumers consume and ack
//! through every node, and after the faults every queue is drained
//! through every node. The history then says what happened to each
//! message:
//!
//! - **lost**: confirmed, never consumed (must be 0);
//! - **unexpected**: consumed but never published, or from another queue
//!   than the one it was published to (must be 0);
//! - **corrupted**: a body whose checksum does not match (must be 0);
//! - **duplicated**: consumed more than once (at-least-once delivery
//!   allows it; counted);
//! - **indeterminate**: published without a confirm (nacked, timed out,
//!   connection lost), of which some were seen (allowed either way).
//!
//! For each fault the test records ([`Run::fault`]), the report gives how
//! long after it began a message published after it was confirmed again
//! through a node of the majority side.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

/// How a run is shaped.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Every node's AMQP URI; index = node.
    pub uris: Vec<String>,
    /// The queues (vhost `/`, default exchange), declared by the test.
    pub queues: Vec<String>,
    /// Publishers per node (each starts on its node and moves on failure).
    pub publishers_per_node: usize,
    /// Consumers per node and queue.
    pub consumers_per_node: usize,
    /// Messages a publisher has in flight before it waits for their confirms.
    pub window: usize,
    /// A pause between windows, to keep the rate modest on a small machine.
    pub pause: Duration,
    pub prefetch: u16,
    /// How long a publisher waits for its window's confirms before it
    /// calls the rest indeterminate and moves to another node (a group
    /// without a majority nacks after 5 s).
    pub confirm_timeout: Duration,
    /// How long each node's probe (one message at a time) waits.
    pub probe_timeout: Duration,
}

impl Workload {
    pub fn new(uris: Vec<String>, queues: &[&str]) -> Workload {
        Workload {
            uris,
            queues: queues.iter().map(|q| q.to_string()).collect(),
            publishers_per_node: 1,
            consumers_per_node: 1,
            window: 20,
            pause: Duration::from_millis(10),
            prefetch: 20,
            confirm_timeout: Duration::from_secs(7),
            probe_timeout: Duration::from_secs(1),
        }
    }
}

/// The body of message `id` for `queue`: `queue|id|padding|crc32`, the
/// CRC over everything before the last `|`.
pub fn body(queue: &str, id: u64) -> Vec<u8> {
    let head = format!("{queue}|{id}|{}", "x".repeat((id % 97) as usize + 16));
    let crc = crc32fast::hash(head.as_bytes());
    format!("{head}|{crc:08x}").into_bytes()
}

/// The queue and id of a body whose checksum matches.
pub fn parse(body: &[u8]) -> Option<(String, u64)> {
    let text = std::str::from_utf8(body).ok()?;
    let (head, crc) = text.rsplit_once('|')?;
    if u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(head.as_bytes()) {
        return None;
    }
    let mut parts = head.split('|');
    let queue = parts.next()?.to_owned();
    let id = parts.next()?.parse().ok()?;
    Some((queue, id))
}

/// A confirm the publishers got: when the message was sent and confirmed,
/// and through which node.
#[derive(Clone, Copy, Debug)]
pub struct Confirm {
    pub sent: Instant,
    pub at: Instant,
    pub via: usize,
}

/// What one publisher saw.
#[derive(Default, Debug)]
struct PubLog {
    /// id → its queue, for every message whose publish was attempted.
    attempted: BTreeMap<u64, usize>,
    acked: BTreeSet<u64>,
    nacked: BTreeSet<u64>,
    /// Sent without an answer (timed out, connection lost).
    unknown: BTreeSet<u64>,
}

#[derive(Default)]
struct Consumed {
    /// (queue index it came from, id) → times consumed.
    seen: BTreeMap<(usize, u64), u32>,
    corrupted: Vec<Vec<u8>>,
    deliveries: u64,
    redelivered: u64,
    drained: u64,
}

struct Shared {
    w: Workload,
    start: Instant,
    stop_publishing: AtomicBool,
    stop_consuming: AtomicBool,
    confirms: Mutex<Vec<Confirm>>,
    acked: AtomicUsize,
    consumed: Mutex<Consumed>,
    next_id: AtomicU64,
    /// Reconnections of publishers and consumers.
    reconnects: AtomicUsize,
    cancels: AtomicUsize,
    /// `WARREN_CHECKER_TRACE=1`: print every nack, timeout and reconnection.
    trace: bool,
}

impl Shared {
    fn t(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn record(&self, queue: usize, data: &[u8], redelivered: bool) {
        let mut c = self.consumed.lock().unwrap();
        c.deliveries += 1;
        if redelivered {
            c.redelivered += 1;
        }
        match parse(data) {
            Some((q, id)) => {
                // A message of another queue (or an unknown queue) is
                // recorded under a queue index that cannot match.
                let from = if self.w.queues[queue] == q { queue } else { usize::MAX };
                *c.seen.entry((from, id)).or_insert(0) += 1;
            }
            None => c.corrupted.push(data.to_vec()),
        }
    }
}

/// A fault the test injected, for the report.
#[derive(Clone, Debug)]
pub struct Fault {
    pub what: String,
    pub at: Instant,
    /// The nodes of the side that must go on (a majority).
    pub majority: Vec<usize>,
}

/// A running workload: publishers and consumers on every node.
pub struct Run {
    shared: Arc<Shared>,
    publishers: Vec<tokio::task::JoinHandle<PubLog>>,
    consumers: Vec<tokio::task::JoinHandle<()>>,
    /// The publishers' histories, once they stopped.
    logs: Vec<PubLog>,
    faults: Vec<Fault>,
}

async fn connect(uri: &str) -> Option<(Connection, Channel)> {
    let go = async {
        let c = Connection::connect(uri, ConnectionProperties::default()).await.ok()?;
        let ch = c.create_channel().await.ok()?;
        Some((c, ch))
    };
    tokio::time::timeout(Duration::from_secs(3), go).await.ok().flatten()
}

async fn close(c: Connection) {
    let _ = tokio::time::timeout(Duration::from_secs(1), c.close(200, "bye".into())).await;
}

/// A publisher's shape: its window, how long it waits for a window's
/// confirms, and whether it moves to the next node when its own fails.
#[derive(Clone, Copy)]
struct Style {
    window: usize,
    timeout: Duration,
    roam: bool,
}

async fn publisher(s: Arc<Shared>, first: usize, style: Style) -> PubLog {
    let n = s.w.uris.len();
    let mut log = PubLog::default();
    let mut turn = first;
    while !s.stop_publishing.load(Ordering::Relaxed) {
        let via = turn % n;
        if style.roam {
            turn += 1;
        }
        let Some((c, ch)) = connect(&s.w.uris[via]).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if ch.confirm_select(ConfirmSelectOptions::default()).await.is_err() {
            close(c).await;
            continue;
        }
        'conn: while !s.stop_publishing.load(Ordering::Relaxed) {
            let mut window = Vec::new();
            for _ in 0..style.window {
                let id = s.next_id.fetch_add(1, Ordering::Relaxed);
                let q = (id as usize) % s.w.queues.len();
                log.attempted.insert(id, q);
                let props = BasicProperties::default().with_delivery_mode(2);
                let data = body(&s.w.queues[q], id);
                let sent = Instant::now();
                let publish = ch.basic_publish(
                    "".into(),
                    s.w.queues[q].as_str().into(),
                    Default::default(),
                    &data,
                    props,
                );
                match tokio::time::timeout(style.timeout, publish).await {
                    Ok(Ok(confirm)) => window.push((id, sent, confirm)),
                    _ => {
                        log.unknown.insert(id);
                        break;
                    }
                }
            }
            let mut broken = window.len() < style.window;
            let (mut nacks, mut lost) = (0, 0);
            let window_sent = window.first().map(|w| w.1);
            // One deadline for the whole window.
            let deadline = tokio::time::Instant::now() + style.timeout;
            for (id, sent, confirm) in window {
                match tokio::time::timeout_at(deadline, confirm).await {
                    Ok(Ok(c)) if c.is_ack() => {
                        log.acked.insert(id);
                        s.acked.fetch_add(1, Ordering::Relaxed);
                        s.confirms.lock().unwrap().push(Confirm { sent, at: Instant::now(), via });
                    }
                    Ok(Ok(_)) => {
                        log.nacked.insert(id);
                        nacks += 1;
                    }
                    _ => {
                        log.unknown.insert(id);
                        lost += 1;
                        broken = true;
                    }
                }
            }
            if (nacks > 0 || broken) && s.trace && style.roam {
                let waited = window_sent.map(|t| t.elapsed()).unwrap_or_default();
                eprintln!(
                    "[checker {:>6.2}s] publisher {first} via node {via}: {nacks} nacked, {lost} unanswered in a window sent {waited:?} ago{}",
                    s.t(),
                    if broken { "; moving on" } else { "" }
                );
            }
            if broken {
                break 'conn;
            }
            // Nacks come at once while a queue has no leader: no busy loop.
            let pause = if nacks > 0 { Duration::from_millis(50) } else { s.w.pause };
            tokio::time::sleep(pause).await;
        }
        s.reconnects.fetch_add(1, Ordering::Relaxed);
        close(c).await;
    }
    log
}

async fn consumer(s: Arc<Shared>, first: usize, queue: usize, tag: String) {
    let n = s.w.uris.len();
    let mut turn = first;
    while !s.stop_consuming.load(Ordering::Relaxed) {
        let via = turn % n;
        turn += 1;
        let Some((c, ch)) = connect(&s.w.uris[via]).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let subscribed = async {
            ch.basic_qos(s.w.prefetch, BasicQosOptions::default()).await.ok()?;
            let opts = BasicConsumeOptions::default();
            ch.basic_consume(
                s.w.queues[queue].as_str().into(),
                tag.as_str().into(),
                opts,
                FieldTable::default(),
            )
            .await
            .ok()
        };
        let Some(mut stream) = tokio::time::timeout(Duration::from_secs(5), subscribed).await.ok().flatten()
        else {
            close(c).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        loop {
            if s.stop_consuming.load(Ordering::Relaxed) {
                break;
            }
            match tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
                Err(_) => continue,
                Ok(Some(Ok(d))) => {
                    s.record(queue, &d.data, d.redelivered);
                    let ack = d.ack(BasicAckOptions::default());
                    if !matches!(tokio::time::timeout(Duration::from_secs(3), ack).await, Ok(Ok(_))) {
                        break;
                    }
                }
                // Cancelled (the queue's leader moved away from a node that
                // lost leadership) or the connection failed: consume again,
                // through the next node.
                Ok(end) => {
                    s.cancels.fetch_add(1, Ordering::Relaxed);
                    if s.trace {
                        let why = end.map(|e| e.err().map(|e| e.to_string()).unwrap_or_default());
                        eprintln!(
                            "[checker {:>6.2}s] consumer {tag} via node {via} ended ({why:?}); consuming again",
                            s.t()
                        );
                    }
                    break;
                }
            }
        }
        s.reconnects.fetch_add(1, Ordering::Relaxed);
        close(c).await;
    }
}

/// Drains `queue` through node `via` with basic.get and acks, recording
/// what comes; true once a get answered empty.
async fn drain_once(s: &Shared, via: usize, queue: usize) -> bool {
    let Some((c, ch)) = connect(&s.w.uris[via]).await else { return false };
    let name = s.w.queues[queue].as_str();
    let done = loop {
        let get = ch.basic_get(name.into(), BasicGetOptions { no_ack: false });
        let m = match tokio::time::timeout(Duration::from_secs(5), get).await {
            Ok(Ok(m)) => m,
            _ => break false,
        };
        let Some(m) = m else { break true };
        s.record(queue, &m.delivery.data, m.delivery.redelivered);
        s.consumed.lock().unwrap().drained += 1;
        let ack = m.delivery.ack(BasicAckOptions::default());
        if !matches!(tokio::time::timeout(Duration::from_secs(3), ack).await, Ok(Ok(_))) {
            break false;
        }
    };
    close(c).await;
    done
}

/// The checker's findings.
#[derive(Debug, Default)]
pub struct Report {
    pub attempted: usize,
    pub acked: usize,
    pub nacked: usize,
    pub unknown: usize,
    pub consumed_ids: usize,
    pub deliveries: u64,
    pub redelivered: u64,
    pub drained: u64,
    pub lost: Vec<u64>,
    pub unexpected: Vec<(usize, u64)>,
    pub corrupted: usize,
    /// Ids consumed more than once, and the extra deliveries in all.
    pub duplicated: usize,
    pub extra_deliveries: u64,
    /// Unconfirmed (nacked or unknown) and seen, and unconfirmed in all.
    pub indeterminate_seen: usize,
    pub indeterminate: usize,
    pub reconnects: usize,
    pub cancels: usize,
    /// Per fault: what, and how long until a message published after it
    /// began was confirmed through a majority node (None: never).
    pub recovery: Vec<(String, Option<Duration>)>,
    /// The longest time without any confirm, while publishing.
    pub longest_gap: Duration,
}

impl Report {
    /// Prints the figures (so they appear in the test output).
    pub fn print(&self, title: &str) {
        eprintln!("== checker: {title}");
        eprintln!(
            "   published {} (confirmed {}, nacked {}, unanswered {}); consumed {} ids in {} deliveries ({} redelivered, {} drained at the end)",
            self.attempted,
            self.acked,
            self.nacked,
            self.unknown,
            self.consumed_ids,
            self.deliveries,
            self.redelivered,
            self.drained
        );
        eprintln!(
            "   lost {}, unexpected {}, corrupted {}, duplicated {} ({} extra deliveries), indeterminate seen {} of {}",
            self.lost.len(),
            self.unexpected.len(),
            self.corrupted,
            self.duplicated,
            self.extra_deliveries,
            self.indeterminate_seen,
            self.indeterminate
        );
        eprintln!(
            "   client reconnections {}, consumer cancels/ends {}, longest time without a confirm {:?}",
            self.reconnects, self.cancels, self.longest_gap
        );
        for (what, r) in &self.recovery {
            match r {
                Some(d) => {
                    eprintln!("   {what}: a publish was confirmed again on the majority side {d:?} after it")
                }
                None => eprintln!("   {what}: no publish was ever confirmed again on the majority side"),
            }
        }
    }

    /// Lost, unexpected and corrupted must be 0.
    pub fn assert_valid(&self) {
        assert!(
            self.lost.is_empty(),
            "{} confirmed messages lost, e.g. {:?}",
            self.lost.len(),
            &self.lost[..self.lost.len().min(10)]
        );
        assert!(
            self.unexpected.is_empty(),
            "{} messages consumed that were never published (to that queue), e.g. {:?}",
            self.unexpected.len(),
            &self.unexpected[..self.unexpected.len().min(10)]
        );
        assert_eq!(self.corrupted, 0, "corrupted messages");
    }
}

impl Run {
    /// Starts the publishers and consumers of `w`.
    pub fn start(w: Workload) -> Run {
        let shared = Arc::new(Shared {
            w,
            start: Instant::now(),
            stop_publishing: AtomicBool::new(false),
            stop_consuming: AtomicBool::new(false),
            confirms: Mutex::default(),
            acked: AtomicUsize::new(0),
            consumed: Mutex::default(),
            next_id: AtomicU64::new(0),
            reconnects: AtomicUsize::new(0),
            cancels: AtomicUsize::new(0),
            trace: std::env::var("WARREN_CHECKER_TRACE").is_ok_and(|v| v == "1"),
        });
        let n = shared.w.uris.len();
        let mut publishers = Vec::new();
        let mut consumers = Vec::new();
        for node in 0..n {
            let w = &shared.w;
            let style = Style { window: w.window, timeout: w.confirm_timeout, roam: true };
            for _ in 0..w.publishers_per_node {
                publishers.push(tokio::spawn(publisher(shared.clone(), node, style)));
            }
            // A probe: one message at a time through this node only, given
            // up after a second (then a new connection): it tells when the
            // node confirms again, whatever the others' windows wait for.
            let probe = Style { window: 1, timeout: w.probe_timeout, roam: false };
            publishers.push(tokio::spawn(publisher(shared.clone(), node, probe)));
            for q in 0..shared.w.queues.len() {
                for k in 0..shared.w.consumers_per_node {
                    let tag = format!("checker-{node}-{q}-{k}");
                    consumers.push(tokio::spawn(consumer(shared.clone(), node, q, tag)));
                }
            }
        }
        Run { shared, publishers, consumers, logs: Vec::new(), faults: Vec::new() }
    }

    /// Messages confirmed so far.
    pub fn acked(&self) -> usize {
        self.shared.acked.load(Ordering::Relaxed)
    }

    /// Distinct messages consumed so far.
    pub fn consumed(&self) -> usize {
        self.shared.consumed.lock().unwrap().seen.len()
    }

    /// Waits until `n` more messages are confirmed and consumed than now;
    /// false on timeout.
    pub async fn progress(&self, n: usize, timeout: Duration) -> bool {
        let (a, c) = (self.acked(), self.consumed());
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.acked() >= a + n && self.consumed() >= c + n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Records a fault beginning now, that the nodes of `majority` must
    /// ride out.
    pub fn fault(&mut self, what: impl Into<String>, majority: &[usize]) {
        let what = what.into();
        eprintln!("[checker {:>6.2}s] fault: {what}", self.shared.t());
        self.faults.push(Fault { what, at: Instant::now(), majority: majority.to_vec() });
    }

    /// How long after the last fault began a message published after it
    /// was confirmed through a majority node, if one was yet.
    pub fn recovered(&self) -> Option<Duration> {
        let f = self.faults.last()?;
        self.recovery(f)
    }

    fn recovery(&self, f: &Fault) -> Option<Duration> {
        recovery(&self.shared, f)
    }

    /// Waits (up to `timeout`) until the last fault's majority confirms again.
    pub async fn until_recovered(&self, timeout: Duration) -> Option<Duration> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(d) = self.recovered() {
                return Some(d);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops consuming (what consumers had not acked goes back to the
    /// queues), lets the publishers build a backlog for a second, then
    /// stops them, and leaves the queues as they are, so that a test can
    /// look at a queue holding messages before [`Run::finish`] drains it.
    pub async fn quiesce(&mut self) {
        let s = self.shared.clone();
        if !self.consumers.is_empty() {
            s.stop_consuming.store(true, Ordering::Relaxed);
            for c in std::mem::take(&mut self.consumers) {
                tokio::time::timeout(Duration::from_secs(30), c).await.expect("a consumer stops").unwrap();
            }
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
        s.stop_publishing.store(true, Ordering::Relaxed);
        for p in std::mem::take(&mut self.publishers) {
            self.logs.push(
                tokio::time::timeout(Duration::from_secs(30), p).await.expect("a publisher stops").unwrap(),
            );
        }
    }

    /// Stops consuming, then publishing; drains every queue through every
    /// node (again until a full round through all nodes finds them all
    /// empty, within `timeout`), and checks the history.
    pub async fn finish(mut self, timeout: Duration) -> Report {
        self.quiesce().await;
        let s = self.shared.clone();
        let logs = std::mem::take(&mut self.logs);
        let n = s.w.uris.len();
        let deadline = Instant::now() + timeout;
        // Done after two rounds through every node, a second apart, that
        // find every queue empty (what closed consumers had not acked may
        // come back to a queue a little after their channels close).
        let mut empty_rounds = 0;
        loop {
            let before = s.consumed.lock().unwrap().deliveries;
            let mut all_empty = true;
            for via in 0..n {
                for q in 0..s.w.queues.len() {
                    all_empty &= drain_once(&s, via, q).await;
                }
            }
            let after = s.consumed.lock().unwrap().deliveries;
            if all_empty && after == before {
                empty_rounds += 1;
                if empty_rounds == 2 {
                    break;
                }
            } else {
                empty_rounds = 0;
            }
            assert!(Instant::now() < deadline, "the queues could not be drained through every node");
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }

        // The history.
        let mut r = Report::default();
        let mut attempted = BTreeMap::new();
        let (mut acked, mut unconfirmed) = (BTreeSet::new(), BTreeSet::new());
        for log in &logs {
            attempted.extend(log.attempted.iter().map(|(k, v)| (*k, *v)));
            acked.extend(log.acked.iter().copied());
            unconfirmed.extend(log.nacked.iter().chain(&log.unknown).copied());
            r.nacked += log.nacked.len();
            r.unknown += log.unknown.len();
        }
        r.attempted = attempted.len();
        r.acked = acked.len();
        let c = s.consumed.lock().unwrap();
        let seen_ids: BTreeSet<u64> =
            c.seen.keys().filter(|(q, _)| *q != usize::MAX).map(|(_, id)| *id).collect();
        r.consumed_ids = seen_ids.len();
        r.deliveries = c.deliveries;
        r.redelivered = c.redelivered;
        r.drained = c.drained;
        r.corrupted = c.corrupted.len();
        r.lost = acked.iter().filter(|id| !c.seen.contains_key(&(attempted[id], **id))).copied().collect();
        r.unexpected = c.seen.keys().filter(|(q, id)| attempted.get(id) != Some(q)).copied().collect();
        r.duplicated = c.seen.values().filter(|k| **k > 1).count();
        r.extra_deliveries = c.seen.values().map(|k| u64::from(k.saturating_sub(1))).sum();
        r.indeterminate = unconfirmed.len();
        r.indeterminate_seen = unconfirmed.iter().filter(|id| seen_ids.contains(id)).count();
        r.reconnects = s.reconnects.load(Ordering::Relaxed);
        r.cancels = s.cancels.load(Ordering::Relaxed);
        r.recovery = self.faults.iter().map(|f| (f.what.clone(), recovery(&s, f))).collect();
        let mut times: Vec<Instant> = s.confirms.lock().unwrap().iter().map(|c| c.at).collect();
        times.sort();
        r.longest_gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
        r
    }
}

fn recovery(s: &Shared, f: &Fault) -> Option<Duration> {
    let confirms = s.confirms.lock().unwrap();
    confirms.iter().filter(|c| c.sent >= f.at && f.majority.contains(&c.via)).map(|c| c.at - f.at).min()
}
