//! `/api/bindings`: list (all, per vhost), and the bindings between one
//! exchange and one queue or exchange: list them, create one (POST, 201
//! with a `Location`), show or delete one by its `properties_key`.
//!
//! A binding's `properties_key` is its routing key URL-encoded, plus `~` and
//! a hash of its arguments when it has any (RabbitMQ's scheme; the hash is
//! our own, so keys are stable within Warren but not equal to RabbitMQ's).

use amq_protocol::types::FieldTable;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use sha2::{Digest, Sha256};
use warren_api_types::objects;
use warren_api_types::requests::CreateBinding;
use warren_api_types::url::quote_plus;

use super::{exchange_name, listed_vhosts, vhost};
use crate::broker::auth::Access;
use crate::broker::exchange::{BindingInfo, DestKind};
use crate::definitions::DefinitionCommand;
use crate::http::Ctx;
use crate::http::amqp_json::{json_to_table, table_to_json};
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult, check_echo};
use crate::http::extract::{Body, P, json, no_content};
use crate::http::paging::{ListQuery, Listed, respond};

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/bindings", get(list_all))
        .route("/api/bindings/{vhost}", get(list_vhost))
        .route("/api/bindings/{vhost}/e/{source}/q/{dest}", get(between_q).post(create_q))
        .route("/api/bindings/{vhost}/e/{source}/e/{dest}", get(between_e).post(create_e))
        .route("/api/bindings/{vhost}/e/{source}/q/{dest}/{props}", get(show_q).delete(remove_q))
        .route("/api/bindings/{vhost}/e/{source}/e/{dest}/{props}", get(show_e).delete(remove_e))
}

impl Listed for objects::Binding {
    fn name(&self) -> &str {
        &self.source
    }
    fn vhost(&self) -> &str {
        &self.vhost
    }
}

pub fn properties_key(routing_key: &str, args: &FieldTable) -> String {
    if args.inner().is_empty() {
        return if routing_key.is_empty() { "~".into() } else { quote_plus(routing_key) };
    }
    let digest = Sha256::digest(table_to_json(args).to_string().as_bytes());
    let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..4]);
    format!("{}~{}", quote_plus(routing_key), quote_plus(&hash))
}

fn item(vhost: &str, b: &BindingInfo) -> objects::Binding {
    objects::Binding {
        source: b.source.to_string(),
        vhost: vhost.to_owned(),
        destination: b.destination.to_string(),
        destination_type: b.destination_kind.as_str().to_owned(),
        routing_key: b.routing_key.to_string(),
        arguments: table_to_json(&b.arguments),
        properties_key: properties_key(&b.routing_key, &b.arguments),
    }
}

/// Every binding of a vhost, the default exchange's implicit ones included.
pub fn of_vhost(ctx: &Ctx, v: &str) -> ApiResult<Vec<objects::Binding>> {
    Ok(vhost(ctx, v)?.bindings().iter().map(|b| item(v, b)).collect())
}

pub fn respond_bindings(lq: &ListQuery, items: Vec<objects::Binding>) -> ApiResult<Response> {
    respond(lq, items)
}

async fn list_all(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    let mut items = Vec::new();
    for v in listed_vhosts(&ctx, &who, None)? {
        items.extend(v.bindings().iter().map(|b| item(&v.name, b)));
    }
    respond(&lq, items)
}

async fn list_vhost(
    State(ctx): State<Ctx>,
    who: Authed,
    P(v): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    who.require_vhost_read(&v)?;
    respond(&lq, of_vhost(&ctx, &v)?)
}

/// The bindings from `source` to `dest`, after checking both exist.
fn between(
    ctx: &Ctx,
    who: &Authed,
    v: &str,
    source: &str,
    kind: DestKind,
    dest: &str,
) -> ApiResult<Vec<objects::Binding>> {
    who.require_vhost_read(v)?;
    let vh = vhost(ctx, v)?;
    let source = exchange_name(source);
    vh.exchange(source).ok_or_else(ApiError::object_not_found)?;
    let dest_exists = match kind {
        DestKind::Queue => vh.queue(dest).is_some(),
        DestKind::Exchange => vh.exchange(exchange_name(dest)).is_some(),
    };
    if !dest_exists {
        return Err(ApiError::object_not_found());
    }
    let dest = match kind {
        DestKind::Queue => dest,
        DestKind::Exchange => exchange_name(dest),
    };
    Ok(of_vhost(ctx, v)?
        .into_iter()
        .filter(|b| b.source == source && b.destination_type == kind.as_str() && b.destination == dest)
        .collect())
}

async fn create(
    ctx: Ctx,
    who: Authed,
    v: String,
    source: String,
    kind: DestKind,
    dest: String,
    body: CreateBinding,
) -> ApiResult<Response> {
    who.require_vhost(&v)?;
    between(&ctx, &who, &v, &source, kind, &dest)?;
    check_echo("vhost", body.vhost.as_deref(), &v)?;
    let source = exchange_name(&source).to_owned();
    let dest = match kind {
        DestKind::Queue => dest,
        DestKind::Exchange => exchange_name(&dest).to_owned(),
    };
    let arguments = match &body.arguments {
        Some(a) => json_to_table(a)?,
        None => FieldTable::default(),
    };
    let routing_key = body.routing_key.unwrap_or_default();
    if routing_key.len() > 255 {
        return Err(ApiError::bad_request("routing_key is longer than 255 bytes"));
    }
    if source.is_empty() || (kind == DestKind::Exchange && dest.is_empty()) {
        return Err(ApiError::not_authorised("operation not permitted on the default exchange"));
    }
    who.require_access(&v, Access::Write, kind.as_str(), &dest)?;
    who.require_access(&v, Access::Read, "exchange", &source)?;
    check_topic_read(&ctx, &who, &v, &source, &routing_key)?;
    let key = properties_key(&routing_key, &arguments);
    ctx.broker
        .apply(DefinitionCommand::Bind {
            vhost: v,
            source,
            destination_kind: kind.as_str().to_owned(),
            destination: dest,
            routing_key,
            arguments,
            requester: None,
        })
        .await?;
    let mut resp = StatusCode::CREATED.into_response();
    if let Ok(loc) = HeaderValue::from_str(&key) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

fn find(
    ctx: &Ctx,
    who: &Authed,
    v: &str,
    source: &str,
    kind: DestKind,
    dest: &str,
    props: &str,
) -> ApiResult<objects::Binding> {
    between(ctx, who, v, source, kind, dest)?
        .into_iter()
        .find(|b| b.properties_key == props)
        .ok_or_else(ApiError::object_not_found)
}

async fn remove(
    ctx: Ctx,
    who: Authed,
    v: String,
    source: String,
    kind: DestKind,
    dest: String,
    props: String,
) -> ApiResult<Response> {
    who.require_vhost(&v)?;
    let b = find(&ctx, &who, &v, &source, kind, &dest, &props)?;
    if b.source.is_empty() {
        return Err(ApiError::not_authorised("operation not permitted on the default exchange"));
    }
    who.require_access(&v, Access::Write, kind.as_str(), &b.destination)?;
    who.require_access(&v, Access::Read, "exchange", &b.source)?;
    check_topic_read(&ctx, &who, &v, &b.source, &b.routing_key)?;
    let arguments = match &b.arguments {
        serde_json::Value::Object(o) => json_to_table(o)?,
        _ => FieldTable::default(),
    };
    ctx.broker
        .apply(DefinitionCommand::Unbind {
            vhost: v,
            source: b.source,
            destination_kind: kind.as_str().to_owned(),
            destination: b.destination,
            routing_key: b.routing_key,
            arguments,
            requester: None,
        })
        .await?;
    Ok(no_content())
}

type Three = P<(String, String, String)>;
type Four = P<(String, String, String, String)>;

async fn between_q(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, s, d)): Three,
    lq: ListQuery,
) -> ApiResult<Response> {
    respond(&lq, between(&ctx, &who, &v, &s, DestKind::Queue, &d)?)
}
async fn between_e(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, s, d)): Three,
    lq: ListQuery,
) -> ApiResult<Response> {
    respond(&lq, between(&ctx, &who, &v, &s, DestKind::Exchange, &d)?)
}
async fn create_q(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, s, d)): Three,
    Body(b): Body<CreateBinding>,
) -> ApiResult<Response> {
    create(ctx, who, v, s, DestKind::Queue, d, b).await
}
async fn create_e(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, s, d)): Three,
    Body(b): Body<CreateBinding>,
) -> ApiResult<Response> {
    create(ctx, who, v, s, DestKind::Exchange, d, b).await
}
async fn show_q(State(ctx): State<Ctx>, who: Authed, P((v, s, d, p)): Four) -> ApiResult<Response> {
    Ok(json(&find(&ctx, &who, &v, &s, DestKind::Queue, &d, &p)?))
}
async fn show_e(State(ctx): State<Ctx>, who: Authed, P((v, s, d, p)): Four) -> ApiResult<Response> {
    Ok(json(&find(&ctx, &who, &v, &s, DestKind::Exchange, &d, &p)?))
}
async fn remove_q(State(ctx): State<Ctx>, who: Authed, P((v, s, d, p)): Four) -> ApiResult<Response> {
    remove(ctx, who, v, s, DestKind::Queue, d, p).await
}
async fn remove_e(State(ctx): State<Ctx>, who: Authed, P((v, s, d, p)): Four) -> ApiResult<Response> {
    remove(ctx, who, v, s, DestKind::Exchange, d, p).await
}

/// Binding from a topic exchange needs the topic read permission for the
/// routing key, as over AMQP.
fn check_topic_read(ctx: &Ctx, who: &Authed, v: &str, source: &str, routing_key: &str) -> ApiResult<()> {
    let Some(x) = ctx.broker.vhost(v).and_then(|vh| vh.exchange(source)) else { return Ok(()) };
    Ok(ctx.broker.auth.check_topic_access(v, &who.user.name, &x, Access::Read, routing_key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_keys_follow_rabbitmq() {
        assert_eq!(properties_key("", &FieldTable::default()), "~");
        assert_eq!(properties_key("a b/c~", &FieldTable::default()), "a+b%2Fc%7E");
        let mut args = FieldTable::default();
        args.insert("x".into(), amq_protocol::types::AMQPValue::Boolean(true));
        assert!(properties_key("k", &args).starts_with("k~"));
    }
}
