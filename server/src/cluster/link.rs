//! The link between two nodes: an authenticated TCP connection that carries
//! numbered calls and their replies, so that many calls share one
//! connection and a slow call does not hold up the others.
//!
//! Frames are a 4-byte big-endian length (tokio-util's
//! `LengthDelimitedCodec`) and a MessagePack body, in which message bodies
//! travel as bytes. A connection opens with a handshake in which each side proves it knows the cluster
//! secret ([`Secret`]) over the other's fresh nonce; a peer that cannot is
//! refused and disconnected, and nothing else is read from it. Then the
//! caller sends [`Wire::Call`]s and the callee answers each with a
//! [`Wire::Reply`] carrying the same id, in any order.
//!
//! The link runs on plain TCP, or on TLS when the cluster has
//! `cluster.tls = true` ([`super::tls`]): the TLS session is set up
//! first, and the secret handshake and every frame after it travel inside
//! it. The two are told apart by the first byte a dialling node sends (a
//! TLS record starts with 22, a handshake frame's length with 0), so a
//! node refuses a peer of the other kind with a clear reason instead of a
//! garbled handshake: a plain peer of a TLS node is told so in a plain
//! `Refused` frame. Once the handshakes are done, the stream is split into
//! boxed read and write halves ([`LinkIo`]), the same types for both kinds,
//! so the rest of the link is written once; the plain path's halves are
//! still tokio's lock-free `TcpStream` halves. Each side logs a TLS link
//! it authenticated with the subject of the certificate the other node
//! presented.
//!
//! [`Peer`] is the calling side: it connects on the first call, and again
//! on the next call after the connection was lost. [`serve`] is the called
//! side: it runs a handler per call. Each connection's outgoing frames wait
//! in a bounded queue: when a peer reads slowly, its callers (and the
//! replies to it) wait, and no buffer grows without bound.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{Framed, FramedRead, FramedWrite, LengthDelimitedCodec};

use super::secret::Secret;
use super::tls::LinkTls;
use crate::broker::error::BrokerError;

/// The largest frame either side accepts once the link is authenticated.
pub const MAX_FRAME: usize = 64 << 20;
/// The largest handshake frame: before a peer has proved it knows the
/// secret, it cannot make this node allocate more than this.
const MAX_HANDSHAKE_FRAME: usize = 4096;
/// How long the handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long dialling a node may take: a node cut off by a partition does
/// not refuse, its packets are dropped, and a connect would otherwise
/// wait for the kernel's retries (minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("cannot reach {0}")]
    Unreachable(String),
    #[error("{0} refused the link: {1}")]
    Refused(String, String),
    #[error("the link to {0} was lost")]
    Lost(String),
    #[error("{0} did not answer in time")]
    Timeout(String),
    /// The other node answered with an error.
    #[error("{0}")]
    Remote(BrokerError),
}

/// What the link's failures are to a client: the other node's own error,
/// or the cluster being unavailable.
impl From<LinkError> for BrokerError {
    fn from(e: LinkError) -> BrokerError {
        match e {
            LinkError::Remote(e) => e,
            other => BrokerError::unavailable(other.to_string()),
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
enum Handshake {
    Hello { node: String, nonce: Vec<u8> },
    Challenge { node: String, nonce: Vec<u8>, proof: Vec<u8> },
    Proof { proof: Vec<u8> },
    Welcome,
    Refused { reason: String },
}

/// What travels once the handshake is done.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(bound(
    serialize = "Q: Serialize, A: Serialize",
    deserialize = "Q: DeserializeOwned, A: DeserializeOwned"
))]
pub enum Wire<Q, A> {
    Call { id: u64, body: Q },
    Reply { id: u64, body: Result<A, BrokerError> },
}

/// How many encoded frames may wait for a connection's writer.
const WRITE_QUEUE: usize = 256;

type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;
type Reader = FramedRead<BoxRead, LengthDelimitedCodec>;
type Writer = FramedWrite<BoxWrite, LengthDelimitedCodec>;

/// A connected stream the link can run on, and how it splits into halves
/// that a reading task and a writing task own.
trait LinkIo: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    fn into_halves(self) -> (BoxRead, BoxWrite);
}

impl LinkIo for TcpStream {
    fn into_halves(self) -> (BoxRead, BoxWrite) {
        let (r, w) = self.into_split();
        (Box::new(r), Box::new(w))
    }
}

impl LinkIo for tokio_rustls::server::TlsStream<TcpStream> {
    fn into_halves(self) -> (BoxRead, BoxWrite) {
        let (r, w) = tokio::io::split(self);
        (Box::new(r), Box::new(w))
    }
}

impl LinkIo for tokio_rustls::client::TlsStream<TcpStream> {
    fn into_halves(self) -> (BoxRead, BoxWrite) {
        let (r, w) = tokio::io::split(self);
        (Box::new(r), Box::new(w))
    }
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 22;

/// What this node says to a plain-TCP peer when its link requires TLS.
const TLS_REQUIRED: &str =
    "this node's cluster link requires TLS (cluster.tls = true) and the peer dialled in plain TCP";

fn codec(max: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().length_field_length(4).max_frame_length(max).new_codec()
}

fn encode<T: Serialize>(v: &T) -> std::io::Result<Bytes> {
    let body = rmp_serde::to_vec_named(v).map_err(std::io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(std::io::Error::other(format!("a frame of {} bytes is over the limit", body.len())));
    }
    Ok(Bytes::from(body))
}

async fn write_frame<S, T>(w: &mut S, v: &T) -> std::io::Result<()>
where
    S: Sink<Bytes, Error = std::io::Error> + Unpin,
    T: Serialize,
{
    w.send(encode(v)?).await
}

/// Reads one frame; None at a clean end of stream. The codec refuses a
/// frame over its limit before buffering it.
async fn read_frame<S, T>(r: &mut S) -> std::io::Result<Option<T>>
where
    S: Stream<Item = std::io::Result<BytesMut>> + Unpin,
    T: DeserializeOwned,
{
    match r.next().await {
        None => Ok(None),
        Some(Err(e)) => Err(e),
        Some(Ok(frame)) => rmp_serde::from_slice(&frame).map(Some).map_err(std::io::Error::other),
    }
}

/// Writes the frames queued for a connection, as many per flush as are
/// waiting, until the queue closes (then shuts the write side down) or the
/// socket fails.
async fn write_queued(mut w: Writer, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(f) = rx.recv().await {
        if w.feed(f).await.is_err() {
            return;
        }
        while let Ok(f) = rx.try_recv() {
            if w.feed(f).await.is_err() {
                return;
            }
        }
        if SinkExt::<Bytes>::flush(&mut w).await.is_err() {
            return;
        }
    }
    // The queue closed: the connection is done with. Shutting the write
    // side down tells the other node (a TLS close_notify, then FIN); a TLS
    // write half would otherwise keep the socket open while the read half
    // lives.
    let _ = SinkExt::<Bytes>::close(&mut w).await;
}

/// A stream after its handshake, split into framed halves for the
/// authenticated link.
fn split_framed<S: LinkIo>(framed: Framed<S, LengthDelimitedCodec>) -> Result<(Reader, Writer), String> {
    let parts = framed.into_parts();
    if !parts.read_buf.is_empty() {
        return Err("data arrived before the handshake ended".into());
    }
    let (rd, wr) = parts.io.into_halves();
    Ok((FramedRead::new(rd, codec(MAX_FRAME)), FramedWrite::new(wr, codec(MAX_FRAME))))
}

fn nonce() -> Vec<u8> {
    rand::random::<[u8; 32]>().to_vec()
}

/// The calling side of the handshake. Returns the peer's node name.
async fn client_handshake<S: LinkIo>(
    s: &mut Framed<S, LengthDelimitedCodec>,
    me: &str,
    secret: &Secret,
) -> Result<String, String> {
    let mine = nonce();
    let io = |e: std::io::Error| e.to_string();
    write_frame(s, &Handshake::Hello { node: me.to_owned(), nonce: mine.clone() }).await.map_err(io)?;
    let (node, theirs) = match read_frame(s).await.map_err(io)? {
        Some(Handshake::Challenge { node, nonce, proof }) => {
            if !secret.verify("server", &nonce, &mine, &proof) {
                return Err(format!("{node} does not know the cluster secret"));
            }
            (node, nonce)
        }
        Some(Handshake::Refused { reason }) => return Err(reason),
        _ => return Err("unexpected handshake message".into()),
    };
    let proof = secret.prove("client", &mine, &theirs);
    write_frame(s, &Handshake::Proof { proof }).await.map_err(io)?;
    match read_frame(s).await.map_err(io)? {
        Some(Handshake::Welcome) => Ok(node),
        Some(Handshake::Refused { reason }) => Err(reason),
        _ => Err("unexpected handshake message".into()),
    }
}

/// The called side of the handshake. Returns the peer's node name.
async fn server_handshake<S: LinkIo>(
    s: &mut Framed<S, LengthDelimitedCodec>,
    me: &str,
    secret: &Secret,
) -> Result<String, String> {
    let io = |e: std::io::Error| e.to_string();
    let (node, theirs) = match read_frame(s).await.map_err(io)? {
        Some(Handshake::Hello { node, nonce }) => (node, nonce),
        _ => return Err("unexpected handshake message".into()),
    };
    let mine = nonce();
    let proof = secret.prove("server", &mine, &theirs);
    write_frame(s, &Handshake::Challenge { node: me.to_owned(), nonce: mine.clone(), proof })
        .await
        .map_err(io)?;
    match read_frame(s).await.map_err(io)? {
        Some(Handshake::Proof { proof }) if secret.verify("client", &theirs, &mine, &proof) => {
            write_frame(s, &Handshake::Welcome).await.map_err(io)?;
            Ok(node)
        }
        Some(Handshake::Proof { .. }) => {
            let reason = "the cluster secret does not match".to_owned();
            let _ = write_frame(s, &Handshake::Refused { reason: reason.clone() }).await;
            Err(format!("{node}: {reason}"))
        }
        // The caller checks our proof first, and leaves when it fails.
        None => Err(format!("{node} left during the handshake: it does not have this node's cluster secret")),
        _ => Err("unexpected handshake message".into()),
    }
}

/// What runs one call: the caller's node name and the call, to the reply.
/// It is called in the order the calls arrive; the future it returns runs
/// concurrently with the calls after it.
pub type Handler<Q, A> =
    Arc<dyn Fn(String, Q) -> Pin<Box<dyn Future<Output = Result<A, BrokerError>> + Send>> + Send + Sync>;

/// Accepts links on `listener` (TLS ones only when `tls` is set, plain
/// ones only when not) and runs `handler` for every call, until the task
/// is aborted.
pub async fn serve<Q, A>(
    listener: TcpListener,
    me: String,
    secret: Secret,
    tls: Option<Arc<LinkTls>>,
    handler: Handler<Q, A>,
) where
    Q: DeserializeOwned + Send + 'static,
    A: Serialize + Send + 'static,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok((s, p)) => (s, crate::net::canonical(p)),
            Err(e) => {
                tracing::warn!("cluster listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (me, secret, tls, handler) = (me.clone(), secret.clone(), tls.clone(), handler.clone());
        tokio::spawn(async move {
            if let Err(e) = accept_one(stream, peer, me, secret, tls, handler).await {
                tracing::warn!("cluster link from {peer}: {e}");
            }
        });
    }
}

/// Sets up TLS on an accepted connection when the link uses it, after
/// checking from its first byte that the peer speaks what this node
/// speaks; then serves it.
async fn accept_one<Q, A>(
    stream: TcpStream,
    peer: SocketAddr,
    me: String,
    secret: Secret,
    tls: Option<Arc<LinkTls>>,
    handler: Handler<Q, A>,
) -> Result<(), String>
where
    Q: DeserializeOwned + Send + 'static,
    A: Serialize + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first))
        .await
        .map_err(|_| "handshake timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Ok(());
    }
    let speaks_tls = first[0] == TLS_HANDSHAKE_RECORD;
    match tls {
        Some(tls) if speaks_tls => {
            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream))
                .await
                .map_err(|_| "TLS handshake timed out".to_owned())?
                .map_err(|e| format!("TLS handshake failed, peer refused: {e}"))?;
            let cert = LinkTls::subject(tls.get_ref().1.peer_certificates());
            serve_one(tls, peer, Some(cert), me, secret, handler).await
        }
        Some(_) => {
            // Tell the plain peer why, in the plain handshake it expects;
            // its Hello is read first, so that closing does not reset the
            // connection before the answer arrives.
            let mut framed = Framed::new(stream, codec(MAX_HANDSHAKE_FRAME));
            let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
                let _ = read_frame::<_, serde::de::IgnoredAny>(&mut framed).await;
                let _ = write_frame(&mut framed, &Handshake::Refused { reason: TLS_REQUIRED.into() }).await;
            })
            .await;
            Err(format!("refused a plain-TCP peer: {TLS_REQUIRED}"))
        }
        None if speaks_tls => {
            Err("refused a TLS peer: this node's cluster link is plain TCP (cluster.tls is \
                                   off) and the peer dialled with TLS"
                .into())
        }
        None => serve_one(stream, peer, None, me, secret, handler).await,
    }
}

/// Serves an accepted link; `cert` is the subject of the certificate the
/// peer presented, on TLS.
async fn serve_one<S, Q, A>(
    stream: S,
    peer: SocketAddr,
    cert: Option<String>,
    me: String,
    secret: Secret,
    handler: Handler<Q, A>,
) -> Result<(), String>
where
    S: LinkIo,
    Q: DeserializeOwned + Send + 'static,
    A: Serialize + Send + 'static,
{
    let mut framed = Framed::new(stream, codec(MAX_HANDSHAKE_FRAME));
    let from = tokio::time::timeout(HANDSHAKE_TIMEOUT, server_handshake(&mut framed, &me, &secret))
        .await
        .map_err(|_| "handshake timed out".to_owned())??;
    match cert {
        Some(cert) => tracing::info!(
            "cluster link from {from} ({peer}) authenticated, over TLS; its certificate: {cert}"
        ),
        None => tracing::debug!("cluster link from {from} ({peer}) authenticated"),
    }
    let (mut rd, wr) = split_framed(framed)?;
    let (tx, rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let writer = tokio::spawn(write_queued(wr, rx));
    let result = loop {
        let wire: Wire<Q, serde::de::IgnoredAny> = match read_frame(&mut rd).await {
            Ok(Some(w)) => w,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e.to_string()),
        };
        let Wire::Call { id, body } = wire else { break Err("a reply on the called side".into()) };
        // The handler is called here, in the order the calls arrived, and
        // whatever it does before returning its future happens in that
        // order (forwarded publishes rely on it); the future runs apart.
        let reply = handler(from.clone(), body);
        let tx = tx.clone();
        tokio::spawn(async move {
            let body = reply.await;
            match encode(&Wire::<(), A>::Reply { id, body }) {
                Ok(f) => {
                    let _ = tx.send(f).await;
                }
                Err(e) => tracing::error!("cannot encode a reply for the cluster link: {e}"),
            }
        });
    };
    drop(tx);
    let _ = writer.await;
    result
}

type Pending<A> = parking_lot::Mutex<Option<HashMap<u64, oneshot::Sender<Result<A, BrokerError>>>>>;

struct Conn<A> {
    tx: mpsc::Sender<Bytes>,
    /// None once the connection is gone.
    pending: Pending<A>,
    /// The task reading replies.
    reader: std::sync::OnceLock<tokio::task::AbortHandle>,
}

/// The calling side of a link to one node.
pub struct Peer<Q, A> {
    addr: String,
    me: String,
    secret: Secret,
    tls: Option<Arc<LinkTls>>,
    conn: tokio::sync::Mutex<Option<Arc<Conn<A>>>>,
    next_id: AtomicU64,
    _q: std::marker::PhantomData<fn(Q)>,
}

impl<Q, A> Peer<Q, A>
where
    Q: Serialize + Send + 'static,
    A: DeserializeOwned + Send + 'static,
{
    /// A link to `addr`, over TLS when `tls` is set.
    pub fn new(
        addr: impl Into<String>,
        me: impl Into<String>,
        secret: Secret,
        tls: Option<Arc<LinkTls>>,
    ) -> Peer<Q, A> {
        Peer {
            addr: addr.into(),
            me: me.into(),
            secret,
            tls,
            conn: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
            _q: std::marker::PhantomData,
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Gives the connection up (the node was found down): every call
    /// waiting on it fails now instead of at its timeout, which a node cut
    /// off by a partition would make long, and the next call dials again.
    /// A connection being dialled is left to its own timeout.
    pub fn abandon(&self) {
        let Ok(mut slot) = self.conn.try_lock() else { return };
        if let Some(c) = slot.take() {
            c.pending.lock().take();
            if let Some(r) = c.reader.get() {
                r.abort();
            }
        }
    }

    /// Sends `q` now, after any call started before it, and returns where
    /// its reply will arrive (an error there when the link is lost).
    /// Calls started one after the other reach the other node in that
    /// order.
    pub async fn start_call(&self, q: Q) -> Result<oneshot::Receiver<Result<A, BrokerError>>, LinkError> {
        self.send(q).await.map(|(_, _, reply)| reply)
    }

    /// Sends `q` and waits up to `timeout` for the reply.
    pub async fn call(&self, q: Q, timeout: Duration) -> Result<A, LinkError> {
        let (conn, id, reply) = tokio::time::timeout(timeout, self.send(q))
            .await
            .map_err(|_| LinkError::Timeout(self.addr.clone()))??;
        match tokio::time::timeout(timeout, reply).await {
            Err(_) => {
                if let Some(p) = conn.pending.lock().as_mut() {
                    p.remove(&id);
                }
                Err(LinkError::Timeout(self.addr.clone()))
            }
            Ok(Err(_)) => Err(LinkError::Lost(self.addr.clone())),
            Ok(Ok(r)) => r.map_err(LinkError::Remote),
        }
    }

    /// Registers a call and writes it on the link (connecting first when
    /// there is no link).
    async fn send(
        &self,
        q: Q,
    ) -> Result<(Arc<Conn<A>>, u64, oneshot::Receiver<Result<A, BrokerError>>), LinkError> {
        let conn = self.connection().await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (done, reply) = oneshot::channel();
        match conn.pending.lock().as_mut() {
            Some(p) => p.insert(id, done),
            None => return Err(LinkError::Lost(self.addr.clone())),
        };
        let f = encode(&Wire::<Q, ()>::Call { id, body: q })
            .map_err(|e| LinkError::Remote(BrokerError::internal(format!("cannot encode a call: {e}"))))?;
        conn.tx.send(f).await.map_err(|_| LinkError::Lost(self.addr.clone()))?;
        Ok((conn, id, reply))
    }

    async fn connection(&self) -> Result<Arc<Conn<A>>, LinkError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| c.pending.lock().is_some() && !c.tx.is_closed()) {
            return Ok(c.clone());
        }
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| LinkError::Timeout(self.addr.clone()))?
            .map_err(|e| LinkError::Unreachable(format!("{}: {e}", self.addr)))?;
        let _ = stream.set_nodelay(true);
        let conn = match &self.tls {
            None => self.establish(stream, None).await?,
            Some(tls) => {
                let name = LinkTls::server_name(&self.addr);
                let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.connector().connect(name, stream))
                    .await
                    .map_err(|_| LinkError::Timeout(self.addr.clone()))?
                    .map_err(|e| {
                        LinkError::Refused(
                            self.addr.clone(),
                            format!(
                                "TLS handshake failed: {e} (does that node have cluster.tls on, with a \
                                 certificate from this node's CA?)"
                            ),
                        )
                    })?;
                let cert = LinkTls::subject(tls.get_ref().1.peer_certificates());
                self.establish(tls, Some(cert)).await?
            }
        };
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Runs the secret handshake on a connected stream, then starts the
    /// connection's writer and reader. `cert` is the subject of the
    /// certificate the other node presented, on TLS.
    async fn establish<S: LinkIo>(&self, stream: S, cert: Option<String>) -> Result<Arc<Conn<A>>, LinkError> {
        let mut framed = Framed::new(stream, codec(MAX_HANDSHAKE_FRAME));
        let peer =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, client_handshake(&mut framed, &self.me, &self.secret))
                .await
                .map_err(|_| LinkError::Timeout(self.addr.clone()))?
                .map_err(|e| {
                    // In TLS 1.3 the client's handshake ends before the
                    // server has checked its certificate: a refusal of it
                    // arrives as an alert on the first read.
                    let e = match self.tls.is_some() && e.contains("alert") {
                        true => format!(
                            "the TLS session was refused ({e}): is this node's certificate signed by the \
                             cluster's CA?"
                        ),
                        false => e,
                    };
                    LinkError::Refused(self.addr.clone(), e)
                })?;
        match cert {
            Some(cert) => tracing::info!(
                "cluster link to {peer} ({}) authenticated, over TLS; its certificate: {cert}",
                self.addr
            ),
            None => tracing::debug!("cluster link to {peer} ({}) authenticated", self.addr),
        }
        let (mut rd, wr) = split_framed(framed).map_err(|e| LinkError::Refused(self.addr.clone(), e))?;
        let (tx, rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
        let conn = Arc::new(Conn {
            tx,
            pending: parking_lot::Mutex::new(Some(HashMap::new())),
            reader: Default::default(),
        });
        tokio::spawn(write_queued(wr, rx));
        let reader_conn = conn.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(Wire::Reply { id, body })) =
                read_frame::<_, Wire<serde::de::IgnoredAny, A>>(&mut rd).await
            {
                let done = reader_conn.pending.lock().as_mut().and_then(|p| p.remove(&id));
                if let Some(done) = done {
                    let _ = done.send(body);
                }
            }
            // Every call still waiting fails now, rather than at its timeout.
            reader_conn.pending.lock().take();
        });
        let _ = conn.reader.set(reader.abort_handle());
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn echo() -> Handler<String, String> {
        Arc::new(|from, q: String| {
            Box::pin(async move {
                if q == "fail" {
                    return Err(BrokerError::not_found("it failed"));
                }
                if q == "slow" {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Ok(format!("{from} said {q}"))
            })
        })
    }

    async fn server(secret: &str) -> (String, tokio::task::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let task = tokio::spawn(serve(l, "warren@b".into(), Secret::new(secret), None, echo()));
        (addr, task)
    }

    #[tokio::test]
    async fn calls_and_replies_share_one_link_in_any_order() {
        let (addr, _task) = server("s3cret").await;
        let p: Arc<Peer<String, String>> = Arc::new(Peer::new(addr, "warren@a", Secret::new("s3cret"), None));
        let t = Duration::from_secs(5);
        let slow = {
            let p = p.clone();
            tokio::spawn(async move { p.call("slow".into(), t).await })
        };
        assert_eq!(p.call("hi".into(), t).await.unwrap(), "warren@a said hi");
        assert_eq!(
            p.call("fail".into(), t).await,
            Err(LinkError::Remote(BrokerError::not_found("it failed")))
        );
        assert_eq!(slow.await.unwrap().unwrap(), "warren@a said slow");
    }

    #[tokio::test]
    async fn a_wrong_secret_is_refused_on_both_sides() {
        let (addr, _task) = server("right").await;
        let p: Peer<String, String> = Peer::new(addr.clone(), "warren@a", Secret::new("wrong"), None);
        match p.call("hi".into(), Duration::from_secs(5)).await {
            Err(LinkError::Refused(_, reason)) => {
                assert!(reason.contains("does not know the cluster secret"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_lost_link_fails_the_waiting_call_and_the_next_call_reconnects() {
        let (addr, task) = server("s").await;
        let p: Arc<Peer<String, String>> =
            Arc::new(Peer::new(addr.clone(), "warren@a", Secret::new("s"), None));
        let t = Duration::from_secs(5);
        assert!(p.call("hi".into(), t).await.is_ok());
        task.abort();
        let _ = task.await;
        // The listener is gone; the established connection's task too only
        // when its socket closes, so drop the peer's connection by force.
        *p.conn.lock().await = None;
        assert!(matches!(p.call("hi".into(), t).await, Err(LinkError::Unreachable(_))));
        // A new server on the same port: the next call connects again.
        let l = TcpListener::bind(&addr).await.unwrap();
        let _again = tokio::spawn(serve(l, "warren@b".into(), Secret::new("s"), None, echo()));
        assert_eq!(p.call("back".into(), t).await.unwrap(), "warren@a said back");
    }

    #[tokio::test]
    async fn garbage_instead_of_a_handshake_is_dropped_and_the_listener_keeps_serving() {
        let (addr, _task) = server("s").await;
        let mut raw = TcpStream::connect(&addr).await.unwrap();
        raw.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut buf)).await.unwrap().unwrap_or(0);
        assert_eq!(n, 0, "the connection is closed without an answer");
        let p: Peer<String, String> = Peer::new(addr, "warren@a", Secret::new("s"), None);
        assert!(p.call("hi".into(), Duration::from_secs(5)).await.is_ok());
    }
}
