//! The JSON types of Warren's management HTTP API, shared by the server
//! (`warren::http`), which serializes them, and the Leptos dashboard, which
//! deserializes them. Only serde, serde_json and percent-encoding: it must
//! compile to WASM.
//!
//! Field names are RabbitMQ's management API names, so the same tools work
//! against both brokers. Optional fields are skipped when absent, never
//! filled with made-up values.
//!
//! - [`objects`]: what the list and detail endpoints return.
//! - [`requests`]: the bodies clients send, with RabbitMQ's lenient scalars
//!   (`"true"` for `true`, `"5"` for `5`), as `rabbitmqadmin` sends them.
//! - [`stats`]: counters, rates and chart samples.
//! - [`url`]: names in URL paths (`%2F` for the vhost `/`) and RabbitMQ's
//!   form encoding of binding keys.

pub mod objects;
pub mod requests;
pub mod stats;
pub mod url;

use serde::{Deserialize, Serialize};

/// The body of every error answer: `{"error": "not_found", "reason": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub reason: String,
}

/// RabbitMQ's envelope for a paged list (`?page=N&page_size=M`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub total_count: usize,
    pub item_count: usize,
    pub filtered_count: usize,
    pub page: usize,
    pub page_size: usize,
    pub page_count: usize,
    pub items: Vec<T>,
}

/// The largest `page_size` accepted, as in RabbitMQ.
pub const MAX_PAGE_SIZE: usize = 500;
/// The `page_size` used when only `page` is given.
pub const DEFAULT_PAGE_SIZE: usize = 100;
