//! What is persisted comes back from `load` after a reopen.

use serde_json::json;

use super::*;

#[tokio::test]
async fn every_command_round_trips() {
    let tmp = TempDir::new("roundtrip");
    let store = DefinitionStore::open(&tmp.0).await.unwrap();
    persist_all(
        &store,
        &[
            vhost("/"),
            vhost("v2"),
            vhost("/"), // again: no change
            Cmd::PutUser(user("alice", &["management"])),
            Cmd::PutUser(user("bob", &[])),
            Cmd::PutUser(user("alice", &["administrator", "monitoring"])), // update
            permissions("/", "alice", "a"),
            permissions("/", "alice", ".*"), // update
            permissions("v2", "bob", "^b"),
            exchange("/", "x.topic", true),
            Cmd::DeclareExchange {
                vhost: "/".into(),
                name: "x.internal".into(),
                kind: ExchangeType::Headers,
                durable: true,
                auto_delete: true,
                internal: true,
                arguments: FieldTable::default(),
            },
            exchange("/", "x.topic", true), // again: no change
        ],
    )
    .await;
    let q1 = store.persist(&queue("/", "q1", true, false)).await.unwrap();
    let q2 = store
        .persist(&Cmd::DeclareQueue {
            vhost: "v2".into(),
            name: "q1".into(),
            durable: true,
            auto_delete: true,
            exclusive_owner: None,
            arguments: FieldTable::default(),
            home: None,
            incarnation: 42,
        })
        .await
        .unwrap();
    let members = vec!["a@h".to_owned(), "b@h".to_owned()];
    store
        .persist(&Cmd::SetQueueMembers { vhost: "v2".into(), name: "q1".into(), members: members.clone() })
        .await
        .unwrap();
    assert_eq!((q1, q2), (Some(1), Some(2)));
    assert_eq!(store.persist(&queue("/", "q1", true, false)).await.unwrap(), Some(1));
    persist_all(
        &store,
        &[
            bind("/", "x.topic", "queue", "q1", "a.#", args()),
            // Differs only in its arguments: a second binding.
            bind("/", "x.topic", "queue", "q1", "a.#", FieldTable::default()),
            bind("/", "x.topic", "queue", "q1", "a.#", args()), // duplicate
            bind("/", "amq.topic", "exchange", "x.internal", "k", FieldTable::default()),
            bind("/", "x.topic", "exchange", "amq.fanout", "k2", FieldTable::default()),
        ],
    )
    .await;

    let store = reopen(store, &tmp.0).await;
    let s = store.load().await.unwrap();
    assert_eq!(
        s.vhosts,
        vec![
            VhostRow {
                name: "/".into(),
                description: "/ vhost".into(),
                tags: vec!["t1".into(), "t2".into()],
                default_queue_type: None,
            },
            VhostRow {
                name: "v2".into(),
                description: "v2 vhost".into(),
                tags: vec!["t1".into(), "t2".into()],
                default_queue_type: None,
            },
        ]
    );
    assert_eq!(s.users, vec![user("alice", &["administrator", "monitoring"]), user("bob", &[])]);
    assert_eq!(
        s.permissions,
        vec![
            PermissionRow {
                vhost: "/".into(),
                user: "alice".into(),
                configure: ".*".into(),
                write: ".*w".into(),
                read: ".*r".into(),
            },
            PermissionRow {
                vhost: "v2".into(),
                user: "bob".into(),
                configure: "^b".into(),
                write: "^bw".into(),
                read: "^br".into(),
            },
        ]
    );
    assert_eq!(
        s.exchanges,
        vec![
            ExchangeRow {
                vhost: "/".into(),
                name: "x.internal".into(),
                kind: ExchangeType::Headers,
                auto_delete: true,
                internal: true,
                arguments: FieldTable::default(),
            },
            ExchangeRow {
                vhost: "/".into(),
                name: "x.topic".into(),
                kind: ExchangeType::Topic,
                auto_delete: false,
                internal: false,
                arguments: args(),
            },
        ]
    );
    assert_eq!(
        s.queues,
        vec![
            QueueRow {
                id: 1,
                vhost: "/".into(),
                name: "q1".into(),
                auto_delete: false,
                arguments: args(),
                home: None,
                incarnation: 0,
                members: None,
            },
            QueueRow {
                id: 2,
                vhost: "v2".into(),
                name: "q1".into(),
                auto_delete: true,
                arguments: FieldTable::default(),
                home: None,
                incarnation: 42,
                members: Some(members),
            },
        ]
    );
    // The argument table's types came back exactly.
    assert_eq!(s.queues[0].arguments.inner().get("x-max-length"), Some(&AMQPValue::LongInt(10)));
    let mut bindings = s.bindings.clone();
    bindings.sort_by_key(|b| (b.source.clone(), b.destination.clone(), b.arguments.inner().len()));
    assert_eq!(
        bindings,
        vec![
            binding_row("/", "amq.topic", "exchange", "x.internal", "k", FieldTable::default()),
            binding_row("/", "x.topic", "exchange", "amq.fanout", "k2", FieldTable::default()),
            binding_row("/", "x.topic", "queue", "q1", "a.#", FieldTable::default()),
            binding_row("/", "x.topic", "queue", "q1", "a.#", args()),
        ]
    );
    assert_eq!(store.queue_id("/", "q1").await.unwrap(), Some(1));
    assert_eq!(store.queue_id("v2", "q1").await.unwrap(), Some(2));
    assert_eq!(store.queue_id("/", "nope").await.unwrap(), None);

    // The removals.
    persist_all(
        &store,
        &[
            Cmd::Unbind {
                vhost: "/".into(),
                source: "x.topic".into(),
                destination_kind: "queue".into(),
                destination: "q1".into(),
                routing_key: "a.#".into(),
                arguments: args(),
                requester: None,
            },
            Cmd::ClearPermissions { vhost: "/".into(), user: "alice".into() },
            delete_exchange("/", "x.internal"),
            delete_queue("v2", "q1"),
            Cmd::DeleteUser { name: "bob".into() },
            Cmd::DeleteVhost { name: "v2".into() },
        ],
    )
    .await;
    let store = reopen(store, &tmp.0).await;
    let s = store.load().await.unwrap();
    assert_eq!(names(&s.vhosts, |v| v.name.clone()), ["/"]);
    assert_eq!(names(&s.users, |u| u.name.clone()), ["alice"]);
    assert!(s.permissions.is_empty());
    assert_eq!(names(&s.exchanges, |x| x.name.clone()), ["x.topic"]);
    assert_eq!(names(&s.queues, |q| format!("{}/{}", q.vhost, q.name)), ["//q1"]);
    assert_eq!(
        s.bindings,
        vec![
            binding_row("/", "x.topic", "exchange", "amq.fanout", "k2", FieldTable::default()),
            binding_row("/", "x.topic", "queue", "q1", "a.#", FieldTable::default()),
        ]
    );
    store.close().await;
}

#[tokio::test]
async fn policies_parameters_and_limits_round_trip() {
    let tmp = TempDir::new("policies");
    let store = DefinitionStore::open(&tmp.0).await.unwrap();
    persist_all(&store, &[vhost("/"), Cmd::PutUser(user("alice", &[]))]).await;
    let vhost_row = VhostRow {
        name: "/".into(),
        description: "the default".into(),
        tags: vec!["prod".into()],
        default_queue_type: Some("quorum".into()),
    };
    store.put_vhost(&vhost_row).await.unwrap();
    let topic = TopicPermissionRow {
        vhost: "/".into(),
        user: "alice".into(),
        exchange: "amq.topic".into(),
        write: "^a".into(),
        read: ".*".into(),
    };
    store.set_topic_permissions(&topic).await.unwrap();
    let policy = PolicyRow {
        vhost: "/".into(),
        name: "ha".into(),
        pattern: "^ha\\.".into(),
        apply_to: "queues".into(),
        definition: json!({"ha-mode": "exactly", "ha-params": 2, "max-length": 1000}),
        priority: 5,
    };
    store.put_policy(&PolicyRow { priority: 1, ..policy.clone() }).await.unwrap();
    store.put_policy(&policy).await.unwrap(); // replaces
    let op_policy = PolicyRow {
        definition: json!({"max-length-bytes": 1_000_000}),
        apply_to: "all".into(),
        ..policy.clone()
    };
    store.put_operator_policy(&op_policy).await.unwrap();
    let param = ParameterRow {
        component: "federation-upstream".into(),
        vhost: "/".into(),
        name: "up".into(),
        value: json!({"uri": "amqp://remote", "expires": 3600000}),
    };
    store.put_parameter(&param).await.unwrap();
    store.put_global_parameter("cluster_name", &json!("rabbit@warren")).await.unwrap();
    store.set_vhost_limits("/", &json!({"max-queues": 10})).await.unwrap();
    store.set_user_limits("alice", &json!({"max-channels": 3})).await.unwrap();

    let store = reopen(store, &tmp.0).await;
    let s = store.load().await.unwrap();
    assert_eq!(s.vhosts, vec![vhost_row]);
    assert_eq!(s.topic_permissions, vec![topic]);
    assert_eq!(s.policies, vec![policy]);
    assert_eq!(s.operator_policies, vec![op_policy]);
    assert_eq!(s.parameters, vec![param]);
    assert_eq!(
        s.global_parameters,
        vec![GlobalParameterRow { name: "cluster_name".into(), value: json!("rabbit@warren") }]
    );
    assert_eq!(s.vhost_limits, vec![LimitsRow { name: "/".into(), value: json!({"max-queues": 10}) }]);
    assert_eq!(s.user_limits, vec![LimitsRow { name: "alice".into(), value: json!({"max-channels": 3}) }]);

    assert!(store.clear_topic_permissions("/", "alice", None).await.unwrap());
    assert!(store.delete_policy("/", "ha").await.unwrap());
    assert!(!store.delete_policy("/", "ha").await.unwrap());
    assert!(store.delete_operator_policy("/", "ha").await.unwrap());
    assert!(store.delete_parameter("federation-upstream", "/", "up").await.unwrap());
    assert!(store.delete_global_parameter("cluster_name").await.unwrap());
    assert!(store.clear_vhost_limits("/").await.unwrap());
    assert!(store.clear_user_limits("alice").await.unwrap());
    assert!(!store.clear_user_limits("alice").await.unwrap());
    let store = reopen(store, &tmp.0).await;
    let s = store.load().await.unwrap();
    assert!(s.topic_permissions.is_empty() && s.policies.is_empty());
    assert!(s.operator_policies.is_empty() && s.parameters.is_empty());
    assert!(s.global_parameters.is_empty() && s.vhost_limits.is_empty());
    assert!(s.user_limits.is_empty());

    // The schema refuses what is not JSON of the right shape.
    let err = store.set_vhost_limits("/", &json!([1, 2])).await.unwrap_err();
    assert!(err.to_string().contains("CHECK constraint"), "{err}");
    store.close().await;
}

#[tokio::test]
async fn a_snapshot_replays_as_commands() {
    let tmp = TempDir::new("replay");
    let a = DefinitionStore::open(&tmp.0.join("a")).await.unwrap();
    persist_all(
        &a,
        &[
            vhost("/"),
            Cmd::PutUser(user("alice", &["administrator"])),
            permissions("/", "alice", ".*"),
            exchange("/", "x", true),
            queue("/", "q", true, false),
            bind("/", "x", "queue", "q", "k", args()),
            bind("/", "amq.fanout", "exchange", "x", "", FieldTable::default()),
        ],
    )
    .await;
    let snapshot = a.load().await.unwrap();
    let b = DefinitionStore::open(&tmp.0.join("b")).await.unwrap();
    let ids = b.persist_all(&snapshot.commands()).await.unwrap();
    assert_eq!(ids.iter().flatten().count(), 1);
    assert_eq!(b.load().await.unwrap(), snapshot);
    a.close().await;
    b.close().await;
}
