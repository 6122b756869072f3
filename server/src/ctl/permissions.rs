//! `set_permissions`, `clear_permissions`, `list_permissions`,
//! `list_user_permissions`, and the topic-permission verbs.

use serde_json::{Value, json};
use warren_api_types::objects::{Permission, TopicPermission};

use super::client::seg;
use super::lists::{Row, table};
use super::{CtlError, Ctx, R};

/// rabbitmqctl's errors name what is missing: the user or the vhost.
fn require(c: &Ctx, user: &str) -> R<()> {
    if !c.client.exists(&format!("/api/vhosts/{}", seg(&c.vhost)))? {
        return Err(CtlError::data(format!("virtual host '{}' does not exist", c.vhost)));
    }
    if !c.client.exists(&format!("/api/users/{}", seg(user)))? {
        return Err(CtlError::data(format!("user '{user}' does not exist")));
    }
    Ok(())
}

fn path(kind: &str, c: &Ctx, user: &str) -> String {
    format!("/api/{kind}/{}/{}", seg(&c.vhost), seg(user))
}

pub fn set(c: &Ctx, user: &str, configure: &str, write: &str, read: &str) -> R<()> {
    c.out.info(&format!("Setting permissions for user \"{user}\" in vhost \"{}\" ...", c.vhost));
    require(c, user)?;
    c.client
        .put(&path("permissions", c, user), &json!({"configure": configure, "write": write, "read": read}))
}

pub fn clear(c: &Ctx, user: &str) -> R<()> {
    c.out.info(&format!("Clearing permissions for user \"{user}\" in vhost \"{}\" ...", c.vhost));
    require(c, user)?;
    c.client.delete(&path("permissions", c, user), || {
        format!("user '{user}' has no permissions in virtual host '{}'", c.vhost)
    })
}

impl Row for Permission {
    const COLUMNS: &'static [&'static str] = &["user", "vhost", "configure", "write", "read"];
    fn cell(&self, column: &str) -> Value {
        match column {
            "user" => self.user.as_str().into(),
            "vhost" => self.vhost.as_str().into(),
            "configure" => self.configure.as_str().into(),
            "write" => self.write.as_str().into(),
            "read" => self.read.as_str().into(),
            _ => Value::Null,
        }
    }
}

impl Row for TopicPermission {
    const COLUMNS: &'static [&'static str] = &["user", "vhost", "exchange", "write", "read"];
    fn cell(&self, column: &str) -> Value {
        match column {
            "user" => self.user.as_str().into(),
            "vhost" => self.vhost.as_str().into(),
            "exchange" => self.exchange.as_str().into(),
            "write" => self.write.as_str().into(),
            "read" => self.read.as_str().into(),
            _ => Value::Null,
        }
    }
}

pub fn list(c: &Ctx) -> R<()> {
    let path = format!("/api/vhosts/{}/permissions", seg(&c.vhost));
    let items: Vec<Permission> = c
        .client
        .get_opt(&path)?
        .ok_or_else(|| CtlError::data(format!("virtual host '{}' does not exist", c.vhost)))?;
    c.out.info(&format!("Listing permissions for vhost \"{}\" ...", c.vhost));
    table(c, &items, &[], &["user", "configure", "write", "read"])
}

pub fn list_user(c: &Ctx, user: &str) -> R<()> {
    let items: Vec<Permission> = c
        .client
        .get_opt(&format!("/api/users/{}/permissions", seg(user)))?
        .ok_or_else(|| CtlError::data(format!("user '{user}' does not exist")))?;
    c.out.info(&format!("Listing permissions for user \"{user}\" ..."));
    table(c, &items, &[], &["vhost", "configure", "write", "read"])
}

pub fn set_topic(c: &Ctx, user: &str, exchange: &str, write: &str, read: &str) -> R<()> {
    c.out.info(&format!(
        "Setting topic permissions on \"{exchange}\" for user \"{user}\" in vhost \"{}\" ...",
        c.vhost
    ));
    require(c, user)?;
    c.client.put(
        &path("topic-permissions", c, user),
        &json!({"exchange": exchange, "write": write, "read": read}),
    )
}

pub fn clear_topic(c: &Ctx, user: &str, exchange: Option<&str>) -> R<()> {
    let on = exchange.map(|x| format!(" on \"{x}\"")).unwrap_or_default();
    c.out.info(&format!("Clearing topic permissions{on} for user \"{user}\" in vhost \"{}\" ...", c.vhost));
    require(c, user)?;
    let mut p = path("topic-permissions", c, user);
    if let Some(x) = exchange {
        p.push_str(&format!("?exchange={}", seg(x)));
    }
    c.client.delete(&p, || match exchange {
        Some(x) => format!("user '{user}' has no topic permissions on '{x}' in virtual host '{}'", c.vhost),
        None => format!("user '{user}' has no topic permissions in virtual host '{}'", c.vhost),
    })
}

pub fn list_topic(c: &Ctx) -> R<()> {
    let path = format!("/api/vhosts/{}/topic-permissions", seg(&c.vhost));
    let items: Vec<TopicPermission> = c
        .client
        .get_opt(&path)?
        .ok_or_else(|| CtlError::data(format!("virtual host '{}' does not exist", c.vhost)))?;
    c.out.info(&format!("Listing topic permissions for vhost \"{}\" ...", c.vhost));
    table(c, &items, &[], &["user", "exchange", "write", "read"])
}
