//! The pool's connections to PostgreSQL, with a bound on the size of one protocol message from the server.
//!
//! tokio-postgres reads each backend message whole before it hands it on, and a single value can be a gigabyte
//! (`SELECT repeat('x', 1000000000)`): buffered, it would take the whole server, and every tenant with it, down.
//! The row and byte caps of `db::query` only apply to rows already received. So every pooled connection's socket
//! is wrapped in [`BoundedStream`], which follows the protocol's framing (a type byte, then a 4-byte length) as the
//! bytes arrive and, before it passes on the header of a message longer than the bound, replaces that message with
//! an `ErrorResponse` (SQLSTATE 54000, [`MESSAGE_TOO_LARGE`]) and ends the connection. The over-long message is
//! never held: at most one read buffer of it is in memory. The pool discards the dead connection (the session
//! check fails), PostgreSQL ends the backend when its next write fails, and the caller reads a sentence saying
//! which limit was hit and what to select instead.
//!
//! Because these connections are opened here, not by tokio-postgres, their cancel requests go through
//! [`CancelTarget`], which knows the server's address.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use deadpool_postgres::Connect;
use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::task::JoinHandle;
use tokio_postgres::config::Host;
use tokio_postgres::{CancelToken, Client, Config, NoTls};
use tokio_util::either::Either;

/// The start of the message of the synthetic error, so `db::query` can tell it from PostgreSQL's own errors.
pub(crate) const MESSAGE_TOO_LARGE: &str = "a row or message of the result is larger than the server accepts";

/// How much is read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Connects the pool's connections through [`BoundedStream`] (TCP or Unix socket, as the config says).
pub(crate) struct BoundedConnect {
    /// The longest backend message accepted, in bytes (its body, without the 5-byte header).
    pub(crate) max_message: u32,
}

impl Connect for BoundedConnect {
    fn connect(&self, config: &Config) -> BoxFuture<'_, Result<(Client, JoinHandle<()>), tokio_postgres::Error>> {
        let config = config.clone();
        let max = self.max_message;
        Box::pin(async move {
            let socket = open_socket(&config).await?;
            let (client, connection) = config.connect_raw(BoundedStream::new(socket, max), NoTls).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "database connection ended");
                }
            });
            Ok((client, task))
        })
    }
}

/// Where cancel requests for the pool's connections go. tokio-postgres only knows the server's address for
/// connections it opened itself; these were opened through [`BoundedConnect`], so the address is kept here.
#[derive(Clone, Debug)]
pub struct CancelTarget(Config);

impl CancelTarget {
    pub fn new(config: Config) -> Self {
        Self(config)
    }

    /// Asks the server to cancel whatever the connection behind `token` is running.
    pub async fn cancel(&self, token: &CancelToken) -> Result<(), tokio_postgres::Error> {
        token.cancel_query_raw(open_socket(&self.0).await?, NoTls).await
    }
}

/// A TCP or Unix-domain socket to the server.
type Socket = Either<TcpStream, UnixStream>;

/// Opens a socket to the first host of `config` that answers, within its connect timeout (10 s by default).
async fn open_socket(config: &Config) -> Result<Socket, tokio_postgres::Error> {
    let timeout = config.get_connect_timeout().copied().unwrap_or(Duration::from_secs(10));
    let ports = config.get_ports();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no host to connect to");
    for (i, host) in config.get_hosts().iter().enumerate() {
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        let attempt = async {
            match host {
                Host::Tcp(name) => {
                    let tcp = TcpStream::connect((name.as_str(), port)).await?;
                    let _ = tcp.set_nodelay(true);
                    Ok(Either::Left(tcp))
                }
                Host::Unix(dir) => Ok(Either::Right(UnixStream::connect(dir.join(format!(".s.PGSQL.{port}"))).await?)),
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(socket)) => return Ok(socket),
            Ok(Err(e)) => last = e,
            Err(_) => {
                last = io::Error::new(io::ErrorKind::TimedOut, format!("no answer within {} s", timeout.as_secs()))
            }
        }
    }
    Err(io_error(config, last).await)
}

/// A connection attempt that failed before the handshake, as a `tokio_postgres::Error` that keeps the reason
/// (tokio-postgres has no public constructor for one: a handshake over a stream that fails with it makes one).
async fn io_error(config: &Config, e: io::Error) -> tokio_postgres::Error {
    match config.connect_raw(Unreachable(Some(e)), NoTls).await {
        Err(e) => e,
        Ok(_) => tokio_postgres::Error::__private_api_timeout(),
    }
}

/// A stream whose first read or write fails with the connection error it holds.
struct Unreachable(Option<io::Error>);

impl Unreachable {
    fn fail<T>(&mut self) -> Poll<io::Result<T>> {
        Poll::Ready(Err(self.0.take().unwrap_or_else(|| io::ErrorKind::BrokenPipe.into())))
    }
}

impl AsyncRead for Unreachable {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.fail()
    }
}

impl AsyncWrite for Unreachable {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        self.fail()
    }

    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.fail()
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Where the reader is in the server's message stream.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// Waiting for (the rest of) a 5-byte header.
    Header,
    /// Passing on this many more bytes of an accepted message's body.
    Body(u64),
    /// An over-long message was replaced by an error: nothing more is read.
    Ended,
}

/// A byte stream from PostgreSQL that never passes on a message longer than `max` (see the module doc).
pub(crate) struct BoundedStream<S> {
    inner: S,
    max: u32,
    framing: Framing,
    /// Bytes read but not yet handed on; `buf[..approved]` may be, the rest is an incomplete header.
    buf: Vec<u8>,
    approved: usize,
}

impl<S> BoundedStream<S> {
    pub(crate) fn new(inner: S, max: u32) -> Self {
        Self { inner, max, framing: Framing::Header, buf: Vec::with_capacity(READ_CHUNK), approved: 0 }
    }

    /// Approves what the framing allows of `buf[approved..]`.
    fn advance(&mut self) {
        loop {
            let available = self.buf.len() - self.approved;
            match self.framing {
                Framing::Ended => return,
                Framing::Body(left) => {
                    let n = left.min(available as u64);
                    self.approved += n as usize;
                    if n < left {
                        self.framing = Framing::Body(left - n);
                        return;
                    }
                    self.framing = Framing::Header;
                }
                Framing::Header => {
                    if available < 5 {
                        return;
                    }
                    let at = self.approved;
                    let kind = self.buf[at];
                    let length =
                        u32::from_be_bytes([self.buf[at + 1], self.buf[at + 2], self.buf[at + 3], self.buf[at + 4]]);
                    let body = length.saturating_sub(4);
                    if body > self.max {
                        self.buf.truncate(at);
                        self.buf.extend_from_slice(&too_large(kind, body, self.max));
                        self.approved = self.buf.len();
                        self.framing = Framing::Ended;
                        return;
                    }
                    self.approved += 5;
                    self.framing = Framing::Body(u64::from(body));
                }
            }
        }
    }
}

/// An `ErrorResponse` message saying which message was too long.
fn too_large(kind: u8, body: u32, max: u32) -> Vec<u8> {
    let what = if kind == b'D' { "row" } else { "message" };
    let mut fields = Vec::new();
    let mut field = |code: u8, text: &str| {
        fields.push(code);
        fields.extend_from_slice(text.as_bytes());
        fields.push(0);
    };
    field(b'S', "ERROR");
    field(b'V', "ERROR");
    field(b'C', "54000");
    field(
        b'M',
        &format!(
            "{MESSAGE_TOO_LARGE}: one {what} is {} on the wire, the limit is {}",
            human_bytes(u64::from(body)),
            human_bytes(u64::from(max))
        ),
    );
    field(
        b'H',
        "Select fewer or shorter columns: cut long text with left(column, 1000), or aggregate instead of returning \
         the raw values.",
    );
    fields.push(0);
    let mut message = vec![b'E'];
    message.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    message.extend_from_slice(&fields);
    message
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for BoundedStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.approved > 0 {
                let n = this.approved.min(out.remaining());
                out.put_slice(&this.buf[..n]);
                this.buf.drain(..n);
                this.approved -= n;
                return Poll::Ready(Ok(()));
            }
            if let Framing::Ended = this.framing {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, MESSAGE_TOO_LARGE)));
            }
            // Into the buffer's spare capacity, which is not zeroed first (that cost more than the read).
            this.buf.reserve(READ_CHUNK);
            let got = ready!(tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.buf))?;
            if got == 0 {
                // End of stream: hand on whatever incomplete header is left, then the end itself.
                let rest = this.buf.len();
                out.put_slice(&this.buf[..rest.min(out.remaining())]);
                this.buf.clear();
                return Poll::Ready(Ok(()));
            }
            this.advance();
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for BoundedStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    /// Feeds `input` through a bounded stream in pieces of `piece` bytes and returns what comes out.
    async fn through(input: Vec<u8>, max: u32, piece: usize) -> (Vec<u8>, Option<io::Error>) {
        let (mut tx, rx) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for part in input.chunks(piece) {
                if tx.write_all(part).await.is_err() {
                    return;
                }
            }
        });
        let mut stream = BoundedStream::new(rx, max);
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        let error = loop {
            match stream.read(&mut buf).await {
                Ok(0) => break None,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => break Some(e),
            }
        };
        writer.abort();
        (out, error)
    }

    #[tokio::test]
    async fn messages_within_the_bound_pass_unchanged_whatever_the_read_sizes() {
        let mut input = message(b'1', b"");
        input.extend(message(b'T', b"row description"));
        input.extend(message(b'2', b""));
        input.extend(message(b'D', &[7u8; 100]));
        input.extend(message(b'C', b"SELECT 1\0"));
        for piece in [1, 2, 5, 6, 64, 1000] {
            let (out, error) = through(input.clone(), 100, piece).await;
            assert!(error.is_none(), "{error:?}");
            assert_eq!(out, input, "pieces of {piece}");
        }
    }

    #[tokio::test]
    async fn an_over_long_row_becomes_an_error_and_the_stream_ends() {
        let mut input = message(b'D', b"small");
        input.extend(message(b'D', &vec![b'x'; 10_000]));
        input.extend(message(b'Z', b"I"));
        for piece in [1, 3, 4096] {
            let (out, error) = through(input.clone(), 1_000, piece).await;
            let first = message(b'D', b"small");
            assert_eq!(&out[..first.len()], first.as_slice());
            let rest = &out[first.len()..];
            assert_eq!(rest[0], b'E', "an ErrorResponse follows");
            let text = String::from_utf8_lossy(rest);
            assert!(text.contains("54000") && text.contains("one row is 9.8 KiB"), "{text}");
            assert!(!rest.windows(16).any(|w| w == [b'x'; 16]), "no part of the long row is passed on");
            assert_eq!(error.map(|e| e.kind()), Some(io::ErrorKind::InvalidData));
        }
    }

    #[test]
    fn the_synthetic_error_is_a_well_formed_message() {
        let m = too_large(b'E', 5 << 20, 1 << 20);
        let length = u32::from_be_bytes([m[1], m[2], m[3], m[4]]) as usize;
        assert_eq!(length + 1, m.len());
        assert_eq!(m.last(), Some(&0));
        assert!(String::from_utf8_lossy(&m).contains("one message is 5.0 MiB on the wire, the limit is 1.0 MiB"));
    }
}
