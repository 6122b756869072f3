//! Warren: an AMQP 0-9-1 message broker that behaves like RabbitMQ.
//!
//! A tour of the modules, in reading order:
//!
//! - [`config`]: a node's settings; [`conf`] reads them from `warren.conf`.
//! - [`definitions`]: the words the broker, the store and the cluster share:
//!   [`definitions::DefinitionCommand`], every metadata change as a value.
//! - [`broker`]: the model. [`broker::Broker`] holds vhosts, users and
//!   permissions; a [`broker::vhost::VHost`] holds exchanges and queues.
//!   Every metadata change is a [`definitions::DefinitionCommand`] applied
//!   by [`broker::Broker::apply`]. Messages ([`broker::message::Message`]) are
//!   routed by exchanges ([`broker::exchange`]) into queues
//!   ([`broker::queue::Queue`]), which hand them to consumers through their
//!   connection's outbox ([`broker::consumer`]).
//! - [`store`]: what survives a restart: definitions in SQLite and
//!   persistent messages in checksummed segment files, also the pages of
//!   queues beyond their memory budget.
//! - [`amqp`]: the AMQP 0-9-1 server: the listener, one task per connection
//!   (handshake, frame reading and writing, heartbeats), and the channels'
//!   method handlers.
//! - [`http`]: the management HTTP API (RabbitMQ-compatible, axum), its
//!   auth, and the stats sampler that turns counters into rates.
//! - [`cluster`]: several nodes as one cluster (docs/cluster.md), a layer
//!   above the broker that implements its traits
//!   ([`broker::consensus::Consensus`] for metadata changes,
//!   [`broker::queue::backend::QueueBackends`] for queues held on other
//!   nodes): the authenticated inter-node link, the metadata Raft group, and
//!   queues served through every node.
//! - [`tls`]: TLS on the AMQP listener (AMQPS), with rabbitmq.conf's
//!   `ssl_options`.
//! - [`server`]: starts the listeners and stops them on a signal; [`net`]
//!   puts peer addresses in the form RabbitMQ shows (IPv4-mapped as IPv4).
//!
//! - `fuzzing` (tests and fuzz builds only): the fuzz targets' entry points
//!   (`fuzz/`), which a unit test also replays the committed corpus through.
//!
//! Not in this library: `warrenctl` (`src/ctl/`, built into the
//! `warrenctl` binary by `src/bin/warrenctl.rs`), rabbitmqctl's verbs as a
//! client of the management API, with the API's types from
//! `warren_api_types`; and the binaries' entry points in `src/bin/`.

pub mod amqp;
pub mod broker;
pub mod cluster;
pub mod conf;
pub mod config;
pub mod definitions;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod net;
pub mod server;
pub mod store;
pub mod tls;
pub mod x509;
