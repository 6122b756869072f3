//! Talking to the management API. Every call sends the login token as
//! `Authorization: Bearer`; the password is never stored. A 401 on a call
//! made with a token (expired, tampered with, or the password changed)
//! logs out: the token is dropped and the login form takes the page's
//! place, so the user comes back to the same URL after logging in again.

use std::cell::Cell;

use leptos::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use warren_api_types::ErrorBody;
use warren_api_types::objects::LoginToken;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response};

const TOKEN_KEY: &str = "warren.token";
const USER_KEY: &str = "warren.user";

/// Who is logged in.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub name: String,
    pub tags: Vec<String>,
}

thread_local! {
    static SESSION: Cell<Option<RwSignal<Option<Session>>>> = const { Cell::new(None) };
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

/// The session signal, created from sessionStorage on first use.
pub fn session() -> RwSignal<Option<Session>> {
    SESSION.with(|s| {
        if let Some(sig) = s.get() {
            return sig;
        }
        let stored = storage().and_then(|st| {
            st.get_item(TOKEN_KEY).ok().flatten()?;
            let user = st.get_item(USER_KEY).ok().flatten()?;
            let (name, tags) = user.split_once('\n').unwrap_or((&user, ""));
            Some(Session {
                name: name.to_owned(),
                tags: tags.split(',').filter(|t| !t.is_empty()).map(String::from).collect(),
            })
        });
        let sig = RwSignal::new(stored);
        s.set(Some(sig));
        sig
    })
}

fn token() -> Option<String> {
    storage()?.get_item(TOKEN_KEY).ok().flatten()
}

pub fn logout() {
    if let Some(st) = storage() {
        let _ = st.remove_item(TOKEN_KEY);
        let _ = st.remove_item(USER_KEY);
    }
    session().set(None);
}

/// `POST /api/login`; on success the token is kept and the session starts.
pub async fn login(username: String, password: String) -> Result<(), String> {
    let body = serde_json::to_string(&warren_api_types::requests::Login { username, password })
        .map_err(|e| e.to_string())?;
    let (status, text) = raw("POST", "/api/login", Some(body), None, &[]).await?;
    if status == 401 {
        return Err("Login failed: wrong username or password.".into());
    }
    if status >= 400 {
        return Err(format!("Login failed: {}", reason(&text)));
    }
    let t: LoginToken = serde_json::from_str(&text).map_err(|e| format!("unexpected answer: {e}"))?;
    if let Some(st) = storage() {
        let _ = st.set_item(TOKEN_KEY, &t.token);
        let _ = st.set_item(USER_KEY, &format!("{}\n{}", t.name, t.tags.join(",")));
    }
    session().set(Some(Session { name: t.name, tags: t.tags }));
    Ok(())
}

fn reason(text: &str) -> String {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(e) => e.reason,
        Err(_) if text.trim().is_empty() => "no answer".into(),
        Err(_) => text.trim().to_owned(),
    }
}

fn js_err(e: JsValue) -> String {
    e.as_string()
        .or_else(|| js_sys::JSON::stringify(&e).ok().and_then(|s| s.as_string()))
        .unwrap_or_else(|| "network error".into())
}

async fn raw(
    method: &str,
    path: &str,
    body: Option<String>,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> Result<(u16, String), String> {
    let headers = Headers::new().map_err(js_err)?;
    headers.set("Accept", "application/json").map_err(js_err)?;
    // Tells the server not to send a Basic challenge, which would make the
    // browser open its own password dialog.
    headers.set("X-Warren-Dashboard", "1").map_err(js_err)?;
    if body.is_some() {
        headers.set("Content-Type", "application/json").map_err(js_err)?;
    }
    if let Some(t) = token {
        headers.set("Authorization", &format!("Bearer {t}")).map_err(js_err)?;
    }
    for (k, v) in extra {
        headers.set(k, v).map_err(js_err)?;
    }
    let init = RequestInit::new();
    init.set_method(method);
    init.set_headers(&headers);
    if let Some(b) = &body {
        init.set_body(&JsValue::from_str(b));
    }
    let req = Request::new_with_str_and_init(path, &init).map_err(js_err)?;
    let window = web_sys::window().ok_or("no window")?;
    let resp: Response =
        JsFuture::from(window.fetch_with_request(&req)).await.map_err(js_err)?.unchecked_into();
    let text = JsFuture::from(resp.text().map_err(js_err)?).await.map_err(js_err)?;
    Ok((resp.status(), text.as_string().unwrap_or_default()))
}

/// One authenticated call; the answer's text, or the API's `reason`.
pub async fn call(
    method: &str,
    path: &str,
    body: Option<String>,
    extra: &[(&str, &str)],
) -> Result<String, String> {
    let Some(t) = token() else {
        logout();
        return Err("Not logged in".into());
    };
    let (status, text) = raw(method, path, body, Some(&t), extra).await?;
    if status == 401 {
        logout();
        return Err("Your session ended; please log in again.".into());
    }
    if status >= 400 {
        return Err(reason(&text));
    }
    Ok(text)
}

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    let text = call("GET", path, None, &[]).await?;
    serde_json::from_str(&text).map_err(|e| format!("unexpected answer from {path}: {e}"))
}

pub async fn send<B: Serialize>(method: &str, path: &str, body: &B) -> Result<String, String> {
    let body = serde_json::to_string(body).map_err(|e| e.to_string())?;
    call(method, path, Some(body), &[]).await
}

pub async fn delete(path: &str) -> Result<String, String> {
    call("DELETE", path, None, &[]).await
}

/// A path segment, percent-encoded (`/` is `%2F`, as the API wants vhosts).
pub fn enc(s: &str) -> String {
    js_sys::encode_uri_component(s).as_string().unwrap_or_default()
}

pub fn dec(s: &str) -> String {
    js_sys::decode_uri_component(s).ok().and_then(|v| v.as_string()).unwrap_or_else(|| s.to_owned())
}

/// The current page's path segments, decoded: `/queues/%2F/a%2Fb` gives
/// `["queues", "/", "a/b"]`. Read from the browser, not the router, which
/// would decode `%2F` into a separator.
pub fn path_segments() -> Vec<String> {
    let path = web_sys::window().and_then(|w| w.location().pathname().ok()).unwrap_or_default();
    path.split('/').filter(|s| !s.is_empty()).map(dec).collect()
}
