//! The AMQP 0-9-1 server: a listener that accepts sockets and spawns one
//! task per connection.
//!
//! - [`connection`]: one connection's task, from accept to close: reading
//!   frames, writing replies and deliveries, heartbeats; [`handshake`] opens
//!   it (authentication, tune, vhost).
//! - [`io`] and [`codec`]: the socket with its buffers, and frames cut out
//!   of and written into them.
//! - [`session`]: what the channels of a connection share, and the context
//!   a method handler runs in.
//! - [`channel`]: one channel's method handlers and state (declare and
//!   bind, publish, consume, settle, confirms and transactions), with
//!   [`unacked`], its log of deliveries awaiting an ack.

pub mod channel;
pub mod codec;
pub mod connection;
pub mod handshake;
pub mod io;
pub mod session;
pub mod unacked;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::broker::Broker;

/// Accepts connections until the task is dropped. Accept errors (running
/// out of file descriptors, say) are logged and retried with a backoff
/// instead of ending the listener.
pub async fn accept_loop(
    broker: Arc<Broker>,
    listener: TcpListener,
    tls: Option<Arc<crate::tls::Reloadable>>,
) {
    let mut backoff = Duration::from_millis(10);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                // IPv4 clients of a dual-stack listener as IPv4, everywhere
                // from here on (names, the API, the loopback rule).
                let peer = crate::net::canonical(peer);
                let local = stream.local_addr().map(crate::net::canonical).unwrap_or(peer);
                // A socket beyond the caps on handshakes in progress is
                // closed at once (RabbitMQ has no such cap), so idle or slow
                // sockets cannot take every place.
                let cfg = &broker.config;
                let ticket = match broker.connections.admission.handshake(
                    peer.ip(),
                    cfg.unauthenticated_connection_max,
                    cfg.unauthenticated_connection_max_per_address,
                ) {
                    Ok(t) => t,
                    Err(why) => {
                        tracing::warn!("closing AMQP connection from {peer} before its handshake: {why}");
                        drop(stream);
                        continue;
                    }
                };
                let broker = broker.clone();
                match &tls {
                    None => {
                        let socket = io::Socket::Tcp(stream);
                        tokio::spawn(connection::serve(broker, socket, peer, local, None, ticket));
                    }
                    Some(reloadable) => {
                        // The certificate in force when the client came.
                        let acceptor = reloadable.acceptor();
                        tokio::spawn(async move {
                            let timeout = broker.config.handshake_timeout;
                            if let Some((relay, tls)) =
                                crate::tls::accept(&acceptor, stream, peer, timeout).await
                            {
                                let socket = io::Socket::Relay(relay);
                                connection::serve(broker, socket, peer, local, Some(tls), ticket).await;
                            }
                        });
                    }
                }
            }
            Err(e) => {
                tracing::error!("accept failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}
