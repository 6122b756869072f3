//! Listing: RabbitMQ's query parameters, shared by every list endpoint.
//!
//! `page`/`page_size` (cap 500, else 400), `name` with `use_regex`, `sort`
//! (a dotted path, e.g. `message_stats.publish`) with `sort_reverse`, and
//! `columns`. Filtering and the default sort (vhost, then name) work on the
//! typed items; only an explicit sort on another field or a `columns`
//! selection turns items into JSON values first. The answer is serialized
//! once into a buffer, so an unpaged list of 10,000 queues costs one pass
//! and one allocation of its own size.

use std::cmp::Ordering;
use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::response::Response;
use regex::RegexBuilder;
use serde::Serialize;
use serde_json::Value;
use warren_api_types::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

use super::error::{ApiError, ApiResult};
use super::extract::json;

/// What a list item exposes for the default sort and the name filter.
pub trait Listed {
    fn name(&self) -> &str;
    fn vhost(&self) -> &str {
        ""
    }
}

/// `?lengths_age=60&lengths_incr=5`: how much chart history to include.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    pub age_secs: u64,
    pub incr_secs: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub page: Option<usize>,
    pub page_size: Option<usize>,
    pub name: Option<String>,
    pub use_regex: bool,
    pub sort: Option<String>,
    pub sort_reverse: bool,
    pub columns: Option<Vec<String>>,
    pub lengths: Option<History>,
    pub msg_rates: Option<History>,
    pub raw: HashMap<String, String>,
}

fn number(raw: &HashMap<String, String>, key: &str) -> ApiResult<Option<u64>> {
    match raw.get(key) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{key}: '{v}' is not a non-negative integer"))),
    }
}

fn flag(raw: &HashMap<String, String>, key: &str) -> bool {
    raw.get(key).is_some_and(|v| v == "true")
}

fn history(raw: &HashMap<String, String>, prefix: &str) -> ApiResult<Option<History>> {
    let age = number(raw, &format!("{prefix}_age"))?;
    let incr = number(raw, &format!("{prefix}_incr"))?;
    match (age, incr) {
        (None, None) => Ok(None),
        (Some(a), Some(i)) if a > 0 && i > 0 => Ok(Some(History { age_secs: a, incr_secs: i })),
        _ => Err(ApiError::bad_request(format!(
            "{prefix}_age and {prefix}_incr must be given together, as positive integers"
        ))),
    }
}

/// RabbitMQ's 400 for bad paging: `invalid_pagination_parameters`.
fn invalid_pagination(reason: String) -> ApiError {
    ApiError::new(axum::http::StatusCode::BAD_REQUEST, "invalid_pagination_parameters", reason)
}

impl ListQuery {
    pub fn parse(raw: HashMap<String, String>) -> ApiResult<Self> {
        let page = number(&raw, "page")?.map(|n| n as usize);
        let page_size = number(&raw, "page_size")?.map(|n| n as usize);
        if let Some(p) = page {
            let size = page_size.unwrap_or(DEFAULT_PAGE_SIZE);
            if p == 0 || size == 0 || size > MAX_PAGE_SIZE {
                return Err(invalid_pagination(format!(
                    "Invalid pagination parameters: page number {p}, page size {size} (page_size must be 1 to {MAX_PAGE_SIZE})"
                )));
            }
        } else if page_size.is_some_and(|s| s == 0 || s > MAX_PAGE_SIZE) {
            return Err(invalid_pagination(format!(
                "Invalid pagination parameters: page size {} (at most {MAX_PAGE_SIZE})",
                page_size.unwrap_or(0)
            )));
        }
        let columns = raw.get("columns").map(|c| {
            c.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect::<Vec<_>>()
        });
        Ok(ListQuery {
            page,
            page_size,
            name: raw.get("name").filter(|n| !n.is_empty()).cloned(),
            use_regex: flag(&raw, "use_regex"),
            sort: raw.get("sort").filter(|s| !s.is_empty()).cloned(),
            sort_reverse: flag(&raw, "sort_reverse"),
            columns: columns.filter(|c| !c.is_empty()),
            lengths: history(&raw, "lengths")?,
            msg_rates: history(&raw, "msg_rates")?,
            raw,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(raw) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
        ListQuery::parse(raw)
    }
}

/// The value at a dotted path, e.g. `message_stats.publish_details.rate`.
fn dotted<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// Erlang's term order, which RabbitMQ's sort follows: numbers before
/// booleans before maps before lists before strings; a missing value counts
/// as 0.
fn rank(v: &Value) -> u8 {
    match v {
        Value::Null | Value::Number(_) => 0,
        Value::Bool(_) => 1,
        Value::Object(_) => 2,
        Value::Array(_) => 3,
        Value::String(_) => 4,
    }
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn prune(item: &Value, columns: &[String]) -> Value {
    let mut out = serde_json::Map::new();
    for col in columns {
        let Some(v) = dotted(item, col) else { continue };
        let mut keys = col.split('.').peekable();
        let mut node = &mut out;
        while let Some(k) = keys.next() {
            if keys.peek().is_none() {
                node.insert(k.to_owned(), v.clone());
                break;
            }
            let entry = node.entry(k.to_owned()).or_insert_with(|| Value::Object(Default::default()));
            let Value::Object(next) = entry else { break };
            node = next;
        }
    }
    Value::Object(out)
}

/// Like [`respond`], for lists whose items are costly to build (queues
/// and exchanges, with their stats): filtering and sorting work on the
/// sources, and only the requested page is built. The sort is on the names,
/// or on the number `sort_value` reads from a source when the caller knows
/// how to read the sorted field (ties in name order); a sort on any other
/// field needs every item, and falls back to [`respond`].
pub fn respond_lazy<S, T, K, B>(
    q: &ListQuery,
    mut sources: Vec<S>,
    names: K,
    build: B,
    sort_value: Option<&dyn Fn(&S) -> f64>,
) -> ApiResult<Response>
where
    T: Serialize + Listed,
    K: Fn(&S) -> (&str, &str),
    B: Fn(&S) -> T,
{
    let by_names = matches!(q.sort.as_deref(), None | Some("name") | Some("vhost"));
    if !by_names && sort_value.is_none() {
        return respond(q, sources.iter().map(build).collect());
    }
    let total = sources.len();
    if let Some(re) = name_filter(q)? {
        sources.retain(|s| re.is_match(names(s).1));
    }
    match q.sort.as_deref() {
        Some("name") => sources.sort_by(|a, b| names(a).1.cmp(names(b).1)),
        Some("vhost") => sources.sort_by(|a, b| names(a).0.cmp(names(b).0)),
        _ => sources.sort_by(|a, b| names(a).cmp(&names(b))),
    }
    if let (false, Some(value)) = (by_names, sort_value) {
        let mut keyed: Vec<(f64, S)> = sources.into_iter().map(|s| (value(&s), s)).collect();
        // Stable: equal values keep the name order.
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        sources = keyed.into_iter().map(|(_, s)| s).collect();
    }
    if q.sort_reverse {
        sources.reverse();
    }
    let filtered = sources.len();
    let Some((page, size, offset)) = page_bounds(q, filtered)? else {
        let items: Vec<T> = sources.iter().map(build).collect();
        return Ok(render(q, &items));
    };
    let items: Vec<T> = sources[offset..(offset + size).min(filtered)].iter().map(build).collect();
    Ok(envelope(q, total, filtered, page, size, &items))
}

fn name_filter(q: &ListQuery) -> ApiResult<Option<regex::Regex>> {
    let Some(name) = &q.name else { return Ok(None) };
    let pattern = if q.use_regex { name.clone() } else { regex::escape(name) };
    RegexBuilder::new(&pattern)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("invalid name filter '{name}': {e}")))
}

/// (page, size, offset) when paging was asked for; 400 beyond the end.
fn page_bounds(q: &ListQuery, filtered: usize) -> ApiResult<Option<(usize, usize, usize)>> {
    let Some(page) = q.page else { return Ok(None) };
    let size = q.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    // Saturating: a huge page number must be a 400, not an overflow.
    let offset = (page - 1).saturating_mul(size);
    if offset > filtered {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "page_out_of_range",
            format!("Page out of range, page: {page} page size: {size}, len: {filtered}"),
        ));
    }
    Ok(Some((page, size, offset)))
}

fn envelope<T: Serialize>(
    q: &ListQuery,
    total: usize,
    filtered: usize,
    page: usize,
    size: usize,
    items: &[T],
) -> Response {
    json(&Envelope {
        total_count: total,
        item_count: items.len(),
        filtered_count: filtered,
        page,
        page_size: size,
        page_count: filtered.div_ceil(size),
        items: Rendered(q, items),
    })
}

/// Filters, sorts, pages and serializes a list, as RabbitMQ does.
pub fn respond<T: Serialize + Listed>(q: &ListQuery, mut items: Vec<T>) -> ApiResult<Response> {
    let total = items.len();
    if let Some(re) = name_filter(q)? {
        items.retain(|i| re.is_match(i.name()));
    }
    match q.sort.as_deref() {
        None => items.sort_by(|a, b| (a.vhost(), a.name()).cmp(&(b.vhost(), b.name()))),
        Some("name") => items.sort_by(|a, b| a.name().cmp(b.name())),
        Some("vhost") => items.sort_by(|a, b| a.vhost().cmp(b.vhost())),
        Some(key) => {
            let mut keyed: Vec<(Value, T)> = items
                .into_iter()
                .map(|i| {
                    let v = serde_json::to_value(&i).ok();
                    (v.as_ref().and_then(|v| dotted(v, key)).cloned().unwrap_or(Value::Null), i)
                })
                .collect();
            keyed.sort_by(|a, b| compare(&a.0, &b.0));
            items = keyed.into_iter().map(|(_, i)| i).collect();
        }
    }
    if q.sort_reverse {
        items.reverse();
    }
    let filtered = items.len();
    match page_bounds(q, filtered)? {
        None => Ok(render(q, &items)),
        Some((page, size, offset)) => {
            Ok(envelope(q, total, filtered, page, size, &items[offset..(offset + size).min(filtered)]))
        }
    }
}

/// `warren_api_types::Page`, with items rendered on the fly.
#[derive(Serialize)]
struct Envelope<'a, T> {
    total_count: usize,
    item_count: usize,
    filtered_count: usize,
    page: usize,
    page_size: usize,
    page_count: usize,
    items: Rendered<'a, T>,
}

/// Items, serialized whole or cut down to `columns`.
struct Rendered<'a, T>(&'a ListQuery, &'a [T]);

impl<T: Serialize> Serialize for Rendered<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.1.len()))?;
        for item in self.1 {
            match &self.0.columns {
                None => seq.serialize_element(item)?,
                Some(cols) => {
                    let v = serde_json::to_value(item).map_err(serde::ser::Error::custom)?;
                    seq.serialize_element(&prune(&v, cols))?;
                }
            }
        }
        seq.end()
    }
}

fn render<T: Serialize>(q: &ListQuery, items: &[T]) -> Response {
    json(&Rendered(q, items))
}

/// One object, cut down to `columns` when asked.
pub fn respond_one<T: Serialize>(q: &ListQuery, item: &T) -> Response {
    match &q.columns {
        None => json(item),
        Some(cols) => match serde_json::to_value(item) {
            Ok(v) => json(&prune(&v, cols)),
            Err(e) => axum::response::IntoResponse::into_response(ApiError::internal(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prune_keeps_nested_columns() {
        let v = json!({"name": "q", "message_stats": {"publish": 3, "ack": 1}, "x": 1});
        let cols = vec!["name".to_owned(), "message_stats.publish".to_owned()];
        assert_eq!(prune(&v, &cols), json!({"name": "q", "message_stats": {"publish": 3}}));
    }

    #[test]
    fn page_size_cap_is_enforced() {
        let mut raw = HashMap::new();
        raw.insert("page".to_owned(), "1".to_owned());
        raw.insert("page_size".to_owned(), "501".to_owned());
        assert!(ListQuery::parse(raw).is_err());
    }

    #[test]
    fn erlang_order_puts_numbers_before_strings() {
        assert_eq!(compare(&json!(5), &json!("a")), Ordering::Less);
        assert_eq!(compare(&json!(10), &json!(9)), Ordering::Greater);
    }
}
