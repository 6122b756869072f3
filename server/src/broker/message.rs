//! A published message, as it lives inside the broker.
//!
//! A message is created once per publish and shared (`Arc<Message>`) by every
//! queue it is routed to; fan-out, redelivery and paging never copy the body.
//! The properties are kept in their wire encoding, so that a delivery writes
//! them back without re-encoding; the few fields the broker itself needs
//! (persistence, priority, expiration) are decoded once at publish time.

use std::sync::Arc;

use amq_protocol::protocol::BasicProperties;
use amq_protocol::protocol::basic::{gen_properties, parse_properties};
use bytes::Bytes;

use super::props::PropsView;

#[derive(Debug)]
pub struct Message {
    pub exchange: Arc<str>,
    pub routing_key: Box<str>,
    /// The property flags and values exactly as they appear in a content
    /// header frame after the class, weight and body size fields.
    pub properties: Bytes,
    pub body: Bytes,
    pub persistent: bool,
    pub priority: u8,
    /// The per-message TTL (`expiration` property), in milliseconds.
    pub expiration: Option<u64>,
}

impl Message {
    pub fn new(exchange: Arc<str>, routing_key: &str, props: &BasicProperties, body: Bytes) -> Self {
        Message {
            exchange,
            routing_key: routing_key.into(),
            properties: encode_properties(props),
            body,
            persistent: props.delivery_mode() == &Some(2),
            priority: props.priority().unwrap_or(0),
            expiration: expiration_of(props),
        }
    }

    /// Build a message from properties already in wire form (the publish path).
    /// A message whose properties stay in their wire form; `view` is a scan
    /// of `raw_props`.
    pub fn from_wire(
        exchange: Arc<str>,
        routing_key: &str,
        view: &PropsView<'_>,
        expiration: Option<u64>,
        raw_props: Bytes,
        body: Bytes,
    ) -> Self {
        Message {
            exchange,
            routing_key: routing_key.into(),
            persistent: view.persistent(),
            priority: view.priority,
            expiration,
            properties: raw_props,
            body,
        }
    }

    /// Rebuilds a message read back from a store.
    pub fn from_store(m: crate::store::messages::ReadMessage) -> Self {
        let view = PropsView::scan(&m.properties).unwrap_or_default();
        Message {
            exchange: m.exchange.into(),
            routing_key: m.routing_key.into(),
            persistent: view.persistent(),
            priority: view.priority,
            expiration: view.expiration_ms().ok().flatten(),
            properties: m.properties.clone(),
            body: m.body,
        }
    }

    /// Decode the properties. Only the rare paths need this (headers routing
    /// is done at publish time with the publisher's decoded copy).
    pub fn decoded_properties(&self) -> BasicProperties {
        decode_properties(&self.properties).unwrap_or_default()
    }

    pub fn body_size(&self) -> usize {
        self.body.len()
    }

    pub fn expiration_ms(&self) -> Option<u64> {
        self.expiration
    }

    /// A copy with one header set (to an integer), e.g. `x-delivery-count`.
    pub fn with_header(&self, name: &str, value: i64) -> Message {
        let props = self.decoded_properties();
        let mut headers = props.headers().clone().unwrap_or_default();
        headers.insert(name.into(), amq_protocol::types::AMQPValue::LongLongInt(value));
        let props = props.with_headers(headers);
        Message {
            exchange: self.exchange.clone(),
            routing_key: self.routing_key.clone(),
            properties: encode_properties(&props),
            body: self.body.clone(),
            persistent: self.persistent,
            priority: self.priority,
            expiration: self.expiration,
        }
    }
}

/// The `expiration` property as milliseconds, when it is a valid number.
pub fn expiration_of(props: &BasicProperties) -> Option<u64> {
    props.expiration().as_ref().and_then(|e| e.as_str().parse().ok())
}

pub fn encode_properties(props: &BasicProperties) -> Bytes {
    match cookie_factory::gen_simple(gen_properties(props), Vec::with_capacity(64)) {
        Ok(v) => Bytes::from(v),
        Err(_) => Bytes::from_static(&[0, 0]),
    }
}

pub fn decode_properties(raw: &[u8]) -> Option<BasicProperties> {
    parse_properties(raw).ok().map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::{AMQPValue, FieldTable};

    #[test]
    fn properties_round_trip() {
        let mut headers = FieldTable::default();
        headers.insert("k".into(), AMQPValue::LongString("v".into()));
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_priority(7)
            .with_correlation_id("abc".into())
            .with_headers(headers);
        let m = Message::new("x".into(), "rk", &props, Bytes::from_static(b"body"));
        assert!(m.persistent);
        assert_eq!(m.priority, 7);
        assert_eq!(m.decoded_properties(), props);
    }
}
