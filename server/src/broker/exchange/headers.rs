//! Headers routing: a binding's arguments are matched against the message's
//! headers, with `x-match` = `all` (the default), `any`, `all-with-x` or
//! `any-with-x`. Binding arguments starting with `x-` take no part in the
//! match unless a `-with-x` mode is chosen. A `void` binding value matches
//! any value, as long as the header is present.

use amq_protocol::types::{AMQPValue, FieldTable};

use super::Destination;

#[derive(Debug, Clone, PartialEq)]
pub struct HeadersMatcher {
    any: bool,
    pairs: Vec<(String, AMQPValue)>,
}

impl HeadersMatcher {
    pub fn from_arguments(args: &FieldTable) -> Self {
        let mode = match args.inner().get("x-match") {
            Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
            Some(AMQPValue::ShortString(s)) => s.as_str().to_owned(),
            _ => "all".to_owned(),
        };
        let with_x = mode.ends_with("-with-x");
        let any = mode.starts_with("any");
        let pairs = args
            .inner()
            .iter()
            .filter(|(k, _)| k.as_str() != "x-match" && (with_x || !k.as_str().starts_with("x-")))
            .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
            .collect();
        HeadersMatcher { any, pairs }
    }

    pub fn matches(&self, headers: Option<&FieldTable>) -> bool {
        let empty = FieldTable::default();
        let headers = headers.unwrap_or(&empty).inner();
        let check = |(k, v): &(String, AMQPValue)| match headers.get(k.as_str()) {
            None => false,
            Some(hv) => matches!(v, AMQPValue::Void) || values_equal(v, hv),
        };
        if self.any { self.pairs.iter().any(check) } else { self.pairs.iter().all(check) }
    }
}

/// Equality across AMQP's many integer and string encodings: `1` sent as a
/// short int equals `1` bound as a long, and short and long strings compare
/// by content, as in RabbitMQ.
pub fn values_equal(a: &AMQPValue, b: &AMQPValue) -> bool {
    if let (Some(x), Some(y)) = (as_i128(a), as_i128(b)) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (as_bytes(a), as_bytes(b)) {
        return x == y;
    }
    match (a, b) {
        (AMQPValue::Float(x), AMQPValue::Double(y)) | (AMQPValue::Double(y), AMQPValue::Float(x)) => {
            f64::from(*x) == *y
        }
        _ => a == b,
    }
}

fn as_i128(v: &AMQPValue) -> Option<i128> {
    Some(match v {
        AMQPValue::ShortShortInt(x) => i128::from(*x),
        AMQPValue::ShortShortUInt(x) => i128::from(*x),
        AMQPValue::ShortInt(x) => i128::from(*x),
        AMQPValue::ShortUInt(x) => i128::from(*x),
        AMQPValue::LongInt(x) => i128::from(*x),
        AMQPValue::LongUInt(x) => i128::from(*x),
        AMQPValue::LongLongInt(x) => i128::from(*x),
        AMQPValue::Timestamp(x) => i128::from(*x),
        _ => return None,
    })
}

fn as_bytes(v: &AMQPValue) -> Option<&[u8]> {
    match v {
        AMQPValue::ShortString(s) => Some(s.as_str().as_bytes()),
        AMQPValue::LongString(s) => Some(s.as_bytes()),
        AMQPValue::ByteArray(s) => Some(s.as_slice()),
        _ => None,
    }
}

#[derive(Default)]
pub(super) struct HeadersRouter {
    entries: Vec<(FieldTable, HeadersMatcher, Destination)>,
}

impl HeadersRouter {
    pub fn add(&mut self, args: &FieldTable, dest: Destination) {
        self.entries.push((args.clone(), HeadersMatcher::from_arguments(args), dest));
    }

    pub fn remove(&mut self, args: &FieldTable, dest: &Destination) {
        if let Some(pos) = self.entries.iter().position(|(a, _, d)| a == args && d.same(dest)) {
            self.entries.remove(pos);
        }
    }

    pub fn route(&self, headers: Option<&FieldTable>, out: &mut Vec<Destination>) {
        for (_, m, d) in &self.entries {
            if m.matches(headers) {
                out.push(d.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in pairs {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    fn s(v: &str) -> AMQPValue {
        AMQPValue::LongString(v.into())
    }

    #[test]
    fn all_and_any() {
        let all = HeadersMatcher::from_arguments(&table(&[("a", s("1")), ("b", s("2"))]));
        let any =
            HeadersMatcher::from_arguments(&table(&[("x-match", s("any")), ("a", s("1")), ("b", s("2"))]));
        let both = table(&[("a", s("1")), ("b", s("2")), ("c", s("3"))]);
        let one = table(&[("a", s("1"))]);
        let wrong = table(&[("a", s("9"))]);
        assert!(all.matches(Some(&both)));
        assert!(!all.matches(Some(&one)));
        assert!(any.matches(Some(&one)));
        assert!(!any.matches(Some(&wrong)));
        assert!(!any.matches(None));
    }

    #[test]
    fn numeric_types_and_void_and_x_args() {
        let m = HeadersMatcher::from_arguments(&table(&[
            ("n", AMQPValue::LongLongInt(5)),
            ("present", AMQPValue::Void),
            ("x-ignored", s("whatever")),
        ]));
        let h = table(&[("n", AMQPValue::ShortInt(5)), ("present", s("anything"))]);
        assert!(m.matches(Some(&h)));
        let with_x = HeadersMatcher::from_arguments(&table(&[("x-match", s("all-with-x")), ("x-k", s("v"))]));
        assert!(with_x.matches(Some(&table(&[("x-k", AMQPValue::ShortString("v".into()))]))));
        assert!(!with_x.matches(Some(&table(&[]))));
    }
}
