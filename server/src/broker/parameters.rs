//! Runtime parameters, as RabbitMQ models them: JSON values keyed by
//! (component, vhost, name). Policies are the component `policy`, operator
//! policies `operator_policy`, vhost limits `vhost-limits`; other components
//! (federation, shovels) are stored and returned as given. Global
//! parameters are keyed by name alone.

use std::collections::BTreeMap;

use parking_lot::RwLock;
use serde_json::Value;

use super::error::{BrokerError, Result};

pub const POLICY: &str = "policy";
pub const OPERATOR_POLICY: &str = "operator_policy";
pub const VHOST_LIMITS: &str = "vhost-limits";

#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub component: String,
    pub vhost: String,
    pub name: String,
    pub value: Value,
}

#[derive(Default)]
pub struct Parameters {
    map: RwLock<BTreeMap<(String, String, String), Value>>,
    global: RwLock<BTreeMap<String, Value>>,
}

impl Parameters {
    pub fn set(&self, component: &str, vhost: &str, name: &str, value: Value) {
        self.map.write().insert((component.into(), vhost.into(), name.into()), value);
    }

    pub fn clear(&self, component: &str, vhost: &str, name: &str) -> bool {
        self.map.write().remove(&(component.into(), vhost.into(), name.into())).is_some()
    }

    pub fn get(&self, component: &str, vhost: &str, name: &str) -> Option<Value> {
        self.map.read().get(&(component.into(), vhost.into(), name.into())).cloned()
    }

    /// Parameters filtered by component and vhost (None = any), sorted.
    pub fn list(&self, component: Option<&str>, vhost: Option<&str>) -> Vec<Parameter> {
        self.map
            .read()
            .iter()
            .filter(|((c, v, _), _)| component.is_none_or(|x| x == c) && vhost.is_none_or(|x| x == v))
            .map(|((c, v, n), value)| Parameter {
                component: c.clone(),
                vhost: v.clone(),
                name: n.clone(),
                value: value.clone(),
            })
            .collect()
    }

    pub fn clear_vhost(&self, vhost: &str) {
        self.map.write().retain(|(_, v, _), _| v != vhost);
    }

    pub fn set_global(&self, name: &str, value: Value) {
        self.global.write().insert(name.into(), value);
    }

    pub fn clear_global(&self, name: &str) -> bool {
        self.global.write().remove(name).is_some()
    }

    pub fn global(&self, name: &str) -> Option<Value> {
        self.global.read().get(name).cloned()
    }

    pub fn globals(&self) -> Vec<(String, Value)> {
        self.global.read().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Checks the shape RabbitMQ requires of a policy value: a valid regex
/// `pattern`, an object `definition`, an integer `priority`, and `apply-to`
/// one of the known targets.
pub fn validate_policy(value: &Value) -> Result<()> {
    let obj =
        value.as_object().ok_or_else(|| BrokerError::precondition_failed("policy must be a JSON object"))?;
    let pattern = obj
        .get("pattern")
        .and_then(Value::as_str)
        .ok_or_else(|| BrokerError::precondition_failed("pattern: required, must be a string"))?;
    regex::Regex::new(pattern)
        .map_err(|e| BrokerError::precondition_failed(format!("pattern: invalid regular expression: {e}")))?;
    match obj.get("definition") {
        Some(Value::Object(d)) if !d.is_empty() => {}
        _ => {
            return Err(BrokerError::precondition_failed("definition: required, must be a non-empty object"));
        }
    }
    if let Some(p) = obj.get("priority") {
        if !p.is_i64() {
            return Err(BrokerError::precondition_failed("priority: must be an integer"));
        }
    }
    if let Some(a) = obj.get("apply-to") {
        let ok = a.as_str().is_some_and(|s| {
            matches!(s, "all" | "queues" | "exchanges" | "classic_queues" | "quorum_queues" | "streams")
        });
        if !ok {
            return Err(BrokerError::precondition_failed(format!(
                "apply-to: '{}' is not one of all, queues, exchanges, classic_queues, quorum_queues, streams",
                a.as_str().unwrap_or("?")
            )));
        }
    }
    Ok(())
}

/// The definition keys RabbitMQ 3.10 recognises in a policy (core and
/// classic mirroring, which Warren stores without acting on).
const POLICY_KEYS: &[&str] = &[
    "alternate-exchange",
    "dead-letter-exchange",
    "dead-letter-routing-key",
    "dead-letter-strategy",
    "message-ttl",
    "expires",
    "max-length",
    "max-length-bytes",
    "max-in-memory-length",
    "max-in-memory-bytes",
    "delivery-limit",
    "overflow",
    "queue-mode",
    "queue-version",
    "queue-master-locator",
    "queue-leader-locator",
    "initial-cluster-size",
    "max-age",
    "stream-max-segment-size-bytes",
    "ha-mode",
    "ha-params",
    "ha-sync-mode",
    "ha-promote-on-shutdown",
    "ha-promote-on-failure",
    "ha-sync-batch-size",
];

/// The keys an operator policy may set (limits only), as in RabbitMQ.
const OPERATOR_POLICY_KEYS: &[&str] = &[
    "expires",
    "message-ttl",
    "max-length",
    "max-length-bytes",
    "max-in-memory-length",
    "max-in-memory-bytes",
    "delivery-limit",
];

/// Refuses definition keys RabbitMQ does not recognise, with its message
/// (`[{<<"max-lenght">>,2}] are not recognised policy settings`), so that
/// a typo does not pass silently.
pub fn validate_policy_keys(component: &str, value: &Value) -> Result<()> {
    let known = if component == OPERATOR_POLICY { OPERATOR_POLICY_KEYS } else { POLICY_KEYS };
    let Some(def) = value.get("definition").and_then(Value::as_object) else { return Ok(()) };
    let unknown: Vec<String> = def
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| format!("{{<<\"{k}\">>,{v}}}"))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(BrokerError::precondition_failed(format!(
        "Validation failed\n\n[{}] are not recognised policy settings",
        unknown.join(",")
    )))
}
