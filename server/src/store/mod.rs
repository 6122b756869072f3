//! Durable storage: definitions in SQLite (`definitions`) and persistent
//! messages in append-only segment files (`messages`).

pub mod definitions;
pub mod messages;

use std::sync::Arc;

/// The two message stores of a node: `persistent` holds persistent messages
/// of durable queues and survives restarts; `paging` takes the other
/// messages that do not fit in memory and is wiped at start.
pub struct Stores {
    pub persistent: Arc<messages::MessageStore>,
    pub paging: Arc<messages::MessageStore>,
}
