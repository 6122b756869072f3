//! Building the stats parts of API objects: `message_stats` and the queue
//! length fields, each count with its `_details`, from a live counter
//! reading and the sampler's series for the object.
//!
//! Counts are always the live values; rates and samples come from the
//! sampler, so they are zero until an object has been sampled twice.

use warren_api_types::stats::{MessageStats, QueueTotals, RateDetails};

use super::paging::{History, ListQuery};
use super::stats::{CH_LEN, Q_LEN, Series, TOT_LEN};

/// A field of `message_stats`.
#[derive(Debug, Clone, Copy)]
pub enum Field {
    Publish,
    PublishIn,
    PublishOut,
    Confirm,
    ReturnUnroutable,
    Deliver,
    DeliverNoAck,
    Get,
    GetNoAck,
    GetEmpty,
    Ack,
    Redeliver,
}

fn set(ms: &mut MessageStats, f: Field, count: u64, d: RateDetails) {
    let (c, dd) = match f {
        Field::Publish => (&mut ms.publish, &mut ms.publish_details),
        Field::PublishIn => (&mut ms.publish_in, &mut ms.publish_in_details),
        Field::PublishOut => (&mut ms.publish_out, &mut ms.publish_out_details),
        Field::Confirm => (&mut ms.confirm, &mut ms.confirm_details),
        Field::ReturnUnroutable => (&mut ms.return_unroutable, &mut ms.return_unroutable_details),
        Field::Deliver => (&mut ms.deliver, &mut ms.deliver_details),
        Field::DeliverNoAck => (&mut ms.deliver_no_ack, &mut ms.deliver_no_ack_details),
        Field::Get => (&mut ms.get, &mut ms.get_details),
        Field::GetNoAck => (&mut ms.get_no_ack, &mut ms.get_no_ack_details),
        Field::GetEmpty => (&mut ms.get_empty, &mut ms.get_empty_details),
        Field::Ack => (&mut ms.ack, &mut ms.ack_details),
        Field::Redeliver => (&mut ms.redeliver, &mut ms.redeliver_details),
    };
    *c = Some(count);
    *dd = Some(d);
}

/// Fields of a queue sample after the three lengths.
const QUEUE_FIELDS: [Field; 8] = [
    Field::Publish,
    Field::Deliver,
    Field::DeliverNoAck,
    Field::Get,
    Field::GetNoAck,
    Field::GetEmpty,
    Field::Ack,
    Field::Redeliver,
];

/// Fields of a channel sample (and of the vhost/node totals after the
/// three lengths).
const CHANNEL_FIELDS: [Field; CH_LEN] = [
    Field::Publish,
    Field::Confirm,
    Field::ReturnUnroutable,
    Field::Deliver,
    Field::DeliverNoAck,
    Field::Get,
    Field::GetNoAck,
    Field::Ack,
    Field::Redeliver,
];

/// `message_stats` from `fields` found at `offset..` of the sample.
fn message_stats<const N: usize>(
    fields: &[Field],
    offset: usize,
    live: &[u64; N],
    series: Option<&Series<N>>,
    hist: Option<History>,
) -> MessageStats {
    let mut ms = MessageStats::default();
    let details = |pick: &dyn Fn(&[u64; N]) -> u64| match series {
        Some(s) => s.details(pick, hist),
        None => RateDetails::default(),
    };
    for (i, f) in fields.iter().enumerate() {
        let idx = offset + i;
        set(&mut ms, *f, live[idx], details(&|v| v[idx]));
    }
    // deliver_get: everything handed out, delivered or fetched.
    let dg: Vec<usize> = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f, Field::Deliver | Field::DeliverNoAck | Field::Get | Field::GetNoAck))
        .map(|(i, _)| offset + i)
        .collect();
    let sum = |v: &[u64; N]| dg.iter().map(|i| v[*i]).sum::<u64>();
    ms.deliver_get = Some(sum(live));
    ms.deliver_get_details = Some(details(&sum));
    ms
}

fn lengths<const N: usize>(
    live: &[u64; N],
    series: Option<&Series<N>>,
    hist: Option<History>,
) -> QueueTotals {
    let d = |i: usize| series.map(|s| s.details(|v| v[i], hist)).unwrap_or_default();
    QueueTotals {
        messages: live[0],
        messages_details: d(0),
        messages_ready: live[1],
        messages_ready_details: d(1),
        messages_unacknowledged: live[2],
        messages_unacknowledged_details: d(2),
    }
}

pub fn queue_stats(
    live: &[u64; Q_LEN],
    series: Option<&Series<Q_LEN>>,
    q: &ListQuery,
) -> (QueueTotals, MessageStats) {
    (lengths(live, series, q.lengths), message_stats(&QUEUE_FIELDS, 3, live, series, q.msg_rates))
}

pub fn channel_stats(live: &[u64; CH_LEN], series: Option<&Series<CH_LEN>>, q: &ListQuery) -> MessageStats {
    message_stats(&CHANNEL_FIELDS, 0, live, series, q.msg_rates)
}

pub fn exchange_stats(live: &[u64; 2], series: Option<&Series<2>>, q: &ListQuery) -> MessageStats {
    message_stats(&[Field::PublishIn, Field::PublishOut], 0, live, series, q.msg_rates)
}

/// Vhost and node totals: lengths are given live, message counts come
/// from the last sample (they lag by at most one interval).
pub fn totals_stats(
    live_lengths: [u64; 3],
    series: Option<&Series<TOT_LEN>>,
    q: &ListQuery,
) -> (QueueTotals, MessageStats) {
    let mut live = series.and_then(|s| s.last().copied()).unwrap_or([0; TOT_LEN]);
    live[..3].copy_from_slice(&live_lengths);
    (lengths(&live, series, q.lengths), message_stats(&CHANNEL_FIELDS, 3, &live, series, q.msg_rates))
}

/// A rate-only details object for one field of a small series.
pub fn details_of<const N: usize>(series: Option<&Series<N>>, i: usize) -> RateDetails {
    series.map(|s| s.details(|v| v[i], None)).unwrap_or_default()
}
