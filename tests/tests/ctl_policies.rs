//! warrenctl's policy, operator policy and runtime parameter verbs, and
//! that a policy set with it acts on a live queue.

mod ctl_common;

use ctl_common::{ctl, table};
use lapin::BasicProperties;
use lapin::options::*;
use lapin::types::FieldTable;
use serde_json::json;
use warren_tests::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_operator_policies_and_parameters() {
    let s = Server::start();
    let out = ctl(
        &s,
        &["set_policy", "--priority", "3", "--apply-to", "queues", "cap", "^lqz", r#"{"max-length": 2}"#],
    );
    assert!(
        out.ok().contains(r#"Setting policy "cap" for pattern "^lqz" to "{"max-length": 2}" with priority "3" for vhost "/" ..."#),
        "{out:?}"
    );
    let rows = table(ctl(&s, &["-q", "list_policies"]).ok());
    assert_eq!(rows[0], ["vhost", "name", "pattern", "apply-to", "definition", "priority"]);
    assert_eq!(rows[1], ["/", "cap", "^lqz", "queues", r#"{"max-length":2}"#, "3"]);
    let p = ctl(&s, &["--formatter", "json", "list_policies"]).json();
    assert_eq!(
        p,
        json!([{"vhost": "/", "name": "cap", "pattern": "^lqz", "apply-to": "queues",
                "definition": {"max-length": 2}, "priority": 3}])
    );

    // The policy acts: a queue it matches keeps two messages.
    let (_c, ch) = s.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    ch.queue_declare("lqz-q".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    for _ in 0..5 {
        ch.basic_publish(
            "".into(),
            "lqz-q".into(),
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let q = ctl(&s, &["--formatter", "json", "list_queues", "name", "messages", "policy"]).json();
    assert_eq!(q, json!([{"name": "lqz-q", "messages": 2, "policy": "cap"}]));

    // Bad input: not JSON, not an object, an unknown key, a bad apply-to.
    ctl(&s, &["set_policy", "bad", ".*", "{max-length: 2}"]).fails(65, "not valid JSON");
    ctl(&s, &["set_policy", "bad", ".*", "[1]"]).fails(65, "must be a JSON object");
    ctl(&s, &["set_policy", "bad", ".*", r#"{"max-lenght": 2}"#]).fails(65, "max-lenght");
    ctl(&s, &["set_policy", "bad", ".*", r#"{"max-length": "ten"}"#])
        .fails(65, r#"<<"ten">> is not a valid maximum length"#);
    ctl(&s, &["set_operator_policy", "bad", ".*", r#"{"message-ttl": -1}"#])
        .fails(65, "-1 is not a valid message TTL");
    ctl(&s, &["set_policy", "--apply-to", "tables", "bad", ".*", r#"{"max-length": 2}"#])
        .fails(65, "apply-to");
    ctl(&s, &["set_policy", "-p", "nowhere", "bad", ".*", r#"{"max-length": 2}"#])
        .fails(65, "virtual host 'nowhere' does not exist");

    ctl(&s, &["clear_policy", "cap"]).ok();
    assert_eq!(ctl(&s, &["--formatter", "json", "list_policies"]).json(), json!([]));
    ctl(&s, &["clear_policy", "cap"]).fails(65, "policy 'cap' does not exist");

    // Operator policies.
    ctl(&s, &["set_operator_policy", "--apply-to", "queues", "limit", ".*", r#"{"max-length-bytes": 1000}"#])
        .ok();
    let op = ctl(&s, &["--formatter", "json", "list_operator_policies"]).json();
    assert_eq!(op[0]["name"], "limit");
    assert_eq!(op[0]["definition"], json!({"max-length-bytes": 1000}));
    let q = ctl(&s, &["--formatter", "json", "list_queues", "name", "operator_policy"]).json();
    assert_eq!(q, json!([{"name": "lqz-q", "operator_policy": "limit"}]));
    ctl(&s, &["clear_operator_policy", "limit"]).ok();
    assert_eq!(ctl(&s, &["--formatter", "json", "list_operator_policies"]).json(), json!([]));
    ctl(&s, &["clear_operator_policy", "limit"]).fails(65, "operator policy 'limit' does not exist");

    // Runtime parameters.
    ctl(&s, &["add_vhost", "up"]).ok();
    ctl(&s, &["set_parameter", "-p", "up", "federation-upstream", "origin", r#"{"uri": "amqp://remote"}"#])
        .ok();
    let rows = table(ctl(&s, &["-q", "list_parameters", "-p", "up"]).ok());
    assert_eq!(
        rows,
        [
            vec!["component", "name", "value"],
            vec!["federation-upstream", "origin", r#"{"uri":"amqp://remote"}"#]
        ]
    );
    let ps = ctl(&s, &["--formatter", "json", "list_parameters", "-p", "up"]).json();
    assert_eq!(
        ps,
        json!([{"component": "federation-upstream", "name": "origin", "value": {"uri": "amqp://remote"}}])
    );
    assert_eq!(ctl(&s, &["--formatter", "json", "list_parameters"]).json(), json!([]));
    ctl(&s, &["set_parameter", "-p", "up", "c", "n", "not json"]).fails(65, "not valid JSON");
    ctl(&s, &["clear_parameter", "-p", "up", "federation-upstream", "origin"]).ok();
    assert_eq!(ctl(&s, &["--formatter", "json", "list_parameters", "-p", "up"]).json(), json!([]));
    ctl(&s, &["clear_parameter", "-p", "up", "federation-upstream", "origin"]).fails(65, "does not exist");
}
