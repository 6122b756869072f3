//! The shell of the app: the login gate, the navigation bar with the
//! refresh controls, and the routes. Every page has its own URL, so deep
//! links, reloads and back/forward work; the server answers `index.html`
//! for any path outside `/api`.

use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::hooks::use_location;
use leptos_router::path;

use crate::pages::{admin, connections, exchanges, login, overview, queues};
use crate::refresh::Refresh;
use crate::{api, widgets};

#[component]
pub fn App() -> impl IntoView {
    let session = api::session();
    let refresh = Refresh::provide();
    // Created here, under the app's owner, so it lives as long as the app.
    widgets::open_prompt();
    view! {
        <Router>
            <Show when=move || session.get().is_some() fallback=|| view! { <login::Login/> }>
                <Nav refresh=refresh/>
                <main id="main">
                    <Routes fallback=|| view! { <h1>"Not found"</h1><p>"No such page."</p> }>
                        <Route path=path!("/") view=overview::Overview/>
                        <Route path=path!("/connections") view=connections::Connections/>
                        <Route path=path!("/channels") view=connections::Channels/>
                        <Route path=path!("/exchanges") view=exchanges::Exchanges/>
                        <Route path=path!("/exchanges/:vhost/:name") view=exchanges::ExchangeDetail/>
                        <Route path=path!("/queues") view=queues::Queues/>
                        <Route path=path!("/queues/:vhost/:name") view=queues::QueueDetail/>
                        <Route path=path!("/admin") view=admin::Admin/>
                    </Routes>
                </main>
            </Show>
        </Router>
    }
}

#[component]
fn Nav(refresh: Refresh) -> impl IntoView {
    // A confirmation prompt belongs to the page it was opened on.
    let location = use_location();
    Effect::new(move |_| {
        location.pathname.track();
        widgets::open_prompt().set(None);
    });
    let user = move || api::session().get().map(|s| s.name).unwrap_or_default();
    let version = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
        .and_then(|e| e.get_attribute("data-version"))
        .unwrap_or_default();
    view! {
        <header class="top">
            <span class="brand">"Warren " <small>{version}</small></span>
            <nav aria-label="Main">
                <A href="/" exact=true>"Overview"</A>
                <A href="/connections">"Connections"</A>
                <A href="/channels">"Channels"</A>
                <A href="/exchanges">"Exchanges"</A>
                <A href="/queues">"Queues"</A>
                <A href="/admin">"Admin"</A>
            </nav>
            <span class="refresh">
                <label>
                    "Refresh every "
                    <select
                        id="refresh-interval"
                        on:change=move |ev| {
                            if let Ok(n) = event_target_value(&ev).parse() {
                                refresh.secs.set(n)
                            }
                        }
                        prop:value=move || refresh.secs.get().to_string()
                    >
                        <option value="2">"2 s"</option>
                        <option value="5">"5 s"</option>
                        <option value="10">"10 s"</option>
                        <option value="30">"30 s"</option>
                        <option value="60">"60 s"</option>
                    </select>
                </label>
                <label><input type="checkbox" id="refresh-pause" bind:checked=refresh.paused/>" Pause"</label>
            </span>
            <span class="user">
                "User " <strong id="whoami">{user}</strong> " "
                <button type="button" id="logout" on:click=move |_| api::logout()>"Log out"</button>
            </span>
        </header>
    }
}
