//! `add_vhost`, `delete_vhost`, `list_vhosts`.

use serde_json::{Map, Value, json};

use super::client::seg;
use super::lists::{field, table};
use super::{Ctx, R};

pub fn add(
    c: &Ctx,
    name: &str,
    description: Option<String>,
    tags: Option<String>,
    default_queue_type: Option<String>,
) -> R<()> {
    c.out.info(&format!("Adding vhost \"{name}\" ..."));
    let mut body = Map::new();
    if let Some(d) = description {
        body.insert("description".into(), json!(d));
    }
    if let Some(t) = tags {
        body.insert("tags".into(), json!(t));
    }
    if let Some(q) = default_queue_type {
        body.insert("default_queue_type".into(), json!(q));
    }
    c.client.put(&format!("/api/vhosts/{}", seg(name)), &Value::Object(body))
}

pub fn delete(c: &Ctx, name: &str) -> R<()> {
    c.out.info(&format!("Deleting vhost \"{name}\" ..."));
    c.client.delete(&format!("/api/vhosts/{}", seg(name)), || format!("virtual host '{name}' does not exist"))
}

pub fn list(c: &Ctx, columns: &[String]) -> R<()> {
    let items = c.client.get("/api/vhosts")?.as_array().cloned().unwrap_or_default();
    c.out.info("Listing vhosts ...");
    let valid = [
        "name",
        "description",
        "tags",
        "tracing",
        "default_queue_type",
        "messages",
        "messages_ready",
        "messages_unacknowledged",
    ];
    table(c, &items, columns, &["name"], &valid, field)
}
