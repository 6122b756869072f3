//! The test modes, and what they share: the queues and exchange of a run
//! ([`Topology`]), connecting many producers and consumers at once, and
//! printing a summary as text or JSON.

pub mod backlog;
pub mod ceiling;
pub mod churn;
pub mod load;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::LoadArgs;
use crate::client::{Connection, QueueOptions};
use crate::consumer::{Consumer, ConsumerConfig};
use crate::publisher::{Publisher, PublisherConfig};
use crate::stats::Stats;

/// Connections opened at the same time when a run starts.
const CONNECT_PARALLELISM: usize = 32;

/// The queues of a run, the exchange in front of them, and who publishes
/// and consumes where.
#[derive(Debug, Clone)]
pub struct Topology {
    /// "" is the default exchange.
    pub exchange: String,
    pub exchange_type: String,
    pub queues: Vec<String>,
    pub routing_key: Option<String>,
    pub durable: bool,
    pub quorum: bool,
}

impl Topology {
    pub fn from_args(a: &LoadArgs) -> Self {
        let queues = match &a.queue_pattern {
            Some(p) => {
                (a.queue_pattern_from..=a.queue_pattern_to).map(|i| p.replace("%d", &i.to_string())).collect()
            }
            None => vec![a.queue.clone()],
        };
        let exchange = match (&a.exchange, a.exchange_type.as_str()) {
            (Some(e), _) => e.clone(),
            (None, "direct") => String::new(),
            (None, t) => format!("warren-perf.{t}"),
        };
        Topology {
            exchange,
            exchange_type: a.exchange_type.clone(),
            queues,
            routing_key: a.routing_key.clone(),
            durable: a.persistent() || a.durable || a.quorum_queue,
            quorum: a.quorum_queue,
        }
    }

    fn declares_exchange(&self) -> bool {
        !self.exchange.is_empty() && !self.exchange.starts_with("amq.")
    }

    /// Routing keys follow the queue names (so one copy per publish).
    fn keyed_by_queue(&self) -> bool {
        self.routing_key.is_none() && matches!(self.exchange_type.as_str(), "direct" | "topic")
    }

    pub async fn declare(&self, c: &mut Connection) -> Result<()> {
        if self.declares_exchange() {
            c.exchange_declare(&self.exchange, &self.exchange_type, self.durable).await?;
        }
        let opts = QueueOptions { durable: self.durable, quorum: self.quorum, passive: false };
        for q in &self.queues {
            c.queue_declare(q, &opts).await?;
            if !self.exchange.is_empty() {
                let key = self.routing_key.as_deref().unwrap_or(q);
                c.queue_bind(q, &self.exchange, key).await?;
            }
        }
        Ok(())
    }

    pub async fn delete(&self, c: &mut Connection) -> Result<()> {
        for q in &self.queues {
            c.queue_delete(q).await?;
        }
        if self.declares_exchange() {
            c.exchange_delete(&self.exchange).await?;
        }
        Ok(())
    }

    /// Ready messages in all the queues.
    pub async fn depth(&self, c: &mut Connection) -> Result<u64> {
        let mut n = 0;
        for q in &self.queues {
            n += c.queue_depth(q).await?;
        }
        Ok(n)
    }

    /// Where producer `p` of `producers` publishes: its share of the queues,
    /// round-robin, or the one routing key.
    pub fn targets(&self, p: usize, producers: usize) -> Vec<(String, String)> {
        if !self.keyed_by_queue() {
            let key = self.routing_key.clone().unwrap_or_default();
            return vec![(self.exchange.clone(), key)];
        }
        let n = self.queues.len();
        let mine: Vec<&String> = match n >= producers {
            true => self.queues.iter().skip(p).step_by(producers).collect(),
            false => vec![&self.queues[p % n]],
        };
        mine.into_iter().map(|q| (self.exchange.clone(), q.clone())).collect()
    }

    pub fn consumer_queue(&self, c: usize) -> &str {
        &self.queues[c % self.queues.len()]
    }

    /// How many deliveries one publish makes, when we can tell: every queue
    /// needs a consumer, and routing must be by queue name or fanout.
    pub fn copies(&self, producers: usize, consumers: usize) -> Option<u64> {
        if producers == 0 || consumers < self.queues.len() {
            return None;
        }
        if self.keyed_by_queue() {
            Some(1)
        } else if self.exchange_type == "fanout" {
            Some(self.queues.len() as u64)
        } else {
            None
        }
    }
}

/// Opens connections for `n` tasks, a few at a time, in order.
pub async fn connect_all<T, F, Fut>(n: usize, make: F) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(CONNECT_PARALLELISM));
    let mut set = JoinSet::new();
    for i in 0..n {
        let permit = permits.clone().acquire_owned().await?;
        let fut = make(i);
        set.spawn(async move {
            let r = fut.await;
            drop(permit);
            (i, r)
        });
    }
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, r) = joined?;
        out[i] = Some(r?);
    }
    Ok(out.into_iter().map(|t| t.expect("every task reported")).collect())
}

pub async fn connect_consumers(a: &LoadArgs, topo: &Topology, stats: &Arc<Stats>) -> Result<Vec<Consumer>> {
    let ep = crate::client::Endpoint::new(&a.common)?;
    let buffer = if a.consumers <= 16 { 256 * 1024 } else { 32 * 1024 };
    connect_all(a.consumers, |i| {
        let cfg = ConsumerConfig {
            id: i as u32,
            queue: topo.consumer_queue(i).to_owned(),
            autoack: a.autoack,
            prefetch: a.prefetch,
            multi_ack_every: a.multi_ack_every,
            buffer,
        };
        let (ep, stats) = (ep.clone(), stats.clone());
        async move { Consumer::connect(&ep, cfg, stats).await }
    })
    .await
}

/// Producers; `count` is the total to publish, split between them.
pub async fn connect_producers(
    a: &LoadArgs,
    topo: &Topology,
    stats: &Arc<Stats>,
    rate: Option<f64>,
    count: Option<u64>,
    close_timeout: Duration,
) -> Result<Vec<Publisher>> {
    let ep = crate::client::Endpoint::new(&a.common)?;
    let producers = a.producers;
    connect_all(producers, |i| {
        let share = count.map(|c| c / producers as u64 + u64::from((i as u64) < c % producers as u64));
        let cfg = PublisherConfig {
            id: i as u32,
            targets: topo.targets(i, producers),
            size: a.size,
            persistent: a.persistent(),
            mandatory: a.mandatory(),
            confirm: a.confirm,
            rate,
            count: share,
            wait_for_confirms: count.is_some() && a.confirm.is_some(),
            close_timeout,
        };
        let (ep, stats) = (ep.clone(), stats.clone());
        async move { Publisher::connect(&ep, cfg, stats).await }
    })
    .await
}

/// Prints a summary: pretty JSON with --json, else the given text.
pub fn emit(json: bool, summary: &Value, text: &str) {
    if json {
        println!("{}", serde_json::to_string_pretty(summary).expect("JSON values serialize"));
    } else {
        print!("{text}");
    }
}

/// Rates as whole numbers for the text summary.
pub fn rate(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
