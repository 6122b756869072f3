//! Who is asking, and what they may see and do.
//!
//! Every `/api` handler but a few public ones takes an [`Authed`], which
//! authenticates the request:
//! - HTTP Basic (API clients, `rabbitmqadmin`): `Broker::login`. A password
//!   that logged the user in before costs one HMAC and waits for nothing;
//!   any other waits for the password gate, shared with AMQP logins, which
//!   runs a few argon2 checks at a time (`broker::password`).
//! - `Authorization: Bearer <jwt>` (the dashboard): a token from
//!   `POST /api/login`, HS256-signed with the configured `jwt_secret`, or
//!   else a key derived from the cluster secret, which every member of a
//!   cluster shares, so a token from any node is valid on every node;
//!   expiring after `login_session_timeout`. The token carries a digest of
//!   the user's password hash, which is checked against the user record
//!   (replicated in a cluster), so changing the password or deleting the
//!   user ends every session on every node.
//!
//! A password login (Basic or `POST /api/login`) is counted for
//! `/api/auth/attempts` and, when refused, logged; a wrong password is
//! answered late once its address or user name has failed a few times
//! (`broker::password::LoginThrottle`). Tokens are not counted: they are
//! not guesses at a password.
//!
//! Then RabbitMQ's rules (`rabbit_web_dispatch_access_control`): the guest
//! loopback rule on the client's address, one of the management tags, and
//! per endpoint `administrator`, `monitoring` (sees everything, changes
//! nothing beyond its vhosts), `policymaker` (policies and parameters in its
//! vhosts) or vhost access. Refusals are 401 with RabbitMQ's reasons.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::post;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use warren_api_types::objects::LoginToken;
use warren_api_types::requests::Login;

use super::Ctx;
use super::error::{ApiError, ApiResult};
use super::extract::{Body, json};
use crate::broker::auth::{Access, Protocol, Refusal};
use crate::definitions::User;

pub const TAG_ADMIN: &str = "administrator";
pub const TAG_MONITORING: &str = "monitoring";
pub const TAG_POLICYMAKER: &str = "policymaker";
pub const TAG_MANAGEMENT: &str = "management";

/// The signing keys of login tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// What [`Secret::derive`](crate::cluster::secret::Secret::derive) is
/// asked for: the login tokens' key.
const JWT_PURPOSE: &str = "management login tokens";

impl JwtKeys {
    /// The configured secret; else a key derived from the cluster secret;
    /// else (no cluster side) a random one, valid until the node stops.
    pub fn new(configured: Option<&str>, cluster: Option<&crate::cluster::secret::Secret>) -> Self {
        let bytes: Vec<u8> = match (configured, cluster) {
            (Some(s), _) => s.as_bytes().to_vec(),
            (None, Some(c)) => c.derive(JWT_PURPOSE).to_vec(),
            (None, None) => rand::random::<[u8; 32]>().to_vec(),
        };
        JwtKeys { encoding: EncodingKey::from_secret(&bytes), decoding: DecodingKey::from_secret(&bytes) }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    iat: u64,
    /// Digest of the password hash the token was issued against.
    pwd: String,
}

fn password_digest(user: &User) -> String {
    let d = Sha256::digest(user.password_hash.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d[..12])
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// An authenticated management user.
#[derive(Clone)]
pub struct Authed {
    pub user: Arc<User>,
    ctx: Ctx,
}

impl Authed {
    pub fn name(&self) -> &str {
        &self.user.name
    }
    pub fn is_admin(&self) -> bool {
        self.user.has_tag(TAG_ADMIN)
    }
    pub fn is_monitor(&self) -> bool {
        self.is_admin() || self.user.has_tag(TAG_MONITORING)
    }
    pub fn is_policymaker(&self) -> bool {
        self.is_admin() || self.user.has_tag(TAG_POLICYMAKER)
    }

    pub fn require_admin(&self) -> ApiResult<()> {
        if self.is_admin() { Ok(()) } else { Err(ApiError::not_authorised("Not administrator user")) }
    }

    pub fn require_monitor(&self) -> ApiResult<()> {
        if self.is_monitor() { Ok(()) } else { Err(ApiError::not_authorised("Not monitor user")) }
    }

    /// Whether the user has any permissions in the vhost.
    pub fn has_vhost(&self, vhost: &str) -> bool {
        self.ctx.broker.auth.permissions(vhost, &self.user.name).is_some()
    }

    /// Lists show everything to monitoring users and administrators, and a
    /// management user only its vhosts.
    pub fn sees_vhost(&self, vhost: &str) -> bool {
        self.is_monitor() || self.has_vhost(vhost)
    }

    /// Endpoints under a vhost: administrators, or users with access to it.
    pub fn require_vhost(&self, vhost: &str) -> ApiResult<()> {
        if self.is_admin() || self.has_vhost(vhost) {
            Ok(())
        } else {
            Err(ApiError::not_authorised("User not authorised to access virtual host"))
        }
    }

    /// Reading under a vhost: also monitoring users.
    pub fn require_vhost_read(&self, vhost: &str) -> ApiResult<()> {
        if self.is_monitor() || self.has_vhost(vhost) {
            Ok(())
        } else {
            Err(ApiError::not_authorised("User not authorised to access virtual host"))
        }
    }

    /// Policies and parameters: administrators, or policymakers with access
    /// to the vhost.
    pub fn require_policymaker(&self, vhost: &str) -> ApiResult<()> {
        if self.is_admin() || (self.user.has_tag(TAG_POLICYMAKER) && self.has_vhost(vhost)) {
            Ok(())
        } else {
            Err(ApiError::not_authorised("User not authorised to access object"))
        }
    }

    /// A resource permission, as the AMQP side checks it. Administrators
    /// need permissions too, as in RabbitMQ.
    pub fn require_access(&self, vhost: &str, access: Access, kind: &str, name: &str) -> ApiResult<()> {
        let name = crate::broker::auth::permission_name(kind, name);
        if self.ctx.broker.auth.check(vhost, &self.user.name, access, name) {
            return Ok(());
        }
        Err(ApiError::not_authorised(format!(
            "access to {kind} '{name}' in vhost '{vhost}' refused for user '{}'",
            self.user.name
        )))
    }
}

enum Credentials {
    Basic(String, String),
    Bearer(String),
}

fn credentials(parts: &Parts) -> ApiResult<Option<Credentials>> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let text = value.to_str().map_err(|_| ApiError::not_authenticated(true))?;
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| ApiError::not_authenticated(true))?;
        let raw = String::from_utf8(raw).map_err(|_| ApiError::not_authenticated(true))?;
        let (u, p) = raw.split_once(':').ok_or_else(|| ApiError::not_authenticated(true))?;
        return Ok(Some(Credentials::Basic(u.to_owned(), p.to_owned())));
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(Credentials::Bearer(rest.trim().to_owned())));
    }
    Ok(None)
}

/// A password login over HTTP (Basic, or `POST /api/login`), with the
/// loopback rule and the management tags: counted, logged and, when the
/// password is wrong, answered late, by `Broker::authenticate`.
async fn basic_login(
    ctx: &Ctx,
    user: String,
    pass: String,
    peer: Option<SocketAddr>,
) -> ApiResult<Arc<User>> {
    let admitted = |u: &User| admit(ctx, u, peer).err().map(|e| e.reason);
    let ip = peer.map(|p| p.ip());
    match ctx.broker.authenticate(Protocol::Http, &user, pass.into_bytes(), ip, admitted).await {
        Ok(user) => Ok(user),
        Err(Refusal::InvalidCredentials) => Err(ApiError::not_authenticated(true)),
        Err(Refusal::NotAllowed(why)) => Err(ApiError::not_authorised(why)),
    }
}

fn bearer_login(ctx: &Ctx, token: &str) -> ApiResult<Arc<User>> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Claims>(token, &ctx.jwt.decoding, &validation)
        .map_err(|_| ApiError::not_authenticated(false))?;
    let user = ctx.broker.auth.user(&data.claims.sub).ok_or_else(|| ApiError::not_authenticated(false))?;
    if password_digest(&user) != data.claims.pwd {
        return Err(ApiError::not_authenticated(false));
    }
    Ok(user)
}

/// The loopback rule and the management tags, common to both schemes.
fn admit(ctx: &Ctx, user: &User, peer: Option<SocketAddr>) -> ApiResult<()> {
    let remote = peer.is_none_or(|p| !crate::net::is_loopback(p.ip()));
    if remote && ctx.broker.config.loopback_users.contains(&user.name) {
        return Err(ApiError::not_authorised("User can only log in via localhost"));
    }
    let mgmt = [TAG_ADMIN, TAG_MONITORING, TAG_POLICYMAKER, TAG_MANAGEMENT];
    if !mgmt.iter().any(|t| user.has_tag(t)) {
        return Err(ApiError::not_authorised("Not management user"));
    }
    Ok(())
}

/// The client's address, IPv4-mapped ones as IPv4.
fn peer(parts: &Parts) -> Option<SocketAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| crate::net::canonical(c.0))
}

/// The client's address, when the server recorded it.
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(peer(parts)))
    }
}

impl FromRequestParts<Ctx> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, Self::Rejection> {
        let user = match credentials(parts)? {
            None => return Err(ApiError::not_authenticated(true)),
            Some(Credentials::Basic(u, p)) => basic_login(ctx, u, p, peer(parts)).await?,
            Some(Credentials::Bearer(t)) => {
                let user = bearer_login(ctx, &t)?;
                admit(ctx, &user, peer(parts))?;
                user
            }
        };
        Ok(Authed { user, ctx: ctx.clone() })
    }
}

pub fn router() -> Router<Ctx> {
    Router::new().route("/api/login", post(login))
}

/// `POST /api/login` with `{"username", "password"}` (JSON): a token for
/// `Authorization: Bearer`. The same checks as Basic apply.
async fn login(State(ctx): State<Ctx>, Peer(peer): Peer, Body(body): Body<Login>) -> ApiResult<Response> {
    let user = basic_login(&ctx, body.username, body.password, peer).await?;
    let ttl = ctx.broker.config.login_session_timeout.as_secs().max(1);
    let iat = now_secs();
    let claims = Claims { sub: user.name.clone(), exp: iat + ttl, iat, pwd: password_digest(&user) };
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &ctx.jwt.encoding)
        .map_err(ApiError::internal)?;
    Ok(json(&LoginToken { token, name: user.name.clone(), tags: user.tags.clone(), expires_in: ttl }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_the_password_hash() {
        let u = User {
            name: "u".into(),
            password_hash: "h1".into(),
            hashing_algorithm: "x".into(),
            tags: vec![],
        };
        let v = User { password_hash: "h2".into(), ..u.clone() };
        assert_ne!(password_digest(&u), password_digest(&v));
    }
}
