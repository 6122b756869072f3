//! A small client for the management HTTP API, for the `http_*` tests:
//! every call returns the status, the headers and the body parsed as JSON
//! (`Value::Null` when empty, a string when not JSON).

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub use reqwest;
pub use serde_json::json;

use crate::Server;

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> u16 {
        self.status.as_u16()
    }
    /// RabbitMQ's `reason` of an error body.
    pub fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or("")
    }
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    auth: Auth,
    client: reqwest::Client,
}

#[derive(Clone)]
enum Auth {
    None,
    Basic(String, String),
    Bearer(String),
}

impl Api {
    /// As guest/guest, the default administrator.
    pub fn new(server: &Server) -> Api {
        Api::as_user(server, "guest", "guest")
    }

    pub fn as_user(server: &Server, user: &str, pass: &str) -> Api {
        Api {
            base: server.http_url(),
            auth: Auth::Basic(user.into(), pass.into()),
            client: reqwest::Client::new(),
        }
    }

    /// As `user`, from a chosen local address (see `Raw::connect_from`).
    pub fn as_user_from(server: &Server, user: &str, pass: &str, from: std::net::IpAddr) -> Api {
        let client = reqwest::Client::builder().local_address(from).build().expect("an HTTP client");
        Api { base: server.http_url(), auth: Auth::Basic(user.into(), pass.into()), client }
    }

    pub fn anonymous(server: &Server) -> Api {
        Api { base: server.http_url(), auth: Auth::None, client: reqwest::Client::new() }
    }

    pub fn bearer(server: &Server, token: &str) -> Api {
        Api { base: server.http_url(), auth: Auth::Bearer(token.into()), client: reqwest::Client::new() }
    }

    /// Sends a request; `body` is sent as is (so tests can send bad JSON).
    pub async fn raw(&self, method: Method, path: &str, body: Option<String>) -> Reply {
        self.raw_with(method, path, body, &[]).await
    }

    /// Like `raw`, with extra request headers.
    pub async fn raw_with(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req = match &self.auth {
            Auth::None => req,
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
            Auth::Bearer(t) => req.bearer_auth(t),
        };
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.raw(Method::GET, path, None).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.raw(Method::PUT, path, Some(body.to_string())).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.raw(Method::POST, path, Some(body.to_string())).await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.raw(Method::DELETE, path, None).await
    }

    /// GET that must answer 200; returns the body.
    pub async fn ok(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.code(), 200, "GET {path}: {:?}", r.body);
        r.body
    }
}

/// Percent-encodes one path segment, as every client of the API does.
pub use warren_api_types::url::segment as enc;
