//! The dashboard shows replication (docs/cluster.md, "Replicated
//! queues"): a replicated queue's type, leader and members, each member
//! leader or follower and online or offline, on its page; its type in the
//! queue list; and in the nodes table, how many queues each node leads and
//! follows with their messages. Three real warren-server processes and
//! headless Chromium, looking through a node that is not the leader.

mod cluster_support;
mod dashboard_support;

use cluster_support::{T, cluster_of_three};
use dashboard_support::{Browser, publish};
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use warren_tests::eventually;
use warren_tests::http::json;

/// The names in a JSON array, sorted.
fn sorted(v: &serde_json::Value) -> Vec<&str> {
    let mut names: Vec<&str> = v.as_array().into_iter().flatten().filter_map(|n| n.as_str()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_dashboard_shows_a_quorum_queues_leader_members_and_each_nodes_roles() {
    let nodes = cluster_of_three().await;
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();

    // A durable quorum queue declared through node one, which leads it,
    // with three persistent messages, each confirmed.
    let (_c, ch) = nodes[0].server.channel().await;
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare("orders".into(), durable, args).await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    for i in 0..3 {
        let props = BasicProperties::default().with_delivery_mode(2);
        let confirm = ch
            .basic_publish("".into(), "orders".into(), Default::default(), format!("m{i}").as_bytes(), props)
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack(), "message {i} not confirmed");
    }
    // A classic queue that an `ha-mode: exactly 2` policy replicates,
    // declared through node two: node two leads it, node three follows.
    let api2 = nodes[1].api();
    let policy = json!({"pattern": "^ha\\.", "definition": {"ha-mode": "exactly", "ha-params": 2}, "apply-to": "queues"});
    assert!(api2.put("/api/policies/%2F/ha-two", policy).await.code() < 300);
    let r = api2.put("/api/queues/%2F/ha.jobs", json!({"durable": true})).await;
    assert!(r.code() < 300, "{}", r.body);
    publish(&api2, "amq.default", "ha.jobs", "j").await;

    // What the API of node two says once both groups have formed.
    let seen = eventually(T, || async {
        let q = api2.ok("/api/queues/%2F/orders").await;
        let h = api2.ok("/api/queues/%2F/ha.jobs").await;
        let ready = q["leader"] == json!(names[0])
            && q["online"].as_array().is_some_and(|o| o.len() == 3)
            && q["messages"] == 3
            && h["leader"] == json!(names[1])
            && sorted(&h["members"]) == [names[1].as_str(), names[2].as_str()]
            && h["online"].as_array().is_some_and(|o| o.len() == 2)
            && h["messages"] == 1;
        ready.then_some((q, h))
    })
    .await;
    let (q, h) = seen.unwrap_or_else(|| panic!("the groups never formed: {}", nodes[1].server.log_text()));
    assert_eq!(q["type"], "quorum");
    assert_eq!(q["members"].as_array().map(Vec::len), Some(3), "{q}");
    assert_eq!(h["type"], "classic", "{h}");

    let b = Browser::start(&nodes[1].server, "replicated").await;
    b.open_as_guest("/queues/%2F/orders").await;
    b.wait_text("#q-type", "quorum").await;
    b.wait_text("#q-leader", &names[0]).await;
    b.wait_text("#q-online", "3 of 3").await;
    let rows = "JSON.stringify([...document.querySelectorAll('#q-members tbody tr')].map(r => \
                [r.dataset.member, r.querySelector('td.role').textContent, r.querySelector('td.status').textContent]))";
    let want = json!([
        [names[0], "leader", "online"],
        [names[1], "follower", "online"],
        [names[2], "follower", "online"],
    ]);
    b.wait_js(
        "each member is marked leader or follower, and online, the leader first",
        &format!("{rows} === {:?}", want.to_string()),
    )
    .await;
    b.shot("queue-page").await;

    // The list says which queues are replicated.
    b.goto("/queues").await;
    let type_of = |queue: &str| {
        format!("document.querySelector('#queues tr[data-queue={queue:?}] td.type')?.textContent")
    };
    b.wait_js("orders is listed as quorum", &format!("{} === 'quorum'", type_of("orders"))).await;
    b.wait_js(
        "ha.jobs is listed as classic (ha: 2)",
        &format!("{} === 'classic (ha: 2)'", type_of("ha.jobs")),
    )
    .await;
    b.shot("queue-list").await;

    // The nodes table: what each node leads and follows, and the messages.
    b.goto("/").await;
    let roles = format!(
        "JSON.stringify([{:?}, {:?}, {:?}].map(n => {{ const r = document.querySelector(`#nodes tr[data-node=\"${{n}}\"]`); \
           if (!r) return null; const l = r.querySelector('td.leads'), f = r.querySelector('td.follows'); \
           return l && f && [+l.dataset.queues, +l.dataset.messages, +f.dataset.queues, +f.dataset.messages]; }}))",
        names[0], names[1], names[2]
    );
    let want = json!([[1, 3, 0, 0], [1, 1, 1, 3], [0, 0, 2, 4]]);
    b.wait_js(
        "node one leads orders, node two ha.jobs, node three follows both",
        &format!("{roles} === {:?}", want.to_string()),
    )
    .await;
    b.wait_text(&format!("#nodes tr[data-node={:?}] td.leads", names[0]), "1 queue, 3 messages").await;
    b.shot("nodes").await;
    b.close().await;
}
