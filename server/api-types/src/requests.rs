//! Request bodies. Every struct refuses unknown fields, so that a typo is a
//! 400 rather than a silently ignored setting. Fields that `rabbitmqadmin`
//! and other clients repeat from the URL (`name`, `vhost`, ...) are accepted
//! and checked by the server.
//!
//! Booleans and integers accept RabbitMQ's lenient forms: `true`/`"true"`,
//! `5`/`"5"`. Anything else is a type error.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A boolean that also accepts the strings `"true"` and `"false"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Bool(pub bool);

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean (true, false, \"true\" or \"false\")")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Bool, E> {
                Ok(Bool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bool, E> {
                match v {
                    "true" => Ok(Bool(true)),
                    "false" => Ok(Bool(false)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// An integer that also accepts a string of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v).map(Int).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Int, E> {
                v.trim().parse().map(Int).map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// User tags: a list, or RabbitMQ's comma-separated string.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct Tags(pub Vec<String>);

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            List(Vec<String>),
        }
        let raw = Raw::deserialize(d)
            .map_err(|_| de::Error::custom("tags: expected a string or a list of strings"))?;
        let list = match raw {
            Raw::Text(s) => s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect(),
            Raw::List(l) => l.into_iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect(),
        };
        Ok(Tags(list))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclareQueue {
    #[serde(default)]
    pub durable: Option<Bool>,
    #[serde(default)]
    pub auto_delete: Option<Bool>,
    #[serde(default)]
    pub exclusive: Option<Bool>,
    #[serde(default)]
    pub arguments: Option<Map<String, Value>>,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub vhost: Option<String>,
    #[serde(default)]
    pub queue_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclareExchange {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub durable: Option<Bool>,
    #[serde(default)]
    pub auto_delete: Option<Bool>,
    #[serde(default)]
    pub internal: Option<Bool>,
    #[serde(default)]
    pub arguments: Option<Map<String, Value>>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub vhost: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBinding {
    #[serde(default)]
    pub routing_key: Option<String>,
    #[serde(default)]
    pub arguments: Option<Map<String, Value>>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub destination: Option<String>,
    #[serde(default)]
    pub destination_type: Option<String>,
    #[serde(default)]
    pub vhost: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutVhost {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Option<Tags>,
    #[serde(default)]
    pub tracing: Option<Bool>,
    #[serde(default)]
    pub default_queue_type: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// Sent by `rabbitmqadmin` (its default vhost); not this vhost's name,
    /// and ignored.
    #[serde(default)]
    pub vhost: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutUser {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub hashing_algorithm: Option<String>,
    #[serde(default)]
    pub tags: Option<Tags>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub limits: Option<Map<String, Value>>,
    /// Sent by `rabbitmqadmin`; ignored.
    #[serde(default)]
    pub vhost: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutPermission {
    pub configure: String,
    pub write: String,
    pub read: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub vhost: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutTopicPermission {
    pub exchange: String,
    pub write: String,
    pub read: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub vhost: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutParameter {
    pub value: Value,
    #[serde(default)]
    pub component: Option<String>,
    #[serde(default)]
    pub vhost: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutPolicy {
    pub pattern: String,
    pub definition: Map<String, Value>,
    #[serde(default)]
    pub priority: Option<Int>,
    #[serde(default, rename = "apply-to")]
    pub apply_to: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub vhost: Option<String>,
}

/// `PUT /api/vhost-limits/{vhost}/{name}` and `/api/user-limits/{user}/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutLimit {
    pub value: Int,
    #[serde(default)]
    pub vhost: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    pub routing_key: String,
    pub payload: String,
    pub payload_encoding: String,
    #[serde(default)]
    pub properties: Map<String, Value>,
    #[serde(default)]
    pub vhost: Option<String>,
    #[serde(default)]
    pub exchange: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetMessages {
    pub count: Int,
    pub ackmode: String,
    pub encoding: String,
    #[serde(default)]
    pub truncate: Option<Int>,
    #[serde(default)]
    pub vhost: Option<String>,
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// rabbitmqadmin's `payload_file` stays on the client, but older
    /// versions send it along.
    #[serde(default)]
    pub payload_file: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub username: String,
    pub password: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_scalars_and_tags() {
        let q: DeclareQueue = serde_json::from_str(r#"{"durable": "true", "auto_delete": false}"#).unwrap();
        assert_eq!((q.durable, q.auto_delete), (Some(Bool(true)), Some(Bool(false))));
        assert!(serde_json::from_str::<DeclareQueue>(r#"{"durable": "yes"}"#).is_err());
        assert!(serde_json::from_str::<DeclareQueue>(r#"{"durable": 1}"#).is_err());
        assert!(serde_json::from_str::<DeclareQueue>(r#"{"colour": 1}"#).is_err());
        let g: GetMessages =
            serde_json::from_str(r#"{"count": "3", "ackmode": "a", "encoding": "auto"}"#).unwrap();
        assert_eq!(g.count, Int(3));
        let u: PutUser = serde_json::from_str(r#"{"tags": "administrator, management"}"#).unwrap();
        assert_eq!(u.tags.unwrap().0, ["administrator", "management"]);
        let u: PutUser = serde_json::from_str(r#"{"tags": ["monitoring"]}"#).unwrap();
        assert_eq!(u.tags.unwrap().0, ["monitoring"]);
    }
}
