//! The tutorial's section 2.4 with warrenctl: a user made administrator
//! with full permissions on `/`, then an AMQP client logged in as that
//! user publishes and consumes.

mod ctl_common;

use std::time::Duration;

use ctl_common::ctl;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use warren_tests::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tutorial_2_4_add_user_tags_permissions_then_publish_and_consume() {
    let s = Server::start();
    // Before: lqz cannot log in.
    assert!(
        Connection::connect(&s.uri_as("lqz", "123", "%2f"), ConnectionProperties::default()).await.is_err()
    );

    ctl(&s, &["add_user", "lqz", "123"]).ok();
    let out = ctl(&s, &["set_user_tags", "lqz", "administrator"]);
    assert!(out.ok().contains("Setting tags for user \"lqz\" to [administrator] ..."), "{out:?}");
    ctl(&s, &["set_permissions", "-p", "/", "lqz", ".*", ".*", ".*"]).ok();

    let conn = Connection::connect(&s.uri_as("lqz", "123", "%2f"), ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("lqz cannot connect: {e}\n{}", s.log_text()));
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare("hello".into(), QueueDeclareOptions::default(), FieldTable::default()).await.unwrap();
    ch.basic_publish(
        "".into(),
        "hello".into(),
        BasicPublishOptions::default(),
        b"Hello World!",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    let mut consumer = ch
        .basic_consume("hello".into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("a delivery")
        .unwrap()
        .unwrap();
    assert_eq!(d.data, b"Hello World!");
    d.ack(BasicAckOptions::default()).await.unwrap();

    // The administrator tag also opens warrenctl to lqz.
    let users = ctl(
        &s,
        &["--username", "lqz", "--password", "123", "--formatter", "json", "list_connections", "user"],
    )
    .json();
    assert_eq!(users, serde_json::json!([{"user": "lqz"}]));
}
