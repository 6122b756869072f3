//! The management API over HTTPS (`management.ssl.port = 15671` and the
//! other `management.ssl.*` keys, as in RabbitMQ's management plugin).
//!
//! The same router as the plain listener is served by axum over a
//! [`TlsListener`]: a TCP listener whose connections are handed to axum only
//! once their TLS handshake (`crate::tls::handshake`, with the node's
//! handshake timeout) has completed. Handshakes run concurrently, so a slow
//! or silent client does not hold up the others, and a client that sends
//! plain HTTP gets no HTTP answer. Responses over HTTPS carry
//! `Strict-Transport-Security`; the plain listener's do not.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::serve::{Listener, ListenerExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tower_http::set_header::SetResponseHeaderLayer;

use super::Ctx;

/// HSTS for a year, RabbitMQ's documented example value.
const HSTS: &str = "max-age=31536000";

/// A TCP listener yielding connections whose TLS handshake is complete.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: Arc<crate::tls::Reloadable>,
    timeout: Duration,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, acceptor: Arc<crate::tls::Reloadable>, timeout: Duration) -> TlsListener {
        TlsListener { tcp, acceptor, timeout, handshakes: JoinSet::new() }
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let mut backoff = Duration::from_millis(10);
        loop {
            // Both futures are cancel-safe: a connection accepted or a
            // handshake finished is never lost by the other winning.
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        backoff = Duration::from_millis(10);
                        let peer = crate::net::canonical(peer);
                        let (acceptor, timeout) = (self.acceptor.acceptor(), self.timeout);
                        self.handshakes.spawn(async move {
                            crate::tls::handshake(&acceptor, tcp, peer, timeout).await.map(|tls| (tls, peer))
                        });
                    }
                    Err(e) => {
                        tracing::error!("HTTPS accept failed: {e}; retrying in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    }
                },
                // Failed handshakes were logged; the loop goes on polling.
                Some(joined) = self.handshakes.join_next() => {
                    if let Ok(Some(done)) = joined {
                        return done;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Serves the API over TLS on one listener until the task is aborted.
pub async fn serve(ctx: Ctx, listener: TcpListener, acceptor: Arc<crate::tls::Reloadable>) {
    let timeout = ctx.broker.config.handshake_timeout;
    let app = super::router(ctx)
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        ))
        .into_make_service_with_connect_info::<SocketAddr>();
    // axum gives `ConnectInfo<SocketAddr>` (the loopback rule needs it) to
    // any listener wrapped by `tap_io`; the tap itself has nothing to do.
    let listener = TlsListener::new(listener, acceptor, timeout).tap_io(|_| ());
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("HTTPS listener stopped: {e}");
    }
}
