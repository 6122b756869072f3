//! `/api/vhosts`: list, show, create or update (PUT, administrators),
//! delete (administrators), and a vhost's permissions and topic
//! permissions.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, put};
use warren_api_types::objects;
use warren_api_types::requests::PutVhost;

use super::{node, permissions, vhost};
use crate::broker::Applied;
use crate::broker::vhost::VHost;
use crate::definitions::DefinitionCommand;
use crate::http::Ctx;
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult, check_echo, check_name};
use crate::http::extract::{Body, P, created_or_no_content, no_content};
use crate::http::paging::{ListQuery, Listed, respond, respond_one};
use crate::http::present::totals_stats;
use crate::http::stats::queue_sample;

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/vhosts", get(list))
        .route("/api/vhosts/", put(empty_name))
        .route("/api/vhosts/{vhost}", get(show).put(upsert).delete(remove))
        .route("/api/vhosts/{vhost}/permissions", get(vhost_permissions))
        .route("/api/vhosts/{vhost}/topic-permissions", get(vhost_topic_permissions))
}

impl Listed for objects::Vhost {
    fn name(&self) -> &str {
        &self.name
    }
}

/// Messages, ready and unacknowledged, summed over a vhost's queues.
/// A vhost's ready, unacked and total messages. A queue whose node is
/// down counts for nothing: its last reported depth may be gone, and
/// RabbitMQ has no figures for it either.
pub fn lengths(v: &VHost) -> [u64; 3] {
    let mut len = [0u64; 3];
    for q in v.queues().into_iter().filter(|q| !q.is_home_down()) {
        let s = queue_sample(&q);
        for i in 0..3 {
            len[i] += s[i];
        }
    }
    len
}

fn item(ctx: &Ctx, v: &VHost, lq: &ListQuery) -> objects::Vhost {
    let meta = v.meta();
    let series = ctx.stats.vhost(&v.name);
    let (totals, ms) = totals_stats(lengths(v), series.as_ref(), lq);
    let mut cluster_state = serde_json::Map::new();
    cluster_state.insert(node(ctx), "running".into());
    objects::Vhost {
        name: v.name.to_string(),
        description: meta.description,
        tags: meta.tags,
        tracing: false,
        default_queue_type: None,
        totals,
        message_stats: Some(ms),
        cluster_state,
    }
}

async fn list(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    let items =
        ctx.broker.vhosts().iter().filter(|v| who.sees_vhost(&v.name)).map(|v| item(&ctx, v, &lq)).collect();
    respond(&lq, items)
}

async fn show(State(ctx): State<Ctx>, who: Authed, P(v): P<String>, lq: ListQuery) -> ApiResult<Response> {
    who.require_vhost_read(&v)?;
    let vh = vhost(&ctx, &v)?;
    Ok(respond_one(&lq, &item(&ctx, &vh, &lq)))
}

async fn empty_name(who: Authed) -> ApiResult<Response> {
    who.require_admin()?;
    Err(ApiError::bad_request("vhost name must not be empty"))
}

async fn upsert(
    State(ctx): State<Ctx>,
    who: Authed,
    P(v): P<String>,
    Body(body): Body<PutVhost>,
) -> ApiResult<Response> {
    who.require_admin()?;
    check_name("vhost", &v)?;
    check_echo("name", body.name.as_deref(), &v)?;
    if body.tracing.is_some_and(|t| t.0) {
        return Err(ApiError::bad_request("tracing is not supported by Warren"));
    }
    let old = ctx.broker.vhost(&v).map(|vh| vh.meta()).unwrap_or_default();
    let applied = ctx
        .broker
        .apply(DefinitionCommand::AddVhost {
            name: v.clone(),
            description: body.description.unwrap_or(old.description),
            tags: body.tags.map(|t| t.0).unwrap_or(old.tags),
        })
        .await?;
    let created = matches!(applied, Applied::Changed(true));
    if created {
        // As RabbitMQ does, whoever creates a vhost gets full permissions
        // on it.
        ctx.broker
            .apply(DefinitionCommand::SetPermissions {
                vhost: v,
                user: who.name().to_owned(),
                configure: ".*".into(),
                write: ".*".into(),
                read: ".*".into(),
            })
            .await?;
    }
    Ok(created_or_no_content(created))
}

async fn remove(State(ctx): State<Ctx>, who: Authed, P(v): P<String>) -> ApiResult<Response> {
    who.require_admin()?;
    vhost(&ctx, &v)?;
    ctx.broker.apply(DefinitionCommand::DeleteVhost { name: v }).await?;
    Ok(no_content())
}

async fn vhost_permissions(
    State(ctx): State<Ctx>,
    who: Authed,
    P(v): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    who.require_admin()?;
    vhost(&ctx, &v)?;
    respond(&lq, permissions::all(&ctx).into_iter().filter(|p| p.vhost == v).collect())
}

async fn vhost_topic_permissions(
    State(ctx): State<Ctx>,
    who: Authed,
    P(v): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    who.require_admin()?;
    vhost(&ctx, &v)?;
    respond(&lq, permissions::all_topic(&ctx).into_iter().filter(|p| p.vhost == v).collect())
}
