//! Reading export bodies with bounds: at most so many bytes (decompressed ones included,
//! so a small gzip bomb stops at the limit too), within so long of the request head (a
//! sender that trickles a body would hold the place it took for ever), shared by the
//! servers' receivers and the collector's.

use std::convert::Infallible;
use std::future::Future;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::service::Routes;

use crate::decoding::{DecodeBudget, PastBudget, Reserved, decoded_estimate};

/// Bodies up to this many times the limit are read to the end before the refusal, so an
/// HTTP/1 client gets its 413 rather than a reset connection (which senders would retry
/// for ever); memory stays at the limit.
const DRAIN_FACTOR: usize = 4;
/// The 5 bytes before each gRPC message: compressed flag and length.
const GRPC_PREFIX: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request is larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("the request body did not arrive within {after:?}")]
    TimedOut { after: Duration },
    /// The bytes cannot be read as what they claim to be.
    #[error("{0}")]
    Invalid(String),
    #[error("unsupported {what}: {value:?}")]
    Unsupported { what: &'static str, value: String },
}

/// At most `limit` bytes of a body, as sent (still compressed), within `timeout`.
pub async fn read<B>(body: B, limit: usize, timeout: Duration) -> Result<Vec<u8>, BodyError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    tokio::time::timeout(timeout, read_limited(body, limit))
        .await
        .map_err(|_| BodyError::TimedOut { after: timeout })?
}

async fn read_limited<B>(body: B, limit: usize) -> Result<Vec<u8>, BodyError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut raw = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Invalid(format!("reading body: {e}")))?;
        let Ok(chunk) = frame.into_data() else {
            continue; // trailers
        };
        seen += chunk.len();
        if seen <= limit {
            raw.extend_from_slice(&chunk);
        } else if seen > DRAIN_FACTOR * limit {
            // Far too large: stop reading; the client sees the connection close.
            return Err(BodyError::TooLarge { limit });
        } else {
            raw.clear();
        }
    }
    if seen > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(raw)
}

/// An HTTP body read as [`read`] does and decompressed as its `Content-Encoding` says
/// (gzip, zstd, deflate or none: what the OpenTelemetry Collector's exporters and Fluent
/// Bit send), the decompressed bytes held to `limit` too.
pub async fn read_http<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, BodyError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let raw = read(body, limit, timeout).await?;
    let encoding = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    if matches!(encoding.as_str(), "" | "identity") {
        return Ok(raw);
    }
    off_the_runtime(move || inflate_http(&encoding, raw, limit)).await
}

/// Runs CPU-bound work on an export (decompressing, decoding, converting: milliseconds
/// for a large one) on tokio's blocking pool, so the runtime that answers health probes
/// and other requests is not held up; a panic in it stays a panic of the caller.
///
/// At most one such piece of work runs per core ([`cpu_work_slots`]); the others wait
/// their turn here. The blocking pool would run them all at once (hundreds of threads),
/// each with its working memory (a conversion's Arrow builders are a few times its
/// export), for no more throughput than the cores give: under 48 senders the server's
/// peak RSS rose from 391 to 506 MiB when conversions moved off the runtime's two
/// workers. The waiting work holds only the export it was admitted with, which the
/// decode budget already counts.
pub async fn off_the_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    cpu_work().run(work).await
}

/// Registers the metrics of [`off_the_runtime`]'s work in `registry` (under the caller's
/// prefix: `porthole_` on a server, `porthole_collector_` in a collector): how many pieces
/// wait for a turn now, and how long they have waited in all (a process whose cores cannot
/// keep up shows here before its buffers fill).
pub fn register_cpu_work_metrics(registry: &mut Registry) {
    cpu_work().register(registry);
}

/// The process's turns for export work, made on first use.
fn cpu_work() -> &'static CpuWork {
    static CPU_WORK: std::sync::OnceLock<CpuWork> = std::sync::OnceLock::new();
    CPU_WORK.get_or_init(|| CpuWork::new(cpu_work_slots()))
}

/// How many pieces of export work run at once: the cores this process may use (its
/// cgroup's CPU quota included, as `available_parallelism` reads it).
fn cpu_work_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Turns to run CPU-bound work on the blocking pool, and what waiting for them costs.
struct CpuWork {
    turns: Arc<Semaphore>,
    waiting: Gauge,
    waited_seconds: Counter<f64, AtomicU64>,
}

impl CpuWork {
    fn new(turns: usize) -> Self {
        Self {
            turns: Arc::new(Semaphore::new(turns)),
            waiting: Gauge::default(),
            waited_seconds: Counter::default(),
        }
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let turn = {
            // Counted while it waits, however the wait ends (its request may be dropped).
            let _waiting = Waiting::start(self);
            self.turns.clone().acquire_owned().await
        }
        .expect("the CPU work semaphore is never closed");
        let ran = tokio::task::spawn_blocking(move || {
            let done = work();
            drop(turn);
            done
        });
        match ran.await {
            Ok(done) => done,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "export_work_waiting",
            "Exports waiting for a core to decompress, decode or convert them",
            self.waiting.clone(),
        );
        registry.register(
            "export_work_wait_seconds",
            "Time exports have waited for a core to decompress, decode or convert them",
            self.waited_seconds.clone(),
        );
    }
}

/// A piece of work waiting for its turn: counted until dropped.
struct Waiting<'a> {
    work: &'a CpuWork,
    since: std::time::Instant,
}

impl<'a> Waiting<'a> {
    fn start(work: &'a CpuWork) -> Self {
        work.waiting.inc();
        Self {
            work,
            since: std::time::Instant::now(),
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.work.waiting.dec();
        self.work
            .waited_seconds
            .inc_by(self.since.elapsed().as_secs_f64());
    }
}

fn inflate_http(encoding: &str, raw: Vec<u8>, limit: usize) -> Result<Vec<u8>, BodyError> {
    match encoding {
        "gzip" => inflate(flate2::read::GzDecoder::new(raw.as_slice()), limit, "gzip"),
        "zstd" => inflate(zstd_decoder(&raw)?, limit, "zstd"),
        // HTTP's `deflate` is the zlib format (RFC 9110).
        "deflate" => inflate(
            flate2::read::ZlibDecoder::new(raw.as_slice()),
            limit,
            "deflate",
        ),
        other => Err(BodyError::Unsupported {
            what: "content-encoding",
            value: other.to_string(),
        }),
    }
}

fn zstd_decoder(data: &[u8]) -> Result<impl Read + '_, BodyError> {
    zstd::stream::read::Decoder::new(data).map_err(|e| BodyError::Invalid(format!("zstd: {e}")))
}

/// What `reader` decompresses to, reading at most `limit` + 1 bytes so a bomb stops at
/// the limit (`what` names the compression in errors).
pub fn inflate(reader: impl Read, limit: usize, what: &str) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Invalid(format!("{what}: {e}")))?;
    if out.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(out)
}

/// A gRPC request body's messages, read as [`read`] does, decompressed (`grpc-encoding`
/// gzip or zstd) each to at most `limit` bytes, and framed again uncompressed for tonic's
/// decoder; with their decoded size estimated ([`decoded_estimate`]) before it decodes
/// them.
pub async fn read_grpc<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
    timeout: Duration,
) -> Result<(Bytes, usize), BodyError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let raw = read(body, limit + GRPC_PREFIX, timeout).await?;
    let encoding = headers
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .to_string();
    off_the_runtime(move || unframe_grpc(&encoding, raw, limit)).await
}

/// The messages of a gRPC body, decompressed and framed again uncompressed, and their
/// decoded size estimate.
fn unframe_grpc(encoding: &str, raw: Vec<u8>, limit: usize) -> Result<(Bytes, usize), BodyError> {
    let truncated = || BodyError::Invalid("truncated gRPC message".into());
    let (mut framed, mut estimate) = (Vec::with_capacity(raw.len()), 0usize);
    let mut rest = raw.as_slice();
    while !rest.is_empty() {
        let prefix = rest.get(..GRPC_PREFIX).ok_or_else(truncated)?;
        let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
        let data = rest
            .get(GRPC_PREFIX..GRPC_PREFIX + len)
            .ok_or_else(truncated)?;
        rest = &rest[GRPC_PREFIX + len..];
        let inflated;
        let message = match (prefix[0], encoding) {
            (0, _) => data,
            (1, "gzip") => {
                inflated = inflate(flate2::read::GzDecoder::new(data), limit, "gzip")?;
                inflated.as_slice()
            }
            (1, "zstd") => {
                inflated = inflate(zstd_decoder(data)?, limit, "zstd")?;
                inflated.as_slice()
            }
            (1, other) => {
                return Err(BodyError::Unsupported {
                    what: "grpc-encoding",
                    value: other.to_string(),
                });
            }
            (flag, _) => return Err(BodyError::Invalid(format!("gRPC message flag {flag}"))),
        };
        // (An uncompressed message fits: the body as a whole did.)
        estimate += decoded_estimate(message);
        framed.push(0);
        framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
        framed.extend_from_slice(message);
    }
    Ok((framed.into(), estimate))
}

/// tonic's codec answers an undecodable request INTERNAL and one past its size limit
/// OUT_OF_RANGE: OTLP senders take the first for a fault of the receiver and retry the
/// second for ever. A receiver's own handlers answer neither, so a response that carries
/// one came from the codec; it is rewritten to INVALID_ARGUMENT (drop, do not retry) or
/// RESOURCE_EXHAUSTED, and the reason is returned for counting (`invalid`, `too_large`).
pub fn rewrite_codec_status(headers: &mut HeaderMap) -> Option<&'static str> {
    let (replacement, reason) = match headers.get("grpc-status").map(|v| v.as_bytes()) {
        Some(b"13") => (tonic::Code::InvalidArgument, "invalid"),
        Some(b"11") => (tonic::Code::ResourceExhausted, "too_large"),
        _ => return None,
    };
    headers.insert("grpc-status", http::HeaderValue::from(replacement as i32));
    Some(reason)
}

/// What an export receiver allows one export before tonic decodes it: one of
/// `inflight`'s places from before its body is read until it is answered, `max_bytes`
/// read within `read_timeout` (decompressed too), and its decoded size from `decoding`.
#[derive(Clone)]
pub struct ExportLimits {
    pub inflight: Arc<Semaphore>,
    pub max_bytes: usize,
    pub read_timeout: Duration,
    pub decoding: DecodeBudget,
}

/// Every in-flight place is taken; the sender should come back (UNAVAILABLE / 503).
#[derive(Debug)]
pub struct Busy;

impl ExportLimits {
    /// One of the in-flight places, held until dropped; taken before a body is read.
    pub fn place(&self) -> Result<OwnedSemaphorePermit, Busy> {
        self.inflight.clone().try_acquire_owned().map_err(|_| Busy)
    }

    /// Takes a place, reads the export's body ([`read_grpc`]), reserves its decoded size
    /// (waiting for room), and passes it to `routes` uncompressed, the reservation in its
    /// extensions ([`Reserved`]) for the handler to let go once the export is converted
    /// or stored. The answer comes back with [`rewrite_codec_status`] applied, and the
    /// reason when it was.
    pub async fn pass<E>(
        &self,
        request: http::Request<tonic::body::Body>,
        routes: Routes,
    ) -> Result<(http::Response<tonic::body::Body>, Option<&'static str>), E>
    where
        E: From<Busy> + From<BodyError> + From<PastBudget>,
    {
        let place = self.place()?;
        let (mut parts, body) = request.into_parts();
        let read = read_grpc(&parts.headers, body, self.max_bytes, self.read_timeout);
        let (framed, estimate) = read.await?;
        let reservation = self.decoding.reserve(estimate).await?;
        parts.extensions.insert(Reserved::new(reservation));
        let body = tonic::body::Body::new(http_body_util::Full::new(framed));
        let request = http::Request::from_parts(parts, body);
        let Ok(mut response) = tower::ServiceExt::oneshot(routes, request).await;
        drop(place);
        let codec = rewrite_codec_status(response.headers_mut());
        Ok((response, codec))
    }
}

/// A layer for a gRPC server ([`crate::grpc_server`]) that hands each request, with the
/// server's routes, to `admit`: what a receiver does before tonic decodes an export
/// (admission, [`ExportLimits::pass`]), written as one async
/// closure instead of a tower service of its own.
#[derive(Clone)]
pub struct InterceptLayer<F>(pub F);

#[derive(Clone)]
pub struct Intercept<F> {
    routes: Routes,
    admit: F,
}

impl<F: Clone> tower::Layer<Routes> for InterceptLayer<F> {
    type Service = Intercept<F>;
    fn layer(&self, routes: Routes) -> Self::Service {
        Intercept {
            routes,
            admit: self.0.clone(),
        }
    }
}

impl<F, Fut> tower::Service<http::Request<tonic::body::Body>> for Intercept<F>
where
    F: Fn(http::Request<tonic::body::Body>, Routes) -> Fut,
    Fut: Future<Output = http::Response<tonic::body::Body>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future =
        futures::future::Map<Fut, fn(Self::Response) -> Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(())) // Routes are always ready
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        use futures::FutureExt;
        (self.admit)(request, self.routes.clone()).map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Work beside work: how many ran at once at most.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn export_work_runs_at_most_one_piece_per_core() {
        static RUNNING: AtomicUsize = AtomicUsize::new(0);
        static MOST: AtomicUsize = AtomicUsize::new(0);
        let slots = cpu_work_slots();
        let pieces: Vec<_> = (0..slots * 4)
            .map(|_| {
                tokio::spawn(off_the_runtime(|| {
                    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
                    MOST.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(30));
                    RUNNING.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for piece in pieces {
            piece.await.unwrap();
        }
        let most = MOST.load(Ordering::SeqCst);
        assert!(
            (1..=slots).contains(&most),
            "{most} pieces ran at once on {slots} cores"
        );
    }

    #[tokio::test]
    async fn work_that_panics_gives_its_turn_back_and_panics_its_caller() {
        for _ in 0..cpu_work_slots() + 1 {
            let panicked = tokio::spawn(off_the_runtime(|| panic!("broken export"))).await;
            let panic = panicked.unwrap_err().into_panic();
            assert_eq!(panic.downcast_ref::<&str>(), Some(&"broken export"));
        }
        let after = tokio::time::timeout(Duration::from_secs(30), off_the_runtime(|| 7)).await;
        assert_eq!(after.ok(), Some(7), "the panicked work kept its turns");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_waiting_for_its_turn_is_counted_until_it_runs_or_is_given_up() {
        let work: &'static CpuWork = Box::leak(Box::new(CpuWork::new(1)));
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (running, started) = tokio::sync::oneshot::channel();
        let holder = tokio::spawn(work.run(move || {
            running.send(()).ok();
            held.recv().ok();
        }));
        started.await.unwrap();
        let given_up = tokio::spawn(work.run(|| 1));
        let runs_later = tokio::spawn(work.run(|| 2));
        for _ in 0..1000 {
            if work.waiting.get() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            work.waiting.get(),
            2,
            "both wait while the one turn is held"
        );
        given_up.abort();
        assert!(given_up.await.unwrap_err().is_cancelled());
        assert_eq!(
            work.waiting.get(),
            1,
            "a request dropped while waiting is not counted"
        );
        release.send(()).unwrap();
        holder.await.unwrap();
        assert_eq!(runs_later.await.unwrap(), 2);
        assert_eq!(work.waiting.get(), 0);
        assert!(work.waited_seconds.get() > 0.0);

        let mut registry = Registry::default();
        work.register(registry.sub_registry_with_prefix("porthole"));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("\nporthole_export_work_waiting 0\n"),
            "{text}"
        );
        assert!(
            text.contains("\nporthole_export_work_wait_seconds_total "),
            "{text}"
        );
    }
}
