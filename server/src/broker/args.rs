//! Queue and exchange arguments: RabbitMQ's validation rules, its equivalence
//! check for redeclarations, and its way of printing values in errors.
//!
//! Arguments this version of Warren does not act on are still validated,
//! stored and returned, as RabbitMQ would; clients such as Celery declare
//! them and must not be refused.

use amq_protocol::types::{AMQPValue, FieldTable};

use super::error::{BrokerError, Result, rs};

/// The arguments compared when a queue is declared again. Other `x-`
/// arguments are stored but not compared, as in RabbitMQ.
const QUEUE_EQUIVALENCE_ARGS: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-version",
    "x-single-active-consumer",
    "x-queue-type",
    "x-delivery-limit",
    "x-quorum-initial-group-size",
    "x-queue-leader-locator",
];

const EXCHANGE_EQUIVALENCE_ARGS: &[&str] = &["alternate-exchange"];

/// RabbitMQ's name for a field's type, as printed in its errors.
pub fn type_name(v: &AMQPValue) -> &'static str {
    match v {
        AMQPValue::Boolean(_) => "bool",
        AMQPValue::ShortShortInt(_) => "byte",
        AMQPValue::ShortShortUInt(_) => "unsignedbyte",
        AMQPValue::ShortInt(_) => "short",
        AMQPValue::ShortUInt(_) => "unsignedshort",
        AMQPValue::LongInt(_) => "signedint",
        AMQPValue::LongUInt(_) => "unsignedint",
        AMQPValue::LongLongInt(_) => "long",
        AMQPValue::Float(_) => "float",
        AMQPValue::Double(_) => "double",
        AMQPValue::DecimalValue(_) => "decimal",
        AMQPValue::ShortString(_) => "shortstr",
        AMQPValue::LongString(_) => "longstr",
        AMQPValue::FieldArray(_) => "array",
        AMQPValue::Timestamp(_) => "timestamp",
        AMQPValue::FieldTable(_) => "table",
        AMQPValue::ByteArray(_) => "binary",
        AMQPValue::Void => "void",
    }
}

pub fn as_int(v: &AMQPValue) -> Option<i64> {
    Some(match v {
        AMQPValue::ShortShortInt(x) => i64::from(*x),
        AMQPValue::ShortShortUInt(x) => i64::from(*x),
        AMQPValue::ShortInt(x) => i64::from(*x),
        AMQPValue::ShortUInt(x) => i64::from(*x),
        AMQPValue::LongInt(x) => i64::from(*x),
        AMQPValue::LongUInt(x) => i64::from(*x),
        AMQPValue::LongLongInt(x) => *x,
        _ => return None,
    })
}

pub fn as_str(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// A string-valued argument, if present and a string.
pub fn as_str_arg(args: &FieldTable, key: &str) -> Option<String> {
    args.inner().get(key).and_then(as_str)
}

/// A value printed the way RabbitMQ prints it inside error texts.
pub fn display_value(v: &AMQPValue) -> String {
    if let Some(i) = as_int(v) {
        return i.to_string();
    }
    if let Some(s) = as_str(v) {
        return s;
    }
    match v {
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::Float(f) => f.to_string(),
        AMQPValue::Double(f) => f.to_string(),
        AMQPValue::Timestamp(t) => t.to_string(),
        AMQPValue::Void => "undefined".to_owned(),
        other => format!("{other:?}"),
    }
}

fn same_value(a: &AMQPValue, b: &AMQPValue) -> bool {
    match (as_int(a), as_int(b)) {
        (Some(x), Some(y)) => x == y,
        _ => match (as_str(a), as_str(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

fn describe(v: Option<&AMQPValue>) -> String {
    match v {
        None => "none".to_owned(),
        Some(v) => format!("the value '{}' of type '{}'", display_value(v), type_name(v)),
    }
}

/// `inequivalent arg 'durable' for queue 'q' in vhost '/': received 'false' but current is 'true'`
pub fn inequivalent_flag(key: &str, resource: &str, received: &str, current: &str) -> BrokerError {
    BrokerError::precondition_failed(format!(
        "inequivalent arg '{key}' for {resource}: received '{received}' but current is '{current}'"
    ))
}

fn assert_args_equivalent(
    current: &FieldTable,
    requested: &FieldTable,
    keys: &[&str],
    resource: &str,
) -> Result<()> {
    for key in keys {
        let a = current.inner().get(*key);
        let b = requested.inner().get(*key);
        let equal = match (a, b) {
            (None, None) => true,
            (Some(x), Some(y)) => same_value(x, y),
            // A classic queue with no x-queue-type equals one declared classic.
            (None, Some(v)) | (Some(v), None) => {
                *key == "x-queue-type" && as_str(v).as_deref() == Some("classic")
            }
        };
        if !equal {
            return Err(BrokerError::precondition_failed(format!(
                "inequivalent arg '{key}' for {resource}: received {} but current is {}",
                describe(b),
                describe(a)
            )));
        }
    }
    Ok(())
}

pub fn assert_queue_args_equivalent(
    current: &FieldTable,
    requested: &FieldTable,
    resource: &str,
) -> Result<()> {
    assert_args_equivalent(current, requested, QUEUE_EQUIVALENCE_ARGS, resource)
}

pub fn assert_exchange_args_equivalent(
    current: &FieldTable,
    requested: &FieldTable,
    resource: &str,
) -> Result<()> {
    assert_args_equivalent(current, requested, EXCHANGE_EQUIVALENCE_ARGS, resource)
}

/// Largest TTL or expiry RabbitMQ accepts, in milliseconds.
const MAX_EXPIRY: i64 = 315_360_000_000;

fn check_int(v: &AMQPValue) -> std::result::Result<i64, String> {
    as_int(v).ok_or_else(|| format!("\"expected integer, got {}\"", type_name(v)))
}

fn check_non_neg(v: &AMQPValue) -> std::result::Result<i64, String> {
    let n = check_int(v)?;
    if n < 0 {
        return Err(format!("{{value_negative,{n}}}"));
    }
    Ok(n)
}

fn check_expiry(n: i64) -> std::result::Result<(), String> {
    if n < 0 {
        Err(format!("{{value_negative,{n}}}"))
    } else if n > MAX_EXPIRY {
        Err(format!("{{value_too_large,{n},{MAX_EXPIRY}}}"))
    } else {
        Ok(())
    }
}

fn check_string(v: &AMQPValue) -> std::result::Result<String, String> {
    as_str(v).ok_or_else(|| format!("{{unacceptable_type,{}}}", type_name(v)))
}

fn check_one_of(v: &AMQPValue, allowed: &[&str]) -> std::result::Result<(), String> {
    let s = check_string(v)?;
    if allowed.contains(&s.as_str()) { Ok(()) } else { Err(format!("<<\"{s}\">>")) }
}

/// Validates the arguments RabbitMQ validates on queue.declare, with its
/// reply texts, e.g. `invalid arg 'x-max-length' for queue 'q' in vhost '/':
/// {value_negative,-1}`.
pub fn validate_queue_args(args: &FieldTable, name: &str, vhost: &str) -> Result<()> {
    for (key, v) in args.inner() {
        let check: std::result::Result<(), String> = match key.as_str() {
            "x-expires" => check_int(v)
                .and_then(|n| if n == 0 { Err(format!("{{value_zero,{n}}}")) } else { check_expiry(n) }),
            "x-message-ttl" => check_int(v).and_then(check_expiry),
            "x-dead-letter-exchange" | "x-dead-letter-routing-key" => check_string(v).map(|_| ()),
            "x-max-length"
            | "x-max-length-bytes"
            | "x-max-in-memory-length"
            | "x-max-in-memory-bytes"
            | "x-consumer-timeout"
            | "x-delivery-limit" => check_non_neg(v).map(|_| ()),
            "x-max-priority" => check_non_neg(v)
                .and_then(|n| if n > 255 { Err(format!("{{max_value_exceeded,{n}}}")) } else { Ok(()) }),
            "x-overflow" => check_one_of(v, &["drop-head", "reject-publish", "reject-publish-dlx"]),
            "x-queue-mode" => check_one_of(v, &["default", "lazy"]),
            "x-queue-version" => check_int(v).and_then(|n| {
                if n == 1 || n == 2 { Ok(()) } else { Err(format!("{{unsupported_version,{n}}}")) }
            }),
            "x-single-active-consumer" => match v {
                AMQPValue::Boolean(_) => Ok(()),
                other => Err(format!("{{unacceptable_type,{}}}", type_name(other))),
            },
            "x-dead-letter-strategy" => check_one_of(v, &["at-most-once", "at-least-once"]),
            "x-queue-type" => check_one_of(v, &["classic", "quorum"]),
            "x-quorum-initial-group-size" => check_non_neg(v)
                .and_then(|n| if n == 0 { Err(format!("{{value_zero,{n}}}")) } else { Ok(()) }),
            _ => Ok(()),
        };
        if let Err(reason) = check {
            return Err(BrokerError::precondition_failed(format!(
                "invalid arg '{key}' for {}: {reason}",
                rs("queue", name, vhost)
            )));
        }
    }
    Ok(())
}

/// Validates the consumer arguments RabbitMQ validates on basic.consume.
pub fn validate_consumer_args(args: &FieldTable, queue: &str, vhost: &str) -> Result<()> {
    for (key, v) in args.inner() {
        let check = match key.as_str() {
            "x-priority" => check_int(v).map(|_| ()),
            "x-consumer-timeout" => check_non_neg(v).map(|_| ()),
            _ => Ok(()),
        };
        if let Err(reason) = check {
            return Err(BrokerError::precondition_failed(format!(
                "invalid arg '{key}' for {}: {reason}",
                rs("queue", queue, vhost)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    #[test]
    fn negative_length_is_refused_with_rabbitmq_text() {
        let e = validate_queue_args(&t(&[("x-max-length", AMQPValue::LongInt(-1))]), "q", "/").unwrap_err();
        assert_eq!(
            e.reply_text(),
            "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}"
        );
    }

    #[test]
    fn unknown_and_celery_args_are_accepted() {
        let args = t(&[
            ("x-message-ttl", AMQPValue::LongInt(300_000)),
            ("x-expires", AMQPValue::LongInt(10_000)),
            ("x-custom", AMQPValue::LongString("anything".into())),
        ]);
        assert!(validate_queue_args(&args, "celery.pidbox", "/").is_ok());
    }

    #[test]
    fn equivalence_compares_known_args_across_int_types() {
        let a = t(&[("x-message-ttl", AMQPValue::LongInt(1000))]);
        let b = t(&[("x-message-ttl", AMQPValue::LongLongInt(1000))]);
        assert!(assert_queue_args_equivalent(&a, &b, "queue 'q' in vhost '/'").is_ok());
        let c = t(&[("x-message-ttl", AMQPValue::LongInt(2000))]);
        let e = assert_queue_args_equivalent(&a, &c, "queue 'q' in vhost '/'").unwrap_err();
        assert_eq!(
            e.message,
            "inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received the value '2000' of type 'signedint' but current is the value '1000' of type 'signedint'"
        );
        let classic = t(&[("x-queue-type", AMQPValue::LongString("classic".into()))]);
        assert!(assert_queue_args_equivalent(&FieldTable::default(), &classic, "q").is_ok());
        let unknown = t(&[("x-whatever", AMQPValue::LongInt(1))]);
        assert!(assert_queue_args_equivalent(&FieldTable::default(), &unknown, "q").is_ok());
    }
}
