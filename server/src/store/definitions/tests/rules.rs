//! What is stored and what is not, cascades, queue ids, failed commands.

use serde_json::json;

use super::*;

#[tokio::test]
async fn transient_definitions_are_not_stored() {
    let tmp = TempDir::new("transient");
    let store = DefinitionStore::open(&tmp.0).await.unwrap();
    persist_all(&store, &[vhost("/"), exchange("/", "durable.x", true)]).await;
    assert_eq!(store.persist(&queue("/", "durable.q", true, false)).await.unwrap(), Some(1));

    persist_all(&store, &[exchange("/", "transient.x", false), exchange("/", "amq.direct", true)]).await;
    assert_eq!(store.persist(&queue("/", "transient.q", false, false)).await.unwrap(), None);
    assert_eq!(store.persist(&queue("/", "exclusive.q", true, true)).await.unwrap(), None);
    persist_all(
        &store,
        &[
            bind("/", "durable.x", "queue", "transient.q", "k", FieldTable::default()),
            bind("/", "durable.x", "queue", "exclusive.q", "k", FieldTable::default()),
            bind("/", "amq.direct", "queue", "exclusive.q", "k", FieldTable::default()),
            bind("/", "transient.x", "queue", "durable.q", "k", FieldTable::default()),
            bind("/", "durable.x", "exchange", "transient.x", "k", FieldTable::default()),
            bind("/", "transient.x", "exchange", "durable.x", "k", FieldTable::default()),
        ],
    )
    .await;

    let store = reopen(store, &tmp.0).await;
    let s = store.load().await.unwrap();
    assert_eq!(names(&s.exchanges, |x| x.name.clone()), ["durable.x"]);
    assert_eq!(names(&s.queues, |q| q.name.clone()), ["durable.q"]);
    assert!(s.bindings.is_empty(), "{:?}", s.bindings);
    store.close().await;
}

#[tokio::test]
async fn deletes_cascade() {
    let tmp = TempDir::new("cascade");
    let store = DefinitionStore::open(&tmp.0).await.unwrap();
    // Two vhosts with the same contents; only "doomed" is deleted.
    for v in ["doomed", "kept"] {
        persist_all(
            &store,
            &[
                vhost(v),
                Cmd::PutUser(user("u", &[])),
                permissions(v, "u", ".*"),
                exchange(v, "x", true),
                exchange(v, "x2", true),
                queue(v, "q", true, false),
                queue(v, "q2", true, false),
                bind(v, "x", "queue", "q", "k", FieldTable::default()),
                bind(v, "x", "queue", "q2", "k", FieldTable::default()),
                bind(v, "amq.direct", "queue", "q", "k", FieldTable::default()),
                bind(v, "x2", "exchange", "x", "k", FieldTable::default()),
                bind(v, "x", "exchange", "x2", "k", FieldTable::default()),
            ],
        )
        .await;
        let policy = PolicyRow {
            vhost: v.into(),
            name: "p".into(),
            pattern: ".*".into(),
            apply_to: "all".into(),
            definition: json!({"max-length": 1}),
            priority: 0,
        };
        store.put_policy(&policy).await.unwrap();
        store.put_operator_policy(&policy).await.unwrap();
        let param =
            ParameterRow { component: "shovel".into(), vhost: v.into(), name: "s".into(), value: json!({}) };
        store.put_parameter(&param).await.unwrap();
        store.set_vhost_limits(v, &json!({})).await.unwrap();
        let topic = TopicPermissionRow {
            vhost: v.into(),
            user: "u".into(),
            exchange: "x".into(),
            write: ".*".into(),
            read: ".*".into(),
        };
        store.set_topic_permissions(&topic).await.unwrap();
    }
    store.persist(&Cmd::DeleteVhost { name: "doomed".into() }).await.unwrap();
    let s = store.load().await.unwrap();
    let all_vhosts: Vec<&str> = s
        .permissions
        .iter()
        .map(|r| r.vhost.as_str())
        .chain(s.topic_permissions.iter().map(|r| r.vhost.as_str()))
        .chain(s.exchanges.iter().map(|r| r.vhost.as_str()))
        .chain(s.queues.iter().map(|r| r.vhost.as_str()))
        .chain(s.bindings.iter().map(|r| r.vhost.as_str()))
        .chain(s.policies.iter().map(|r| r.vhost.as_str()))
        .chain(s.operator_policies.iter().map(|r| r.vhost.as_str()))
        .chain(s.parameters.iter().map(|r| r.vhost.as_str()))
        .chain(s.vhost_limits.iter().map(|r| r.name.as_str()))
        .collect();
    assert_eq!(all_vhosts.len(), 1 + 1 + 2 + 2 + 5 + 1 + 1 + 1 + 1);
    assert!(all_vhosts.iter().all(|v| *v == "kept"), "{all_vhosts:?}");

    // A queue takes its bindings with it, from stored and predeclared sources.
    store.persist(&delete_queue("kept", "q")).await.unwrap();
    let s = store.load().await.unwrap();
    assert_eq!(
        names(&s.bindings, |b| format!("{}->{}", b.source, b.destination)),
        ["x->x2", "x->q2", "x2->x"]
    );
    // An exchange takes the bindings from it and to it.
    store.persist(&delete_exchange("kept", "x2")).await.unwrap();
    let s = store.load().await.unwrap();
    assert_eq!(names(&s.bindings, |b| format!("{}->{}", b.source, b.destination)), ["x->q2"]);
    // A user takes its permissions and limits.
    store.set_user_limits("u", &json!({"max-connections": 1})).await.unwrap();
    store.persist(&Cmd::DeleteUser { name: "u".into() }).await.unwrap();
    let s = store.load().await.unwrap();
    assert!(s.permissions.is_empty() && s.topic_permissions.is_empty());
    assert!(s.user_limits.is_empty());
    store.close().await;
}

#[tokio::test]
async fn queue_ids_are_never_reused() {
    let tmp = TempDir::new("ids");
    let store = DefinitionStore::open(&tmp.0).await.unwrap();
    store.persist(&vhost("/")).await.unwrap();
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        ids.push(store.persist(&queue("/", name, true, false)).await.unwrap().unwrap());
    }
    assert_eq!(ids, [1, 2, 3]);
    // Delete the highest id: plain rowids would hand 3 out again.
    store.persist(&delete_queue("/", "c")).await.unwrap();
    assert_eq!(store.queue_id("/", "c").await.unwrap(), None);
    let store = reopen(store, &tmp.0).await;
    assert_eq!(store.persist(&queue("/", "c", true, false)).await.unwrap(), Some(4));
    // Redeclaring returns the same id.
    assert_eq!(store.persist(&queue("/", "a", true, false)).await.unwrap(), Some(1));
    // Not even deleting every queue, and the vhost, resets the sequence.
    store.persist(&Cmd::DeleteVhost { name: "/".into() }).await.unwrap();
    store.persist(&vhost("/")).await.unwrap();
    assert_eq!(store.persist(&queue("/", "a", true, false)).await.unwrap(), Some(5));
    store.close().await;
}

#[tokio::test]
async fn a_command_that_fails_writes_nothing() {
    let tmp = TempDir::new("fk");
    let store = DefinitionStore::open(&tmp.0).await.unwrap();
    // No vhost row: the foreign key refuses the queue, and the batch is
    // rolled back as a whole.
    let err = store
        .persist_all(&[Cmd::PutUser(user("alice", &[])), queue("nowhere", "q", true, false)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    assert_eq!(store.load().await.unwrap(), Snapshot::default());
    store.close().await;
}
