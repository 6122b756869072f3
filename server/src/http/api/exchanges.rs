//! `/api/exchanges`: list, show, declare (PUT), delete (with `if-unused`),
//! and an exchange's bindings as source or destination. The default
//! exchange is `amq.default` in URLs and `""` in bodies, as in RabbitMQ.
//! Publishing is in [`super::messages`].

use std::sync::Arc;

use amq_protocol::types::FieldTable;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, put};
use warren_api_types::objects;
use warren_api_types::requests::DeclareExchange;

use super::{bindings, exchange_name, listed_vhosts, vhost};
use crate::broker::auth::Access;
use crate::broker::exchange::Exchange;
use crate::definitions::{DefinitionCommand, ExchangeType};
use crate::http::Ctx;
use crate::http::amqp_json::{json_to_table, table_to_json};
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult, check_echo, check_name};
use crate::http::extract::{P, RawBody, created_or_no_content, no_content, parse_body};
use crate::http::paging::{ListQuery, Listed, respond, respond_lazy, respond_one};
use crate::http::present::exchange_stats;

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/exchanges", get(list_all))
        .route("/api/exchanges/{vhost}", get(list_vhost))
        .route("/api/exchanges/{vhost}/", put(empty_name))
        .route("/api/exchanges/{vhost}/{name}", get(show).put(declare).delete(remove))
        .route("/api/exchanges/{vhost}/{name}/bindings/source", get(as_source))
        .route("/api/exchanges/{vhost}/{name}/bindings/destination", get(as_destination))
}

impl Listed for objects::Exchange {
    fn name(&self) -> &str {
        &self.name
    }
    fn vhost(&self) -> &str {
        &self.vhost
    }
}

pub fn item(ctx: &Ctx, x: &Arc<Exchange>, lq: &ListQuery) -> objects::Exchange {
    let live = [x.stats.publish_in.get(), x.stats.publish_out.get()];
    let message_stats = ctx.stats.with_exchange(x, |series| exchange_stats(&live, series, lq));
    objects::Exchange {
        name: x.name.to_string(),
        vhost: x.vhost.to_string(),
        kind: x.kind.as_str().into(),
        durable: x.durable,
        auto_delete: x.auto_delete,
        internal: x.internal,
        arguments: table_to_json(&x.arguments),
        policy: x.policy(),
        message_stats: Some(message_stats),
    }
}

fn list(ctx: &Ctx, who: &Authed, only: Option<&str>, lq: &ListQuery) -> ApiResult<Response> {
    let mut exchanges = Vec::new();
    for v in listed_vhosts(ctx, who, only)? {
        exchanges.extend(v.exchanges());
    }
    respond_lazy(lq, exchanges, |x| (&x.vhost, &x.name), |x| item(ctx, x, lq), None)
}

async fn list_all(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    list(&ctx, &who, None, &lq)
}

async fn list_vhost(
    State(ctx): State<Ctx>,
    who: Authed,
    P(v): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    list(&ctx, &who, Some(&v), &lq)
}

pub fn lookup(ctx: &Ctx, who: &Authed, v: &str, name: &str) -> ApiResult<Arc<Exchange>> {
    who.require_vhost_read(v)?;
    vhost(ctx, v)?.exchange(exchange_name(name)).ok_or_else(ApiError::object_not_found)
}

async fn show(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, name)): P<(String, String)>,
    lq: ListQuery,
) -> ApiResult<Response> {
    let x = lookup(&ctx, &who, &v, &name)?;
    Ok(respond_one(&lq, &item(&ctx, &x, &lq)))
}

async fn empty_name(who: Authed) -> ApiResult<Response> {
    drop(who);
    Err(ApiError::bad_request("exchange name must not be empty"))
}

async fn declare(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, url_name)): P<(String, String)>,
    RawBody(raw): RawBody,
) -> ApiResult<Response> {
    who.require_vhost(&v)?;
    let vh = vhost(&ctx, &v)?;
    let body: DeclareExchange = parse_body(&raw)?;
    check_name("exchange", &url_name)?;
    check_echo("name", body.name.as_deref(), &url_name)?;
    check_echo("vhost", body.vhost.as_deref(), &v)?;
    let kind = ExchangeType::parse(&body.kind)
        .ok_or_else(|| ApiError::bad_request(format!("unknown exchange type '{}'", body.kind)))?;
    let arguments = match &body.arguments {
        Some(a) => json_to_table(a)?,
        None => FieldTable::default(),
    };
    let name = exchange_name(&url_name).to_owned();
    if name.is_empty() {
        return Err(ApiError::not_authorised("operation not permitted on the default exchange"));
    }
    who.require_access(&v, Access::Configure, "exchange", &name)?;
    let exists = vh.exchange(&name).is_some();
    if !exists && name.starts_with("amq.") {
        return Err(ApiError::not_authorised(format!(
            "exchange name '{name}' contains reserved prefix 'amq.*'"
        )));
    }
    ctx.broker
        .apply(DefinitionCommand::DeclareExchange {
            vhost: v,
            name,
            kind,
            durable: body.durable.is_none_or(|d| d.0),
            auto_delete: body.auto_delete.is_some_and(|d| d.0),
            internal: body.internal.is_some_and(|d| d.0),
            arguments,
        })
        .await?;
    Ok(created_or_no_content(!exists))
}

async fn remove(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, url_name)): P<(String, String)>,
    lq: ListQuery,
) -> ApiResult<Response> {
    who.require_vhost(&v)?;
    let x = lookup(&ctx, &who, &v, &url_name)?;
    if x.is_default() {
        return Err(ApiError::not_authorised("operation not permitted on the default exchange"));
    }
    if x.name.starts_with("amq.") {
        return Err(ApiError::not_authorised(format!(
            "deletion of system exchange '{}' in vhost '{v}' not allowed",
            x.name
        )));
    }
    who.require_access(&v, Access::Configure, "exchange", &x.name)?;
    let if_unused = lq.raw.get("if-unused").is_some_and(|v| v == "true");
    ctx.broker
        .apply(DefinitionCommand::DeleteExchange { vhost: v, name: x.name.to_string(), if_unused })
        .await?;
    Ok(no_content())
}

async fn as_source(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, name)): P<(String, String)>,
    lq: ListQuery,
) -> ApiResult<Response> {
    let x = lookup(&ctx, &who, &v, &name)?;
    let items = bindings::of_vhost(&ctx, &v)?.into_iter().filter(|b| b.source == *x.name).collect();
    respond(&lq, items)
}

async fn as_destination(
    State(ctx): State<Ctx>,
    who: Authed,
    P((v, name)): P<(String, String)>,
    lq: ListQuery,
) -> ApiResult<Response> {
    let x = lookup(&ctx, &who, &v, &name)?;
    let items = bindings::of_vhost(&ctx, &v)?
        .into_iter()
        .filter(|b| b.destination_type == "exchange" && b.destination == *x.name)
        .collect();
    respond(&lq, items)
}
