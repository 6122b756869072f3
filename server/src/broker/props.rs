//! A view of a message's basic properties in their wire encoding.
//!
//! The publish path needs only a few properties (delivery mode, priority,
//! expiration, reply-to, user-id, and the headers when routing looks at
//! them), so instead of decoding every field into owned strings it walks the
//! encoding once, keeping borrowed slices. Messages keep the encoded
//! properties as they came, and are decoded in full only on rare paths.

use amq_protocol::types::FieldTable;

/// Property flag bits, in the order the fields follow.
const CONTENT_TYPE: u16 = 1 << 15;
const CONTENT_ENCODING: u16 = 1 << 14;
const HEADERS: u16 = 1 << 13;
const DELIVERY_MODE: u16 = 1 << 12;
const PRIORITY: u16 = 1 << 11;
const CORRELATION_ID: u16 = 1 << 10;
const REPLY_TO: u16 = 1 << 9;
const EXPIRATION: u16 = 1 << 8;
const MESSAGE_ID: u16 = 1 << 7;
const TIMESTAMP: u16 = 1 << 6;
const TYPE: u16 = 1 << 5;
const USER_ID: u16 = 1 << 4;
const APP_ID: u16 = 1 << 3;
const CLUSTER_ID: u16 = 1 << 2;

#[derive(Debug, Default, Clone, Copy)]
pub struct PropsView<'a> {
    pub delivery_mode: u8,
    pub priority: u8,
    pub expiration: Option<&'a str>,
    pub reply_to: Option<&'a str>,
    pub user_id: Option<&'a str>,
    /// The encoded headers table (length prefix included).
    headers: Option<&'a [u8]>,
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn short_str(&mut self) -> Option<&'a str> {
        let n = usize::from(self.u8()?);
        std::str::from_utf8(self.take(n)?).ok()
    }

    fn table(&mut self) -> Option<&'a [u8]> {
        let len = self.b.get(..4)?;
        let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        self.take(4 + n)
    }
}

impl<'a> PropsView<'a> {
    /// Walks encoded properties; None when they are malformed.
    pub fn scan(raw: &'a [u8]) -> Option<PropsView<'a>> {
        let mut c = Cursor { b: raw };
        let flags = u16::from_be_bytes(c.take(2)?.try_into().ok()?);
        if flags & 1 != 0 {
            // A continuation word: basic has no more properties than 14.
            return None;
        }
        let mut v = PropsView::default();
        let has = |bit: u16| flags & bit != 0;
        if has(CONTENT_TYPE) {
            c.short_str()?;
        }
        if has(CONTENT_ENCODING) {
            c.short_str()?;
        }
        if has(HEADERS) {
            v.headers = Some(c.table()?);
        }
        if has(DELIVERY_MODE) {
            v.delivery_mode = c.u8()?;
        }
        if has(PRIORITY) {
            v.priority = c.u8()?;
        }
        if has(CORRELATION_ID) {
            c.short_str()?;
        }
        if has(REPLY_TO) {
            v.reply_to = Some(c.short_str()?);
        }
        if has(EXPIRATION) {
            v.expiration = Some(c.short_str()?);
        }
        if has(MESSAGE_ID) {
            c.short_str()?;
        }
        if has(TIMESTAMP) {
            c.take(8)?;
        }
        if has(TYPE) {
            c.short_str()?;
        }
        if has(USER_ID) {
            v.user_id = Some(c.short_str()?);
        }
        if has(APP_ID) {
            c.short_str()?;
        }
        if has(CLUSTER_ID) {
            c.short_str()?;
        }
        c.b.is_empty().then_some(v)
    }

    pub fn persistent(&self) -> bool {
        self.delivery_mode == 2
    }

    pub fn has_headers(&self) -> bool {
        self.headers.is_some()
    }

    /// The encoded headers table, length prefix included.
    pub fn raw_headers(&self) -> Option<&'a [u8]> {
        self.headers
    }

    /// Decodes the headers table (allocates; only when routing needs it).
    pub fn headers(&self) -> Option<FieldTable> {
        let raw = self.headers?;
        amq_protocol::types::parsing::parse_field_table(raw).ok().map(|(_, t)| t)
    }

    /// The expiration as milliseconds: None when absent, Err when it is not
    /// a number (RabbitMQ refuses such a publish).
    pub fn expiration_ms(&self) -> Result<Option<u64>, &'a str> {
        match self.expiration {
            None => Ok(None),
            Some(e) => e.parse().map(Some).map_err(|_| e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::message::encode_properties;
    use amq_protocol::protocol::BasicProperties;
    use amq_protocol::types::AMQPValue;

    #[test]
    fn scan_finds_what_the_publish_path_needs() {
        let mut h = FieldTable::default();
        h.insert("CC".into(), AMQPValue::LongString("k".into()));
        let props = BasicProperties::default()
            .with_content_type("text/plain".into())
            .with_headers(h.clone())
            .with_delivery_mode(2)
            .with_priority(4)
            .with_correlation_id("c".into())
            .with_reply_to("amq.rabbitmq.reply-to".into())
            .with_expiration("1500".into())
            .with_timestamp(7)
            .with_user_id("guest".into())
            .with_app_id("app".into());
        let raw = encode_properties(&props);
        let v = PropsView::scan(&raw).unwrap();
        assert!(v.persistent());
        assert_eq!(v.priority, 4);
        assert_eq!(v.reply_to, Some("amq.rabbitmq.reply-to"));
        assert_eq!(v.expiration_ms(), Ok(Some(1500)));
        assert_eq!(v.user_id, Some("guest"));
        assert_eq!(v.headers(), Some(h));
        let empty = encode_properties(&BasicProperties::default());
        let v = PropsView::scan(&empty).unwrap();
        assert!(!v.persistent() && !v.has_headers());
        assert!(PropsView::scan(&raw[..raw.len() - 1]).is_none(), "truncated");
        let bad = encode_properties(&BasicProperties::default().with_expiration("soon".into()));
        assert_eq!(PropsView::scan(&bad).unwrap().expiration_ms(), Err("soon"));
    }
}
