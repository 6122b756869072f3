//! Policies: named sets of queue and exchange settings applied by regex
//! pattern, as RabbitMQ has them. For each queue (or exchange) the policy
//! with the highest priority whose pattern matches and whose `apply-to`
//! covers it is in effect; an operator policy of the same vhost then caps
//! the numeric limits.

use regex::Regex;
use serde_json::{Map, Value};

use super::parameters::Parameter;

#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub pattern: Regex,
    pub apply_to: String,
    pub priority: i64,
    pub definition: Map<String, Value>,
}

/// What a policy is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    ClassicQueue,
    QuorumQueue,
    Exchange,
}

impl Policy {
    /// Builds a policy from its runtime parameter (validated on the way in).
    pub fn from_parameter(p: &Parameter) -> Option<Policy> {
        let v = &p.value;
        Some(Policy {
            name: p.name.clone(),
            pattern: Regex::new(v.get("pattern")?.as_str()?).ok()?,
            apply_to: v.get("apply-to").and_then(Value::as_str).unwrap_or("all").to_owned(),
            priority: v.get("priority").and_then(Value::as_i64).unwrap_or(0),
            definition: v.get("definition")?.as_object()?.clone(),
        })
    }

    pub fn applies(&self, target: Target, name: &str) -> bool {
        let kind_ok = match (self.apply_to.as_str(), target) {
            ("all", _) => true,
            ("queues", Target::ClassicQueue | Target::QuorumQueue) => true,
            ("classic_queues", Target::ClassicQueue) => true,
            ("quorum_queues", Target::QuorumQueue) => true,
            ("exchanges", Target::Exchange) => true,
            _ => false,
        };
        kind_ok && self.pattern.is_match(name)
    }
}

/// The policy in effect for a target: highest priority, then name.
pub fn select<'a>(policies: &'a [Policy], target: Target, name: &str) -> Option<&'a Policy> {
    policies
        .iter()
        .filter(|p| p.applies(target, name))
        .max_by(|a, b| a.priority.cmp(&b.priority).then_with(|| b.name.cmp(&a.name)))
}

/// The policies of a vhost, compiled.
#[derive(Debug, Clone, Default)]
pub struct VhostPolicies {
    pub policies: Vec<Policy>,
    pub operator: Vec<Policy>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(name: &str, pattern: &str, apply_to: &str, priority: i64) -> Policy {
        Policy::from_parameter(&Parameter {
            component: "policy".into(),
            vhost: "/".into(),
            name: name.into(),
            value: json!({"pattern": pattern, "apply-to": apply_to, "priority": priority,
                          "definition": {"max-length": 1}}),
        })
        .unwrap()
    }

    #[test]
    fn highest_priority_matching_policy_wins() {
        let ps = vec![
            policy("low", "^lqz", "all", 0),
            policy("high", "^lqz", "queues", 5),
            policy("x", "^lqz", "exchanges", 9),
        ];
        assert_eq!(select(&ps, Target::ClassicQueue, "lqz1").unwrap().name, "high");
        assert_eq!(select(&ps, Target::Exchange, "lqz1").unwrap().name, "x");
        assert!(select(&ps, Target::ClassicQueue, "other").is_none());
        let q = vec![policy("qq", ".*", "quorum_queues", 0)];
        assert!(select(&q, Target::ClassicQueue, "a").is_none());
        assert!(select(&q, Target::QuorumQueue, "a").is_some());
    }
}
