//! The whole metadata as commands: what a cluster's Raft snapshot holds, so
//! that a node that joins, or restarts, rebuilds the same metadata by
//! applying them in order (docs/cluster.md).
//!
//! The order is that of dependencies: vhosts and users, then what refers to
//! them (permissions, parameters and policies), exchanges, queues, and last
//! the bindings between them. Transient and exclusive entities are included:
//! unlike a definitions export, a snapshot is everything the cluster knows.

use super::Broker;
use crate::definitions::DefinitionCommand;

/// The command that undoes a snapshot command; its Debug text doubles as
/// the identity of what the command made.
fn removal(cmd: &DefinitionCommand) -> Option<DefinitionCommand> {
    use DefinitionCommand::*;
    Some(match cmd.clone() {
        AddVhost { name, .. } => DeleteVhost { name },
        PutUser(u) => DeleteUser { name: u.name },
        SetPermissions { vhost, user, .. } => ClearPermissions { vhost, user },
        SetTopicPermissions { vhost, user, exchange, .. } => {
            ClearTopicPermissions { vhost, user, exchange: Some(exchange) }
        }
        SetGlobalParameter { name, .. } => ClearGlobalParameter { name },
        SetParameter { component, vhost, name, .. } => ClearParameter { component, vhost, name },
        DeclareExchange { vhost, name, .. } => DeleteExchange { vhost, name, if_unused: false },
        DeclareQueue { vhost, name, .. } => {
            DeleteQueue { vhost, name, if_unused: false, if_empty: false, requester: None }
        }
        Bind { vhost, source, destination_kind, destination, routing_key, arguments, .. } => {
            Unbind { vhost, source, destination_kind, destination, routing_key, arguments, requester: None }
        }
        _ => return None,
    })
}

/// Exchanges every vhost has from its creation.
fn predeclared(name: &str) -> bool {
    name.is_empty()
        || matches!(
            name,
            "amq.direct" | "amq.fanout" | "amq.topic" | "amq.headers" | "amq.match" | "amq.rabbitmq.trace"
        )
}

impl Broker {
    /// Makes the metadata what `commands` (a snapshot) say, without
    /// disturbing what they keep: everything in them is applied (an entity
    /// that exists already, equal, stays as it is, queue contents
    /// included), then everything they lack is removed, bindings first and
    /// vhosts last. A queue of the same name but another declaration
    /// (deleted and declared again meanwhile) is deleted first, so that
    /// nothing of the old one stays. Returns every command applied, in
    /// order, for the definitions store to mirror.
    pub fn reconcile(&self, commands: &[DefinitionCommand]) -> Vec<DefinitionCommand> {
        let mut done = Vec::with_capacity(commands.len());
        for cmd in commands {
            if let DefinitionCommand::DeclareQueue { vhost, name, incarnation, .. } = cmd
                && let Some(q) = self.vhost(vhost).and_then(|v| v.queue(name))
                && q.incarnation() != *incarnation
                && let Some(delete) = removal(cmd)
                && self.apply_in_memory(delete.clone()).is_ok()
            {
                done.push(delete);
            }
            match self.apply_in_memory(cmd.clone()) {
                Ok(_) => done.push(cmd.clone()),
                Err(e) => tracing::error!("cluster snapshot: cannot apply {cmd:?}: {e}"),
            }
        }
        let wanted: std::collections::HashSet<String> =
            commands.iter().filter_map(removal).map(|r| format!("{r:?}")).collect();
        for r in self.metadata_commands().iter().rev().filter_map(removal) {
            if !wanted.contains(&format!("{r:?}")) && self.apply_in_memory(r.clone()).is_ok() {
                done.push(r);
            }
        }
        done
    }

    pub fn metadata_commands(&self) -> Vec<DefinitionCommand> {
        use DefinitionCommand::*;
        let mut out = Vec::new();
        let vhosts = self.vhosts();
        for v in &vhosts {
            let meta = v.meta();
            out.push(AddVhost { name: v.name.to_string(), description: meta.description, tags: meta.tags });
        }
        for u in self.auth.users() {
            out.push(PutUser((*u).clone()));
        }
        for (vhost, user, p) in self.auth.all_permissions() {
            out.push(SetPermissions {
                vhost,
                user,
                configure: p.configure.clone(),
                write: p.write.clone(),
                read: p.read.clone(),
            });
        }
        for (vhost, user, p) in self.auth.all_topic_permissions() {
            out.push(SetTopicPermissions { vhost, user, exchange: p.exchange, write: p.write, read: p.read });
        }
        for (name, value) in self.parameters.globals() {
            out.push(SetGlobalParameter { name, value });
        }
        for p in self.parameters.list(None, None) {
            out.push(SetParameter { component: p.component, vhost: p.vhost, name: p.name, value: p.value });
        }
        for v in &vhosts {
            for x in v.exchanges().into_iter().filter(|x| !predeclared(&x.name)) {
                out.push(DeclareExchange {
                    vhost: v.name.to_string(),
                    name: x.name.to_string(),
                    kind: x.kind,
                    durable: x.durable,
                    auto_delete: x.auto_delete,
                    internal: x.internal,
                    arguments: x.arguments.clone(),
                });
            }
            for q in v.queues() {
                out.push(DeclareQueue {
                    vhost: v.name.to_string(),
                    name: q.name.to_string(),
                    durable: q.durable,
                    auto_delete: q.auto_delete,
                    exclusive_owner: q.exclusive_owner,
                    arguments: q.arguments.clone(),
                    // A queue made before the node was clustered lives here.
                    home: Some(q.home.get().map_or_else(|| self.config.node_name.clone(), |h| h.to_string())),
                    incarnation: q.incarnation(),
                });
                if let Some(members) = q.chosen_members() {
                    out.push(SetQueueMembers {
                        vhost: v.name.to_string(),
                        name: q.name.to_string(),
                        members,
                    });
                }
            }
        }
        for v in &vhosts {
            // The default exchange's bindings exist with their queues.
            for b in v.bindings().into_iter().filter(|b| !b.source.is_empty()) {
                out.push(Bind {
                    vhost: v.name.to_string(),
                    source: b.source.to_string(),
                    destination_kind: b.destination_kind.as_str().to_owned(),
                    destination: b.destination.to_string(),
                    routing_key: b.routing_key.to_string(),
                    arguments: b.arguments,
                    requester: None,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::definitions::ExchangeType;
    use amq_protocol::types::FieldTable;

    /// Applying a broker's snapshot commands to an empty broker gives the
    /// same snapshot back.
    #[tokio::test]
    async fn a_snapshot_rebuilds_the_same_metadata() {
        use DefinitionCommand::*;
        let a = Broker::in_memory();
        for cmd in [
            AddVhost { name: "v".into(), description: "d".into(), tags: vec!["t".into()] },
            SetPermissions {
                vhost: "v".into(),
                user: "guest".into(),
                configure: ".*".into(),
                write: "w".into(),
                read: "r".into(),
            },
            DeclareExchange {
                vhost: "v".into(),
                name: "x".into(),
                kind: ExchangeType::Topic,
                durable: false,
                auto_delete: false,
                internal: false,
                arguments: FieldTable::default(),
            },
            DeclareQueue {
                vhost: "v".into(),
                name: "q".into(),
                durable: true,
                auto_delete: false,
                exclusive_owner: None,
                arguments: FieldTable::default(),
                home: None,
                incarnation: 0,
            },
            Bind {
                vhost: "v".into(),
                source: "x".into(),
                destination_kind: "queue".into(),
                destination: "q".into(),
                routing_key: "a.#".into(),
                arguments: FieldTable::default(),
                requester: None,
            },
            SetParameter {
                component: "policy".into(),
                vhost: "v".into(),
                name: "p".into(),
                value: serde_json::json!({"pattern": "^q", "definition": {"max-length": 5}, "apply-to": "queues", "priority": 0}),
            },
        ] {
            a.apply_in_memory(cmd).unwrap();
        }
        let cmds = a.metadata_commands();
        let b = Broker::in_memory();
        for cmd in cmds.clone() {
            b.apply_in_memory(cmd).unwrap();
        }
        let show = |cmds: Vec<DefinitionCommand>| {
            let mut v: Vec<String> = cmds.iter().map(|c| format!("{c:?}")).collect();
            v.sort();
            v
        };
        assert_eq!(show(b.metadata_commands()), show(cmds));
        let q = b.vhost("v").unwrap().queue("q").unwrap();
        assert_eq!(q.config().policy.as_deref(), Some("p"));
    }

    #[test]
    fn reconcile_keeps_what_stays_and_removes_what_went() {
        use DefinitionCommand::*;
        let queue = |name: &str| DeclareQueue {
            vhost: "/".into(),
            name: name.into(),
            durable: false,
            auto_delete: false,
            exclusive_owner: None,
            arguments: FieldTable::default(),
            home: None,
            incarnation: 0,
        };
        let target = Broker::in_memory();
        target.apply_in_memory(queue("kept")).unwrap();
        target
            .apply_in_memory(AddVhost { name: "new".into(), description: String::new(), tags: vec![] })
            .unwrap();
        let here = Broker::in_memory();
        here.apply_in_memory(queue("kept")).unwrap();
        here.apply_in_memory(queue("gone")).unwrap();
        here.apply_in_memory(AddVhost { name: "old".into(), description: String::new(), tags: vec![] })
            .unwrap();
        let before = here.vhost("/").unwrap().queue("kept").unwrap();

        here.reconcile(&target.metadata_commands());

        let after = here.vhost("/").unwrap().queue("kept").unwrap();
        assert!(Arc::ptr_eq(&before, &after), "a queue in both is the same object, contents and all");
        assert!(here.vhost("/").unwrap().queue("gone").is_none());
        assert!(here.vhost("old").is_none());
        assert!(here.vhost("new").is_some());
        let show = |b: &Broker| {
            let mut v: Vec<String> = b.metadata_commands().iter().map(|c| format!("{c:?}")).collect();
            v.sort();
            v
        };
        assert_eq!(show(&here), show(&target));
    }

    /// A queue deleted and declared again while this node was away is
    /// another queue: the old one goes, contents and all.
    #[test]
    fn reconcile_replaces_a_queue_declared_again() {
        use DefinitionCommand::*;
        let queue = |incarnation| DeclareQueue {
            vhost: "/".into(),
            name: "q".into(),
            durable: false,
            auto_delete: false,
            exclusive_owner: None,
            arguments: FieldTable::default(),
            home: None,
            incarnation,
        };
        let target = Broker::in_memory();
        target.apply_in_memory(queue(12)).unwrap();
        let here = Broker::in_memory();
        here.apply_in_memory(queue(7)).unwrap();
        let before = here.vhost("/").unwrap().queue("q").unwrap();

        let done = here.reconcile(&target.metadata_commands());

        let after = here.vhost("/").unwrap().queue("q").unwrap();
        assert!(!Arc::ptr_eq(&before, &after), "the old queue was replaced");
        assert_eq!(after.incarnation(), 12);
        let of_q = |c: &&DefinitionCommand| matches!(c, DeleteQueue { name, .. } | DeclareQueue { name, .. } if name == "q");
        let of_q: Vec<&DefinitionCommand> = done.iter().filter(of_q).collect();
        assert!(matches!(of_q[..], [DeleteQueue { .. }, DeclareQueue { incarnation: 12, .. }]), "{done:?}");
        // The same declaration stays as it is.
        let kept = here.reconcile(&target.metadata_commands());
        assert!(Arc::ptr_eq(&after, &here.vhost("/").unwrap().queue("q").unwrap()), "{kept:?}");
    }
}
