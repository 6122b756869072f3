//! `set_permissions`, `clear_permissions`, `list_permissions`,
//! `list_user_permissions`, and the topic-permission verbs.

use serde_json::json;

use super::client::seg;
use super::lists::{field, table};
use super::{CtlError, Ctx, R};

/// rabbitmqctl's errors name what is missing: the user or the vhost.
fn require(c: &Ctx, user: &str) -> R<()> {
    if c.client.get_opt(&format!("/api/vhosts/{}", seg(&c.vhost)))?.is_none() {
        return Err(CtlError::data(format!("virtual host '{}' does not exist", c.vhost)));
    }
    if c.client.get_opt(&format!("/api/users/{}", seg(user)))?.is_none() {
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

pub fn list(c: &Ctx) -> R<()> {
    let path = format!("/api/vhosts/{}/permissions", seg(&c.vhost));
    let items = c
        .client
        .get_opt(&path)?
        .ok_or_else(|| CtlError::data(format!("virtual host '{}' does not exist", c.vhost)))?;
    c.out.info(&format!("Listing permissions for vhost \"{}\" ...", c.vhost));
    let items = items.as_array().cloned().unwrap_or_default();
    table(
        c,
        &items,
        &[],
        &["user", "configure", "write", "read"],
        &["user", "configure", "write", "read"],
        field,
    )
}

pub fn list_user(c: &Ctx, user: &str) -> R<()> {
    let items = c
        .client
        .get_opt(&format!("/api/users/{}/permissions", seg(user)))?
        .ok_or_else(|| CtlError::data(format!("user '{user}' does not exist")))?;
    c.out.info(&format!("Listing permissions for user \"{user}\" ..."));
    let items = items.as_array().cloned().unwrap_or_default();
    let cols = ["vhost", "configure", "write", "read"];
    table(c, &items, &[], &cols, &cols, field)
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
    let items = c
        .client
        .get_opt(&path)?
        .ok_or_else(|| CtlError::data(format!("virtual host '{}' does not exist", c.vhost)))?;
    c.out.info(&format!("Listing topic permissions for vhost \"{}\" ...", c.vhost));
    let items = items.as_array().cloned().unwrap_or_default();
    let cols = ["user", "exchange", "write", "read"];
    table(c, &items, &[], &cols, &cols, field)
}
