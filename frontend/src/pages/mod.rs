//! One module per page of the dashboard.

pub mod admin;
pub mod connections;
pub mod exchanges;
pub mod login;
pub mod overview;
pub mod queues;
pub mod replication;
