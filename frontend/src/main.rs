//! Warren's management dashboard: a Leptos client-side app, compiled to
//! WASM by `scripts/build-frontend.sh` and embedded in `warren-server`.
//!
//! - [`api`]: fetch against the public management API, the login token in
//!   sessionStorage, and logout on a refused token.
//! - [`refresh`]: the live-refresh tick, its interval and pause control.
//! - [`widgets`]: status lines, confirmation buttons, SVG charts, number
//!   formats.
//! - [`pages`]: one module per page, routed in [`app`].
//!
//! Everything shown is rendered as text by Leptos (never as HTML), so names
//! and payloads cannot inject markup.

mod api;
mod app;
mod pages;
mod refresh;
mod url_state;
mod widgets;

fn main() {
    leptos::mount::mount_to_body(app::App);
}
