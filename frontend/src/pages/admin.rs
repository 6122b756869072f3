//! Admin: users, virtual hosts, permissions and topic permissions, policies
//! and operator policies, limits per virtual host and per user, and nodes.

use leptos::prelude::*;
use serde_json::Value;
use warren_api_types::objects::{
    ClusterName, Limits, Node, Permission, Policy, TopicPermission, User, Vhost,
};
use warren_api_types::requests::{
    Int, PutLimit, PutPermission, PutPolicy, PutTopicPermission, PutUser, PutVhost, Tags,
};

use crate::api::{self, enc};
use crate::pages::overview::NodesTable;
use crate::pages::queues::parse_args;
use crate::refresh::poll;
use crate::widgets::{ConfirmButton, Outcome, Status, loaded, num, outcome, run};

#[component]
pub fn Admin() -> impl IntoView {
    view! {
        <h1>"Admin"</h1>
        <nav aria-label="Admin sections" class="row">
            <a href="#users">"Users"</a> <a href="#vhosts">"Virtual hosts"</a> <a href="#permissions">"Permissions"</a>
            <a href="#topic-permissions">"Topic permissions"</a> <a href="#policies">"Policies"</a>
            <a href="#operator-policies">"Operator policies"</a> <a href="#limits">"Limits"</a>
            <a href="#user-limits">"User limits"</a> <a href="#cluster">"Cluster"</a>
        </nav>
        <Users/>
        <Vhosts/>
        <Permissions/>
        <TopicPermissions/>
        <Policies kind=PolicyKind::User/>
        <Policies kind=PolicyKind::Operator/>
        <LimitsSection scope=LimitScope::Vhost/>
        <LimitsSection scope=LimitScope::User/>
        <Cluster/>
    }
}

fn tags_of(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect()
}

#[component]
fn Users() -> impl IntoView {
    let data = poll::<Vec<User>>(|| "/api/users".into());
    let out: Outcome = outcome();
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let tags = RwSignal::new("management".to_string());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get_untracked();
        if n.trim().is_empty() {
            return out.set(Some(Err("Enter a username.".into())));
        }
        let p = password.get_untracked();
        let body = PutUser {
            password: (!p.is_empty()).then_some(p),
            tags: Some(Tags(tags_of(&tags.get_untracked()))),
            ..Default::default()
        };
        let path = format!("/api/users/{}", enc(&n));
        password.set(String::new());
        run(out, format!("User '{n}' saved."), async move { api::send("PUT", &path, &body).await });
    };
    view! {
        <section id="users">
            <h2>"Users"</h2>
            {loaded(data, move |us: Vec<User>| view! {
                <table id="users-table">
                    <thead><tr><th>"Name"</th><th>"Tags"</th><th>"Action"</th></tr></thead>
                    <tbody>{us.into_iter().map(|u| {
                        let n = u.name.clone();
                        let n2 = u.name.clone();
                        view! { <tr data-user=u.name.clone()>
                            <td>{u.name.clone()}</td><td>{u.tags.join(", ")}</td>
                            <td>
                                <button type="button" on:click=move |_| { name.set(n2.clone()); tags.set(u.tags.join(", ")); }>"Edit"</button>
                                " "
                                <ConfirmButton label="Delete" question=format!("Delete user {}?", u.name) on_confirm=move || {
                                    let p = format!("/api/users/{}", enc(&n));
                                    run(out, "User deleted.", async move { api::delete(&p).await })
                                }/>
                            </td>
                        </tr> }
                    }).collect_view()}</tbody>
                </table>
            })}
            <h3>"Add or update a user"</h3>
            <form id="user-form" class="grid" on:submit=submit>
                <label for="user-name">"Username"</label><input id="user-name" bind:value=name/>
                <label for="user-password">"Password (empty: unchanged)"</label>
                <input id="user-password" type="password" autocomplete="new-password" bind:value=password/>
                <label for="user-tags">"Tags (comma-separated)"</label><input id="user-tags" bind:value=tags/>
                <span></span><button type="submit" id="user-submit">"Save user"</button>
            </form>
            <Status out=out/>
        </section>
    }
}

#[component]
fn Vhosts() -> impl IntoView {
    let data = poll::<Vec<Vhost>>(|| "/api/vhosts".into());
    let out: Outcome = outcome();
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get_untracked();
        if n.trim().is_empty() {
            return out.set(Some(Err("Enter a virtual host name.".into())));
        }
        let body = PutVhost { description: Some(description.get_untracked()), ..Default::default() };
        let path = format!("/api/vhosts/{}", enc(&n));
        run(out, format!("Virtual host '{n}' saved."), async move { api::send("PUT", &path, &body).await });
    };
    view! {
        <section id="vhosts">
            <h2>"Virtual hosts"</h2>
            {loaded(data, move |vs: Vec<Vhost>| view! {
                <table id="vhosts-table">
                    <thead><tr><th>"Name"</th><th>"Description"</th><th>"Messages"</th><th>"Action"</th></tr></thead>
                    <tbody>{vs.into_iter().map(|v| {
                        let n = v.name.clone();
                        view! { <tr data-vhost=v.name.clone()>
                            <td>{v.name.clone()}</td><td>{v.description.clone()}</td><td class="n">{num(v.totals.messages)}</td>
                            <td><ConfirmButton label="Delete" question=format!("Delete virtual host {} and everything in it?", v.name) on_confirm=move || {
                                let p = format!("/api/vhosts/{}", enc(&n));
                                run(out, "Virtual host deleted.", async move { api::delete(&p).await })
                            }/></td>
                        </tr> }
                    }).collect_view()}</tbody>
                </table>
            })}
            <form id="vhost-form" class="grid" on:submit=submit>
                <label for="vhost-name">"Name"</label><input id="vhost-name" bind:value=name/>
                <label for="vhost-description">"Description"</label><input id="vhost-description" bind:value=description/>
                <span></span><button type="submit" id="vhost-submit">"Add virtual host"</button>
            </form>
            <Status out=out/>
        </section>
    }
}

#[component]
fn Permissions() -> impl IntoView {
    let data = poll::<Vec<Permission>>(|| "/api/permissions".into());
    let out: Outcome = outcome();
    let user = RwSignal::new(String::new());
    let vhost = RwSignal::new("/".to_string());
    let (c, w, r) =
        (RwSignal::new(".*".to_string()), RwSignal::new(".*".to_string()), RwSignal::new(".*".to_string()));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let u = user.get_untracked();
        if u.trim().is_empty() {
            return out.set(Some(Err("Enter a username.".into())));
        }
        let body = PutPermission {
            configure: c.get_untracked(),
            write: w.get_untracked(),
            read: r.get_untracked(),
            ..Default::default()
        };
        let path = format!("/api/permissions/{}/{}", enc(&vhost.get_untracked()), enc(&u));
        run(out, "Permissions set.", async move { api::send("PUT", &path, &body).await });
    };
    view! {
        <section id="permissions">
            <h2>"Permissions"</h2>
            {loaded(data, move |ps: Vec<Permission>| view! {
                <table id="permissions-table">
                    <thead><tr><th>"User"</th><th>"Virtual host"</th><th>"Configure"</th><th>"Write"</th><th>"Read"</th><th>"Action"</th></tr></thead>
                    <tbody>{ps.into_iter().map(|p| {
                        let path = format!("/api/permissions/{}/{}", enc(&p.vhost), enc(&p.user));
                        view! { <tr>
                            <td>{p.user.clone()}</td><td>{p.vhost.clone()}</td><td><code>{p.configure.clone()}</code></td>
                            <td><code>{p.write.clone()}</code></td><td><code>{p.read.clone()}</code></td>
                            <td><ConfirmButton label="Clear" question="Remove these permissions?" on_confirm=move || {
                                let p = path.clone();
                                run(out, "Permissions cleared.", async move { api::delete(&p).await })
                            }/></td>
                        </tr> }
                    }).collect_view()}</tbody>
                </table>
            })}
            <form id="permission-form" class="grid" on:submit=submit>
                <label for="perm-user">"User"</label><input id="perm-user" bind:value=user/>
                <label for="perm-vhost">"Virtual host"</label><input id="perm-vhost" bind:value=vhost/>
                <label for="perm-configure">"Configure regexp"</label><input id="perm-configure" bind:value=c/>
                <label for="perm-write">"Write regexp"</label><input id="perm-write" bind:value=w/>
                <label for="perm-read">"Read regexp"</label><input id="perm-read" bind:value=r/>
                <span></span><button type="submit" id="perm-submit">"Set permissions"</button>
            </form>
            <Status out=out/>
        </section>
    }
}

/// Policies or operator policies: the same shape under two paths.
#[derive(Clone, Copy, PartialEq)]
pub enum PolicyKind {
    User,
    Operator,
}

impl PolicyKind {
    fn api(self) -> &'static str {
        match self {
            PolicyKind::User => "/api/policies",
            PolicyKind::Operator => "/api/operator-policies",
        }
    }
    /// Prefix of the section's element ids.
    fn id(self) -> &'static str {
        match self {
            PolicyKind::User => "policy",
            PolicyKind::Operator => "opolicy",
        }
    }
}

#[component]
fn Policies(kind: PolicyKind) -> impl IntoView {
    let data = poll::<Vec<Policy>>(move || kind.api().into());
    let id = move |what: &str| format!("{}-{what}", kind.id());
    let out: Outcome = outcome();
    let vhost = RwSignal::new("/".to_string());
    let name = RwSignal::new(String::new());
    let pattern = RwSignal::new(String::new());
    let apply_to = RwSignal::new("all".to_string());
    let priority = RwSignal::new("0".to_string());
    let definition = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get_untracked();
        if n.trim().is_empty() {
            return out.set(Some(Err("Enter a policy name.".into())));
        }
        if pattern.get_untracked().is_empty() {
            return out.set(Some(Err("Enter a pattern.".into())));
        }
        let Ok(prio) = priority.get_untracked().trim().parse::<i64>() else {
            return out.set(Some(Err("Priority: enter a number.".into())));
        };
        let def = match parse_args(&definition.get_untracked()) {
            Ok(d) if !d.is_empty() => d,
            Ok(_) => return out.set(Some(Err("Enter at least one definition key=value.".into()))),
            Err(e) => return out.set(Some(Err(e))),
        };
        let body = PutPolicy {
            pattern: pattern.get_untracked(),
            definition: def,
            priority: Some(Int(prio)),
            apply_to: Some(apply_to.get_untracked()),
            ..Default::default()
        };
        let path = format!("{}/{}/{}", kind.api(), enc(&vhost.get_untracked()), enc(&n));
        run(out, format!("Policy '{n}' saved."), async move { api::send("PUT", &path, &body).await });
    };
    view! {
        <section id=if kind == PolicyKind::User { "policies" } else { "operator-policies" }>
            <h2>{if kind == PolicyKind::User { "Policies" } else { "Operator policies" }}</h2>
            {(kind == PolicyKind::Operator).then(|| view! {
                <p class="muted">"Set by operators; they cap what user policies and queue arguments may ask for."</p>
            })}
            {loaded(data, move |ps: Vec<Policy>| view! {
                <table id=if kind == PolicyKind::User { "policies-table" } else { "operator-policies-table" }>
                    <thead><tr><th>"Virtual host"</th><th>"Name"</th><th>"Pattern"</th><th>"Apply to"</th><th>"Definition"</th><th>"Priority"</th><th>"Action"</th></tr></thead>
                    <tbody>{ps.into_iter().map(|p| {
                        let path = format!("{}/{}/{}", kind.api(), enc(&p.vhost), enc(&p.name));
                        let edit = p.clone();
                        view! { <tr data-policy=p.name.clone()>
                            <td>{p.vhost.clone()}</td><td>{p.name.clone()}</td><td><code>{p.pattern.clone()}</code></td>
                            <td>{p.apply_to.clone()}</td><td><code>{p.definition.to_string()}</code></td><td class="n">{p.priority}</td>
                            <td>
                                <button type="button" on:click=move |_| {
                                    vhost.set(edit.vhost.clone()); name.set(edit.name.clone()); pattern.set(edit.pattern.clone());
                                    apply_to.set(edit.apply_to.clone()); priority.set(edit.priority.to_string());
                                    let lines = edit.definition.as_object().map(|m| m.iter().map(|(k, v)| match v {
                                        Value::String(s) => format!("{k}={s}"),
                                        other => format!("{k}={other}"),
                                    }).collect::<Vec<_>>().join("\n")).unwrap_or_default();
                                    definition.set(lines);
                                }>"Edit"</button>
                                " "
                                <ConfirmButton label="Delete" question=format!("Delete policy {}?", p.name) on_confirm=move || {
                                    let p = path.clone();
                                    run(out, "Policy deleted.", async move { api::delete(&p).await })
                                }/>
                            </td>
                        </tr> }
                    }).collect_view()}</tbody>
                </table>
            })}
            <form id=id("form") class="grid" on:submit=submit>
                <label for=id("vhost")>"Virtual host"</label><input id=id("vhost") bind:value=vhost/>
                <label for=id("name")>"Name"</label><input id=id("name") bind:value=name/>
                <label for=id("pattern")>"Pattern (regexp)"</label><input id=id("pattern") bind:value=pattern/>
                <label for=id("apply")>"Apply to"</label>
                <select id=id("apply") on:change=move |ev| apply_to.set(event_target_value(&ev)) prop:value=move || apply_to.get()>
                    <option value="all">"Exchanges and queues"</option>
                    <option value="queues">"Queues"</option>
                    <option value="exchanges">"Exchanges"</option>
                </select>
                <label for=id("priority")>"Priority"</label><input id=id("priority") inputmode="numeric" bind:value=priority/>
                <label for=id("definition")>"Definition (key=value per line)"</label>
                <textarea id=id("definition") rows="3" placeholder="max-length=1000" bind:value=definition></textarea>
                <span></span><button type="submit" id=id("submit")>"Save policy"</button>
            </form>
            <Status out=out/>
        </section>
    }
}

/// Limits per virtual host or per user: the same shape under two paths.
#[derive(Clone, Copy, PartialEq)]
pub enum LimitScope {
    Vhost,
    User,
}

impl LimitScope {
    fn api(self) -> &'static str {
        match self {
            LimitScope::Vhost => "/api/vhost-limits",
            LimitScope::User => "/api/user-limits",
        }
    }
    fn id(self) -> &'static str {
        match self {
            LimitScope::Vhost => "limit",
            LimitScope::User => "ulimit",
        }
    }
    fn kinds(self) -> &'static [&'static str] {
        match self {
            LimitScope::Vhost => &["max-connections", "max-queues"],
            LimitScope::User => &["max-connections", "max-channels"],
        }
    }
}

#[component]
fn LimitsSection(scope: LimitScope) -> impl IntoView {
    let data = poll::<Vec<Limits>>(move || scope.api().into());
    let out: Outcome = outcome();
    let id = move |what: &str| format!("{}-{what}", scope.id());
    let owner = RwSignal::new(if scope == LimitScope::Vhost { "/".to_string() } else { String::new() });
    let kind = RwSignal::new("max-connections".to_string());
    let value = RwSignal::new(String::new());
    let (owner_label, title, section) = match scope {
        LimitScope::Vhost => ("Virtual host", "Virtual host limits", "limits"),
        LimitScope::User => ("User", "User limits", "user-limits"),
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let o = owner.get_untracked();
        if o.trim().is_empty() {
            return out.set(Some(Err(format!("Enter a {}.", owner_label.to_lowercase()))));
        }
        let Ok(v) = value.get_untracked().trim().parse::<i64>() else {
            return out.set(Some(Err("Value: enter a number.".into())));
        };
        let body = PutLimit { value: Int(v), ..Default::default() };
        let path = format!("{}/{}/{}", scope.api(), enc(&o), enc(&kind.get_untracked()));
        run(out, "Limit set.", async move { api::send("PUT", &path, &body).await });
    };
    view! {
        <section id=section>
            <h2>{title}</h2>
            {loaded(data, move |ls: Vec<Limits>| view! {
                <table id=id("table")>
                    <thead><tr><th>{owner_label}</th><th>"Limit"</th><th>"Value"</th><th>"Action"</th></tr></thead>
                    <tbody>{ls.into_iter().flat_map(|l| {
                        let who = l.vhost.clone().or(l.user.clone()).unwrap_or_default();
                        l.value.into_iter().map(move |(k, v)| {
                            let path = format!("{}/{}/{}", scope.api(), enc(&who), enc(&k));
                            view! { <tr>
                                <td>{who.clone()}</td><td>{k.clone()}</td><td class="n">{v.to_string()}</td>
                                <td><button type="button" class="danger" on:click=move |_| {
                                    let p = path.clone();
                                    run(out, "Limit cleared.", async move { api::delete(&p).await })
                                }>"Clear"</button></td>
                            </tr> }
                        }).collect::<Vec<_>>()
                    }).collect_view()}</tbody>
                </table>
            })}
            <form id=id("form") class="grid" on:submit=submit>
                <label for=id("owner")>{owner_label}</label><input id=id("owner") bind:value=owner/>
                <label for=id("kind")>"Limit"</label>
                <select id=id("kind") on:change=move |ev| kind.set(event_target_value(&ev)) prop:value=move || kind.get()>
                    {scope.kinds().iter().map(|k| view! { <option value=*k>{*k}</option> }).collect_view()}
                </select>
                <label for=id("value")>"Value"</label><input id=id("value") inputmode="numeric" bind:value=value/>
                <span></span><button type="submit" id=id("submit")>"Set limit"</button>
            </form>
            <Status out=out/>
        </section>
    }
}

#[component]
fn TopicPermissions() -> impl IntoView {
    let data = poll::<Vec<TopicPermission>>(|| "/api/topic-permissions".into());
    let out: Outcome = outcome();
    let user = RwSignal::new(String::new());
    let vhost = RwSignal::new("/".to_string());
    let exchange = RwSignal::new("amq.topic".to_string());
    let (w, r) = (RwSignal::new(".*".to_string()), RwSignal::new(".*".to_string()));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let u = user.get_untracked();
        if u.trim().is_empty() {
            return out.set(Some(Err("Enter a username.".into())));
        }
        if exchange.get_untracked().trim().is_empty() {
            return out.set(Some(Err("Enter a topic exchange.".into())));
        }
        let body = PutTopicPermission {
            exchange: exchange.get_untracked(),
            write: w.get_untracked(),
            read: r.get_untracked(),
            ..Default::default()
        };
        let path = format!("/api/topic-permissions/{}/{}", enc(&vhost.get_untracked()), enc(&u));
        run(out, "Topic permissions set.", async move { api::send("PUT", &path, &body).await });
    };
    view! {
        <section id="topic-permissions">
            <h2>"Topic permissions"</h2>
            {loaded(data, move |ps: Vec<TopicPermission>| view! {
                <table id="topic-permissions-table">
                    <thead><tr><th>"User"</th><th>"Virtual host"</th><th>"Exchange"</th><th>"Write"</th><th>"Read"</th><th>"Action"</th></tr></thead>
                    <tbody>{ps.into_iter().map(|p| {
                        let path = format!("/api/topic-permissions/{}/{}?exchange={}", enc(&p.vhost), enc(&p.user), enc(&p.exchange));
                        view! { <tr>
                            <td>{p.user.clone()}</td><td>{p.vhost.clone()}</td><td>{p.exchange.clone()}</td>
                            <td><code>{p.write.clone()}</code></td><td><code>{p.read.clone()}</code></td>
                            <td><ConfirmButton label="Clear" question=format!("Remove {}'s topic permissions on {}?", p.user, p.exchange) on_confirm=move || {
                                let p = path.clone();
                                run(out, "Topic permissions cleared.", async move { api::delete(&p).await })
                            }/></td>
                        </tr> }
                    }).collect_view()}</tbody>
                </table>
            })}
            <form id="topic-permission-form" class="grid" on:submit=submit>
                <label for="tperm-user">"User"</label><input id="tperm-user" bind:value=user/>
                <label for="tperm-vhost">"Virtual host"</label><input id="tperm-vhost" bind:value=vhost/>
                <label for="tperm-exchange">"Topic exchange"</label><input id="tperm-exchange" bind:value=exchange/>
                <label for="tperm-write">"Write regexp"</label><input id="tperm-write" bind:value=w/>
                <label for="tperm-read">"Read regexp"</label><input id="tperm-read" bind:value=r/>
                <span></span><button type="submit" id="tperm-submit">"Set topic permissions"</button>
            </form>
            <Status out=out/>
        </section>
    }
}

#[component]
fn Cluster() -> impl IntoView {
    let name = poll::<ClusterName>(|| "/api/cluster-name".into());
    let nodes = poll::<Vec<Node>>(|| "/api/nodes".into());
    let replicas = crate::pages::replication::poll_replicas();
    view! {
        <section id="cluster">
            <h2>"Cluster"</h2>
            {loaded(name, |c: ClusterName| view! { <p>"Cluster name: " <strong>{c.name}</strong></p> })}
            {loaded(nodes, move |ns: Vec<Node>| {
                view! { <NodesTable nodes=ns roles=crate::pages::replication::node_roles(replicas)/> }
            })}
        </section>
    }
}
