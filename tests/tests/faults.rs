//! Faults under load (issue #20): three nodes, each in its own network
//! namespace (`warren_tests::netns`), a quorum queue, publishers with
//! confirms and acking consumers through every node, and one fault in the
//! middle: the leader's node cut off from the others, killed with -9 and
//! restarted, or paused with SIGSTOP. Afterwards everything is drained
//! through every node and the checker (`warren_tests::checker`) counts:
//! lost, unexpected and corrupted must be 0; duplicates and indeterminate
//! messages are reported, with how long the majority side took to confirm
//! a publish again.
//!
//! Needs root and `ip netns`; without them each test says why and passes
//! without running (`WARREN_REQUIRE_NETNS=1` makes it fail instead). CI
//! runs as root, so there they run.

use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use warren_tests::checker::{Report, Run, Workload};
use warren_tests::netns::{Cluster, skip_reason};

const T: Duration = Duration::from_secs(20);

/// A formed cluster of `n` nodes in namespaces, or None (with the reason
/// printed) where namespaces cannot be made.
async fn cluster(n: usize) -> Option<Cluster> {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED: {why}");
        return None;
    }
    Some(Cluster::start(n).await.unwrap_or_else(|e| panic!("cannot build the namespaces' network: {e}")))
}

/// Declares the quorum queue `name` through node `via`; returns its leader
/// once every node sees its three members online.
async fn quorum_queue(c: &Cluster, via: usize, name: &str) -> usize {
    let conn =
        Connection::connect(&c.nodes[via].uri(), ConnectionProperties::default()).await.expect("connect");
    let ch = conn.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    let opts = QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare(name.into(), opts, args).await.expect("a quorum queue");
    let _ = conn.close(200, "bye".into()).await;
    c.until_queue_healthy(name, 3, T).await
}

/// Publishing and consuming going on through every node.
async fn load(c: &Cluster, queue: &str) -> Run {
    let run = Run::start(Workload::new(c.uris(), &[queue]));
    assert!(run.progress(500, T).await, "publishing and consuming never got going{}", c.tails(40));
    run
}

/// After a fault: every node running, the queue whole again with one
/// leader, traffic flowing; then drain and check.
async fn settle_and_check(c: &Cluster, run: Run, queue: &str, title: &str) -> Report {
    c.until_all_running().await;
    let leader = c.until_queue_healthy(queue, 3, T).await;
    eprintln!("[{:>6.2}s] {queue} healthy again, led by {}", c.elapsed().as_secs_f64(), c.nodes[leader].name);
    assert!(run.progress(300, T).await, "traffic never resumed after the fault{}", c.tails(60));
    let report = run.finish(T).await;
    report.print(title);
    report.assert_valid();
    report
}

/// (a) The leader's node cut off from the other two for 5 s, then healed,
/// publishers and consumers going on through every node: nothing
/// confirmed is lost, nothing unexpected or corrupted comes. Prints how
/// long the majority side took to confirm again (see the next test).
#[tokio::test]
async fn a_partitioned_leader_loses_nothing() {
    let recovered = partitioned_leader("qq").await;
    match recovered {
        Some(Some(d)) => eprintln!("majority side confirmed again {d:?} after the partition began"),
        Some(None) => eprintln!(
            "majority side confirmed nothing during the 5 s partition (the election livelock of \
             a_partitioned_leader_is_replaced_within_seconds)"
        ),
        None => {}
    }
}

/// (a) again, asking that the majority side elect a leader and confirm
/// again within a few seconds, while the partition lasts.
///
/// This found an election livelock (fixed): the two members left stood
/// for election in the same term again and again, the one with the
/// shorter log unable to win and the up-to-date one reverting to follower
/// each time; now only the most up-to-date members stand.
#[tokio::test]
async fn a_partitioned_leader_is_replaced_within_seconds() {
    if let Some(recovered) = partitioned_leader("qa").await {
        let d = recovered.expect("the majority side confirmed nothing during the 5 s partition");
        eprintln!("majority side confirmed again {d:?} after the partition began");
        assert!(d < Duration::from_secs(4), "the majority side took {d:?} to confirm again");
    }
}

/// The scenario of (a): None when skipped, else when the majority side
/// confirmed again while the partition lasted, if it did.
async fn partitioned_leader(queue: &str) -> Option<Option<Duration>> {
    let c = cluster(3).await?;
    let leader = quorum_queue(&c, 0, queue).await;
    let mut run = load(&c, queue).await;
    let majority: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    c.isolate(leader);
    run.fault(format!("{} isolated", c.nodes[leader].name), &majority);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let recovered = run.recovered();
    c.heal();
    settle_and_check(&c, run, queue, "leader isolated for 5 s").await;
    Some(recovered)
}

/// (b) kill -9 of the leader under load, restarted 2 s later.
///
/// This found a lost confirmed message (fixed): a new leader gave again
/// the ids a former leadership had given to messages never committed, and
/// a late ack of such a delivery removed the newer, confirmed message with
/// the same id from the log; ids now carry the leader's term.
#[tokio::test]
async fn a_killed_leader_loses_nothing() {
    let Some(mut c) = cluster(3).await else { return };
    let leader = quorum_queue(&c, 1, "qk").await;
    let mut run = load(&c, "qk").await;
    let majority: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    c.kill(leader);
    run.fault(format!("kill -9 {}", c.nodes[leader].name), &majority);
    let recovered = run.until_recovered(T).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.restart(leader).await;
    let report = settle_and_check(&c, run, "qk", "leader killed with -9, restarted").await;
    let recovered = recovered.unwrap_or_else(|| panic!("no confirm after the kill: {report:?}"));
    eprintln!("majority side confirmed again {recovered:?} after the kill");
}

/// (c) The leader paused with SIGSTOP for 3 s, then SIGCONT: nothing lost.
/// Prints how long the majority side took to confirm again (usually about
/// 2 s; longer when the election livelock of
/// `a_partitioned_leader_is_replaced_within_seconds` strikes).
#[tokio::test]
async fn a_paused_leader_loses_nothing() {
    let Some(mut c) = cluster(3).await else { return };
    let leader = quorum_queue(&c, 2, "qp").await;
    let mut run = load(&c, "qp").await;
    let majority: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    c.pause(leader);
    run.fault(format!("SIGSTOP {}", c.nodes[leader].name), &majority);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let recovered = run.recovered();
    c.resume(leader);
    settle_and_check(&c, run, "qp", "leader paused for 3 s").await;
    match recovered {
        Some(d) => eprintln!("majority side confirmed again {d:?} after the pause began"),
        None => eprintln!("majority side confirmed nothing during the 3 s pause"),
    }
}
