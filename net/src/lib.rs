//! Bounded connections for every listener, shared by the servers and the collector.
//!
//! `axum::serve` and tonic take every connection a client opens and keep it for as long
//! as the client likes: a client that opens thousands and sends each a slow, never-ending
//! request head holds a read buffer of up to 400 KiB for each (gigabytes in all) and the
//! process's file descriptors, until the listener stops accepting. Here every listener
//! has a [`Gate`]:
//! - at most `max_connections` open at once; the rest are closed at once and counted;
//! - a new connection's first bytes (a TLS hello, the HTTP/2 preface, a request line) must
//!   arrive within `header_timeout`;
//! - over HTTP/1 every request head must arrive within `header_timeout` (an idle
//!   keep-alive connection is closed after as long) and fit in [`MAX_HEAD_BYTES`];
//! - over HTTP/2 a peer that stops answering pings is closed.
//!
//! And what a request may cost once admitted: [`body`] reads export bodies within a size
//! and a time, and [`decoding`] bounds the memory their decoding takes.

pub mod body;
pub mod decoding;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The largest HTTP request head (request line and headers) a connection may send; a
/// larger one is answered 431 (HTTP/1) or refused (HTTP/2).
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// How often an HTTP/2 connection (every gRPC client) is pinged, and how long its answer
/// may take before the connection is closed.
const PING_INTERVAL: Duration = Duration::from_secs(60);
const PING_TIMEOUT: Duration = Duration::from_secs(20);
/// The connection's first bytes the deadline covers: the HTTP/2 preface is 24 bytes, and
/// an HTTP/1 request line or a TLS hello is longer.
const OPENING_BYTES: usize = 24;

/// The limits of one listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: String,
}

/// `porthole_connections_*`, by listener.
#[derive(Clone, Debug, Default)]
pub struct ConnectionMetrics {
    open: Family<ListenerLabel, Gauge>,
    refused: Family<ListenerLabel, Counter>,
    timed_out: Family<ListenerLabel, Counter>,
}

impl ConnectionMetrics {
    /// Registers `connections_*` in `registry`, which gives them their prefix
    /// (`porthole_` on the servers, `porthole_collector_` on the collector).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "connections_open",
            "Connections open, by listener",
            metrics.open.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed on arrival because the listener had its maximum open",
            metrics.refused.clone(),
        );
        registry.register(
            "connections_timed_out",
            "Connections closed because a request head, the first bytes or a ping's answer came too slowly",
            metrics.timed_out.clone(),
        );
        metrics
    }
}

/// At most a number of places held at once, each counted in `open` while held; a place
/// asked for when all are held is refused and counted in `refused`. Connections take
/// them here; the query tier's live tails too.
#[derive(Clone)]
pub struct Places {
    permits: Arc<Semaphore>,
    open: Gauge,
    refused: Counter,
}

impl Places {
    pub fn new(max: usize, open: Gauge, refused: Counter) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            open,
            refused,
        }
    }

    /// A place, or `None` (counted) when all are held.
    pub fn try_take(&self) -> Option<Place> {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.refused.inc();
            return None;
        };
        self.open.inc();
        Some(Place {
            _permit: permit,
            open: self.open.clone(),
        })
    }
}

/// A held place of [`Places`], given back when dropped.
pub struct Place {
    _permit: OwnedSemaphorePermit,
    open: Gauge,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// Admits a listener's connections within its [`Limits`].
#[derive(Clone)]
pub struct Gate {
    limits: Limits,
    places: Places,
    timed_out: Counter,
}

impl Gate {
    /// `listener` names it in the metrics (`otlp_grpc`, `otlp_http`, `http`…).
    pub fn new(listener: &str, limits: Limits, metrics: &ConnectionMetrics) -> Self {
        let label = ListenerLabel {
            listener: listener.to_string(),
        };
        Self {
            limits,
            places: Places::new(
                limits.max_connections,
                metrics.open.get_or_create(&label).clone(),
                metrics.refused.get_or_create(&label).clone(),
            ),
            timed_out: metrics.timed_out.get_or_create(&label).clone(),
        }
    }

    /// The connection, counted while it is open; `None` (and counted) when the listener
    /// has its maximum open: dropping `io` closes it.
    pub fn admit<Io>(&self, io: Io) -> Option<Admitted<Io>> {
        let place = self.places.try_take()?;
        Some(Admitted {
            io,
            opening: Some(Box::pin(tokio::time::sleep(self.limits.header_timeout))),
            read: 0,
            _place: place,
            timed_out: self.timed_out.clone(),
        })
    }

    /// The listener's admitted connections, for tonic's `serve_with_incoming_shutdown`.
    pub fn incoming(
        self,
        listener: TcpListener,
    ) -> impl Stream<Item = io::Result<Admitted<TcpStream>>> {
        futures::stream::unfold((listener, self), |(listener, gate)| async move {
            loop {
                match listener.accept().await {
                    Ok((tcp, _)) => {
                        let _ = tcp.set_nodelay(true);
                        if let Some(io) = gate.admit(tcp) {
                            return Some((Ok(io), (listener, gate)));
                        }
                    }
                    Err(e) => accept_failed(e).await,
                }
            }
        })
    }

    fn connection_builder(&self) -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .max_buf_size(MAX_HEAD_BYTES);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(PING_INTERVAL)
            .keep_alive_timeout(PING_TIMEOUT)
            .max_header_list_size(MAX_HEAD_BYTES as u32);
        builder
    }

    fn connection_ended(&self, error: &(dyn std::error::Error + 'static)) {
        if error
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_timeout)
        {
            self.timed_out.inc();
        }
        tracing::debug!(error, "connection ended with an error");
    }
}

/// A gRPC server whose HTTP/2 connections are pinged, and closed when a peer stops
/// answering, with request heads bounded as on the HTTP listeners; serve it with
/// [`Gate::incoming`].
pub fn grpc_server() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(PING_INTERVAL))
        .http2_keepalive_timeout(Some(PING_TIMEOUT))
        .http2_max_header_list_size(Some(MAX_HEAD_BYTES as u32))
}

/// As `axum::serve`: an error accepting one connection (the peer reset it) is skipped;
/// any other (out of file descriptors) is logged and waited out, not a busy loop.
async fn accept_failed(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// An admitted connection: holds its place under the listener's maximum until dropped,
/// and fails its reads when its first bytes do not arrive in time.
pub struct Admitted<Io> {
    io: Io,
    opening: Option<Pin<Box<tokio::time::Sleep>>>,
    read: usize,
    _place: Place,
    timed_out: Counter,
}

impl<Io: AsyncRead + Unpin> AsyncRead for Admitted<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        let Some(deadline) = &mut this.opening else {
            return polled;
        };
        match polled {
            Poll::Ready(Ok(())) => {
                this.read += buf.filled().len() - before;
                if this.read >= OPENING_BYTES {
                    this.opening = None;
                }
            }
            Poll::Pending if deadline.as_mut().poll(cx).is_ready() => {
                this.opening = None;
                this.timed_out.inc();
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the connection sent no request in time",
                )));
            }
            _ => {}
        }
        polled
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Admitted<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<Io: tonic::transport::server::Connected> tonic::transport::server::Connected for Admitted<Io> {
    type ConnectInfo = Io::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// Serves `router` on `listener` (plain TCP or TLS) within `gate`'s limits, HTTP/1 and
/// HTTP/2, until `shutdown` completes; then stops accepting, lets requests in flight
/// finish, and returns once every connection has closed.
pub async fn serve<L>(
    mut listener: L,
    gate: Gate,
    router: axum::Router,
    shutdown: impl Future<Output = ()>,
) where
    L: axum::serve::Listener,
    L::Io: Unpin,
{
    let (stop, stopping) = tokio::sync::watch::channel(());
    // Every connection's task holds a sender: `recv` answers `None` once all have ended.
    let (open, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let Some(io) = gate.admit(io) else {
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let (gate, mut stopping, open) = (gate.clone(), stopping.clone(), open.clone());
        tokio::spawn(async move {
            let _open = open;
            let builder = gate.connection_builder();
            let mut connection =
                std::pin::pin!(builder.serve_connection(TokioIo::new(io), service));
            let served = tokio::select! {
                served = connection.as_mut() => served,
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = served {
                gate.connection_ended(&*e);
            }
        });
    }
    drop(listener);
    drop(stop);
    drop(open);
    let _ = all_closed.recv().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn gate(max_connections: usize, header_timeout: Duration) -> (Gate, ConnectionMetrics) {
        let metrics = ConnectionMetrics::default();
        let limits = Limits {
            max_connections,
            header_timeout,
        };
        (Gate::new("test", limits, &metrics), metrics)
    }

    fn counts(metrics: &ConnectionMetrics) -> (i64, u64, u64) {
        let label = ListenerLabel {
            listener: "test".into(),
        };
        (
            metrics.open.get_or_create(&label).get(),
            metrics.refused.get_or_create(&label).get(),
            metrics.timed_out.get_or_create(&label).get(),
        )
    }

    #[tokio::test]
    async fn connections_past_the_maximum_are_refused_and_counted_until_one_closes() {
        let (gate, metrics) = gate(2, Duration::from_secs(30));
        let first = gate.admit(()).expect("first admitted");
        let _second = gate.admit(()).expect("second admitted");
        assert!(gate.admit(()).is_none());
        assert_eq!(counts(&metrics), (2, 1, 0));
        drop(first);
        assert_eq!(counts(&metrics), (1, 1, 0));
        assert!(gate.admit(()).is_some());
        assert_eq!(
            counts(&metrics),
            (1, 1, 0),
            "the admitted one was dropped at once"
        );
    }

    #[tokio::test]
    async fn a_silent_connection_fails_its_read_at_the_deadline_and_a_prompt_one_never_does() {
        let (gate, metrics) = gate(8, Duration::from_millis(200));
        let (_client, server) = tokio::io::duplex(1024);
        let mut silent = gate.admit(server).unwrap();
        let mut buf = [0u8; 64];
        let error = silent.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(counts(&metrics).2, 1);

        // Two bytes, then the rest of the opening in time: the deadline is gone after it.
        let (mut client, server) = tokio::io::duplex(1024);
        let mut prompt = gate.admit(server).unwrap();
        client.write_all(b"PR").await.unwrap();
        assert_eq!(prompt.read(&mut buf).await.unwrap(), 2);
        client
            .write_all(b"I * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        let mut opening = vec![0u8; OPENING_BYTES - 2];
        prompt.read_exact(&mut opening).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(600), prompt.read(&mut buf)).await;
        assert!(
            waited.is_err(),
            "a read after the opening has no deadline: {waited:?}"
        );
        assert_eq!(counts(&metrics).2, 1);
    }

    async fn serving(gate: Gate) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, gate, router, async {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    /// Everything the server sends until it closes the connection.
    async fn until_closed(stream: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
        match read.await.expect("the server closed the connection") {
            Ok(_) => String::from_utf8_lossy(&answer).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => String::new(),
            Err(e) => panic!("reading: {e}"),
        }
    }

    #[tokio::test]
    async fn slow_or_huge_request_heads_are_cut_off_and_a_whole_request_is_served() {
        let (gate, metrics) = gate(4, Duration::from_millis(300));
        let (addr, _stop) = serving(gate).await;

        // A head that never ends: closed after the deadline, without an answer.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        assert_eq!(until_closed(&mut slow).await, "");
        // Nothing at all: the same.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        assert_eq!(until_closed(&mut silent).await, "");
        assert_eq!(counts(&metrics).2, 2);

        // A head past MAX_HEAD_BYTES: 431, not a growing buffer.
        let mut huge = TcpStream::connect(addr).await.unwrap();
        let padding = "a".repeat(MAX_HEAD_BYTES + 1024);
        let head = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Pad: {padding}\r\n\r\n");
        let _ = huge.write_all(head.as_bytes()).await;
        let answer = until_closed(&mut huge).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");

        // A whole request is answered; the idle keep-alive connection is closed later.
        let mut whole = TcpStream::connect(addr).await.unwrap();
        whole
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = until_closed(&mut whole).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        assert!(answer.ends_with("ok"), "{answer:?}");
        // (The client may see the close a moment before the server's task ends.)
        for _ in 0..100 {
            if counts(&metrics).0 == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(counts(&metrics).0, 0, "every connection closed");
    }

    #[tokio::test]
    async fn a_full_listener_closes_new_connections_and_serves_again_once_one_closes() {
        let (gate, metrics) = gate(1, Duration::from_secs(30));
        let (addr, stop) = serving(gate).await;
        let held = TcpStream::connect(addr).await.unwrap();
        let mut refused = TcpStream::connect(addr).await.unwrap();
        assert_eq!(until_closed(&mut refused).await, "");
        assert_eq!(counts(&metrics), (1, 1, 0));
        drop(held);
        let answer = loop {
            let mut next = TcpStream::connect(addr).await.unwrap();
            next.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let answer = until_closed(&mut next).await;
            if !answer.is_empty() {
                break answer; // once the server has seen the held one close
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        // Shutdown: the listener stops accepting.
        stop.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
