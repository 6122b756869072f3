//! The socket of one connection with its read and write buffers.
//!
//! Reads and writes use readiness plus `try_read`/`try_write`, so that one
//! task can wait for input, output room and outbox work at once without
//! ever blocking in a write while the peer blocks in its own.
//!
//! The socket is the client's TCP connection, or, for a TLS client, this
//! node's end of the socket pair its TLS task relays through (`crate::tls`).

use std::io;
use std::time::Instant;

use bytes::BytesMut;
use tokio::net::{TcpStream, UnixStream};

use super::codec::FrameWriter;

const READ_CHUNK: usize = 64 * 1024;

/// A connection's socket: readiness and non-blocking reads and writes.
pub enum Socket {
    Tcp(TcpStream),
    /// Plain bytes relayed from a TLS connection.
    Relay(UnixStream),
}

impl Socket {
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.readable().await,
            Socket::Relay(s) => s.readable().await,
        }
    }

    pub async fn writable(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.writable().await,
            Socket::Relay(s) => s.writable().await,
        }
    }

    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_read_buf(buf),
            Socket::Relay(s) => s.try_read_buf(buf),
        }
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_write(buf),
            Socket::Relay(s) => s.try_write(buf),
        }
    }
}

pub struct Io {
    pub stream: Socket,
    pub rbuf: BytesMut,
    pub out: FrameWriter,
    pub last_read: Instant,
    pub last_write: Instant,
    pub read_bytes: u64,
    pub written_bytes: u64,
}

impl Io {
    pub fn new(stream: Socket, frame_max: u32) -> Self {
        let now = Instant::now();
        Io {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            out: FrameWriter::new(frame_max),
            last_read: now,
            last_write: now,
            read_bytes: 0,
            written_bytes: 0,
        }
    }

    /// Reads what is available without waiting. Ok(false) on end of stream.
    pub fn try_read(&mut self) -> io::Result<bool> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        match self.stream.try_read_buf(&mut self.rbuf) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.read_bytes += n as u64;
                self.last_read = Instant::now();
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Waits until something can be read, then reads it.
    pub async fn read_some(&mut self) -> io::Result<bool> {
        loop {
            self.stream.readable().await?;
            let before = self.rbuf.len();
            if !self.try_read()? {
                return Ok(false);
            }
            if self.rbuf.len() > before {
                return Ok(true);
            }
        }
    }

    /// Writes as much of the pending output as the socket takes now.
    pub fn try_flush(&mut self) -> io::Result<()> {
        while !self.out.is_empty() {
            match self.stream.try_write(self.out.unwritten()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out.consumed(n);
                    self.written_bytes += n as u64;
                    self.last_write = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub async fn flush_all(&mut self) -> io::Result<()> {
        loop {
            self.try_flush()?;
            if self.out.is_empty() {
                return Ok(());
            }
            self.stream.writable().await?;
        }
    }
}
