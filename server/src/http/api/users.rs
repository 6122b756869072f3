//! `/api/users`: list, show, create or update (PUT) with `password` or
//! `password_hash` + `hashing_algorithm`, delete, bulk delete, users
//! without permissions, and a user's permissions. Administrators only.
//!
//! A plain password is hashed with argon2id on a blocking thread. A hash
//! may be given as argon2id (PHC string, what Warren exports) or as
//! RabbitMQ's `rabbit_password_hashing_sha256` (what RabbitMQ exports),
//! which the broker upgrades to argon2id at the user's next login.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post, put};
use base64::Engine;
use serde::Deserialize;
use warren_api_types::objects;
use warren_api_types::requests::PutUser;

use super::{limits, permissions};
use crate::broker::auth::{HASH_ARGON2ID, HASH_RABBIT_SHA256};
use crate::definitions::{DefinitionCommand, User};
use crate::http::Ctx;
use crate::http::auth::Authed;
use crate::http::error::{ApiError, ApiResult, check_echo, check_name};
use crate::http::extract::{Body, P, created_or_no_content, json, no_content};
use crate::http::paging::{ListQuery, Listed, respond};

pub fn router() -> Router<Ctx> {
    Router::new()
        .route("/api/users", get(list))
        .route("/api/users/", put(empty_name))
        .route("/api/users/without-permissions", get(without_permissions))
        .route("/api/users/bulk-delete", post(bulk_delete))
        .route("/api/users/{user}", get(show).put(upsert).delete(remove))
        .route("/api/users/{user}/permissions", get(user_permissions))
        .route("/api/users/{user}/topic-permissions", get(user_topic_permissions))
}

impl Listed for objects::User {
    fn name(&self) -> &str {
        &self.name
    }
}

pub fn item(ctx: &Ctx, u: &User) -> objects::User {
    objects::User {
        name: u.name.clone(),
        password_hash: u.password_hash.clone(),
        hashing_algorithm: u.hashing_algorithm.clone(),
        tags: u.tags.clone(),
        limits: limits::user_limits(ctx, &u.name),
    }
}

async fn list(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    who.require_admin()?;
    respond(&lq, ctx.broker.auth.users().iter().map(|u| item(&ctx, u)).collect())
}

async fn without_permissions(State(ctx): State<Ctx>, who: Authed, lq: ListQuery) -> ApiResult<Response> {
    who.require_admin()?;
    let with: std::collections::HashSet<String> =
        ctx.broker.auth.all_permissions().into_iter().map(|(_, u, _)| u).collect();
    let items =
        ctx.broker.auth.users().iter().filter(|u| !with.contains(&u.name)).map(|u| item(&ctx, u)).collect();
    respond(&lq, items)
}

async fn show(State(ctx): State<Ctx>, who: Authed, P(u): P<String>) -> ApiResult<Response> {
    who.require_admin()?;
    let user = ctx.broker.auth.user(&u).ok_or_else(ApiError::object_not_found)?;
    Ok(json(&item(&ctx, &user)))
}

async fn empty_name(who: Authed) -> ApiResult<Response> {
    who.require_admin()?;
    Err(ApiError::bad_request("user name must not be empty"))
}

/// Checks a given hash and returns (hash, algorithm).
pub fn given_hash(hash: &str, algorithm: Option<&str>) -> ApiResult<(String, String)> {
    let algorithm = algorithm.unwrap_or(HASH_RABBIT_SHA256);
    let ok = match algorithm {
        HASH_RABBIT_SHA256 => {
            base64::engine::general_purpose::STANDARD.decode(hash).is_ok_and(|b| b.len() == 36)
        }
        HASH_ARGON2ID => hash.starts_with("$argon2id$"),
        other => {
            return Err(ApiError::bad_request(format!(
                "hashing_algorithm '{other}' is not supported; use {HASH_RABBIT_SHA256} or {HASH_ARGON2ID}"
            )));
        }
    };
    if !ok && !hash.is_empty() {
        return Err(ApiError::bad_request(format!("password_hash is not a valid {algorithm} hash")));
    }
    Ok((hash.to_owned(), algorithm.to_owned()))
}

async fn upsert(
    State(ctx): State<Ctx>,
    who: Authed,
    P(u): P<String>,
    Body(body): Body<PutUser>,
) -> ApiResult<Response> {
    who.require_admin()?;
    check_name("user", &u)?;
    check_echo("name", body.name.as_deref(), &u)?;
    let existing = ctx.broker.auth.user(&u);
    let (password_hash, hashing_algorithm) = match (&body.password, &body.password_hash) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give either password or password_hash, not both"));
        }
        (Some(p), None) => {
            let hash = ctx.broker.hash_password(p.clone().into_bytes()).await;
            if hash.is_empty() {
                return Err(ApiError::internal("cannot hash the password"));
            }
            (hash, HASH_ARGON2ID.to_owned())
        }
        (None, Some(h)) => given_hash(h, body.hashing_algorithm.as_deref())?,
        (None, None) => match &existing {
            Some(e) => (e.password_hash.clone(), e.hashing_algorithm.clone()),
            None => (String::new(), HASH_ARGON2ID.to_owned()),
        },
    };
    let limits = match &body.limits {
        Some(l) => Some(limits::check_limits(l)?),
        None => None,
    };
    let tags = body
        .tags
        .map(|t| t.0)
        .unwrap_or_else(|| existing.as_ref().map(|e| e.tags.clone()).unwrap_or_default());
    ctx.broker
        .apply(DefinitionCommand::PutUser(User { name: u.clone(), password_hash, hashing_algorithm, tags }))
        .await?;
    if let Some(l) = limits {
        limits::set_user_limits(&ctx, &u, l).await?;
    }
    Ok(created_or_no_content(existing.is_none()))
}

async fn remove(State(ctx): State<Ctx>, who: Authed, P(u): P<String>) -> ApiResult<Response> {
    who.require_admin()?;
    if ctx.broker.auth.user(&u).is_none() {
        return Err(ApiError::object_not_found());
    }
    ctx.broker.apply(DefinitionCommand::DeleteUser { name: u.clone() }).await?;
    limits::clear_user_limits(&ctx, &u).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkDelete {
    users: Vec<String>,
}

async fn bulk_delete(
    State(ctx): State<Ctx>,
    who: Authed,
    Body(body): Body<BulkDelete>,
) -> ApiResult<Response> {
    who.require_admin()?;
    for u in body.users {
        if ctx.broker.auth.user(&u).is_some() {
            ctx.broker.apply(DefinitionCommand::DeleteUser { name: u.clone() }).await?;
            limits::clear_user_limits(&ctx, &u).await?;
        }
    }
    Ok(no_content())
}

async fn user_permissions(
    State(ctx): State<Ctx>,
    who: Authed,
    P(u): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    who.require_admin()?;
    ctx.broker.auth.user(&u).ok_or_else(ApiError::object_not_found)?;
    respond(&lq, permissions::all(&ctx).into_iter().filter(|p| p.user == u).collect())
}

async fn user_topic_permissions(
    State(ctx): State<Ctx>,
    who: Authed,
    P(u): P<String>,
    lq: ListQuery,
) -> ApiResult<Response> {
    who.require_admin()?;
    ctx.broker.auth.user(&u).ok_or_else(ApiError::object_not_found)?;
    respond(&lq, permissions::all_topic(&ctx).into_iter().filter(|p| p.user == u).collect())
}
