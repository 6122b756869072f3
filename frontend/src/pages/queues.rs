//! Queues: the paged table (paged, sorted and filtered by the server), the
//! depth of the listed queues per node, the add form, and a queue's page.

use std::collections::{BTreeMap, BTreeSet};

use leptos::prelude::*;
use serde_json::{Map, Value};
use warren_api_types::Page;
use warren_api_types::objects::{Binding, Consumer, GotMessage, Node, NodeQueueTotals, Queue};
use warren_api_types::requests::{Bool, CreateBinding, DeclareQueue, GetMessages, Int};

use crate::api::{self, enc};
use crate::pages::replication::{QueueMembers, type_label};
use crate::refresh::poll;
use crate::widgets::{
    Chart, ConfirmButton, Outcome, Pager, Series, Status, gauge, loaded, num, outcome, rate, rates, run,
};

pub fn queue_href(vhost: &str, name: &str) -> String {
    format!("/queues/{}/{}", enc(vhost), enc(name))
}

/// The features column, as RabbitMQ abbreviates them.
fn features(q: &Queue) -> String {
    let mut f = vec![];
    if q.durable {
        f.push("D");
    }
    if q.auto_delete {
        f.push("AD");
    }
    if q.exclusive {
        f.push("Excl");
    }
    let args = |k: &str| q.arguments.get(k).is_some() || q.effective_policy_definition.get(&k[2..]).is_some();
    for (k, label) in [
        ("x-message-ttl", "TTL"),
        ("x-expires", "Exp"),
        ("x-dead-letter-exchange", "DLX"),
        ("x-max-length", "Lim"),
        ("x-max-length-bytes", "Lim B"),
        ("x-max-priority", "Pri"),
        ("x-single-active-consumer", "SAC"),
    ] {
        if args(k) {
            f.push(label);
        }
    }
    f.join(" ")
}

/// Parses `key=value` lines into arguments; numbers and booleans become
/// JSON numbers and booleans.
pub fn parse_args(text: &str) -> Result<Map<String, Value>, String> {
    let mut m = Map::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once('=').ok_or_else(|| format!("'{line}' is not key=value"))?;
        let v = v.trim();
        let value = if let Ok(n) = v.parse::<i64>() {
            Value::from(n)
        } else if v == "true" || v == "false" {
            Value::Bool(v == "true")
        } else {
            Value::String(v.to_owned())
        };
        m.insert(k.trim().to_owned(), value);
    }
    Ok(m)
}

/// The list's state lives in the URL (`/queues?page=2&sort=messages&…`), so
/// a view can be linked and back/forward walks through it.
#[component]
pub fn Queues() -> impl IntoView {
    let url = crate::url_state::UrlState::new("/queues");
    let page = url.number("page", 1);
    let page_size = url.number("page_size", 100);
    let (filter, regex, sort, reverse) =
        (url.param("name"), url.flag("use_regex"), url.param("sort"), url.flag("sort_reverse"));
    let set = {
        let url = url.clone();
        move |changes: &[(&str, String)], replace: bool| url.set(changes, replace)
    };
    let node_filter = RwSignal::new(String::new());
    // Only monitoring users may list nodes; others see the listed queues only.
    let nodes = poll::<Vec<Node>>(|| "/api/nodes".into());
    let node_list =
        move || nodes.with(|n| n.as_ref().and_then(|r| r.as_ref().ok()).cloned().unwrap_or_default());
    let data = poll::<Page<Queue>>(move || {
        let mut p = format!("/api/queues?page={}&page_size={}", page.get(), page_size.get());
        let f = filter.get();
        if !f.is_empty() {
            p.push_str(&format!("&name={}&use_regex={}", enc(&f), regex.get()));
        }
        let s = sort.get();
        if !s.is_empty() {
            p.push_str(&format!("&sort={}&sort_reverse={}", enc(&s), reverse.get()));
        }
        p
    });
    let header = {
        let set = set.clone();
        move |label: &'static str, key: &'static str| {
            let arrow = move || {
                if sort.get() == key { if reverse.get() { " ▼" } else { " ▲" } } else { "" }
            };
            let aria = move || {
                if sort.get() == key {
                    if reverse.get() { "descending" } else { "ascending" }
                } else {
                    "none"
                }
            };
            view! {
                <th aria-sort=aria>
                    <button type="button" class="link sort" data-sort=key on:click={
                        let set = set.clone();
                        move |_| {
                            let rev = if sort.get_untracked() == key { !reverse.get_untracked() } else { key != "name" };
                            let rev = if rev { "true" } else { "" };
                            set(&[("sort", key.to_string()), ("sort_reverse", rev.to_string()), ("page", String::new())], false);
                        }
                    }>{label}{arrow}</button>
                </th>
            }
        }
    };
    view! {
        <h1>"Queues"</h1>
        <form class="row" on:submit=|ev: leptos::ev::SubmitEvent| ev.prevent_default()>
            <label>"Filter by name "
                <input id="queue-filter" type="search" prop:value=move || filter.get() on:input={
                    let set = set.clone();
                    move |ev| set(&[("name", event_target_value(&ev)), ("page", String::new())], true)
                }/>
            </label>
            <label><input type="checkbox" id="queue-regex" prop:checked=move || regex.get() on:change={
                let set = set.clone();
                move |ev| {
                    let on = if event_target_checked(&ev) { "true" } else { "" };
                    set(&[("use_regex", on.to_string()), ("page", String::new())], false)
                }
            }/>" Regex"</label>
            <label>"Page size "
                <select id="queue-page-size" on:change={
                    let set = set.clone();
                    move |ev| set(&[("page_size", event_target_value(&ev)), ("page", String::new())], false)
                } prop:value=move || page_size.get().to_string()>
                    <option value="20">"20"</option>
                    <option value="100">"100"</option>
                    <option value="500">"500"</option>
                </select>
            </label>
        </form>
        {loaded(data, move |p: Page<Queue>| {
            let pages = p.page_count.max(1);
            let items = p.items.clone();
            let nodes = node_list();
            // A Node column only when there is more than one node, as
            // RabbitMQ's list has; users who may not list nodes still get
            // it when the listed queues live on different nodes.
            let clustered = nodes.len() > 1 || items.iter().any(|q| q.node != items[0].node);
            view! {
                <p class="muted" id="queue-count">
                    {format!("{} of {} queues (page {} of {})", p.filtered_count, p.total_count, p.page, pages)}
                </p>
                <Pager url=url.clone() page=p.page pages=pages id="queue"/>
                <table id="queues">
                    <thead><tr>
                        {header("Name", "name")}
                        {header("Virtual host", "vhost")}
                        {clustered.then(|| view! { <th>"Node"</th> })}
                        <th>"Type"</th><th>"Features"</th><th>"State"</th>
                        {header("Ready", "messages_ready")}
                        {header("Unacked", "messages_unacknowledged")}
                        {header("Total", "messages")}
                        {header("Incoming", "message_stats.publish_details.rate")}
                        {header("Deliver / get", "message_stats.deliver_get_details.rate")}
                        {header("Ack", "message_stats.ack_details.rate")}
                        {header("Consumers", "consumers")}
                    </tr></thead>
                    <tbody>
                        {items.iter().map(|q| {
                            let ms = q.message_stats.clone().unwrap_or_default();
                            let down = is_down(q);
                            view! { <tr data-queue=q.name.clone()>
                                <td><a href=queue_href(&q.vhost, &q.name)>{q.name.clone()}</a></td>
                                <td>{q.vhost.clone()}</td>
                                {clustered.then(|| view! { <td class="node">{q.node.clone()}</td> })}
                                <td class="type">{type_label(q)}</td>
                                <td>{features(q)}</td>
                                <td class=if down { "state err" } else { "state" }>{q.state.clone()}</td>
                                <td class="n">{shown_depth(q, q.totals.messages_ready)}</td>
                                <td class="n">{shown_depth(q, q.totals.messages_unacknowledged)}</td>
                                <td class="n messages">{shown_depth(q, q.totals.messages)}</td>
                                <td class="n">{rate(&ms.publish_details)}</td>
                                <td class="n">{rate(&ms.deliver_get_details)}</td>
                                <td class="n">{rate(&ms.ack_details)}</td>
                                <td class="n">{q.consumers}</td>
                            </tr> }
                        }).collect_view()}
                    </tbody>
                </table>
                <PerNode queues=items nodes=nodes node_filter=node_filter/>
            }
        })}
        <AddQueue/>
    }
}

/// A queue whose home node is unreachable: its last known figures are stale.
fn is_down(q: &Queue) -> bool {
    q.state == "down"
}

/// A queue's message count, or "?" while its home is down and the count
/// cannot be known.
fn shown_depth(q: &Queue, n: u64) -> String {
    if is_down(q) { "?".into() } else { num(n) }
}

/// Queue depths by node: every node's totals over all its queues (from
/// `/api/nodes`, for users who may see nodes), and the listed queues' depths
/// as bars, with a node filter.
#[component]
fn PerNode(queues: Vec<Queue>, nodes: Vec<Node>, node_filter: RwSignal<String>) -> impl IntoView {
    let mut by_node: BTreeMap<String, (Option<NodeQueueTotals>, Vec<Queue>)> = BTreeMap::new();
    let mut not_running = BTreeSet::new();
    for n in nodes {
        if !n.running {
            not_running.insert(n.name.clone());
        }
        by_node.entry(n.name.clone()).or_default().0 = n.queue_totals;
    }
    for q in queues {
        by_node.entry(q.node.clone()).or_default().1.push(q);
    }
    let names: Vec<String> = by_node.keys().cloned().collect();
    // A queue whose home is down has no depth to draw.
    let known = |q: &Queue| if is_down(q) { 0 } else { q.totals.messages };
    let max = by_node.values().flat_map(|(_, qs)| qs).map(known).max().unwrap_or(0).max(1) as f64;
    let sections = by_node
        .into_iter()
        .map(|(node, (all, qs))| {
            let listed: u64 = qs.iter().map(known).sum();
            let n2 = node.clone();
            let show = move || {
                let f = node_filter.get();
                f.is_empty() || f == n2
            };
            let all_line = if not_running.contains(&node) {
                view! { <span class="err node-state">"Node not running"</span> }.into_any()
            } else {
                all.as_ref().map(|t| {
                view! {
                    <span class="node-all" data-messages=t.messages.to_string()>
                        {format!(
                            "{} queues, {} messages ({} ready, {} unacked)",
                            num(t.queues), num(t.messages), num(t.messages_ready), num(t.messages_unacknowledged)
                        )}
                    </span>
                }
                })
                .into_any()
            };
            let h = 22.0 * qs.len() as f64 + 4.0;
            let bars = qs
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    let y = 22.0 * i as f64 + 2.0;
                    let w = 360.0 * known(q) as f64 / max;
                    view! {
                        <g class="bar" data-queue=q.name.clone() data-messages=shown_depth(q, q.totals.messages)>
                            <text x="195" y=y + 14.0 text-anchor="end" class="tick">{format!("{} ({})", q.name, q.vhost)}</text>
                            <rect x="200" y=y width=format!("{w:.1}") height="18" class="s-total"></rect>
                            <text x=205.0 + w y=y + 14.0 class="tick">{shown_depth(q, q.totals.messages)}</text>
                        </g>
                    }
                })
                .collect_view();
            view! {
                <section class="node-depths" data-node=node.clone() data-total=listed.to_string() hidden=move || !show()>
                    <h3>{node.clone()}": " {all_line}</h3>
                    <p class="muted">"Listed above: " <span class="node-total">{num(listed)}</span> " messages in " {qs.len()} " queues"</p>
                    <svg viewBox=format!("0 0 640 {h}") role="img" aria-label=format!("Queue depths on {node}")>{bars}</svg>
                </section>
            }
        })
        .collect_view();
    view! {
        <h2>"Queue depths by node"</h2>
        <label>"Node "
            <select id="node-filter" on:change=move |ev| node_filter.set(event_target_value(&ev)) prop:value=move || node_filter.get()>
                <option value="">"All nodes"</option>
                {names.into_iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
            </select>
        </label>
        <div id="per-node">{sections}</div>
    }
}

#[component]
fn AddQueue() -> impl IntoView {
    let vhost = RwSignal::new("/".to_string());
    let name = RwSignal::new(String::new());
    let kind = RwSignal::new("classic".to_string());
    let durable = RwSignal::new(true);
    let auto_delete = RwSignal::new(false);
    let args = RwSignal::new(String::new());
    let out: Outcome = outcome();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get_untracked();
        if n.trim().is_empty() {
            out.set(Some(Err("Enter a queue name.".into())));
            return;
        }
        let mut arguments = match parse_args(&args.get_untracked()) {
            Ok(a) => a,
            Err(e) => return out.set(Some(Err(e))),
        };
        arguments.insert("x-queue-type".into(), Value::String(kind.get_untracked()));
        let body = DeclareQueue {
            durable: Some(Bool(durable.get_untracked())),
            auto_delete: Some(Bool(auto_delete.get_untracked())),
            arguments: Some(arguments),
            ..Default::default()
        };
        let path = format!("/api/queues/{}/{}", enc(&vhost.get_untracked()), enc(&n));
        run(out, format!("Queue '{n}' declared."), async move { api::send("PUT", &path, &body).await });
    };
    view! {
        <h2>"Add a queue"</h2>
        <form id="add-queue" class="grid" on:submit=submit>
            <label for="aq-vhost">"Virtual host"</label><input id="aq-vhost" bind:value=vhost/>
            <label for="aq-name">"Name"</label><input id="aq-name" bind:value=name/>
            <label for="aq-type">"Type"</label>
            <select id="aq-type" on:change=move |ev| kind.set(event_target_value(&ev)) prop:value=move || kind.get()>
                <option value="classic">"Classic"</option>
                <option value="quorum">"Quorum"</option>
            </select>
            <label for="aq-durable">"Durable"</label><input id="aq-durable" type="checkbox" bind:checked=durable/>
            <label for="aq-autodelete">"Auto delete"</label><input id="aq-autodelete" type="checkbox" bind:checked=auto_delete/>
            <label for="aq-args">"Arguments (key=value per line)"</label>
            <textarea id="aq-args" rows="3" placeholder="x-message-ttl=60000" bind:value=args></textarea>
            <span></span><button type="submit" id="aq-submit">"Add queue"</button>
        </form>
        <Status out=out/>
    }
}

/// The message properties and headers of a publish form, as JSON.
pub fn properties(delivery_mode: &str, headers: &str, props: &str) -> Result<Map<String, Value>, String> {
    let mut p = parse_args(props)?;
    if let Ok(n) = delivery_mode.parse::<i64>() {
        p.insert("delivery_mode".into(), Value::from(n));
    }
    let h = parse_args(headers)?;
    if !h.is_empty() {
        p.insert("headers".into(), Value::Object(h));
    }
    Ok(p)
}

/// A publish form for `POST /api/exchanges/{vhost}/{exchange}/publish`.
/// `fixed_key` is the queue's name when publishing from a queue's page.
#[component]
pub fn PublishForm(vhost: String, exchange: String, fixed_key: Option<String>) -> impl IntoView {
    let key = RwSignal::new(fixed_key.clone().unwrap_or_default());
    let payload = RwSignal::new(String::new());
    let headers = RwSignal::new(String::new());
    let props = RwSignal::new(String::new());
    let mode = RwSignal::new("2".to_string());
    let out: Outcome = outcome();
    let fixed = fixed_key.is_some();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let properties =
            match properties(&mode.get_untracked(), &headers.get_untracked(), &props.get_untracked()) {
                Ok(p) => p,
                Err(e) => return out.set(Some(Err(e))),
            };
        let body = warren_api_types::requests::Publish {
            routing_key: key.get_untracked(),
            payload: payload.get_untracked(),
            payload_encoding: "string".into(),
            properties,
            ..Default::default()
        };
        let url_name = if exchange.is_empty() { "amq.default".to_string() } else { exchange.clone() };
        let path = format!("/api/exchanges/{}/{}/publish", enc(&vhost), enc(&url_name));
        out.set(None);
        leptos::task::spawn_local(async move {
            let r = api::send("POST", &path, &body).await.and_then(|t| {
                serde_json::from_str::<warren_api_types::objects::Routed>(&t).map_err(|e| e.to_string())
            });
            out.try_set(Some(r.and_then(|r| {
                if r.routed {
                    Ok("Message published (routed).".to_string())
                } else {
                    Err("Message published, but not routed.".to_string())
                }
            })));
            crate::refresh::bump();
        });
    };
    view! {
        <form class="grid publish" id="publish-form" on:submit=submit>
            <label for="pub-key">"Routing key"</label>
            <input id="pub-key" bind:value=key readonly=fixed/>
            <label for="pub-mode">"Delivery mode"</label>
            <select id="pub-mode" on:change=move |ev| mode.set(event_target_value(&ev)) prop:value=move || mode.get()>
                <option value="1">"1 - non-persistent"</option>
                <option value="2">"2 - persistent"</option>
            </select>
            <label for="pub-headers">"Headers (key=value per line)"</label>
            <textarea id="pub-headers" rows="2" bind:value=headers></textarea>
            <label for="pub-props">"Properties (key=value per line)"</label>
            <textarea id="pub-props" rows="2" placeholder="content_type=text/plain" bind:value=props></textarea>
            <label for="pub-payload">"Payload"</label>
            <textarea id="pub-payload" rows="4" bind:value=payload></textarea>
            <span></span><button type="submit" id="pub-submit">"Publish message"</button>
        </form>
        <div id="publish-status"><Status out=out/></div>
    }
}

/// A queue's page, made again when the URL changes to another queue.
#[component]
pub fn QueueDetail() -> impl IntoView {
    let loc = leptos_router::hooks::use_location();
    move || {
        loc.pathname.track();
        view! { <QueuePage/> }
    }
}

#[component]
fn QueuePage() -> impl IntoView {
    let seg = crate::api::path_segments();
    let (vhost, name) = (seg.get(1).cloned().unwrap_or_default(), seg.get(2).cloned().unwrap_or_default());
    let base = format!("/api/queues/{}/{}", enc(&vhost), enc(&name));
    let b2 = base.clone();
    let data = poll::<Queue>(move || {
        format!("{b2}?lengths_age=600&lengths_incr=5&msg_rates_age=600&msg_rates_incr=5")
    });
    let b3 = base.clone();
    let bindings = poll::<Vec<Binding>>(move || format!("{b3}/bindings"));
    let deleted = RwSignal::new(false);
    let out: Outcome = outcome();
    let (v1, n1, b4, b5) = (vhost.clone(), name.clone(), base.clone(), base.clone());
    let purge = move || {
        let p = format!("{b4}/contents");
        run(out, "Queue purged.", async move { api::delete(&p).await })
    };
    let navigate = leptos_router::hooks::use_navigate();
    let delete = move || {
        let p = b5.clone();
        let nav = navigate.clone();
        out.set(None);
        leptos::task::spawn_local(async move {
            match api::delete(&p).await {
                Ok(_) => {
                    deleted.try_set(true);
                    nav("/queues", Default::default());
                }
                Err(e) => {
                    out.try_set(Some(Err(e)));
                }
            }
        });
    };
    view! {
        <h1>"Queue " <span id="queue-name">{name.clone()}</span></h1>
        <p class="muted">"Virtual host " {vhost.clone()}</p>
        {loaded(data, move |q: Queue| {
            let ms = q.message_stats.clone().unwrap_or_default();
            let depth = vec![
                Series { name: "Ready", class: "s-ready", points: gauge(&q.totals.messages_ready_details) },
                Series { name: "Unacked", class: "s-unacked", points: gauge(&q.totals.messages_unacknowledged_details) },
                Series { name: "Total", class: "s-total", points: gauge(&q.totals.messages_details) },
            ];
            let msg_rates = vec![
                Series { name: "Publish", class: "s-publish", points: rates(&ms.publish_details) },
                Series { name: "Deliver", class: "s-deliver", points: rates(&ms.deliver_details) },
                Series { name: "Ack", class: "s-ack", points: rates(&ms.ack_details) },
                Series { name: "Get", class: "s-get", points: rates(&ms.get_details) },
            ];
            view! {
                <dl class="totals">
                    <div><dt>"Ready"</dt><dd id="q-ready">{shown_depth(&q, q.totals.messages_ready)}</dd></div>
                    <div><dt>"Unacked"</dt><dd id="q-unacked">{shown_depth(&q, q.totals.messages_unacknowledged)}</dd></div>
                    <div><dt>"Total"</dt><dd id="q-messages">{shown_depth(&q, q.totals.messages)}</dd></div>
                    <div><dt>"Consumers"</dt><dd>{q.consumers}</dd></div>
                    <div><dt>"Type"</dt><dd id="q-type">{type_label(&q)}</dd></div>
                    <div><dt>"State"</dt><dd id="q-state" class:err=is_down(&q)>{q.state.clone()}</dd></div>
                    <div><dt>"Node"</dt><dd id="q-node">{q.node.clone()}</dd></div>
                    <div><dt>"Features"</dt><dd>{features(&q)}</dd></div>
                    <div><dt>"Policy"</dt><dd>{q.policy.clone().unwrap_or_default()}</dd></div>
                </dl>
                <p class="muted">"Arguments: " <code>{q.arguments.to_string()}</code></p>
                <QueueMembers q=q.clone()/>
                <div class="charts">
                    <Chart id="chart-queue-depth" title="Queued messages" series=depth/>
                    <Chart id="chart-queue-rates" title="Message rates per second" series=msg_rates/>
                </div>
            }
        })}
        <h2>"Consumers"</h2>
        // The queue's own object lists its consumers: no vhost-wide list.
        {loaded(data, move |q: Queue| {
            let cs: Vec<Consumer> = q.consumer_details.unwrap_or_default();
            if cs.is_empty() {
                return view! { <p class="muted">"No consumers."</p> }.into_any();
            }
            view! {
                <table id="consumers"><thead><tr><th>"Channel"</th><th>"Consumer tag"</th><th>"Ack required"</th><th>"Exclusive"</th><th>"Prefetch"</th><th>"Active"</th></tr></thead>
                <tbody>{cs.into_iter().map(|c| view! { <tr>
                    <td>{c.channel_details.name.clone()}</td><td>{c.consumer_tag.clone()}</td><td>{c.ack_required.to_string()}</td>
                    <td>{c.exclusive.to_string()}</td><td>{c.prefetch_count}</td><td>{c.activity_status.clone()}</td>
                </tr> }).collect_view()}</tbody></table>
            }.into_any()
        })}
        <h2>"Bindings"</h2>
        <Bindings data=bindings vhost=v1.clone() dest=n1.clone() dest_type="q"/>
        <h2>"Publish message"</h2>
        <PublishForm vhost=v1.clone() exchange=String::new() fixed_key=Some(n1.clone())/>
        <h2>"Get messages"</h2>
        <GetForm base=base.clone()/>
        <h2>"Purge and delete"</h2>
        <div class="row">
            <ConfirmButton label="Purge" question="Remove every ready message?" on_confirm=purge/>
            <ConfirmButton label="Delete" question="Delete this queue and its messages?" on_confirm=delete/>
        </div>
        <Status out=out/>
    }
}

/// Bindings to a queue or exchange (`dest_type` "q" or "e"), with add and
/// remove.
#[component]
pub fn Bindings(
    data: crate::refresh::Loaded<Vec<Binding>>,
    vhost: String,
    dest: String,
    #[prop(into)] dest_type: String,
) -> impl IntoView {
    let out: Outcome = outcome();
    let source = RwSignal::new(String::new());
    let key = RwSignal::new(String::new());
    let args = RwSignal::new(String::new());
    let (v1, d1, t1) = (vhost.clone(), dest.clone(), dest_type.clone());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let s = source.get_untracked();
        if s.trim().is_empty() {
            return out.set(Some(Err("Enter the exchange to bind from.".into())));
        }
        let arguments = match parse_args(&args.get_untracked()) {
            Ok(a) => a,
            Err(e) => return out.set(Some(Err(e))),
        };
        let body = CreateBinding {
            routing_key: Some(key.get_untracked()),
            arguments: Some(arguments),
            ..Default::default()
        };
        let path = format!("/api/bindings/{}/e/{}/{}/{}", enc(&v1), enc(&s), t1, enc(&d1));
        run(out, "Binding added.", async move { api::send("POST", &path, &body).await });
    };
    let (v2, t2) = (vhost.clone(), dest_type.clone());
    view! {
        {loaded(data, move |bs: Vec<Binding>| {
            let (v2, t2) = (v2.clone(), t2.clone());
            view! {
                <table class="bindings" id="bindings">
                    <thead><tr><th>"From"</th><th>"To"</th><th>"Routing key"</th><th>"Arguments"</th><th>"Action"</th></tr></thead>
                    <tbody>{bs.into_iter().map(|b| {
                        let removable = !b.source.is_empty();
                        let kind = if b.destination_type == "queue" { "q" } else { "e" };
                        let path = format!("/api/bindings/{}/e/{}/{}/{}/{}", enc(&v2), enc(&b.source), kind, enc(&b.destination), enc(&b.properties_key));
                        let _ = &t2;
                        view! { <tr>
                            <td>{if b.source.is_empty() { "(default exchange)".to_string() } else { b.source.clone() }}</td>
                            <td>{b.destination.clone()}</td>
                            <td>{b.routing_key.clone()}</td>
                            <td><code>{b.arguments.to_string()}</code></td>
                            <td>{removable.then(|| view! {
                                <button type="button" class="danger" on:click=move |_| {
                                    let p = path.clone();
                                    run(out, "Binding removed.", async move { api::delete(&p).await })
                                }>"Unbind"</button>
                            })}</td>
                        </tr> }
                    }).collect_view()}</tbody>
                </table>
            }
        })}
        <form class="grid" on:submit=submit>
            <label for=format!("bind-source-{dest_type}")>"From exchange"</label>
            <input id=format!("bind-source-{dest_type}") bind:value=source/>
            <label for="bind-key">"Routing key"</label><input id="bind-key" bind:value=key/>
            <label for="bind-args">"Arguments (key=value per line)"</label><textarea id="bind-args" rows="2" bind:value=args></textarea>
            <span></span><button type="submit" id="bind-submit">"Bind"</button>
        </form>
        <Status out=out/>
    }
}

#[component]
fn GetForm(base: String) -> impl IntoView {
    let count = RwSignal::new("1".to_string());
    let ackmode = RwSignal::new("ack_requeue_true".to_string());
    let encoding = RwSignal::new("auto".to_string());
    let got = RwSignal::new(None::<Vec<GotMessage>>);
    let out: Outcome = outcome();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Ok(n) = count.get_untracked().trim().parse::<i64>() else {
            return out.set(Some(Err("Messages: enter a number.".into())));
        };
        if n < 1 {
            return out.set(Some(Err("Messages: enter 1 or more.".into())));
        }
        let body = GetMessages {
            count: Int(n),
            ackmode: ackmode.get_untracked(),
            encoding: encoding.get_untracked(),
            truncate: Some(Int(50000)),
            ..Default::default()
        };
        let path = format!("{base}/get");
        out.set(None);
        leptos::task::spawn_local(async move {
            let r = api::send("POST", &path, &body)
                .await
                .and_then(|t| serde_json::from_str::<Vec<GotMessage>>(&t).map_err(|e| e.to_string()));
            match r {
                Ok(ms) => {
                    out.try_set(Some(Ok(format!("{} message(s) fetched.", ms.len()))));
                    got.try_set(Some(ms));
                }
                Err(e) => {
                    out.try_set(Some(Err(e)));
                }
            }
            crate::refresh::bump();
        });
    };
    view! {
        <form class="grid" id="get-form" on:submit=submit>
            <label for="get-ackmode">"Ack mode"</label>
            <select id="get-ackmode" on:change=move |ev| ackmode.set(event_target_value(&ev)) prop:value=move || ackmode.get()>
                <option value="ack_requeue_true">"Nack message requeue true"</option>
                <option value="ack_requeue_false">"Automatic ack"</option>
                <option value="reject_requeue_true">"Reject requeue true"</option>
                <option value="reject_requeue_false">"Reject requeue false"</option>
            </select>
            <label for="get-encoding">"Encoding"</label>
            <select id="get-encoding" on:change=move |ev| encoding.set(event_target_value(&ev)) prop:value=move || encoding.get()>
                <option value="auto">"Auto string / base64"</option>
                <option value="base64">"base64"</option>
            </select>
            <label for="get-count">"Messages"</label><input id="get-count" inputmode="numeric" bind:value=count/>
            <span></span><button type="submit" id="get-submit">"Get message(s)"</button>
        </form>
        <Status out=out/>
        {move || got.get().map(|ms| view! {
            <div id="got-messages">
                {ms.into_iter().enumerate().map(|(i, m)| view! {
                    <table class="message">
                        <caption>{format!("Message {}", i + 1)}</caption>
                        <tr><th>"Exchange"</th><td>{m.exchange.clone()}</td></tr>
                        <tr><th>"Routing key"</th><td>{m.routing_key.clone()}</td></tr>
                        <tr><th>"Redelivered"</th><td>{m.redelivered.to_string()}</td></tr>
                        <tr><th>"Properties"</th><td><code>{m.properties.to_string()}</code></td></tr>
                        <tr><th>{format!("Payload ({} bytes, {})", m.payload_bytes, m.payload_encoding)}</th>
                            <td><pre class="payload">{m.payload.clone()}</pre></td></tr>
                    </table>
                }).collect_view()}
            </div>
        })}
    }
}
