//! Dead-lettering: the message a queue republishes to its dead-letter
//! exchange when a message is rejected without requeue, expires, overflows a
//! length limit or exceeds a delivery limit, with RabbitMQ's `x-death`
//! history and `x-first-death-*` / `x-last-death-*` headers, and RabbitMQ's
//! rule for dropping messages caught in a fully automatic cycle.

use std::sync::Arc;

use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};

use super::message::{Message, encode_properties};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Rejected,
    Expired,
    Maxlen,
    DeliveryLimit,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rejected => "rejected",
            Reason::Expired => "expired",
            Reason::Maxlen => "maxlen",
            Reason::DeliveryLimit => "delivery_limit",
        }
    }
}

fn text(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn long(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// The routing keys named in a CC or BCC header.
pub fn header_keys(headers: Option<&FieldTable>, name: &str) -> Vec<String> {
    match headers.and_then(|h| h.inner().get(name)) {
        Some(AMQPValue::FieldArray(a)) => a.as_slice().iter().filter_map(text).collect(),
        Some(v) => text(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// A dead-lettered copy of a message, and the routing keys to route it with.
pub struct DeadLetter {
    pub msg: Arc<Message>,
    pub routing_keys: Vec<String>,
}

/// Builds the message republished to `dlx` when `queue` dead-letters `m`.
pub fn build(
    m: &Message,
    reason: Reason,
    queue: &str,
    dlx: &str,
    dlrk: Option<&str>,
    now_ms: u64,
) -> DeadLetter {
    let mut props = m.decoded_properties();
    let mut headers = props.headers().clone().unwrap_or_default();
    let mut original_keys = vec![m.routing_key.to_string()];
    original_keys.extend(header_keys(Some(&headers), "CC"));

    let mut deaths: Vec<FieldTable> = match headers.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a
            .as_slice()
            .iter()
            .filter_map(|v| match v {
                AMQPValue::FieldTable(t) => Some(t.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let same = |t: &FieldTable| {
        t.inner().get("queue").and_then(text).as_deref() == Some(queue)
            && t.inner().get("reason").and_then(text).as_deref() == Some(reason.as_str())
    };
    let entry = match deaths.iter().position(same) {
        Some(i) => {
            // Seen before for the same queue and reason: count it and move it
            // to the front (the array is ordered by recency).
            let mut t = deaths.remove(i);
            let count = match t.inner().get("count") {
                Some(AMQPValue::LongLongInt(n)) => *n,
                Some(v) => super::args::as_int(v).unwrap_or(0),
                None => 0,
            };
            t.insert("count".into(), AMQPValue::LongLongInt(count + 1));
            t
        }
        None => {
            let mut t = FieldTable::default();
            t.insert("count".into(), AMQPValue::LongLongInt(1));
            t.insert("reason".into(), long(reason.as_str()));
            t.insert("queue".into(), long(queue));
            t.insert("time".into(), AMQPValue::Timestamp(now_ms / 1000));
            t.insert("exchange".into(), long(&m.exchange));
            let keys: Vec<AMQPValue> = original_keys.iter().map(|k| long(k)).collect();
            t.insert("routing-keys".into(), AMQPValue::FieldArray(FieldArray::from(keys)));
            if let Some(exp) = props.expiration() {
                t.insert("original-expiration".into(), long(exp.as_str()));
            }
            t
        }
    };
    deaths.insert(0, entry);
    let array: Vec<AMQPValue> = deaths.into_iter().map(AMQPValue::FieldTable).collect();
    headers.insert("x-death".into(), AMQPValue::FieldArray(FieldArray::from(array)));
    if !headers.contains_key("x-first-death-reason") {
        headers.insert("x-first-death-reason".into(), long(reason.as_str()));
        headers.insert("x-first-death-queue".into(), long(queue));
        headers.insert("x-first-death-exchange".into(), long(&m.exchange));
    }
    headers.insert("x-last-death-reason".into(), long(reason.as_str()));
    headers.insert("x-last-death-queue".into(), long(queue));
    headers.insert("x-last-death-exchange".into(), long(&m.exchange));

    // The per-message TTL does not follow the message (it is kept in
    // x-death as original-expiration).
    props = strip_expiration(props).with_headers(headers);
    let routing_keys = match dlrk {
        Some(k) => vec![k.to_owned()],
        None => original_keys,
    };
    let msg = Message {
        exchange: dlx.into(),
        routing_key: routing_keys[0].as_str().into(),
        properties: encode_properties(&props),
        body: m.body.clone(),
        persistent: m.persistent,
        priority: m.priority,
        expiration: None,
    };
    DeadLetter { msg: Arc::new(msg), routing_keys }
}

fn strip_expiration(p: amq_protocol::protocol::BasicProperties) -> amq_protocol::protocol::BasicProperties {
    // BasicProperties has no setter to clear a field: rebuild without it.
    let mut q = amq_protocol::protocol::BasicProperties::default();
    if let Some(v) = p.content_type() {
        q = q.with_content_type(v.clone());
    }
    if let Some(v) = p.content_encoding() {
        q = q.with_content_encoding(v.clone());
    }
    if let Some(v) = p.delivery_mode() {
        q = q.with_delivery_mode(*v);
    }
    if let Some(v) = p.priority() {
        q = q.with_priority(*v);
    }
    if let Some(v) = p.correlation_id() {
        q = q.with_correlation_id(v.clone());
    }
    if let Some(v) = p.reply_to() {
        q = q.with_reply_to(v.clone());
    }
    if let Some(v) = p.message_id() {
        q = q.with_message_id(v.clone());
    }
    if let Some(v) = p.timestamp() {
        q = q.with_timestamp(*v);
    }
    if let Some(v) = p.kind() {
        q = q.with_type(v.clone());
    }
    if let Some(v) = p.user_id() {
        q = q.with_user_id(v.clone());
    }
    if let Some(v) = p.app_id() {
        q = q.with_app_id(v.clone());
    }
    if let Some(v) = p.cluster_id() {
        q = q.with_cluster_id(v.clone());
    }
    if let Some(v) = p.headers() {
        q = q.with_headers(v.clone());
    }
    q
}

/// RabbitMQ's cycle rule: dead-lettering `msg` into `target` is a cycle to
/// drop when `target` already appears in its history and no death since
/// then (that one included) was a rejection by a client.
pub fn is_cycle(msg: &Message, target: &str) -> bool {
    let props = msg.decoded_properties();
    let Some(AMQPValue::FieldArray(deaths)) =
        props.headers().as_ref().and_then(|h| h.inner().get("x-death")).cloned()
    else {
        return false;
    };
    let mut reasons = Vec::new();
    for d in deaths.as_slice() {
        let AMQPValue::FieldTable(t) = d else { continue };
        reasons.push(t.inner().get("reason").and_then(text).unwrap_or_default());
        if t.inner().get("queue").and_then(text).as_deref() == Some(target) {
            return reasons.iter().all(|r| r != "rejected");
        }
    }
    false
}

/// Removes the BCC header (it must not reach consumers).
pub fn strip_bcc(m: &Message) -> Option<Message> {
    let props = m.decoded_properties();
    let headers = props.headers().as_ref()?;
    if !headers.contains_key("BCC") {
        return None;
    }
    let mut h = FieldTable::default();
    for (k, v) in headers {
        if k.as_str() != "BCC" {
            h.insert(ShortString::from(k.as_str()), v.clone());
        }
    }
    let props = props.with_headers(h);
    Some(Message {
        exchange: m.exchange.clone(),
        routing_key: m.routing_key.clone(),
        properties: encode_properties(&props),
        body: m.body.clone(),
        persistent: m.persistent,
        priority: m.priority,
        expiration: m.expiration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::protocol::BasicProperties;

    fn death_of(m: &Message, i: usize) -> FieldTable {
        let p = m.decoded_properties();
        match p.headers().as_ref().unwrap().inner().get("x-death") {
            Some(AMQPValue::FieldArray(a)) => match &a.as_slice()[i] {
                AMQPValue::FieldTable(t) => t.clone(),
                _ => panic!(),
            },
            _ => panic!("no x-death"),
        }
    }

    #[test]
    fn x_death_is_recorded_counted_and_ordered() {
        let props = BasicProperties::default().with_expiration("5000".into()).with_delivery_mode(2);
        let m = Message::new("ex".into(), "k", &props, bytes::Bytes::from_static(b"b"));
        let d1 = build(&m, Reason::Expired, "q1", "dlx", None, 1_700_000_000_000);
        assert_eq!(d1.routing_keys, ["k"]);
        assert_eq!(&*d1.msg.exchange, "dlx");
        let t = death_of(&d1.msg, 0);
        assert_eq!(t.inner().get("count"), Some(&AMQPValue::LongLongInt(1)));
        assert_eq!(t.inner().get("reason").and_then(text).as_deref(), Some("expired"));
        assert_eq!(t.inner().get("queue").and_then(text).as_deref(), Some("q1"));
        assert_eq!(t.inner().get("exchange").and_then(text).as_deref(), Some("ex"));
        assert_eq!(t.inner().get("original-expiration").and_then(text).as_deref(), Some("5000"));
        assert!(d1.msg.decoded_properties().expiration().is_none());
        assert!(d1.msg.persistent);
        // Rejected from q2, then expired from q1 again: q1 moves to the front
        // with count 2, and first-death stays.
        let d2 = build(&d1.msg, Reason::Rejected, "q2", "dlx", Some("rk"), 1_700_000_001_000);
        assert_eq!(d2.routing_keys, ["rk"]);
        let d3 = build(&d2.msg, Reason::Expired, "q1", "dlx", None, 1_700_000_002_000);
        let t = death_of(&d3.msg, 0);
        assert_eq!(t.inner().get("queue").and_then(text).as_deref(), Some("q1"));
        assert_eq!(t.inner().get("count"), Some(&AMQPValue::LongLongInt(2)));
        let h = d3.msg.decoded_properties().headers().clone().unwrap();
        assert_eq!(h.inner().get("x-first-death-queue").and_then(text).as_deref(), Some("q1"));
        assert_eq!(h.inner().get("x-first-death-reason").and_then(text).as_deref(), Some("expired"));
        assert_eq!(h.inner().get("x-last-death-queue").and_then(text).as_deref(), Some("q1"));
    }

    #[test]
    fn cycles_are_automatic_only() {
        let m = Message::new("ex".into(), "k", &BasicProperties::default(), bytes::Bytes::new());
        let expired = build(&m, Reason::Expired, "q1", "dlx", None, 0);
        assert!(is_cycle(&expired.msg, "q1"));
        assert!(!is_cycle(&expired.msg, "q2"));
        let rejected = build(&m, Reason::Rejected, "q1", "dlx", None, 0);
        assert!(!is_cycle(&rejected.msg, "q1"));
    }
}
