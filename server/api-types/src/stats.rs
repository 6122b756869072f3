//! Counters and rates. Every count `x` comes with `x_details`, holding the
//! rate per second over the last sampling interval and, when the client asked
//! for history (`lengths_age`/`msg_rates_age` with `*_incr`), the samples.

use serde::{Deserialize, Serialize};

/// One point of a chart: the counter's value at `timestamp` (ms since epoch).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub sample: u64,
    pub timestamp: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateDetails {
    pub rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<Vec<Sample>>,
    /// Mean of the samples' values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg: Option<f64>,
    /// Mean rate between the first and the last sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_rate: Option<f64>,
}

macro_rules! message_stats {
    ($($field:ident, $details:ident;)*) => {
        /// RabbitMQ's `message_stats`: which fields appear depends on the
        /// object (queues have no `confirm`, exchanges have `publish_in`).
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct MessageStats {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<u64>,
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $details: Option<RateDetails>,
            )*
        }
    };
}

message_stats! {
    publish, publish_details;
    publish_in, publish_in_details;
    publish_out, publish_out_details;
    confirm, confirm_details;
    return_unroutable, return_unroutable_details;
    deliver, deliver_details;
    deliver_no_ack, deliver_no_ack_details;
    get, get_details;
    get_no_ack, get_no_ack_details;
    get_empty, get_empty_details;
    deliver_get, deliver_get_details;
    ack, ack_details;
    redeliver, redeliver_details;
}

/// Message counts of a queue, or summed over queues (`queue_totals`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueTotals {
    pub messages: u64,
    pub messages_details: RateDetails,
    pub messages_ready: u64,
    pub messages_ready_details: RateDetails,
    pub messages_unacknowledged: u64,
    pub messages_unacknowledged_details: RateDetails,
}
