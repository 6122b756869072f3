//! How values that are not plain text are stored: AMQP argument tables as
//! their wire encoding, management values as JSON text.

use amq_protocol::types::generation::gen_field_table;
use amq_protocol::types::parsing::parse_field_table;
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString};

use super::StoreError;

/// Encodes a field table as on the wire (with its 4-byte length), so that
/// every AMQP type comes back as itself. Keys come out sorted (`FieldTable`
/// is a `BTreeMap`), so equal tables give equal bytes.
pub(super) fn encode_table(table: &FieldTable) -> Result<Vec<u8>, StoreError> {
    let normalized;
    let table = if contains_short_string(table) {
        normalized = normalize_table(table);
        &normalized
    } else {
        table
    };
    cookie_factory::gen_simple(gen_field_table(table), Vec::new())
        .map_err(|e| StoreError::encode("an argument table", format!("{e:?}")))
}

pub(super) fn decode_table(bytes: &[u8]) -> Result<FieldTable, StoreError> {
    match parse_field_table(bytes) {
        Ok(([], table)) => Ok(table),
        Ok((rest, _)) => Err(StoreError::corrupt("argument table", format!("{} trailing bytes", rest.len()))),
        Err(e) => Err(StoreError::corrupt("argument table", format!("{e:?}"))),
    }
}

// `ShortString` is amq-protocol's in-memory-only variant: it has no field
// type tag of its own (AMQP's 's' is RabbitMQ's short int), so the encoder
// would write a tag the parser rejects. The wire carries such strings as long
// strings, and so does the store.
fn contains_short_string(table: &FieldTable) -> bool {
    table.inner().values().any(value_contains_short_string)
}

fn value_contains_short_string(v: &AMQPValue) -> bool {
    match v {
        AMQPValue::ShortString(_) => true,
        AMQPValue::FieldTable(t) => contains_short_string(t),
        AMQPValue::FieldArray(a) => a.as_slice().iter().any(value_contains_short_string),
        _ => false,
    }
}

fn normalize_table(table: &FieldTable) -> FieldTable {
    let mut out = FieldTable::default();
    for (k, v) in table.inner() {
        out.insert(k.clone(), normalize_value(v));
    }
    out
}

fn normalize_value(v: &AMQPValue) -> AMQPValue {
    match v {
        AMQPValue::ShortString(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        AMQPValue::FieldTable(t) => AMQPValue::FieldTable(normalize_table(t)),
        AMQPValue::FieldArray(a) => {
            let mut out = FieldArray::default();
            for item in a.as_slice() {
                out.push(normalize_value(item));
            }
            AMQPValue::FieldArray(out)
        }
        other => other.clone(),
    }
}

pub(super) fn encode_tags(tags: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(tags).map_err(|e| StoreError::encode("tags", e))
}

pub(super) fn decode_tags(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt("tags", e))
}

pub(super) fn encode_json(what: &'static str, v: &serde_json::Value) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::encode(what, e))
}

pub(super) fn decode_json(what: &'static str, text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(what, e))
}

#[cfg(test)]
mod tests {
    use amq_protocol::types::{ByteArray, DecimalValue, ShortString};

    use super::*;

    fn sample() -> FieldTable {
        let mut nested = FieldTable::default();
        nested.insert("inner".into(), AMQPValue::ShortInt(-7));
        let mut array = FieldArray::default();
        array.push(AMQPValue::LongString("a".into()));
        array.push(AMQPValue::LongLongInt(1 << 40));
        array.push(AMQPValue::Boolean(false));
        let mut t = FieldTable::default();
        t.insert("bool".into(), AMQPValue::Boolean(true));
        t.insert("i8".into(), AMQPValue::ShortShortInt(-3));
        t.insert("u8".into(), AMQPValue::ShortShortUInt(200));
        t.insert("i16".into(), AMQPValue::ShortInt(-300));
        t.insert("u16".into(), AMQPValue::ShortUInt(60_000));
        t.insert("signedint".into(), AMQPValue::LongInt(-70_000));
        t.insert("u32".into(), AMQPValue::LongUInt(4_000_000_000));
        t.insert("long".into(), AMQPValue::LongLongInt(-(1 << 50)));
        t.insert("float".into(), AMQPValue::Float(1.5));
        t.insert("double".into(), AMQPValue::Double(-2.25));
        t.insert("decimal".into(), AMQPValue::DecimalValue(DecimalValue { scale: 2, value: 12345 }));
        t.insert("longstr".into(), AMQPValue::LongString("héllo".into()));
        t.insert("array".into(), AMQPValue::FieldArray(array));
        t.insert("ts".into(), AMQPValue::Timestamp(1_700_000_000));
        t.insert("table".into(), AMQPValue::FieldTable(nested));
        t.insert("bytes".into(), AMQPValue::ByteArray(ByteArray::from(vec![0u8, 1, 255])));
        t.insert("void".into(), AMQPValue::Void);
        t
    }

    #[test]
    fn every_wire_type_round_trips() {
        let t = sample();
        let bytes = encode_table(&t).unwrap();
        assert_eq!(decode_table(&bytes).unwrap(), t);
        // Deterministic: the uniqueness of bindings depends on it.
        assert_eq!(encode_table(&t.clone()).unwrap(), bytes);
    }

    #[test]
    fn empty_table_is_four_zero_bytes() {
        assert_eq!(encode_table(&FieldTable::default()).unwrap(), vec![0, 0, 0, 0]);
    }

    #[test]
    fn short_strings_are_stored_as_long_strings() {
        let mut t = FieldTable::default();
        t.insert("x-match".into(), AMQPValue::ShortString(ShortString::from("all")));
        let back = decode_table(&encode_table(&t).unwrap()).unwrap();
        assert_eq!(back.inner().get("x-match"), Some(&AMQPValue::LongString("all".into())));
    }

    #[test]
    fn garbage_is_reported_as_corrupt() {
        let err = decode_table(&[0, 0, 0, 9, 1]).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }
}
