//! OTLP over HTTP: `POST /v1/logs`, `/v1/traces`, `/v1/metrics`, in binary protobuf or
//! JSON, optionally gzip-compressed. Errors are a `google.rpc.Status` in the request's own
//! encoding, as the OTLP/HTTP specification asks.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use porthole_net::decoding::{decoded_estimate, decoded_estimate_json};
use porthole_proto::json::PartialSuccessWarning;
use porthole_proto::logs_service::ExportLogsServiceRequest;
use porthole_proto::metrics_service::ExportMetricsServiceRequest;
use porthole_proto::trace_service::ExportTraceServiceRequest;

use crate::IngestError;
use crate::auth::Access;
use crate::error::RETRY_AFTER;
use crate::export::OtlpExport;
use crate::pipeline::Pipeline;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

#[derive(Clone)]
pub(crate) struct HttpState {
    pub(crate) pipeline: Pipeline,
    /// `--max-inflight-requests` (shared with the gRPC receiver), `--max-request-bytes`,
    /// the read timeout and `--max-decode-bytes`.
    pub(crate) limits: porthole_net::body::ExportLimits,
    pub(crate) access: Access,
}

pub(crate) fn router(state: HttpState) -> Router {
    Router::new()
        .route("/v1/logs", post(export::<ExportLogsServiceRequest>))
        .route("/v1/traces", post(export::<ExportTraceServiceRequest>))
        .route("/v1/metrics", post(export::<ExportMetricsServiceRequest>))
        .route("/api/v1/write", post(crate::remote_write::write))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The `Content-Length` a request declared, 0 when it declared none (chunked) or nonsense.
pub(crate) fn declared_length(headers: &HeaderMap) -> usize {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn export<E: OtlpExport>(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let tenant = match state.access.admit(&headers) {
        Ok(tenant) => tenant,
        Err(error) => return reject::<E>(&state, error, Encoding::Json, 0),
    };
    // Before the body is read, so memory stays bounded however many clients connect.
    let Ok(_inflight) = state.limits.place() else {
        return reject::<E>(&state, IngestError::Overloaded, Encoding::Json, 0);
    };
    let encoding = match content_type(&headers) {
        Ok(encoding) => encoding,
        Err(error) => return reject::<E>(&state, error, Encoding::Json, 0),
    };
    let limits = &state.limits;
    let read = porthole_net::body::read_http(&headers, body, limits.max_bytes, limits.read_timeout);
    let bytes = match read.await {
        Ok(bytes) => bytes,
        // The body was not read to its end: its size is what the sender declared.
        Err(error) => {
            return reject::<E>(&state, error.into(), encoding, declared_length(&headers));
        }
    };
    let wire_bytes = bytes.len();
    let estimate = match encoding {
        Encoding::Protobuf => decoded_estimate(&bytes),
        Encoding::Json => decoded_estimate_json(&bytes),
    };
    let reservation = match limits.decoding.reserve(estimate).await {
        Ok(reservation) => reservation,
        Err(error) => return reject::<E>(&state, error.into(), encoding, wire_bytes),
    };
    // Off the runtime, as the conversion: decoding an export is milliseconds of CPU. The
    // work holds the decoding memory it reserved even if the sender goes away meanwhile.
    let decode = move || {
        let request = match encoding {
            Encoding::Protobuf => E::decode(bytes.as_slice())
                .map(|request| (request, None))
                .map_err(|e| IngestError::InvalidRequest(format!("protobuf: {e}"))),
            Encoding::Json => porthole_proto::json::from_otlp_json_noting::<E>(&bytes)
                .map_err(|e| IngestError::InvalidRequest(format!("JSON: {e}"))),
        };
        (request, reservation)
    };
    let (request, reservation) = porthole_net::body::off_the_runtime(decode).await;
    let (request, unknown_keys) = match request {
        Ok(decoded) => decoded,
        Err(error) => return reject::<E>(&state, error, encoding, wire_bytes),
    };
    match state
        .pipeline
        .export(request, wire_bytes, tenant, reservation)
        .await
    {
        Ok(mut response) => {
            if let Some(warning) = unknown_keys {
                response.warn(&warning);
            }
            encode(StatusCode::OK, encoding, &response)
        }
        Err(error) => respond_error(&error, encoding),
    }
}

fn content_type(headers: &HeaderMap) -> Result<Encoding, IngestError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        PROTOBUF | "application/protobuf" => Ok(Encoding::Protobuf),
        JSON => Ok(Encoding::Json),
        _ => Err(IngestError::Unsupported {
            what: "content-type",
            value: value.to_string(),
        }),
    }
}

fn reject<E: OtlpExport>(
    state: &HttpState,
    error: IngestError,
    encoding: Encoding,
    wire_bytes: usize,
) -> Response {
    state.pipeline.rejected(E::SIGNAL, &error, 0, wire_bytes);
    respond_error(&error, encoding)
}

fn respond_error(error: &IngestError, encoding: Encoding) -> Response {
    let status = RpcStatus {
        code: error.grpc_code() as i32,
        message: error.to_string(),
    };
    let mut response = encode(error.http_status(), encoding, &status);
    if error.is_retryable() {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(RETRY_AFTER.as_secs()),
        );
    }
    response
}

fn encode<M: prost::Message + serde::Serialize>(
    status: StatusCode,
    encoding: Encoding,
    message: &M,
) -> Response {
    let (content_type, body) = match encoding {
        Encoding::Protobuf => (PROTOBUF, message.encode_to_vec()),
        Encoding::Json => (JSON, porthole_net::decoding::otlp_json(message)),
    };
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}
