//! Overview: totals, charts of queued messages and message rates, nodes,
//! listeners, and definitions export and import.

use std::collections::BTreeMap;

use leptos::prelude::*;
use warren_api_types::objects::{Node, Overview as OverviewData};
use wasm_bindgen::JsCast;

use crate::api;
use crate::pages::replication::{RoleCells, Roles, node_roles, poll_replicas};
use crate::refresh::poll;
use crate::widgets::{
    Chart, Outcome, Series, Status, bytes, duration_ms, gauge, loaded, num, outcome, rates, run,
};

const HISTORY: &str = "lengths_age=600&lengths_incr=5&msg_rates_age=600&msg_rates_incr=5";

#[component]
pub fn Overview() -> impl IntoView {
    let data = poll::<OverviewData>(|| format!("/api/overview?{HISTORY}"));
    let nodes = poll::<Vec<Node>>(|| "/api/nodes".into());
    let replicas = poll_replicas();
    view! {
        <h1>"Overview"</h1>
        {loaded(data, |o: OverviewData| {
            let t = o.object_totals.clone();
            let q = o.queue_totals.clone();
            let m = o.message_stats.clone();
            let queued = vec![
                Series { name: "Ready", class: "s-ready", points: gauge(&q.messages_ready_details) },
                Series { name: "Unacked", class: "s-unacked", points: gauge(&q.messages_unacknowledged_details) },
                Series { name: "Total", class: "s-total", points: gauge(&q.messages_details) },
            ];
            let msg_rates = vec![
                Series { name: "Publish", class: "s-publish", points: rates(&m.publish_details) },
                Series { name: "Confirm", class: "s-confirm", points: rates(&m.confirm_details) },
                Series { name: "Deliver", class: "s-deliver", points: rates(&m.deliver_details) },
                Series { name: "Ack", class: "s-ack", points: rates(&m.ack_details) },
                Series { name: "Redeliver", class: "s-redeliver", points: rates(&m.redeliver_details) },
                Series { name: "Get", class: "s-get", points: rates(&m.get_details) },
                Series { name: "Unroutable", class: "s-unroutable", points: rates(&m.return_unroutable_details) },
            ];
            view! {
                <p class="muted">{format!("{} {} on {} (cluster {})", o.product_name, o.product_version, o.node, o.cluster_name)}</p>
                <section aria-label="Totals">
                    <dl class="totals" id="totals">
                        <div><dt>"Connections"</dt><dd id="total-connections">{num(t.connections)}</dd></div>
                        <div><dt>"Channels"</dt><dd id="total-channels">{num(t.channels)}</dd></div>
                        <div><dt>"Exchanges"</dt><dd id="total-exchanges">{num(t.exchanges)}</dd></div>
                        <div><dt>"Queues"</dt><dd id="total-queues">{num(t.queues)}</dd></div>
                        <div><dt>"Consumers"</dt><dd id="total-consumers">{num(t.consumers)}</dd></div>
                        <div><dt>"Ready"</dt><dd id="total-ready">{num(q.messages_ready)}</dd></div>
                        <div><dt>"Unacked"</dt><dd id="total-unacked">{num(q.messages_unacknowledged)}</dd></div>
                        <div><dt>"Total messages"</dt><dd id="total-messages">{num(q.messages)}</dd></div>
                    </dl>
                </section>
                <div class="charts">
                    <Chart id="chart-queued" title="Queued messages (last 10 minutes)" series=queued/>
                    <Chart id="chart-rates" title="Message rates per second (last 10 minutes)" series=msg_rates/>
                </div>
                <h2>"Listeners"</h2>
                <table id="listeners">
                    <thead><tr><th>"Node"</th><th>"Protocol"</th><th>"Address"</th><th>"Port"</th></tr></thead>
                    <tbody>
                        {o.listeners.iter().map(|l| view! {
                            <tr><td>{l.node.clone()}</td><td>{l.protocol.clone()}</td><td>{l.ip_address.clone()}</td><td>{l.port}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }
        })}
        <h2>"Nodes"</h2>
        {loaded(nodes, move |ns: Vec<Node>| view! { <NodesTable nodes=ns roles=node_roles(replicas)/> })}
        <Definitions/>
    }
}

fn opt(v: Option<u64>, f: fn(u64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "?".into())
}

/// The nodes and their figures; with `roles` (when queues are replicated),
/// also the queues each node leads and follows.
#[component]
pub fn NodesTable(nodes: Vec<Node>, roles: Option<BTreeMap<String, Roles>>) -> impl IntoView {
    let role_heads = roles.is_some().then(|| view! { <th>"Leader of"</th><th>"Follower of"</th> });
    let role_cells = move |node: &str| {
        roles.as_ref().map(|r| view! { <RoleCells roles=r.get(node).copied().unwrap_or_default()/> })
    };
    view! {
        <table id="nodes">
            <thead><tr>
                <th>"Name"</th><th>"Type"</th><th>"Uptime"</th><th>"Memory"</th><th>"File descriptors"</th>
                <th>"Sockets"</th><th>"Disk free"</th><th>"Alarms"</th>{role_heads}
            </tr></thead>
            <tbody>
                {nodes.into_iter().map(|n| {
                    let roles = role_cells(&n.name);
                    // A member that does not answer has no figures to show:
                    // say so, as RabbitMQ does, rather than zeros and "?".
                    if !n.running {
                        return view! { <tr class="down" data-node=n.name.clone()>
                            <td>{n.name.clone()}</td>
                            <td>{n.kind.clone()}</td>
                            <td colspan="6" class="err node-state">"Node not running"</td>
                            {roles}
                        </tr> }.into_any();
                    }
                    let mut alarms = vec![];
                    if n.mem_alarm { alarms.push("memory") }
                    if n.disk_free_alarm { alarms.push("disk") }
                    let class = if alarms.is_empty() { "" } else { "err" };
                    let alarms = if alarms.is_empty() { "none".to_string() } else { alarms.join(", ") };
                    view! { <tr data-node=n.name.clone()>
                        <td>{n.name.clone()}</td>
                        <td>{n.kind.clone()}</td>
                        <td>{duration_ms(n.uptime)}</td>
                        <td>{format!("{} / {}", opt(n.mem_used, bytes), opt(n.mem_limit, bytes))}</td>
                        <td>{format!("{} / {}", opt(n.fd_used, num), opt(n.fd_total, num))}</td>
                        <td>{format!("{} / {}", num(n.sockets_used), opt(n.sockets_total, num))}</td>
                        <td>{opt(n.disk_free, bytes)}</td>
                        <td class=class>{alarms}</td>
                        {roles}
                    </tr> }.into_any()
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Export downloads `GET /api/definitions` as a file; import uploads one
/// to `POST /api/definitions`.
#[component]
fn Definitions() -> impl IntoView {
    let out: Outcome = outcome();
    let export = move |_| {
        run(out, "Definitions exported.", async move {
            let text = api::call("GET", "/api/definitions", None, &[]).await?;
            download("warren-definitions.json", &text)
                .map_err(|_| "could not start the download".to_string())?;
            Ok(String::new())
        })
    };
    let file_ref = NodeRef::<leptos::html::Input>::new();
    let import = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(input) = file_ref.get() else { return };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            out.set(Some(Err("Choose a definitions file first.".into())));
            return;
        };
        run(out, "Definitions imported.", async move {
            let text = wasm_bindgen_futures::JsFuture::from(file.text())
                .await
                .ok()
                .and_then(|t| t.as_string())
                .ok_or("could not read the file")?;
            if serde_json::from_str::<serde_json::Value>(&text).is_err() {
                return Err("The file is not JSON.".to_string());
            }
            api::call("POST", "/api/definitions", Some(text), &[]).await
        })
    };
    view! {
        <section id="definitions">
        <h2>"Definitions"</h2>
        <div class="row">
            <button type="button" id="export-definitions" on:click=export>"Download definitions"</button>
            <form on:submit=import class="inline">
                <label for="import-file">"Import definitions file "</label>
                <input type="file" id="import-file" accept="application/json,.json" node_ref=file_ref/>
                <button type="submit" id="import-definitions">"Upload"</button>
            </form>
        </div>
        <Status out=out/>
        </section>
    }
}

fn download(name: &str, text: &str) -> Result<(), wasm_bindgen::JsValue> {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("application/json");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let doc = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = doc.create_element("a")?.unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    web_sys::Url::revoke_object_url(&url)?;
    Ok(())
}
