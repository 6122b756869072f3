//! The management API client: blocking HTTP or HTTPS with Basic auth,
//! answers read into `warren_api_types` objects (or JSON where the API has
//! no type), and the mapping of its failures onto rabbitmqctl's exit codes.
//!
//! An `https://` node is checked against the system's CAs, or, with
//! `--cacert`, against that file's only (as curl's `--cacert`); `--cert`
//! and `--key` present a client certificate to a listener that asks for
//! one. A failed TLS handshake is reported as such, with rustls' reason.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::blocking::{Body, Client as Http, RequestBuilder};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;
use warren_api_types::ErrorBody;

use tokio_rustls::rustls;

use super::{CtlError, EX_CONFIG, EX_DATAERR, EX_NOPERM, EX_SOFTWARE, EX_TEMPFAIL, EX_UNAVAILABLE, R};

pub struct Client {
    http: Http,
    base: String,
    /// `host:port` as given, for messages.
    pub node: String,
    user: String,
    pass: String,
}

/// Percent-encodes one URL path segment (a vhost `/` becomes `%2F`).
pub use warren_api_types::url::segment as seg;

/// The rustls error under a failed request, if a TLS handshake failed. It
/// sits in an `io::Error` (in another, under hyper's), whose `source` skips
/// what it wraps, so those are opened with `get_ref`.
fn tls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(tls) = c.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        cause = match c.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => c.source(),
        };
    }
    None
}

/// An answer that was not 2xx.
pub struct Refusal {
    pub status: StatusCode,
    pub error: String,
    pub reason: String,
}

/// How to check an `https://` node, and what to show it.
#[derive(Debug, Default)]
pub struct TlsOptions {
    /// PEM: the CAs to trust instead of the system's.
    pub cacert: Option<PathBuf>,
    /// PEM: a client certificate (chain) and its key.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Accept any server certificate.
    pub insecure: bool,
}

fn read_pem(path: &Path, flag: &str) -> R<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| CtlError::new(EX_CONFIG, format!("cannot read {flag} {}: {e}", path.display())))
}

impl Client {
    pub fn new(node: &str, user: &str, pass: &str, timeout: Duration, tls: &TlsOptions) -> R<Client> {
        let base = if node.starts_with("http://") || node.starts_with("https://") {
            node.trim_end_matches('/').to_owned()
        } else {
            format!("http://{node}")
        };
        let mut builder =
            Http::builder().timeout(timeout).connect_timeout(timeout.min(Duration::from_secs(10)));
        if !base.starts_with("https://") {
            // Plain HTTP: no need to read the system's CAs.
            builder = builder.tls_built_in_root_certs(false);
        }
        if let Some(path) = &tls.cacert {
            let bad = |why: String| CtlError::new(EX_CONFIG, format!("--cacert {}: {why}", path.display()));
            let certs = reqwest::Certificate::from_pem_bundle(&read_pem(path, "--cacert")?)
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificate in it".into()));
            }
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => {
                let mut pem = read_pem(cert, "--cert")?;
                pem.push(b'\n');
                pem.extend(read_pem(key, "--key")?);
                let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    CtlError::new(EX_CONFIG, format!("--cert/--key: not a PEM certificate and key: {e}"))
                })?;
                builder = builder.identity(id);
            }
            (None, None) => {}
            _ => return Err(CtlError::usage("--cert and --key go together")),
        }
        if tls.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| CtlError::new(EX_SOFTWARE, format!("cannot build the HTTP client: {e}")))?;
        Ok(Client { http, base, node: node.to_owned(), user: user.to_owned(), pass: pass.to_owned() })
    }

    fn unreachable(&self, e: &reqwest::Error) -> CtlError {
        if e.is_timeout() {
            return CtlError::new(
                EX_TEMPFAIL,
                format!("operation on node '{}' timed out; raise --timeout if it is busy", self.node),
            );
        }
        if let Some(tls) = tls_error(e) {
            let hint = match tls {
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                    "; pass the CA that signed its certificate with --cacert FILE"
                }
                rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired) => {
                    "; the node asks for a client certificate: pass --cert FILE --key FILE"
                }
                _ => "",
            };
            return CtlError::new(
                EX_UNAVAILABLE,
                format!("TLS handshake with node '{}' failed: {tls}{hint}", self.node),
            );
        }
        let why =
            if e.is_connect() { "connection refused or host unreachable".to_owned() } else { e.to_string() };
        CtlError::new(
            EX_UNAVAILABLE,
            format!(
                "unable to perform an operation on node '{}' ({why}). Is warren-server running, and is its management listener on that host:port?",
                self.node
            ),
        )
    }

    /// Sends a request; Ok(Err(refusal)) for a non-2xx answer, else the
    /// answer's body.
    fn send(&self, rb: RequestBuilder) -> R<Result<Bytes, Refusal>> {
        let resp = rb.basic_auth(&self.user, Some(&self.pass)).send().map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        let bytes = resp.bytes().map_err(|e| self.unreachable(&e))?;
        if status.is_success() {
            return Ok(Ok(bytes));
        }
        let ErrorBody { error, reason } = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| ErrorBody { error: String::new(), reason: String::new() });
        Ok(Err(Refusal { status, error, reason }))
    }

    /// A 2xx answer read as `T` (an empty body reads as JSON `null`).
    fn read<T: DeserializeOwned>(&self, path: &str, body: &[u8]) -> R<T> {
        let body = if body.is_empty() { b"null".as_slice() } else { body };
        serde_json::from_slice(body).map_err(|e| {
            CtlError::new(
                EX_SOFTWARE,
                format!("node '{}' answered {path} with what warrenctl cannot read: {e}", self.node),
            )
        })
    }

    /// What a refusal means to the operator, as an error.
    pub fn refused(&self, r: Refusal) -> CtlError {
        match r.status {
            StatusCode::UNAUTHORIZED if r.error == "not_authorized" => CtlError::new(
                EX_NOPERM,
                format!(
                    "authentication as user '{}' failed on node '{}' (check --username/--password)",
                    self.user, self.node
                ),
            ),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => CtlError::new(
                EX_NOPERM,
                format!("user '{}' is not allowed to do this: {}", self.user, r.reason),
            ),
            StatusCode::NOT_FOUND => CtlError::new(EX_DATAERR, format!("not found: {}", r.reason)),
            StatusCode::SERVICE_UNAVAILABLE => CtlError::new(EX_UNAVAILABLE, r.reason),
            s if s.is_client_error() => CtlError::new(EX_DATAERR, r.reason),
            s => CtlError::new(EX_SOFTWARE, format!("node '{}' answered {s}: {}", self.node, r.reason)),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET, answer or refusal.
    pub fn try_get<T: DeserializeOwned>(&self, path: &str) -> R<Result<T, Refusal>> {
        match self.send(self.http.get(self.url(path)))? {
            Ok(body) => self.read(path, &body).map(Ok),
            Err(r) => Ok(Err(r)),
        }
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> R<T> {
        self.try_get(path)?.map_err(|r| self.refused(r))
    }

    /// GET of one object: None when it does not exist.
    pub fn get_opt<T: DeserializeOwned>(&self, path: &str) -> R<Option<T>> {
        match self.try_get(path)? {
            Ok(v) => Ok(Some(v)),
            Err(r) if r.status == StatusCode::NOT_FOUND => Ok(None),
            Err(r) => Err(self.refused(r)),
        }
    }

    /// Whether the object at `path` exists (GET answers 2xx, not 404).
    pub fn exists(&self, path: &str) -> R<bool> {
        Ok(self.get_opt::<IgnoredAny>(path)?.is_some())
    }

    /// GET whose answer, whatever it is, only shows that the node answers.
    pub fn reach(&self, path: &str) -> R<()> {
        self.send(self.http.get(self.url(path))).map(drop)
    }

    pub fn put(&self, path: &str, body: &Value) -> R<()> {
        self.send(self.http.put(self.url(path)).json(body))?.map(drop).map_err(|r| self.refused(r))
    }

    /// POST; the answer is not read.
    pub fn post(&self, path: &str, body: &Value) -> R<()> {
        self.send(self.http.post(self.url(path)).json(body))?.map(drop).map_err(|r| self.refused(r))
    }

    /// POST; the answer read as `T`.
    pub fn post_read<T: DeserializeOwned>(&self, path: &str, body: &Value) -> R<T> {
        let answer = self.send(self.http.post(self.url(path)).json(body))?.map_err(|r| self.refused(r))?;
        self.read(path, &answer)
    }

    /// A request with a JSON body (DELETE may have one too): the answer as
    /// JSON (`null` when empty), or the refusal.
    pub fn try_json(&self, method: reqwest::Method, path: &str, body: &Value) -> R<Result<Value, Refusal>> {
        match self.send(self.http.request(method, self.url(path)).json(body))? {
            Ok(bytes) => self.read(path, &bytes).map(Ok),
            Err(r) => Ok(Err(r)),
        }
    }

    /// POST of a raw JSON body of known length (definitions import).
    pub fn post_body(&self, path: &str, body: Body) -> R<()> {
        let rb = self.http.post(self.url(path)).header("content-type", "application/json").body(body);
        self.send(rb)?.map(drop).map_err(|r| self.refused(r))
    }

    /// DELETE, done or refusal (callers turn 404 into their own message).
    pub fn try_delete(&self, path: &str, reason: Option<&str>) -> R<Result<(), Refusal>> {
        let mut rb = self.http.delete(self.url(path));
        if let Some(r) = reason {
            rb = rb.header("X-Reason", r);
        }
        Ok(self.send(rb)?.map(drop))
    }

    /// DELETE; a 404 becomes `missing` (a data error).
    pub fn delete(&self, path: &str, missing: impl FnOnce() -> String) -> R<()> {
        match self.try_delete(path, None)? {
            Ok(()) => Ok(()),
            Err(r) if r.status == StatusCode::NOT_FOUND => Err(CtlError::new(EX_DATAERR, missing())),
            Err(r) => Err(self.refused(r)),
        }
    }
}
