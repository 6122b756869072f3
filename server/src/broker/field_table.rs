//! Checking AMQP field tables in their wire encoding before anything
//! decodes them.
//!
//! Field tables nest (a table may hold tables and arrays, which may hold
//! more), and every decoder, encoder, comparison and conversion to JSON that
//! walks them recursively would overflow the stack on a table nested a few
//! thousand levels deep, which fits in one 14 KB frame. So every table that
//! arrives from a client (message headers, method arguments, client
//! properties, JSON from the HTTP API) is walked here first, with an
//! explicit stack, and refused when it is malformed, uses a type tag that
//! does not exist, or nests deeper than [`MAX_DEPTH`]. Everything past this
//! check may recurse freely.

/// The deepest nesting of tables and arrays accepted, counting the
/// outermost table as 1. Real clients send 1 to 3 (`x-death` is a table of
/// an array of tables); the limit is far above that, and low enough that
/// every recursive walk of an accepted table, including its JSON form on
/// the cluster's link, stays small.
pub const MAX_DEPTH: usize = 32;

/// Why a field table was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    /// Lengths that do not add up, a key that is not UTF-8, bytes missing.
    Malformed,
    /// A value's type tag is none of AMQP's (as RabbitMQ reads them).
    UnknownType(u8),
    /// Tables and arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableError::Malformed => write!(f, "malformed field table"),
            TableError::UnknownType(t) if t.is_ascii_graphic() => {
                write!(f, "field table value of unknown type '{}'", *t as char)
            }
            TableError::UnknownType(t) => write!(f, "field table value of unknown type {t}"),
            TableError::TooDeep => {
                write!(f, "field tables and arrays nested deeper than {MAX_DEPTH} levels are not accepted")
            }
        }
    }
}

impl TableError {
    /// The broker error a client gets for it: a malformed or too deep table
    /// is a frame error, an unknown type RabbitMQ's internal error.
    pub fn into_broker_error(self, context: &str) -> super::error::BrokerError {
        use super::error::BrokerError;
        match self {
            TableError::UnknownType(_) => BrokerError::internal(format!("{context}: {self}")),
            TableError::Malformed | TableError::TooDeep => {
                BrokerError::frame_error(format!("{context}: {self}"))
            }
        }
    }
}

/// What the walk is inside of: the end offset of an open table or array.
#[derive(Clone, Copy)]
enum Open {
    Table(usize),
    Array(usize),
}

/// Checks one encoded field table, length prefix included, and returns how
/// many bytes it takes. Trailing bytes after it are the caller's business.
pub fn check(raw: &[u8]) -> Result<usize, TableError> {
    let end = 4 + be_u32(raw, 0)? as usize;
    if raw.len() < end {
        return Err(TableError::Malformed);
    }
    let mut stack: Vec<Open> = Vec::new();
    stack.push(Open::Table(end));
    let mut at = 4;
    while let Some(&top) = stack.last() {
        let (limit, in_table) = match top {
            Open::Table(e) => (e, true),
            Open::Array(e) => (e, false),
        };
        if at == limit {
            stack.pop();
            continue;
        }
        if in_table {
            // A key: a short string, which must be UTF-8.
            let n = usize::from(*raw.get(at).ok_or(TableError::Malformed)?);
            let key = raw.get(at + 1..at + 1 + n).ok_or(TableError::Malformed)?;
            std::str::from_utf8(key).map_err(|_| TableError::Malformed)?;
            at += 1 + n;
        }
        let tag = *raw.get(at).ok_or(TableError::Malformed)?;
        at += 1;
        let fixed = match tag {
            b'V' => 0,
            b't' | b'b' | b'B' => 1,
            b's' | b'U' | b'u' => 2,
            b'I' | b'i' | b'f' => 4,
            b'D' => 5,
            b'l' | b'L' | b'd' | b'T' => 8,
            b'S' | b'x' => 4 + be_u32(raw, at)? as usize,
            b'F' | b'A' => {
                let inner_end = at + 4 + be_u32(raw, at)? as usize;
                if inner_end > limit {
                    return Err(TableError::Malformed);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(TableError::TooDeep);
                }
                stack.push(if tag == b'F' { Open::Table(inner_end) } else { Open::Array(inner_end) });
                at += 4;
                continue;
            }
            other => return Err(TableError::UnknownType(other)),
        };
        at += fixed;
        if at > limit {
            return Err(TableError::Malformed);
        }
    }
    Ok(end)
}

fn be_u32(raw: &[u8], at: usize) -> Result<u32, TableError> {
    let b = raw.get(at..at + 4).ok_or(TableError::Malformed)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The nesting depth of a decoded table (1 for a flat one), walked with an
/// explicit stack so that it is safe on any table built in memory.
pub fn depth(table: &amq_protocol::types::FieldTable) -> usize {
    use amq_protocol::types::AMQPValue;
    let mut deepest = 1;
    let mut stack: Vec<(&AMQPValue, usize)> = table.inner().values().map(|v| (v, 1)).collect();
    while let Some((v, d)) = stack.pop() {
        match v {
            AMQPValue::FieldTable(t) => {
                deepest = deepest.max(d + 1);
                stack.extend(t.inner().values().map(|v| (v, d + 1)));
            }
            AMQPValue::FieldArray(a) => {
                deepest = deepest.max(d + 1);
                stack.extend(a.as_slice().iter().map(|v| (v, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::types::generation::gen_field_table;
    use amq_protocol::types::parsing::parse_field_table;
    use amq_protocol::types::{AMQPValue, DecimalValue, FieldArray, FieldTable};
    use rand::{Rng, SeedableRng};

    fn encode(t: &FieldTable) -> Vec<u8> {
        cookie_factory::gen_simple(gen_field_table(t), Vec::new()).unwrap()
    }

    /// A table nested `levels` deep (1 = flat), alternating tables and
    /// arrays when `arrays` is set; encoded by hand, so that the test never
    /// builds what it checks the broker refuses to build.
    fn nested_bytes(levels: usize, arrays: bool) -> Vec<u8> {
        let mut value: Vec<u8> = b"t\x01".to_vec();
        for level in 1..levels {
            let mut wrapped = Vec::new();
            if arrays && level % 2 == 1 {
                // [value]
                wrapped.push(b'A');
                wrapped.extend_from_slice(&(value.len() as u32).to_be_bytes());
            } else {
                // {"k": value}
                wrapped.push(b'F');
                wrapped.extend_from_slice(&((value.len() + 2) as u32).to_be_bytes());
                wrapped.extend_from_slice(b"\x01k");
            }
            wrapped.extend_from_slice(&value);
            value = wrapped;
        }
        let mut body = b"\x01k".to_vec();
        body.extend_from_slice(&value);
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn every_type_round_trips_and_is_accepted() {
        let mut t = FieldTable::default();
        t.insert("bool".into(), AMQPValue::Boolean(true));
        t.insert("i8".into(), AMQPValue::ShortShortInt(-1));
        t.insert("u8".into(), AMQPValue::ShortShortUInt(1));
        t.insert("i16".into(), AMQPValue::ShortInt(-2));
        t.insert("u16".into(), AMQPValue::ShortUInt(2));
        t.insert("i32".into(), AMQPValue::LongInt(-3));
        t.insert("u32".into(), AMQPValue::LongUInt(3));
        t.insert("i64".into(), AMQPValue::LongLongInt(-4));
        t.insert("f32".into(), AMQPValue::Float(1.5));
        t.insert("f64".into(), AMQPValue::Double(2.5));
        t.insert("dec".into(), AMQPValue::DecimalValue(DecimalValue { scale: 2, value: 314 }));
        t.insert("str".into(), AMQPValue::LongString("héllo".into()));
        t.insert("ts".into(), AMQPValue::Timestamp(7));
        t.insert("bytes".into(), AMQPValue::ByteArray(vec![0, 1, 2].into()));
        t.insert("void".into(), AMQPValue::Void);
        let mut arr = FieldArray::default();
        arr.push(AMQPValue::LongInt(1));
        arr.push(AMQPValue::FieldTable(t.clone()));
        t.insert("arr".into(), AMQPValue::FieldArray(arr));
        let raw = encode(&t);
        assert_eq!(check(&raw), Ok(raw.len()));
        assert_eq!(depth(&t), 3);
        let mut trailing = raw.clone();
        trailing.extend_from_slice(b"xyz");
        assert_eq!(check(&trailing), Ok(raw.len()));
    }

    #[test]
    fn depth_up_to_the_limit_is_accepted_and_beyond_it_refused() {
        for arrays in [false, true] {
            let ok = nested_bytes(MAX_DEPTH, arrays);
            assert_eq!(check(&ok), Ok(ok.len()), "arrays: {arrays}");
            let (_, t) = parse_field_table::<&[u8]>(&ok).unwrap();
            assert_eq!(depth(&t), MAX_DEPTH);
            let deep = nested_bytes(MAX_DEPTH + 1, arrays);
            assert_eq!(check(&deep), Err(TableError::TooDeep), "arrays: {arrays}");
        }
        // What crashed the broker: thousands of levels in one small frame.
        let huge = nested_bytes(5_000, true);
        assert_eq!(check(&huge), Err(TableError::TooDeep));
    }

    #[test]
    fn unknown_tags_and_bad_lengths_are_refused() {
        let mut one = FieldTable::default();
        one.insert("k".into(), AMQPValue::LongInt(1));
        let mut raw = encode(&one);
        let tag_at = 4 + 2;
        assert_eq!(raw[tag_at], b'I');
        raw[tag_at] = b'Z';
        assert_eq!(check(&raw), Err(TableError::UnknownType(b'Z')));
        // A length that claims more than there is.
        let mut short = encode(&FieldTable::default());
        short[3] = 9;
        assert_eq!(check(&short), Err(TableError::Malformed));
        // A key that is not UTF-8.
        let bad_key = [0, 0, 0, 4, 1, 0xff, b'V', 0];
        assert_eq!(check(&bad_key[..7]), Err(TableError::Malformed));
        // An inner table that runs past its parent.
        let overrun = [0, 0, 0, 7, 1, b'k', b'F', 0, 0, 0, 9];
        assert_eq!(check(&overrun), Err(TableError::Malformed));
    }

    /// A small fuzz: random bytes, and random mutations of valid tables.
    /// Whatever the check accepts, amq-protocol's decoder must decode to the
    /// same length (so nothing downstream meets a table it cannot read), and
    /// the check must never panic.
    #[test]
    fn the_check_agrees_with_the_decoder_on_random_input() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let seeds: Vec<Vec<u8>> = vec![nested_bytes(3, true), nested_bytes(6, false), {
            let mut t = FieldTable::default();
            t.insert(
                "x-death".into(),
                AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(FieldTable::default())])),
            );
            t.insert("s".into(), AMQPValue::LongString("abc".into()));
            t.insert("n".into(), AMQPValue::LongLongInt(5));
            encode(&t)
        }];
        let mut accepted = 0;
        for i in 0..20_000 {
            let bytes: Vec<u8> = if i % 4 == 0 {
                let n = rng.random_range(0..40);
                (0..n).map(|_| rng.random()).collect()
            } else {
                let mut b = seeds[i % seeds.len()].clone();
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..b.len());
                    b[at] = rng.random();
                }
                b
            };
            if let Ok(n) = check(&bytes) {
                accepted += 1;
                let parsed = parse_field_table::<&[u8]>(&bytes);
                let (rest, _) = parsed.unwrap_or_else(|e| panic!("accepted but undecodable {bytes:?}: {e}"));
                assert_eq!(bytes.len() - rest.len(), n, "{bytes:?}");
            }
        }
        assert!(accepted > 100, "the mutations should leave some tables valid: {accepted}");
    }
}
