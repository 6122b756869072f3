//! Conversions between AMQP field tables and properties and their JSON form
//! in the API, following RabbitMQ's `rabbit_mgmt_format`: JSON integers
//! become signed 64-bit `long`s, strings `longstr`, objects tables, arrays
//! arrays; message properties use the AMQP property names.

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, ShortString};
use serde_json::{Map, Number, Value};

use super::error::{ApiError, ApiResult};
use crate::broker::field_table;

pub fn value_to_json(v: &AMQPValue) -> Value {
    use AMQPValue::*;
    match v {
        Boolean(b) => Value::Bool(*b),
        ShortShortInt(x) => (*x).into(),
        ShortShortUInt(x) => (*x).into(),
        ShortInt(x) => (*x).into(),
        ShortUInt(x) => (*x).into(),
        LongInt(x) => (*x).into(),
        LongUInt(x) => (*x).into(),
        LongLongInt(x) => (*x).into(),
        Float(x) => Number::from_f64(f64::from(*x)).map_or(Value::Null, Value::Number),
        Double(x) => Number::from_f64(*x).map_or(Value::Null, Value::Number),
        DecimalValue(d) => Number::from_f64(f64::from(d.value) / 10f64.powi(i32::from(d.scale)))
            .map_or(Value::Null, Value::Number),
        ShortString(s) => Value::String(s.as_str().to_owned()),
        LongString(s) => Value::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        FieldArray(a) => Value::Array(a.as_slice().iter().map(value_to_json).collect()),
        Timestamp(t) => (*t).into(),
        FieldTable(t) => table_to_json(t),
        ByteArray(b) => Value::String(String::from_utf8_lossy(b.as_slice()).into_owned()),
        Void => Value::Null,
    }
}

pub fn table_to_json(t: &FieldTable) -> Value {
    Value::Object(t.inner().iter().map(|(k, v)| (k.as_str().to_owned(), value_to_json(v))).collect())
}

fn short(field: &str, s: &str) -> ApiResult<ShortString> {
    if s.len() > 255 {
        return Err(ApiError::bad_request(format!("{field}: longer than 255 bytes")));
    }
    Ok(ShortString::from(s))
}

pub fn json_to_value(v: &Value) -> AMQPValue {
    match v {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            None => AMQPValue::Double(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => AMQPValue::LongString(s.as_str().into()),
        Value::Array(a) => {
            AMQPValue::FieldArray(FieldArray::from(a.iter().map(json_to_value).collect::<Vec<_>>()))
        }
        Value::Object(o) => AMQPValue::FieldTable(json_to_table_lossy(o)),
    }
}

fn json_to_table_lossy(o: &Map<String, Value>) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in o {
        // Keys were length-checked by `json_to_table` at the top level;
        // nested keys longer than a short string are cut.
        let mut end = k.len().min(255);
        while !k.is_char_boundary(end) {
            end -= 1;
        }
        let key = k[..end].to_owned();
        t.insert(ShortString::from(key), json_to_value(v));
    }
    t
}

/// A JSON object of arguments or headers as a field table; keys must fit
/// an AMQP short string.
pub fn json_to_table(o: &Map<String, Value>) -> ApiResult<FieldTable> {
    let mut t = FieldTable::default();
    for (k, v) in o {
        t.insert(short("argument name", k)?, json_to_value(v));
    }
    if field_table::depth(&t) > field_table::MAX_DEPTH {
        return Err(ApiError::bad_request(field_table::TableError::TooDeep.to_string()));
    }
    Ok(t)
}

fn prop_str<'a>(k: &str, v: &'a Value) -> ApiResult<&'a str> {
    v.as_str().ok_or_else(|| ApiError::bad_request(format!("properties.{k}: expected a string")))
}

fn prop_u8(k: &str, v: &Value) -> ApiResult<u8> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    n.and_then(|n| u8::try_from(n).ok())
        .ok_or_else(|| ApiError::bad_request(format!("properties.{k}: expected an integer from 0 to 255")))
}

/// Message properties from the API's JSON (`POST .../publish`).
pub fn json_to_properties(o: &Map<String, Value>) -> ApiResult<BasicProperties> {
    let mut p = BasicProperties::default();
    for (k, v) in o {
        let s = |v| prop_str(k, v).and_then(|s| short(&format!("properties.{k}"), s));
        p = match k.as_str() {
            "content_type" => p.with_content_type(s(v)?),
            "content_encoding" => p.with_content_encoding(s(v)?),
            "headers" => {
                let h = v
                    .as_object()
                    .ok_or_else(|| ApiError::bad_request("properties.headers: expected an object"))?;
                p.with_headers(json_to_table(h)?)
            }
            "delivery_mode" => p.with_delivery_mode(prop_u8(k, v)?),
            "priority" => p.with_priority(prop_u8(k, v)?),
            "correlation_id" => p.with_correlation_id(s(v)?),
            "reply_to" => p.with_reply_to(s(v)?),
            "expiration" => p.with_expiration(s(v)?),
            "message_id" => p.with_message_id(s(v)?),
            "timestamp" => p.with_timestamp(
                v.as_u64()
                    .ok_or_else(|| ApiError::bad_request("properties.timestamp: expected an integer"))?,
            ),
            "type" => p.with_type(s(v)?),
            "user_id" => p.with_user_id(s(v)?),
            "app_id" => p.with_app_id(s(v)?),
            "cluster_id" => p.with_cluster_id(s(v)?),
            other => return Err(ApiError::bad_request(format!("properties: unknown property '{other}'"))),
        };
    }
    Ok(p)
}

/// Message properties as the API shows them (`POST .../get`).
pub fn properties_to_json(p: &BasicProperties) -> Value {
    let mut o = Map::new();
    let mut put_s = |k: &str, v: &Option<ShortString>| {
        if let Some(v) = v {
            o.insert(k.to_owned(), Value::String(v.as_str().to_owned()));
        }
    };
    put_s("content_type", p.content_type());
    put_s("content_encoding", p.content_encoding());
    put_s("correlation_id", p.correlation_id());
    put_s("reply_to", p.reply_to());
    put_s("expiration", p.expiration());
    put_s("message_id", p.message_id());
    put_s("type", p.kind());
    put_s("user_id", p.user_id());
    put_s("app_id", p.app_id());
    put_s("cluster_id", p.cluster_id());
    if let Some(h) = p.headers() {
        o.insert("headers".into(), table_to_json(h));
    }
    if let Some(d) = p.delivery_mode() {
        o.insert("delivery_mode".into(), (*d).into());
    }
    if let Some(d) = p.priority() {
        o.insert("priority".into(), (*d).into());
    }
    if let Some(t) = p.timestamp() {
        o.insert("timestamp".into(), (*t).into());
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_round_trip() {
        let j = json!({"x-max-length": 10, "x-dead-letter-exchange": "dlx", "flag": true, "list": [1, "a"]});
        let t = json_to_table(j.as_object().unwrap()).unwrap();
        assert_eq!(table_to_json(&t), j);
    }

    #[test]
    fn properties_round_trip_and_unknown_is_refused() {
        let j = json!({"delivery_mode": 2, "content_type": "text/plain", "headers": {"a": 1}});
        let p = json_to_properties(j.as_object().unwrap()).unwrap();
        assert_eq!(properties_to_json(&p), j);
        assert!(json_to_properties(json!({"nope": 1}).as_object().unwrap()).is_err());
    }
}
