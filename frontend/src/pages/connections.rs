//! Connections and channels, with force-close.

use leptos::prelude::*;
use warren_api_types::Page;
use warren_api_types::objects::{Channel, Connection};

use crate::api::{self, enc};
use crate::refresh::poll;
use crate::widgets::{Outcome, Pager, Status, bytes, loaded, num, outcome, rate, run};

/// The list's page lives in the URL (`/connections?page=2`).
#[component]
pub fn Connections() -> impl IntoView {
    let url = crate::url_state::UrlState::new("/connections");
    let page = url.number("page", 1);
    let data =
        poll::<Page<Connection>>(move || format!("/api/connections?page={}&page_size=100", page.get()));
    let out: Outcome = outcome();
    let reason = RwSignal::new("Closed from the management dashboard".to_string());
    view! {
        <h1>"Connections"</h1>
        <label>"Reason given when closing " <input id="close-reason" bind:value=reason/></label>
        {loaded(data, move |p: Page<Connection>| {
            let pages = p.page_count.max(1);
            view! {
                <p class="muted">{format!("{} connections (page {} of {})", p.total_count, p.page, pages)}</p>
                <Pager url=url.clone() page=p.page pages=pages/>
                <table id="connections">
                    <thead><tr><th>"Name"</th><th>"User"</th><th>"Virtual host"</th><th>"State"</th><th>"Protocol"</th>
                        <th>"Client"</th><th>"Channels"</th><th>"From client"</th><th>"To client"</th><th>"Action"</th></tr></thead>
                    <tbody>{p.items.iter().map(|c| {
                        let props = &c.client_properties;
                        let client = format!(
                            "{} {}",
                            props.get("product").and_then(|v| v.as_str()).unwrap_or(""),
                            props.get("version").and_then(|v| v.as_str()).unwrap_or("")
                        );
                        let path = format!("/api/connections/{}", enc(&c.name));
                        view! { <tr>
                            <td>{c.name.clone()}</td><td>{c.user.clone()}</td><td>{c.vhost.clone()}</td><td>{c.state.clone()}</td>
                            <td>{c.protocol.clone()}</td><td title=c.client_properties.to_string()>{client}</td><td class="n">{c.channels}</td>
                            <td class="n">{format!("{}/s", bytes(c.recv_oct_details.rate as u64))}</td>
                            <td class="n">{format!("{}/s", bytes(c.send_oct_details.rate as u64))}</td>
                            <td><button type="button" class="danger" on:click=move |_| {
                                let p = path.clone();
                                let r = reason.get_untracked();
                                run(out, "Connection closed.", async move { api::call("DELETE", &p, None, &[("X-Reason", &r)]).await })
                            }>"Force close"</button></td>
                        </tr> }
                    }).collect_view()}</tbody>
                </table>
            }
        })}
        <Status out=out/>
    }
}

/// The list's page lives in the URL (`/channels?page=2`).
#[component]
pub fn Channels() -> impl IntoView {
    let url = crate::url_state::UrlState::new("/channels");
    let page = url.number("page", 1);
    let data = poll::<Page<Channel>>(move || format!("/api/channels?page={}&page_size=100", page.get()));
    view! {
        <h1>"Channels"</h1>
        {loaded(data, move |p: Page<Channel>| {
            let pages = p.page_count.max(1);
            view! {
                <p class="muted">{format!("{} channels (page {} of {})", p.total_count, p.page, pages)}</p>
                <Pager url=url.clone() page=p.page pages=pages/>
                <table id="channels">
                    <thead><tr><th>"Channel"</th><th>"User"</th><th>"Virtual host"</th><th>"Mode"</th><th>"State"</th>
                        <th>"Consumers"</th><th>"Unacked"</th><th>"Prefetch"</th><th>"Publish"</th><th>"Deliver / get"</th><th>"Ack"</th></tr></thead>
                    <tbody>{p.items.iter().map(|c| {
                        let mode = match (c.confirm, c.transactional) { (true, _) => "C", (_, true) => "T", _ => "" };
                        let ms = &c.message_stats;
                        view! { <tr>
                            <td>{c.name.clone()}</td><td>{c.user.clone()}</td><td>{c.vhost.clone()}</td><td>{mode}</td><td>{c.state.clone()}</td>
                            <td class="n">{c.consumer_count}</td><td class="n">{num(c.messages_unacknowledged as u64)}</td>
                            <td class="n">{c.prefetch_count}</td>
                            <td class="n">{rate(&ms.publish_details)}</td><td class="n">{rate(&ms.deliver_get_details)}</td><td class="n">{rate(&ms.ack_details)}</td>
                        </tr> }
                    }).collect_view()}</tbody>
                </table>
            }
        })}
    }
}
