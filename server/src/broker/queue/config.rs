//! A queue's effective settings: its declaration arguments combined with
//! the policy and operator policy in effect, the way RabbitMQ combines them.
//! Numeric limits take the smallest of the three; the other keys come from
//! the argument when there is one, else from the policy.

use amq_protocol::types::FieldTable;
use serde_json::{Map, Value};

use super::replica::Replication;
use crate::broker::args::{as_int, as_str};
use crate::broker::policy::{Policy, Target, VhostPolicies, select};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Overflow {
    #[default]
    DropHead,
    RejectPublish,
    RejectPublishDlx,
}

impl Overflow {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "drop-head" => Some(Self::DropHead),
            "reject-publish" => Some(Self::RejectPublish),
            "reject-publish-dlx" => Some(Self::RejectPublishDlx),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct QueueConfig {
    pub message_ttl: Option<u64>,
    pub expires: Option<u64>,
    pub max_length: Option<u64>,
    pub max_length_bytes: Option<u64>,
    pub overflow: Overflow,
    pub dead_letter_exchange: Option<String>,
    pub dead_letter_routing_key: Option<String>,
    /// From the argument only, as in RabbitMQ: it shapes the queue.
    pub max_priority: Option<u8>,
    pub single_active_consumer: bool,
    pub delivery_limit: Option<u64>,
    pub quorum: bool,
    /// Whether the queue is kept by a Raft group (in a cluster), and how
    /// its members are chosen.
    pub replication: Option<Replication>,
    pub policy: Option<String>,
    pub operator_policy: Option<String>,
    /// The settings that came from policies, for the management API.
    pub effective_policy_definition: Map<String, Value>,
}

fn json_u64(v: &Value) -> Option<u64> {
    v.as_u64()
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl QueueConfig {
    pub fn target(args: &FieldTable) -> Target {
        match args.inner().get("x-queue-type").and_then(as_str).as_deref() {
            Some("quorum") => Target::QuorumQueue,
            _ => Target::ClassicQueue,
        }
    }

    pub fn resolve(name: &str, args: &FieldTable, policies: &VhostPolicies) -> QueueConfig {
        let target = Self::target(args);
        let policy = select(&policies.policies, target, name);
        let operator = select(&policies.operator, target, name);
        let a = |k: &str| args.inner().get(k);
        let arg_u64 = |k: &str| a(k).and_then(as_int).and_then(|n| u64::try_from(n).ok());
        let pol = |p: Option<&Policy>, k: &str| p.and_then(|p| p.definition.get(k).cloned());
        let pol_u64 = |p: Option<&Policy>, k: &str| pol(p, k).as_ref().and_then(json_u64);
        let limit = |arg: &str, key: &str| {
            min_opt(min_opt(arg_u64(arg), pol_u64(policy, key)), pol_u64(operator, key))
        };
        let string = |arg: &str, key: &str| {
            a(arg).and_then(as_str).or_else(|| pol(policy, key).and_then(|v| v.as_str().map(str::to_owned)))
        };
        let mut effective = Map::new();
        for p in [policy, operator].into_iter().flatten() {
            for (k, v) in &p.definition {
                effective.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let quorum = target == Target::QuorumQueue;
        let replication = if quorum {
            Some(Replication::Quorum { initial: arg_u64("x-quorum-initial-group-size").filter(|n| *n > 0) })
        } else {
            ha_mode(policy)
        };
        QueueConfig {
            message_ttl: limit("x-message-ttl", "message-ttl"),
            expires: limit("x-expires", "expires"),
            max_length: limit("x-max-length", "max-length"),
            max_length_bytes: limit("x-max-length-bytes", "max-length-bytes"),
            overflow: string("x-overflow", "overflow").and_then(|s| Overflow::parse(&s)).unwrap_or_default(),
            dead_letter_exchange: string("x-dead-letter-exchange", "dead-letter-exchange"),
            dead_letter_routing_key: string("x-dead-letter-routing-key", "dead-letter-routing-key"),
            max_priority: arg_u64("x-max-priority").filter(|n| *n > 0).map(|n| n.min(255) as u8),
            single_active_consumer: matches!(
                a("x-single-active-consumer"),
                Some(amq_protocol::types::AMQPValue::Boolean(true))
            ),
            delivery_limit: limit("x-delivery-limit", "delivery-limit").or(if quorum {
                Some(20)
            } else {
                None
            }),
            quorum,
            replication,
            policy: policy.map(|p| p.name.clone()),
            operator_policy: operator.map(|p| p.name.clone()),
            effective_policy_definition: effective,
        }
    }
}

/// The replication an `ha-mode` policy asks for (already validated when
/// the policy was set).
fn ha_mode(policy: Option<&Policy>) -> Option<Replication> {
    let def = &policy?.definition;
    let params = def.get("ha-params");
    match def.get("ha-mode")?.as_str()? {
        "all" => Some(Replication::All),
        "exactly" => Some(Replication::Exactly(params?.as_u64()?.max(1))),
        "nodes" => Some(Replication::Nodes(
            params?.as_array()?.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::parameters::Parameter;
    use amq_protocol::types::AMQPValue;
    use serde_json::json;

    fn policy(name: &str, def: Value) -> Policy {
        Policy::from_parameter(&Parameter {
            component: "policy".into(),
            vhost: "/".into(),
            name: name.into(),
            value: json!({"pattern": ".*", "definition": def}),
        })
        .unwrap()
    }

    #[test]
    fn limits_take_the_smallest_and_arguments_win_otherwise() {
        let mut args = FieldTable::default();
        args.insert("x-max-length".into(), AMQPValue::LongInt(100));
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("from-arg".into()));
        let policies = VhostPolicies {
            policies: vec![policy(
                "p",
                json!({"max-length": 50, "message-ttl": 1000, "dead-letter-exchange": "from-policy"}),
            )],
            operator: vec![policy("op", json!({"message-ttl": 500}))],
        };
        let c = QueueConfig::resolve("q", &args, &policies);
        assert_eq!(c.max_length, Some(50));
        assert_eq!(c.message_ttl, Some(500));
        assert_eq!(c.dead_letter_exchange.as_deref(), Some("from-arg"));
        assert_eq!(c.policy.as_deref(), Some("p"));
        assert_eq!(c.operator_policy.as_deref(), Some("op"));
        assert_eq!(c.effective_policy_definition.get("max-length"), Some(&json!(50)));
    }

    #[test]
    fn quorum_queues_get_a_default_delivery_limit() {
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        let c = QueueConfig::resolve("q", &args, &VhostPolicies::default());
        assert!(c.quorum);
        assert_eq!(c.delivery_limit, Some(20));
    }
}
