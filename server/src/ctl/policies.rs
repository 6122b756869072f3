//! Policies, operator policies and runtime parameters: `set_policy`,
//! `clear_policy`, `list_policies`, their operator variants,
//! `set_parameter`, `clear_parameter`, `list_parameters`.

use serde_json::{Value, json};
use warren_api_types::objects::{Parameter, Policy};

use super::cli::PolicyArgs;
use super::client::seg;
use super::lists::{Row, table};
use super::{CtlError, Ctx, R, json_arg};

#[derive(Clone, Copy)]
pub enum Kind {
    Policy,
    Operator,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Policy => "policies",
            Kind::Operator => "operator-policies",
        }
    }
    fn word(self) -> &'static str {
        match self {
            Kind::Policy => "policy",
            Kind::Operator => "operator policy",
        }
    }
}

fn no_vhost(c: &Ctx) -> CtlError {
    CtlError::data(format!("virtual host '{}' does not exist", c.vhost))
}

fn require_vhost(c: &Ctx) -> R<()> {
    if c.client.exists(&format!("/api/vhosts/{}", seg(&c.vhost)))? { Ok(()) } else { Err(no_vhost(c)) }
}

pub fn set(c: &Ctx, kind: Kind, a: &PolicyArgs) -> R<()> {
    let definition = json_arg("the policy definition", &a.definition)?;
    if !definition.is_object() {
        return Err(CtlError::data(format!("the policy definition must be a JSON object: {}", a.definition)));
    }
    c.out.info(&format!(
        "Setting {} \"{}\" for pattern \"{}\" to \"{}\" with priority \"{}\" for vhost \"{}\" ...",
        kind.word(),
        a.name,
        a.pattern,
        a.definition,
        a.priority,
        c.vhost
    ));
    require_vhost(c)?;
    let body = json!({"pattern": a.pattern, "definition": definition, "priority": a.priority, "apply-to": a.apply_to});
    c.client.put(&format!("/api/{}/{}/{}", kind.path(), seg(&c.vhost), seg(&a.name)), &body)
}

pub fn clear(c: &Ctx, kind: Kind, name: &str) -> R<()> {
    c.out.info(&format!("Clearing {} \"{name}\" on vhost \"{}\" ...", kind.word(), c.vhost));
    require_vhost(c)?;
    c.client.delete(&format!("/api/{}/{}/{}", kind.path(), seg(&c.vhost), seg(name)), || {
        format!("{} '{name}' does not exist in virtual host '{}'", kind.word(), c.vhost)
    })
}

impl Row for Policy {
    const COLUMNS: &'static [&'static str] =
        &["vhost", "name", "pattern", "apply-to", "definition", "priority"];
    fn cell(&self, column: &str) -> Value {
        match column {
            "vhost" => self.vhost.as_str().into(),
            "name" => self.name.as_str().into(),
            "pattern" => self.pattern.as_str().into(),
            "apply-to" => self.apply_to.as_str().into(),
            "definition" => self.definition.clone(),
            "priority" => self.priority.into(),
            _ => Value::Null,
        }
    }
}

pub fn list(c: &Ctx, kind: Kind) -> R<()> {
    let items: Vec<Policy> =
        c.client.get_opt(&format!("/api/{}/{}", kind.path(), seg(&c.vhost)))?.ok_or_else(|| no_vhost(c))?;
    let what = match kind {
        Kind::Policy => "policies",
        Kind::Operator => "operator policies",
    };
    c.out.info(&format!("Listing {what} for vhost \"{}\" ...", c.vhost));
    table(c, &items, &[], Policy::COLUMNS)
}

pub fn set_parameter(c: &Ctx, component: &str, name: &str, value: &str) -> R<()> {
    let value = json_arg("the parameter value", value)?;
    c.out.info(&format!(
        "Setting runtime parameter \"{name}\" for component \"{component}\" to \"{value}\" in vhost \"{}\" ...",
        c.vhost
    ));
    require_vhost(c)?;
    let body = json!({"component": component, "vhost": c.vhost, "name": name, "value": value});
    c.client.put(&format!("/api/parameters/{}/{}/{}", seg(component), seg(&c.vhost), seg(name)), &body)
}

pub fn clear_parameter(c: &Ctx, component: &str, name: &str) -> R<()> {
    c.out.info(&format!(
        "Clearing runtime parameter \"{name}\" for component \"{component}\" on vhost \"{}\" ...",
        c.vhost
    ));
    require_vhost(c)?;
    c.client.delete(&format!("/api/parameters/{}/{}/{}", seg(component), seg(&c.vhost), seg(name)), || {
        format!("parameter '{name}' of component '{component}' does not exist in virtual host '{}'", c.vhost)
    })
}

impl Row for Parameter {
    const COLUMNS: &'static [&'static str] = &["component", "vhost", "name", "value"];
    fn cell(&self, column: &str) -> Value {
        match column {
            "component" => self.component.as_str().into(),
            "vhost" => self.vhost.as_str().into(),
            "name" => self.name.as_str().into(),
            "value" => self.value.clone(),
            _ => Value::Null,
        }
    }
}

pub fn list_parameters(c: &Ctx) -> R<()> {
    require_vhost(c)?;
    let mut items: Vec<Parameter> = c.client.get("/api/parameters")?;
    c.out.info(&format!("Listing runtime parameters for vhost \"{}\" ...", c.vhost));
    // Policies are parameters inside the broker; rabbitmqctl does not list them here.
    items.retain(|p| p.vhost == c.vhost && !matches!(p.component.as_str(), "policy" | "operator_policy"));
    table(c, &items, &[], &["component", "name", "value"])
}
