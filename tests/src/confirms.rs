//! Publisher confirms seen on the wire by the raw client: confirm mode,
//! publishes, every ack and nack frame recorded, and the rule they must
//! follow: each published tag confirmed exactly once, and no `multiple`
//! confirm reaching back over a tag that already had its confirm.

use std::time::Duration;

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, confirm, queue};
use amq_protocol::types::FieldTable;

use crate::raw::Raw;

const T: Duration = Duration::from_secs(5);

/// One confirm frame: (ack?, delivery tag, multiple?).
pub type Frame = (bool, u64, bool);

pub async fn select(r: &mut Raw) {
    r.send_frame(AMQPFrame::Method(
        1,
        AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: false })),
    ))
    .await;
    let (_, ok) = r.method(T).await.expect("confirm.select-ok");
    assert!(matches!(ok, AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_))), "{ok:?}");
}

pub async fn declare(r: &mut Raw, q: &str, durable: bool, args: FieldTable) {
    r.send_frame(AMQPFrame::Method(
        1,
        AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: q.into(),
            passive: false,
            durable,
            exclusive: false,
            auto_delete: false,
            nowait: false,
            arguments: args,
        })),
    ))
    .await;
    let (_, ok) = r.method(T).await.expect("queue.declare-ok");
    assert!(matches!(ok, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))), "{ok:?}");
}

pub async fn publish(r: &mut Raw, exchange: &str, key: &str, persistent: bool, mandatory: bool) {
    r.send_frame(AMQPFrame::Method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: exchange.into(),
            routing_key: key.into(),
            mandatory,
            immediate: false,
        })),
    ))
    .await;
    let props = if persistent {
        BasicProperties::default().with_delivery_mode(2)
    } else {
        BasicProperties::default()
    };
    r.send_frame(AMQPFrame::Header(1, AMQPContentHeader { class_id: 60, body_size: 3, properties: props }))
        .await;
    r.send_frame(AMQPFrame::Body(1, b"msg".to_vec())).await;
}

/// Reads frames until every tag from 1 to `n` is covered (counting the
/// confirms already in `seen`), then for a while longer to catch a late
/// second confirm. Appends the confirms to `seen` and returns how many
/// basic.return frames came.
pub async fn confirms_into(r: &mut Raw, n: u64, seen: &mut Vec<Frame>) -> usize {
    let mut returns = 0;
    let deadline = tokio::time::Instant::now() + T;
    let mut linger = None;
    loop {
        let mut covered = seen.iter().filter(|f| f.2).map(|f| f.1).max().unwrap_or(0);
        while seen.iter().any(|f| !f.2 && f.1 == covered + 1) || seen.iter().any(|f| f.2 && f.1 > covered) {
            covered += 1;
        }
        if covered >= n && linger.is_none() {
            linger = Some(tokio::time::Instant::now() + Duration::from_millis(500));
        }
        let until = linger.unwrap_or(deadline);
        let now = tokio::time::Instant::now();
        if now >= until {
            break;
        }
        let Some(f) = r.frame(until - now).await else { break };
        match f {
            AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Ack(a))) => {
                seen.push((true, a.delivery_tag, a.multiple))
            }
            AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Nack(a))) => {
                seen.push((false, a.delivery_tag, a.multiple))
            }
            AMQPFrame::Method(_, AMQPClass::Basic(basic::AMQPMethod::Return(_))) => returns += 1,
            AMQPFrame::Method(_, AMQPClass::Queue(queue::AMQPMethod::PurgeOk(_))) => {}
            AMQPFrame::Method(_, m) => panic!("unexpected method {m:?}"),
            _ => {}
        }
    }
    returns
}

pub async fn confirms(r: &mut Raw, n: u64) -> (Vec<Frame>, usize) {
    let mut seen = Vec::new();
    let returns = confirms_into(r, n, &mut seen).await;
    (seen, returns)
}

/// The rule: each tag from 1 to `n` gets exactly one confirm. Returns each
/// tag's outcome (true: acked).
pub fn each_once(frames: &[Frame], n: u64) -> Vec<bool> {
    let mut outcome: Vec<Option<bool>> = vec![None; n as usize + 1];
    for &(ack, tag, multiple) in frames {
        assert!(tag >= 1 && tag <= n, "confirm of unknown tag {tag} in {frames:?}");
        let from = if multiple {
            // A multiple confirm covers the tags up to `tag` still open; it
            // must not reach back over one already confirmed.
            let mut from = tag;
            while from > 1 && outcome[from as usize - 1].is_none() {
                from -= 1;
            }
            for t in 1..from {
                assert!(outcome[t as usize].is_some(), "tag {t} open below {frames:?}");
            }
            from
        } else {
            tag
        };
        for t in from..=tag {
            assert!(outcome[t as usize].is_none(), "tag {t} confirmed twice: {frames:?}");
            outcome[t as usize] = Some(ack);
        }
    }
    (1..=n)
        .map(|t| outcome[t as usize].unwrap_or_else(|| panic!("tag {t} never confirmed: {frames:?}")))
        .collect()
}
