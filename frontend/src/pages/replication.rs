//! Replicated queues (quorum queues and queues an `ha-mode` policy
//! matches): a queue's type as the lists show it ("quorum", "classic
//! (ha: 3)"), its leader and members on its page, as RabbitMQ's management
//! UI shows a quorum queue's Leader, Online and Members, and how many
//! queues each node leads and follows, with their depths, computed from
//! `/api/queues` (its `leader`, `members` and `messages`).

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde::Deserialize;
use warren_api_types::objects::Queue;

use crate::refresh::{Loaded, poll};
use crate::widgets::num;

/// The type column: "quorum", "classic (ha: N)" for a classic queue an
/// `ha-mode` policy replicates on N nodes, or the plain type.
pub fn type_label(q: &Queue) -> String {
    match &q.members {
        Some(m) if q.kind == "classic" => format!("classic (ha: {})", m.len()),
        _ => q.kind.clone(),
    }
}

/// A replicated queue's leader, how many members are online, and each
/// member with its role and status; nothing for a queue that is not
/// replicated.
#[component]
pub fn QueueMembers(q: Queue) -> impl IntoView {
    let (online, leader) = (q.online.unwrap_or_default(), q.leader);
    q.members.map(|members| members_view(members, online, leader))
}

/// The members, the leader first and the others by name.
fn members_view(mut members: Vec<String>, online: Vec<String>, leader: Option<String>) -> impl IntoView {
    members.sort_by_key(|m| (leader.as_ref() != Some(m), m.clone()));
    let rows = members
        .iter()
        .map(|m| {
            let leads = leader.as_deref() == Some(m.as_str());
            let up = online.contains(m);
            view! {
                <tr data-member=m.clone()>
                    <td>{m.clone()}</td>
                    <td class=if leads { "role leader" } else { "role" }>{if leads { "leader" } else { "follower" }}</td>
                    <td class=if up { "status ok" } else { "status err" }>{if up { "online" } else { "offline" }}</td>
                </tr>
            }
        })
        .collect_view();
    let up = members.iter().filter(|m| online.contains(m)).count();
    view! {
        <section id="q-replication" aria-label="Replication">
            <h2>"Members"</h2>
            <dl class="totals">
                <div><dt>"Leader"</dt><dd id="q-leader" class:err=leader.is_none()>
                    {leader.clone().unwrap_or_else(|| "none (electing)".into())}
                </dd></div>
                <div><dt>"Online"</dt><dd id="q-online" class:err=up * 2 <= members.len()>
                    {format!("{up} of {}", members.len())}
                </dd></div>
            </dl>
            <table id="q-members">
                <thead><tr><th>"Node"</th><th>"Role"</th><th>"Status"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
}

/// The fields of a queue that say where its copies are; the list is
/// fetched with `columns`, so it stays small however many queues there are.
#[derive(Clone, Debug, Deserialize)]
pub struct Replica {
    #[serde(default)]
    pub leader: Option<String>,
    #[serde(default)]
    pub members: Option<Vec<String>>,
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub state: String,
}

/// Every queue's leader and members, refreshed with the page.
pub fn poll_replicas() -> Loaded<Vec<Replica>> {
    poll::<Vec<Replica>>(|| "/api/queues?columns=leader,members,messages,state".into())
}

/// What one node holds of replicated queues: the queues it leads and those
/// it is a non-leader member of, each with their messages.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Roles {
    pub leads: u64,
    pub leads_messages: u64,
    pub follows: u64,
    pub follows_messages: u64,
}

/// Roles per node name. A queue whose state is `down` adds no messages (its
/// depth is not known).
pub fn roles_by_node(queues: &[Replica]) -> BTreeMap<String, Roles> {
    let mut out: BTreeMap<String, Roles> = BTreeMap::new();
    for q in queues {
        let Some(members) = &q.members else { continue };
        let depth = if q.state == "down" { 0 } else { q.messages };
        for m in members {
            let r = out.entry(m.clone()).or_default();
            if q.leader.as_deref() == Some(m.as_str()) {
                r.leads += 1;
                r.leads_messages += depth;
            } else {
                r.follows += 1;
                r.follows_messages += depth;
            }
        }
    }
    out
}

/// The roles of every node, once the queues are loaded and when any queue
/// is replicated (the nodes table shows its roles columns only then).
pub fn node_roles(replicas: Loaded<Vec<Replica>>) -> Option<BTreeMap<String, Roles>> {
    let qs = replicas.with(|r| r.as_ref().and_then(|r| r.as_ref().ok()).cloned())?;
    qs.iter().any(|q| q.members.is_some()).then(|| roles_by_node(&qs))
}

/// "1 queue, 5 messages", or "none".
fn role_text(queues: u64, messages: u64) -> String {
    match queues {
        0 => "none".into(),
        1 => format!("1 queue, {} messages", num(messages)),
        n => format!("{} queues, {} messages", num(n), num(messages)),
    }
}

/// The two cells of a node's row: queues it leads and queues it follows.
#[component]
pub fn RoleCells(roles: Roles) -> impl IntoView {
    view! {
        <td class="leads" data-queues=roles.leads.to_string() data-messages=roles.leads_messages.to_string()>
            {role_text(roles.leads, roles.leads_messages)}
        </td>
        <td class="follows" data-queues=roles.follows.to_string() data-messages=roles.follows_messages.to_string()>
            {role_text(roles.follows, roles.follows_messages)}
        </td>
    }
}
