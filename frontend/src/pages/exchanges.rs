//! Exchanges: the paged list with the add form, and an exchange's page with
//! its bindings, a publish form and delete.

use leptos::prelude::*;
use warren_api_types::Page;
use warren_api_types::objects::{Binding, Exchange};
use warren_api_types::requests::{Bool, DeclareExchange};

use crate::api::{self, enc};
use crate::pages::queues::{Bindings, PublishForm, parse_args};
use crate::refresh::poll;
use crate::widgets::{ConfirmButton, Outcome, Pager, Status, loaded, outcome, rate, run};

fn shown_name(n: &str) -> String {
    if n.is_empty() { "(AMQP default)".into() } else { n.to_owned() }
}

pub fn exchange_href(vhost: &str, name: &str) -> String {
    let n = if name.is_empty() { "amq.default" } else { name };
    format!("/exchanges/{}/{}", enc(vhost), enc(n))
}

/// The list's page and filter live in the URL (`/exchanges?page=2&name=amq`).
#[component]
pub fn Exchanges() -> impl IntoView {
    let url = crate::url_state::UrlState::new("/exchanges");
    let (page, filter) = (url.number("page", 1), url.param("name"));
    let data = poll::<Page<Exchange>>(move || {
        let mut p = format!("/api/exchanges?page={}&page_size=100", page.get());
        let f = filter.get();
        if !f.is_empty() {
            p.push_str(&format!("&name={}", enc(&f)));
        }
        p
    });
    view! {
        <h1>"Exchanges"</h1>
        <form class="row" on:submit=|ev: leptos::ev::SubmitEvent| ev.prevent_default()>
            <label>"Filter by name "
                <input id="exchange-filter" type="search" prop:value=move || filter.get() on:input={
                    let url = url.clone();
                    move |ev| url.set(&[("name", event_target_value(&ev)), ("page", String::new())], true)
                }/>
            </label>
        </form>
        {loaded(data, move |p: Page<Exchange>| {
            let pages = p.page_count.max(1);
            view! {
                <p class="muted">{format!("{} of {} exchanges (page {} of {})", p.filtered_count, p.total_count, p.page, pages)}</p>
                <Pager url=url.clone() page=p.page pages=pages/>
                <table id="exchanges">
                    <thead><tr><th>"Virtual host"</th><th>"Name"</th><th>"Type"</th><th>"Features"</th><th>"Rate in"</th><th>"Rate out"</th></tr></thead>
                    <tbody>{p.items.iter().map(|e| {
                        let ms = e.message_stats.clone().unwrap_or_default();
                        let mut f = vec![];
                        if e.durable { f.push("D") }
                        if e.auto_delete { f.push("AD") }
                        if e.internal { f.push("I") }
                        view! { <tr>
                            <td>{e.vhost.clone()}</td>
                            <td><a href=exchange_href(&e.vhost, &e.name)>{shown_name(&e.name)}</a></td>
                            <td>{e.kind.clone()}</td>
                            <td>{f.join(" ")}</td>
                            <td class="n">{rate(&ms.publish_in_details)}</td>
                            <td class="n">{rate(&ms.publish_out_details)}</td>
                        </tr> }
                    }).collect_view()}</tbody>
                </table>
            }
        })}
        <AddExchange/>
    }
}

#[component]
fn AddExchange() -> impl IntoView {
    let vhost = RwSignal::new("/".to_string());
    let name = RwSignal::new(String::new());
    let kind = RwSignal::new("direct".to_string());
    let durable = RwSignal::new(true);
    let auto_delete = RwSignal::new(false);
    let internal = RwSignal::new(false);
    let args = RwSignal::new(String::new());
    let out: Outcome = outcome();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get_untracked();
        if n.trim().is_empty() {
            return out.set(Some(Err("Enter an exchange name.".into())));
        }
        let arguments = match parse_args(&args.get_untracked()) {
            Ok(a) => a,
            Err(e) => return out.set(Some(Err(e))),
        };
        let body = DeclareExchange {
            kind: kind.get_untracked(),
            durable: Some(Bool(durable.get_untracked())),
            auto_delete: Some(Bool(auto_delete.get_untracked())),
            internal: Some(Bool(internal.get_untracked())),
            arguments: Some(arguments),
            ..Default::default()
        };
        let path = format!("/api/exchanges/{}/{}", enc(&vhost.get_untracked()), enc(&n));
        run(out, format!("Exchange '{n}' declared."), async move { api::send("PUT", &path, &body).await });
    };
    view! {
        <h2>"Add an exchange"</h2>
        <form id="add-exchange" class="grid" on:submit=submit>
            <label for="ae-vhost">"Virtual host"</label><input id="ae-vhost" bind:value=vhost/>
            <label for="ae-name">"Name"</label><input id="ae-name" bind:value=name/>
            <label for="ae-type">"Type"</label>
            <select id="ae-type" on:change=move |ev| kind.set(event_target_value(&ev)) prop:value=move || kind.get()>
                <option value="direct">"direct"</option>
                <option value="fanout">"fanout"</option>
                <option value="topic">"topic"</option>
                <option value="headers">"headers"</option>
            </select>
            <label for="ae-durable">"Durable"</label><input id="ae-durable" type="checkbox" bind:checked=durable/>
            <label for="ae-autodelete">"Auto delete"</label><input id="ae-autodelete" type="checkbox" bind:checked=auto_delete/>
            <label for="ae-internal">"Internal"</label><input id="ae-internal" type="checkbox" bind:checked=internal/>
            <label for="ae-args">"Arguments (key=value per line)"</label><textarea id="ae-args" rows="2" bind:value=args></textarea>
            <span></span><button type="submit" id="ae-submit">"Add exchange"</button>
        </form>
        <Status out=out/>
    }
}

#[component]
pub fn ExchangeDetail() -> impl IntoView {
    let loc = leptos_router::hooks::use_location();
    move || {
        loc.pathname.track();
        view! { <ExchangePage/> }
    }
}

#[component]
fn ExchangePage() -> impl IntoView {
    let seg = api::path_segments();
    let (vhost, url_name) =
        (seg.get(1).cloned().unwrap_or_default(), seg.get(2).cloned().unwrap_or_default());
    let name = if url_name == "amq.default" { String::new() } else { url_name.clone() };
    let base = format!("/api/exchanges/{}/{}", enc(&vhost), enc(&url_name));
    let b1 = base.clone();
    let data = poll::<Exchange>(move || b1.clone());
    let b2 = base.clone();
    let bindings = poll::<Vec<Binding>>(move || format!("{b2}/bindings/source"));
    let b3 = base.clone();
    let bindings_in = poll::<Vec<Binding>>(move || format!("{b3}/bindings/destination"));
    let out: Outcome = outcome();
    let navigate = leptos_router::hooks::use_navigate();
    let delete = move || {
        let p = base.clone();
        let nav = navigate.clone();
        out.set(None);
        leptos::task::spawn_local(async move {
            match api::delete(&p).await {
                Ok(_) => nav("/exchanges", Default::default()),
                Err(e) => {
                    out.try_set(Some(Err(e)));
                }
            }
        });
    };
    // Bindings from this exchange: add them to a queue by name.
    let dest = RwSignal::new(String::new());
    let dest_type = RwSignal::new("q".to_string());
    let key = RwSignal::new(String::new());
    let bout: Outcome = outcome();
    let (v1, n1) = (vhost.clone(), name.clone());
    let bind = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let d = dest.get_untracked();
        if d.trim().is_empty() {
            return bout.set(Some(Err("Enter the destination's name.".into())));
        }
        let body = warren_api_types::requests::CreateBinding {
            routing_key: Some(key.get_untracked()),
            ..Default::default()
        };
        let path =
            format!("/api/bindings/{}/e/{}/{}/{}", enc(&v1), enc(&n1), dest_type.get_untracked(), enc(&d));
        run(bout, "Binding added.", async move { api::send("POST", &path, &body).await });
    };
    view! {
        <h1>"Exchange " <span id="exchange-name">{shown_name(&name)}</span></h1>
        <p class="muted">"Virtual host " {vhost.clone()}</p>
        {loaded(data, |e: Exchange| view! {
            <dl class="totals">
                <div><dt>"Type"</dt><dd>{e.kind.clone()}</dd></div>
                <div><dt>"Durable"</dt><dd>{e.durable.to_string()}</dd></div>
                <div><dt>"Auto delete"</dt><dd>{e.auto_delete.to_string()}</dd></div>
                <div><dt>"Internal"</dt><dd>{e.internal.to_string()}</dd></div>
                <div><dt>"Policy"</dt><dd>{e.policy.clone().unwrap_or_default()}</dd></div>
            </dl>
            <p class="muted">"Arguments: " <code>{e.arguments.to_string()}</code></p>
        })}
        <h2>"Bindings from this exchange"</h2>
        {loaded(bindings, move |bs: Vec<Binding>| view! {
            <table id="exchange-bindings">
                <thead><tr><th>"To"</th><th>"Type"</th><th>"Routing key"</th><th>"Arguments"</th><th>"Action"</th></tr></thead>
                <tbody>{bs.into_iter().map(|b| {
                    let kind = if b.destination_type == "queue" { "q" } else { "e" };
                    let path = format!("/api/bindings/{}/e/{}/{}/{}/{}", enc(&b.vhost), enc(&b.source), kind, enc(&b.destination), enc(&b.properties_key));
                    view! { <tr>
                        <td>{b.destination.clone()}</td><td>{b.destination_type.clone()}</td><td>{b.routing_key.clone()}</td>
                        <td><code>{b.arguments.to_string()}</code></td>
                        <td><button type="button" class="danger" on:click=move |_| {
                            let p = path.clone();
                            run(bout, "Binding removed.", async move { api::delete(&p).await })
                        }>"Unbind"</button></td>
                    </tr> }
                }).collect_view()}</tbody>
            </table>
        })}
        {(!name.is_empty()).then(|| view! {
            <form class="grid" id="exchange-bind" on:submit=bind>
                <label for="eb-type">"To"</label>
                <select id="eb-type" on:change=move |ev| dest_type.set(event_target_value(&ev)) prop:value=move || dest_type.get()>
                    <option value="q">"Queue"</option>
                    <option value="e">"Exchange"</option>
                </select>
                <label for="eb-dest">"Destination name"</label><input id="eb-dest" bind:value=dest/>
                <label for="eb-key">"Routing key"</label><input id="eb-key" bind:value=key/>
                <span></span><button type="submit" id="eb-submit">"Bind"</button>
            </form>
        })}
        <Status out=bout/>
        <h2>"Bindings to this exchange"</h2>
        <Bindings data=bindings_in vhost=vhost.clone() dest=name.clone() dest_type="e"/>
        <h2>"Publish message"</h2>
        <PublishForm vhost=vhost.clone() exchange=name.clone() fixed_key=None/>
        <h2>"Delete this exchange"</h2>
        <ConfirmButton label="Delete" question="Delete this exchange and its bindings?" on_confirm=delete/>
        <Status out=out/>
    }
}
