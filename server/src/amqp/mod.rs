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
use tokio_rustls::TlsAcceptor;

use crate::broker::Broker;

/// Accepts connections until the task is dropped. Accept errors (running
/// out of file descriptors, say) are logged and retried with a backoff
/// instead of ending the listener.
pub async fn accept_loop(broker: Arc<Broker>, listener: TcpListener, tls: Option<TlsAcceptor>) {
    let mut backoff = Duration::from_millis(10);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                // IPv4 clients of a dual-stack listener as IPv4, everywhere
                // from here on (names, the API, the loopback rule).
                let peer = crate::net::canonical(peer);
                let local = stream.local_addr().map(crate::net::canonical).unwrap_or(peer);
                let broker = broker.clone();
                match &tls {
                    None => {
                        tokio::spawn(connection::serve(broker, io::Socket::Tcp(stream), peer, local, None));
                    }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            let timeout = broker.config.handshake_timeout;
                            if let Some((relay, tls)) =
                                crate::tls::accept(&acceptor, stream, peer, timeout).await
                            {
                                connection::serve(broker, io::Socket::Relay(relay), peer, local, Some(tls))
                                    .await;
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
