//! Runtime parameters, as RabbitMQ models them: JSON values keyed by
//! (component, vhost, name). Policies are the component `policy`, operator
//! policies `operator_policy`, vhost limits `vhost-limits`; other components
//! (federation, shovels) are stored and returned as given. Global
//! parameters are keyed by name alone.

use std::collections::BTreeMap;

use parking_lot::RwLock;
use serde_json::Value;

use super::error::{BrokerError, Result};
use crate::definitions::OPERATOR_POLICY;

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
    if let Some(p) = obj.get("priority")
        && !p.is_i64()
    {
        return Err(BrokerError::precondition_failed("priority: must be an integer"));
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

/// Refuses a policy definition RabbitMQ would refuse, with its text: a
/// value of the wrong type or out of range (`Validation failed\n\n<<"ten">>
/// is not a valid maximum length\n`), or keys it does not recognise
/// (`[{<<"max-lenght">>,2}] are not recognised policy settings`), so that a
/// typo does not pass silently. Values are checked first, as in RabbitMQ.
pub fn validate_policy_keys(component: &str, value: &Value) -> Result<()> {
    let known = if component == OPERATOR_POLICY { OPERATOR_POLICY_KEYS } else { POLICY_KEYS };
    let Some(def) = value.get("definition").and_then(Value::as_object) else { return Ok(()) };
    let failed = |why: String| BrokerError::precondition_failed(format!("Validation failed\n\n{why}\n"));
    for (k, v) in def.iter().filter(|(k, _)| known.contains(&k.as_str())) {
        if let Some(why) = check_policy_value(k, v) {
            return Err(failed(why));
        }
    }
    if def.keys().any(|k| k.starts_with("ha-") && known.contains(&k.as_str()))
        && let Some(why) = check_mirroring(def)
    {
        return Err(failed(why));
    }
    let unknown: Vec<String> = def
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| format!("{{<<\"{k}\">>,{}}}", erlang_term(v)))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(failed(format!("[{}] are not recognised policy settings", unknown.join(","))))
}

/// A JSON value as Erlang's `~p` prints the term RabbitMQ decodes it to,
/// for error texts: strings are binaries (`<<"ten">>`), objects maps.
pub fn erlang_term(v: &Value) -> String {
    let list = |items: Vec<String>| items.join(",");
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("<<\"{}\">>", s.replace('\\', "\\\\").replace('"', "\\\"")),
        Value::Array(a) => format!("[{}]", list(a.iter().map(erlang_term).collect())),
        Value::Object(o) => format!(
            "#{{{}}}",
            list(
                o.iter()
                    .map(|(k, v)| format!("{} => {}", erlang_term(&Value::from(k.as_str())), erlang_term(v)))
                    .collect()
            )
        ),
    }
}

/// An integer (not a float) of at least `min`; those beyond `i64` too.
fn int_at_least(v: &Value, min: i64) -> bool {
    v.as_i64().map_or(v.is_u64(), |n| n >= min)
}

fn one_of(v: &Value, allowed: &[&str]) -> bool {
    v.as_str().is_some_and(|s| allowed.contains(&s))
}

/// RabbitMQ's `max-age`: a positive integer and a unit, `Y M D h m s`.
fn is_max_age(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (n, unit) = s.split_at(digits);
    n.parse::<u64>().is_ok_and(|n| n > 0) && matches!(unit, "Y" | "M" | "D" | "h" | "m" | "s")
}

/// One key's value, as RabbitMQ's policy validators check it
/// (`rabbit_policies`, `rabbit_queue_location_validator`); None when it is
/// fine. The `ha-*` keys are checked together by [`check_mirroring`].
fn check_policy_value(key: &str, v: &Value) -> Option<String> {
    let t = erlang_term(v);
    let bad = |what: &str| Some(format!("{t} is not a valid {what}"));
    match key {
        "alternate-exchange" if !v.is_string() => bad("alternate exchange name"),
        "dead-letter-exchange" if !v.is_string() => bad("dead letter exchange name"),
        "dead-letter-routing-key" if !v.is_string() => bad("dead letter routing key"),
        "dead-letter-strategy" if !one_of(v, &["at-most-once", "at-least-once"]) => {
            bad("dead letter strategy")
        }
        "message-ttl" if !int_at_least(v, 0) => bad("message TTL"),
        "expires" if !int_at_least(v, 1) => bad("queue expiry"),
        "max-length" if !int_at_least(v, 0) => bad("maximum length"),
        "max-length-bytes" if !int_at_least(v, 0) => bad("maximum length in bytes"),
        "max-in-memory-length" | "max-in-memory-bytes" if !int_at_least(v, 0) => {
            bad("maximum memory in bytes")
        }
        "queue-mode" if !one_of(v, &["default", "lazy"]) => bad("queue-mode value"),
        "queue-version" if !matches!(v.as_i64(), Some(1 | 2)) => bad("queue-version value"),
        "overflow" if !one_of(v, &["drop-head", "reject-publish", "reject-publish-dlx"]) => {
            bad("overflow value")
        }
        "delivery-limit" if !int_at_least(v, 0) => bad("delivery limit"),
        "max-age" if !is_max_age(v) => bad("max age"),
        "queue-leader-locator" if !one_of(v, &["client-local", "balanced", "random", "least-leaders"]) => {
            bad("queue leader locator value")
        }
        "queue-master-locator" if !one_of(v, &["client-local", "min-masters", "random"]) => {
            Some(format!("{t} invalid queue-master-locator value"))
        }
        "initial-cluster-size" if !int_at_least(v, 0) => bad("cluster size"),
        "stream-max-segment-size-bytes" if v.as_u64().is_none_or(|n| n > 3_000_000_000) => {
            bad("segment size")
        }
        _ => None,
    }
}

/// The classic mirroring keys, checked together as RabbitMQ checks them
/// (`rabbit_mirror_queue_misc:validate_policy`).
fn check_mirroring(def: &serde_json::Map<String, Value>) -> Option<String> {
    let Some(mode) = def.get("ha-mode") else {
        return Some(
            "ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown".into(),
        );
    };
    let params = def.get("ha-params");
    match mode.as_str() {
        Some("all") if params.is_some() => return Some("ha-mode=\"all\" does not take parameters".into()),
        Some("all") => {}
        Some("exactly") => match params {
            Some(p) if int_at_least(p, 1) => {}
            p => {
                let given = p.map_or_else(|| "none".to_owned(), erlang_term);
                return Some(format!("ha-mode=\"exactly\" takes an integer, {given} given"));
            }
        },
        Some("nodes") => match params {
            Some(Value::Array(a)) if a.is_empty() => {
                return Some("ha-mode=\"nodes\" list must be non-empty".into());
            }
            Some(Value::Array(a)) => {
                let invalid: Vec<&Value> = a.iter().filter(|n| !n.is_string()).collect();
                if !invalid.is_empty() {
                    let listed = invalid.iter().map(|v| erlang_term(v)).collect::<Vec<_>>().join(",");
                    return Some(format!(
                        "ha-mode=\"nodes\" takes a list of strings, [{listed}] was not a string"
                    ));
                }
            }
            p => {
                let given = p.map_or_else(|| "none".to_owned(), erlang_term);
                return Some(format!("ha-mode=\"nodes\" takes a list, {given} given"));
            }
        },
        _ => return Some(format!("{} is not a valid ha-mode value", erlang_term(mode))),
    }
    if let Some(m) = def.get("ha-sync-mode").filter(|m| !one_of(m, &["automatic", "manual"])) {
        return Some(format!("ha-sync-mode must be \"manual\" or \"automatic\", got {}", erlang_term(m)));
    }
    if let Some(n) = def.get("ha-sync-batch-size").filter(|n| !int_at_least(n, 1)) {
        return Some(format!("ha-sync-batch-size takes an integer greater than 0, {} given", erlang_term(n)));
    }
    for key in ["ha-promote-on-shutdown", "ha-promote-on-failure"] {
        if let Some(m) = def.get(key).filter(|m| !one_of(m, &["always", "when-synced"])) {
            return Some(format!("{key} must be \"always\" or \"when-synced\", got {}", erlang_term(m)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::definitions::POLICY;

    #[test]
    fn values_print_as_erlang_terms() {
        assert_eq!(erlang_term(&json!("ten")), r#"<<"ten">>"#);
        assert_eq!(erlang_term(&json!(-1)), "-1");
        assert_eq!(erlang_term(&json!(1.5)), "1.5");
        assert_eq!(erlang_term(&json!([1, "a\"b"])), r#"[1,<<"a\"b">>]"#);
        assert_eq!(erlang_term(&json!({"k": true})), r#"#{<<"k">> => true}"#);
    }

    #[test]
    fn policy_values_are_checked_per_key() {
        let why = |def: Value| {
            validate_policy_keys(POLICY, &json!({"pattern": ".*", "definition": def}))
                .err()
                .map(|e| e.message)
        };
        assert_eq!(
            why(json!({"max-length": "ten"})).as_deref(),
            Some("Validation failed\n\n<<\"ten\">> is not a valid maximum length\n")
        );
        assert!(why(json!({"max-length": 10, "overflow": "reject-publish-dlx", "expires": 1})).is_none());
        assert!(why(json!({"max-age": "0D"})).is_some());
        assert!(why(json!({"expires": 0})).is_some());
        assert!(why(json!({"ha-mode": "exactly", "ha-params": 0})).is_some());
        assert!(why(json!({"max-age": "12h"})).is_none());
        assert!(why(json!({"ha-mode": "nodes", "ha-params": []})).unwrap().contains("must be non-empty"));
        // Values are checked before unknown keys are reported.
        assert!(why(json!({"max-lenght": 1, "expires": 0})).unwrap().contains("not a valid queue expiry"));
        assert!(
            why(json!({"max-lenght": 1})).unwrap().contains("[{<<\"max-lenght\">>,1}] are not recognised")
        );
    }
}
