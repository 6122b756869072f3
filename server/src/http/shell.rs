//! The dashboard's bundle and its HTML shell.
//!
//! `scripts/build-frontend.sh` writes `frontend/dist/`: content-hashed
//! files and `manifest.json`, which names them and records the hash of the
//! frontend's sources. The server embeds that directory at compile time
//! ([`Dist`]) and `build.rs` computes the sources' hash again; a missing,
//! incomplete or stale bundle is never served: the shell becomes a page
//! that says so (503) and the server logs a warning.
//!
//! The shell is rendered by askama: the version, the hashed asset names,
//! and a Content-Security-Policy without inline script. WASM needs
//! `'wasm-unsafe-eval'`.

use std::sync::OnceLock;

use askama::Template;
use rust_embed::RustEmbed;
use serde::Deserialize;

#[derive(RustEmbed)]
#[folder = "../frontend/dist/"]
#[allow_missing = true]
pub struct Dist;

/// The policy of every answer: only this origin; WASM compilation allowed;
/// no inline script or style; never framed.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
const SOURCE_HASH: &str = env!("WARREN_FRONTEND_SOURCE_HASH");

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub source_hash: String,
    pub boot: String,
    pub js: String,
    pub wasm: String,
    pub css: String,
}

/// What the embedded bundle is worth.
#[derive(Debug, Clone)]
pub enum Bundle {
    Ready(Manifest),
    /// `(state, detail)`: "not built" or "stale", and why.
    Unavailable(&'static str, String),
}

fn check() -> Bundle {
    let manifest = Dist::get("manifest.json");
    judge(manifest.as_ref().map(|f| &f.data[..]), SOURCE_HASH, |n| Dist::get(n).is_some())
}

/// The bundle's state from its manifest, the sources' hash and which files
/// it holds.
fn judge(manifest: Option<&[u8]>, source_hash: &str, has: impl Fn(&str) -> bool) -> Bundle {
    let Some(manifest) = manifest else {
        return Bundle::Unavailable(
            "not built",
            "this server was compiled without frontend/dist/manifest.json".into(),
        );
    };
    let m: Manifest = match serde_json::from_slice(manifest) {
        Ok(m) => m,
        Err(e) => return Bundle::Unavailable("not built", format!("its manifest is unreadable: {e}")),
    };
    if m.source_hash != source_hash {
        return Bundle::Unavailable(
            "stale",
            "the embedded bundle was built from other frontend sources than this server's".into(),
        );
    }
    for name in [&m.boot, &m.js, &m.wasm, &m.css] {
        if !has(name) {
            return Bundle::Unavailable("not built", format!("the bundle lacks {name}"));
        }
    }
    Bundle::Ready(m)
}

/// The bundle's state, checked once; a warning is logged the first time
/// when it cannot be served.
pub fn bundle() -> &'static Bundle {
    static B: OnceLock<Bundle> = OnceLock::new();
    B.get_or_init(|| {
        let b = check();
        if let Bundle::Unavailable(state, detail) = &b {
            tracing::warn!(
                "dashboard {state}: {detail}; run scripts/build-frontend.sh and rebuild warren-server"
            );
        }
        b
    })
}

#[derive(Template)]
#[template(path = "index.html")]
struct Index<'a> {
    version: &'a str,
    boot: &'a str,
    js: &'a str,
    css: &'a str,
}

#[derive(Template)]
#[template(path = "unavailable.html")]
struct Unavailable<'a> {
    version: &'a str,
    state: &'a str,
    detail: &'a str,
}

/// The shell's HTML, and whether the dashboard is there.
pub fn render() -> (bool, String) {
    let r = match bundle() {
        Bundle::Ready(m) => {
            Index { version: VERSION, boot: &m.boot, js: &m.js, css: &m.css }.render().map(|h| (true, h))
        }
        Bundle::Unavailable(state, detail) => {
            Unavailable { version: VERSION, state, detail }.render().map(|h| (false, h))
        }
    };
    r.unwrap_or_else(|e| (false, format!("template error: {e}")))
}

/// An embedded asset by exact name (never the manifest), with its type.
/// `.gz` files are not assets of their own: they are the gzipped form of
/// the file they are named after (see [`gzipped`]).
pub fn asset(name: &str) -> Option<(&'static str, std::borrow::Cow<'static, [u8]>)> {
    if name == "manifest.json" || name.contains('/') || name.ends_with(".gz") {
        return None;
    }
    let file = Dist::get(name)?;
    let kind = match name.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        _ => "application/octet-stream",
    };
    Some((kind, file.data))
}

/// The gzipped form of an asset, when `scripts/build-frontend.sh` wrote one
/// (it does for the WASM module and the JS glue, which shrink about 3×).
pub fn gzipped(name: &str) -> Option<std::borrow::Cow<'static, [u8]>> {
    Dist::get(&format!("{name}.gz")).map(|f| f.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &[u8] =
        br#"{"source_hash": "h1", "boot": "b.js", "js": "f.js", "wasm": "f.wasm", "css": "s.css"}"#;

    #[test]
    fn missing_stale_or_incomplete_bundles_are_refused() {
        assert!(matches!(judge(None, "h1", |_| true), Bundle::Unavailable("not built", _)));
        assert!(matches!(judge(Some(b"{"), "h1", |_| true), Bundle::Unavailable("not built", _)));
        assert!(matches!(judge(Some(M), "h2", |_| true), Bundle::Unavailable("stale", _)));
        assert!(matches!(judge(Some(M), "h1", |n| n != "f.wasm"), Bundle::Unavailable("not built", _)));
        assert!(matches!(judge(Some(M), "h1", |_| true), Bundle::Ready(_)));
    }

    #[test]
    fn assets_by_exact_name_only() {
        assert!(asset("manifest.json").is_none());
        assert!(asset("../Cargo.toml").is_none());
        assert!(asset("nope.js").is_none());
    }
}
