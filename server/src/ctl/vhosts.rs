//! `add_vhost`, `delete_vhost`, `list_vhosts`.

use serde_json::{Map, Value, json};

use warren_api_types::objects::Vhost;

use super::client::seg;
use super::lists::{Row, table};
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

impl Row for Vhost {
    const COLUMNS: &'static [&'static str] = &[
        "name",
        "description",
        "tags",
        "tracing",
        "default_queue_type",
        "messages",
        "messages_ready",
        "messages_unacknowledged",
    ];
    fn cell(&self, column: &str) -> Value {
        match column {
            "name" => self.name.as_str().into(),
            "description" => self.description.as_str().into(),
            "tags" => self.tags.clone().into(),
            "tracing" => self.tracing.into(),
            "default_queue_type" => self.default_queue_type.clone().into(),
            "messages" => self.totals.messages.into(),
            "messages_ready" => self.totals.messages_ready.into(),
            "messages_unacknowledged" => self.totals.messages_unacknowledged.into(),
            _ => Value::Null,
        }
    }
}

pub fn list(c: &Ctx, columns: &[String]) -> R<()> {
    let items: Vec<Vhost> = c.client.get("/api/vhosts")?;
    c.out.info("Listing vhosts ...");
    table(c, &items, columns, &["name"])
}
