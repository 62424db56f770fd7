//! The query tier's own latency on `/metrics`: every API request counted by route and
//! status (`porthole_api_requests_total`) and timed by route
//! (`porthole_api_request_duration_seconds`). The route is the router's pattern
//! (`/api/v1/traces/{trace_id}`), never the request's path, so the series stay few.
//! Each request runs in a `request` tracing span (method, route), so what a handler logs
//! says which request it was about, and ends with a debug event `request answered`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::Instrument;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    route: String,
    status: u16,
}

#[derive(Clone)]
pub struct RequestMetrics {
    requests: Family<OutcomeLabel, Counter>,
    seconds: Family<RouteLabel, Histogram>,
}

impl RequestMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            // 1 ms to ~33 s.
            seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
        };
        let r = registry.sub_registry_with_prefix("porthole_api");
        r.register(
            "requests",
            "API requests answered, by route and HTTP status",
            metrics.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time to answer an API request (to its headers; a stream's body is not timed), by route",
            metrics.seconds.clone(),
        );
        metrics
    }

    /// Middleware for `Router::route_layer`, where the matched route is known.
    pub async fn observe(State(metrics): State<Self>, request: Request, next: Next) -> Response {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str)
            .to_string();
        let started = Instant::now();
        let span = tracing::info_span!("request", method = %request.method(), route = %route);
        let response = next.run(request).instrument(span.clone()).await;
        let seconds = started.elapsed().as_secs_f64();
        span.in_scope(|| {
            tracing::debug!(
                status = response.status().as_u16(),
                seconds,
                "request answered"
            )
        });
        metrics
            .seconds
            .get_or_create(&RouteLabel {
                route: route.clone(),
            })
            .observe(seconds);
        metrics
            .requests
            .get_or_create(&OutcomeLabel {
                route,
                status: response.status().as_u16(),
            })
            .inc();
        response
    }
}
