//! Durable storage: definitions in SQLite (`definitions`) and persistent
//! messages in append-only segment files (`messages`).

pub mod definitions;
pub mod messages;
