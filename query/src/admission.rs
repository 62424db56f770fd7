//! How many queries run at once. Each search, SQL query and PromQL evaluation has its own
//! memory bound (a page's 32 MiB, SQL's pool, PromQL's samples), but nothing bounded how
//! many ran together: a dashboard of twenty panels, or one script in a loop, ran them all
//! at once, each with its own bound. Here at most `max_running` queries run; up to
//! `max_queued` more wait for a slot, first come first served; past that a query is
//! refused at once with 503 and `Retry-After`, and counted. Live tails and snapshot
//! requests are not queries here: they wait on the world, not on this node's work; a live
//! tail's resuming search is one.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

/// The limits of `--max-concurrent-queries` and `--max-queued-queries`.
#[derive(Clone)]
pub struct QuerySlots {
    running: Arc<Semaphore>,
    max_queued: i64,
    running_now: Gauge,
    queued_now: Gauge,
    refused: Counter,
}

/// Counts a query in a gauge for as long as it is held, including when its client gives
/// up and the request is dropped half-way.
struct Counted(Gauge);

impl Counted {
    /// The guard, and how many the gauge counted before this one.
    fn new(gauge: &Gauge) -> (Self, i64) {
        let before = gauge.inc();
        (Self(gauge.clone()), before)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A running query's slot, given back when dropped.
pub struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _running: Counted,
}

impl QuerySlots {
    /// One for the whole process, shared by every tenant's routes.
    pub fn new(max_running: usize, max_queued: usize, registry: &mut Registry) -> Self {
        let slots = Self {
            running: Arc::new(Semaphore::new(max_running)),
            max_queued: max_queued as i64,
            running_now: Gauge::default(),
            queued_now: Gauge::default(),
            refused: Counter::default(),
        };
        let r = registry.sub_registry_with_prefix("porthole_api");
        r.register(
            "queries_running",
            "Queries running now (at most --max-concurrent-queries)",
            slots.running_now.clone(),
        );
        r.register(
            "queries_queued",
            "Queries waiting for a slot (at most --max-queued-queries)",
            slots.queued_now.clone(),
        );
        r.register(
            "queries_refused",
            "Queries refused with 503 because --max-queued-queries were already waiting",
            slots.refused.clone(),
        );
        slots
    }

    /// A slot to run a query in, once one is free; `None` (counted) when
    /// `--max-queued-queries` are already waiting.
    pub async fn take(&self) -> Option<Slot> {
        let permit = match self.running.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let (_waiting, before) = Counted::new(&self.queued_now);
                if before >= self.max_queued {
                    self.refused.inc();
                    return None;
                }
                match self.running.clone().acquire_owned().await {
                    Ok(permit) => permit,
                    Err(_) => unreachable!("the semaphore is never closed"),
                }
            }
        };
        let (running, _) = Counted::new(&self.running_now);
        Some(Slot {
            _permit: permit,
            _running: running,
        })
    }

    /// Middleware for the query routes (`Router::route_layer`).
    pub async fn admit(State(slots): State<Self>, request: Request, next: Next) -> Response {
        let Some(slot) = slots.take().await else {
            return refusal(request.uri().path());
        };
        let response = next.run(request).await;
        drop(slot);
        response
    }
}

/// What a query refused a slot is told.
pub const REFUSED: &str = "too many queries running and waiting on this node; retry shortly";

/// Middleware for the search routes: each runs on the query threads, not the server's
/// runtime ([`crate::threads`]). One still running after `limit` (`--query-timeout`) is
/// stopped (aborted at its next await: between two files' indexes, or two storage reads)
/// and answered 504, so a few searches over months of data cannot hold every query slot
/// for as long as they take. Its client may have left long before.
pub async fn within(
    State(limit): State<std::time::Duration>,
    request: Request,
    next: Next,
) -> Response {
    match on_query_threads_within(limit, async move { Ok(next.run(request).await) }).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// `work` on the query threads, stopped and answered 504 when it runs past `limit`
/// (`--query-timeout`): [`within`] for work that is not a whole route.
pub async fn on_query_threads_within<T: Send + 'static>(
    limit: std::time::Duration,
    work: impl Future<Output = Result<T, crate::QueryError>> + Send + 'static,
) -> Result<T, crate::QueryError> {
    let answer = crate::threads::on_query_threads(work);
    tokio::time::timeout(limit, answer)
        .await
        .unwrap_or_else(|_| {
            Err(crate::QueryError::Timeout(format!(
                "the query ran longer than --query-timeout ({limit:?}) and was stopped; \
             narrow its time range or filters"
            )))
        })
}

/// 503 with `Retry-After`, in the Prometheus API's error shape on its routes.
fn refusal(path: &str) -> Response {
    let message = REFUSED;
    if !path.starts_with("/api/v1/metrics") {
        return crate::QueryError::Overloaded(message.into()).into_response();
    }
    let body = serde_json::json!({"status": "error", "errorType": "unavailable", "error": message});
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use std::time::Duration;
    use tokio::sync::Notify;

    /// A router whose `/slow` answers once `release` is notified (one waiter at a time).
    fn app(slots: QuerySlots, release: Arc<Notify>) -> Router {
        Router::new()
            .route(
                "/slow",
                get(move || {
                    let release = release.clone();
                    async move {
                        release.notified().await;
                        "done"
                    }
                }),
            )
            .route("/api/v1/metrics/query", get(|| async { "never reached" }))
            .route_layer(axum::middleware::from_fn_with_state(
                slots,
                QuerySlots::admit,
            ))
    }

    async fn call(app: &Router, path: &str) -> Response {
        let request = Request::get(path).body(axum::body::Body::empty()).unwrap();
        tower::ServiceExt::oneshot(app.clone(), request)
            .await
            .unwrap()
    }

    async fn until(what: &str, check: impl Fn() -> bool) {
        for _ in 0..500 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what}");
    }

    /// One slot and one place in the queue, both taken by `/slow` calls.
    async fn one_running_one_queued() -> (
        QuerySlots,
        Router,
        Arc<Notify>,
        tokio::task::JoinHandle<Response>,
        tokio::task::JoinHandle<Response>,
    ) {
        let slots = QuerySlots::new(1, 1, &mut Registry::default());
        let release = Arc::new(Notify::new());
        let app = app(slots.clone(), release.clone());
        let slow = || {
            let app = app.clone();
            tokio::spawn(async move { call(&app, "/slow").await })
        };
        let running = slow();
        until("one running", || slots.running_now.get() == 1).await;
        let queued = slow();
        until("one queued", || slots.queued_now.get() == 1).await;
        (slots, app, release, running, queued)
    }

    #[tokio::test]
    async fn queries_past_the_running_and_queued_limits_are_refused_and_the_queue_drains() {
        let (slots, app, release, running, queued) = one_running_one_queued().await;

        // A third is refused at once, in each API's own error shape.
        let refused = call(&app, "/slow").await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(refused.into_body(), 1 << 20)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "overloaded");
        let refused = call(&app, "/api/v1/metrics/query").await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(refused.into_body(), 1 << 20)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["errorType"], "unavailable");
        assert_eq!(slots.refused.get(), 2);

        // The running one answers, the queued one takes its slot and answers too.
        release.notify_one();
        assert_eq!(running.await.unwrap().status(), StatusCode::OK);
        until("the queued one runs", || slots.queued_now.get() == 0).await;
        release.notify_one();
        assert_eq!(queued.await.unwrap().status(), StatusCode::OK);
        assert_eq!((slots.running_now.get(), slots.queued_now.get()), (0, 0));
    }

    #[tokio::test]
    async fn a_query_whose_client_gives_up_while_queued_leaves_the_queue() {
        let (slots, app, release, running, gives_up) = one_running_one_queued().await;
        gives_up.abort();
        until("the queue is empty", || slots.queued_now.get() == 0).await;
        release.notify_one();
        assert_eq!(running.await.unwrap().status(), StatusCode::OK);
        // Its place is free: another waits and runs.
        let next = tokio::spawn({
            let app = app.clone();
            async move { call(&app, "/slow").await }
        });
        until("the next runs", || slots.running_now.get() == 1).await;
        release.notify_one();
        assert_eq!(next.await.unwrap().status(), StatusCode::OK);
        assert_eq!(slots.refused.get(), 0);
    }

    /// A route under the timeout runs on the query threads, not the runtime that called
    /// it, and one that runs past the timeout is aborted there, not left running.
    #[tokio::test]
    async fn routes_within_the_timeout_run_on_the_query_threads_and_stop_there() {
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let app = Router::new()
            .route(
                "/where",
                get(|| async { std::thread::current().name().unwrap_or("").to_string() }),
            )
            .route(
                "/forever",
                get({
                    let finished = finished.clone();
                    move || async move {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        finished.store(true, std::sync::atomic::Ordering::SeqCst);
                        "done"
                    }
                }),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                Duration::from_millis(50),
                within,
            ));
        let response = call(&app, "/where").await;
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&body), "porthole-query");
        assert_eq!(
            call(&app, "/forever").await.status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(
            !finished.load(std::sync::atomic::Ordering::SeqCst),
            "the stopped request ran on to its end"
        );
    }
}
