//! Malformed, truncated, oversized, empty and mislabelled requests each get the documented
//! error on both protocols, are counted, and never take the server down.

use std::io::Write;

use bytes::{Buf, BufMut, Bytes};
use porthole_proto::logs_service::ExportLogsServiceRequest;
use porthole_proto::logs_service::logs_service_client::LogsServiceClient;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::harness::Porthole;
use crate::load::export_request;

const LIMIT: usize = 64 * 1024;

async fn server(dir: &std::path::Path) -> Porthole {
    Porthole::start(
        "serve",
        dir,
        &["--batch-window", "50ms", "--max-request-bytes", "64KiB"],
        &[],
    )
    .await
}

fn valid_body() -> Vec<u8> {
    export_request(&vec!["hello".to_string(); 10]).encode_to_vec()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// google.rpc.Status, the OTLP/HTTP error body.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[tokio::test(flavor = "multi_thread")]
async fn http_bad_requests_get_documented_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = server(dir.path()).await;
    let client = reqwest::Client::new();
    let url = porthole.otlp_http_url("/v1/logs");
    let post = |content_type: &'static str, encoding: Option<&'static str>, body: Vec<u8>| {
        let mut request = client
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        request.send()
    };
    let valid = valid_body();
    let huge = export_request(&vec!["x".repeat(1024); 100]).encode_to_vec();
    assert!(huge.len() > LIMIT);
    let cases: Vec<(&str, &'static str, Option<&'static str>, Vec<u8>, u16)> = vec![
        (
            "valid protobuf",
            "application/x-protobuf",
            None,
            valid.clone(),
            200,
        ),
        (
            "valid gzip protobuf",
            "application/x-protobuf",
            Some("gzip"),
            gzip(&valid),
            200,
        ),
        (
            "valid zstd protobuf",
            "application/x-protobuf",
            Some("zstd"),
            zstd::encode_all(valid.as_slice(), 3).unwrap(),
            200,
        ),
        (
            "valid deflate (zlib) protobuf",
            "application/x-protobuf",
            Some("deflate"),
            deflate(&valid),
            200,
        ),
        (
            "corrupt zstd",
            "application/x-protobuf",
            Some("zstd"),
            b"not zstd".to_vec(),
            400,
        ),
        (
            "zstd bomb over the limit once inflated",
            "application/x-protobuf",
            Some("zstd"),
            zstd::encode_all(huge.as_slice(), 3).unwrap(),
            413,
        ),
        (
            "empty protobuf = empty export",
            "application/x-protobuf",
            None,
            vec![],
            200,
        ),
        (
            "malformed protobuf",
            "application/x-protobuf",
            None,
            b"\xff\xff\xff\xff garbage".to_vec(),
            400,
        ),
        (
            "truncated protobuf",
            "application/x-protobuf",
            None,
            valid[..valid.len() - 3].to_vec(),
            400,
        ),
        (
            "malformed JSON",
            "application/json",
            None,
            b"{\"resourceLogs\": [".to_vec(),
            400,
        ),
        ("empty JSON body", "application/json", None, vec![], 400),
        (
            "corrupt gzip",
            "application/x-protobuf",
            Some("gzip"),
            b"not gzip".to_vec(),
            400,
        ),
        (
            "oversized",
            "application/x-protobuf",
            None,
            huge.clone(),
            413,
        ),
        (
            "gzip bomb over the limit once inflated",
            "application/x-protobuf",
            Some("gzip"),
            gzip(&huge),
            413,
        ),
        (
            "unknown content type",
            "text/plain",
            None,
            valid.clone(),
            415,
        ),
        (
            "unknown content encoding",
            "application/x-protobuf",
            Some("br"),
            valid.clone(),
            415,
        ),
    ];
    // Bytes of the requests refused as too large: counted at their declared length (the
    // server stops reading them; they were counted as 0 bytes).
    let too_large: usize = cases
        .iter()
        .filter(|case| case.4 == 413)
        .map(|case| case.3.len())
        .sum();
    for (name, content_type, encoding, body, want) in cases {
        let response = post(content_type, encoding, body).await.unwrap();
        let status = response.status().as_u16();
        let reply = response.bytes().await.unwrap();
        assert_eq!(
            status,
            want,
            "{name}: body {:?}",
            String::from_utf8_lossy(&reply)
        );
        if want >= 400 && content_type == "application/x-protobuf" {
            let rpc = RpcStatus::decode(reply)
                .unwrap_or_else(|e| panic!("{name}: error body is not a google.rpc.Status: {e}"));
            assert!(
                !rpc.message.is_empty(),
                "{name}: the error says what is wrong"
            );
        }
    }
    assert!(too_large > 0);
    assert_eq!(
        porthole
            .counter(
                "porthole_ingest_bytes_rejected_total",
                &["reason=\"too_large\""]
            )
            .await,
        too_large as f64
    );
    let json = client
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"from json"}}]}]}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(json.status().as_u16(), 200);
    assert_eq!(json.headers()["content-type"], "application/json");
    // A full success leaves partialSuccess unset (it was `null`).
    assert_eq!(json.text().await.unwrap(), "{}");
    // A partial success over JSON carries its count and reason.
    let partial = client
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"kept"}},{"traceId":"010203","body":{"stringValue":"refused"}}]}]}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(partial.status().as_u16(), 200);
    let partial: serde_json::Value = partial.json().await.unwrap();
    assert_eq!(
        partial["partialSuccess"]["rejectedLogRecords"], 1,
        "{partial}"
    );
    assert!(
        partial["partialSuccess"]["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("trace_id")),
        "{partial}"
    );

    // Partial success: a record with a 3-byte trace id is refused, the rest stored.
    let mut request = export_request(&["good".to_string(), "bad".to_string()]);
    request.resource_logs[0].scope_logs[0].log_records[1].trace_id = vec![1, 2, 3];
    let response = post("application/x-protobuf", None, request.encode_to_vec())
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let reply = porthole_proto::logs_service::ExportLogsServiceResponse::decode(
        response.bytes().await.unwrap(),
    )
    .unwrap();
    let partial = reply.partial_success.expect("partial success");
    assert_eq!(partial.rejected_log_records, 1);
    assert!(
        partial.error_message.contains("trace_id"),
        "{}",
        partial.error_message
    );

    assert!(
        porthole
            .counter(
                "porthole_ingest_requests_rejected_total",
                &["reason=\"invalid\""]
            )
            .await
            >= 5.0
    );
    assert!(
        porthole
            .counter(
                "porthole_ingest_requests_rejected_total",
                &["reason=\"too_large\""]
            )
            .await
            >= 2.0
    );
    assert!(
        porthole
            .counter(
                "porthole_ingest_records_rejected_total",
                &["reason=\"invalid_record\""]
            )
            .await
            >= 1.0
    );
    assert_eq!(
        reqwest::get(porthole.url("/healthz"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

/// Sends raw bytes as a gRPC message, to get past the client's own encoder.
#[derive(Clone, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Self::Error> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

pub(crate) async fn raw_grpc(endpoint: &str, body: Vec<u8>) -> Result<Bytes, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    );
    grpc.unary(tonic::Request::new(Bytes::from(body)), path, RawCodec)
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_bad_requests_get_documented_codes() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = server(dir.path()).await;
    let endpoint = porthole.grpc_endpoint();
    let valid = valid_body();
    assert!(raw_grpc(&endpoint, valid.clone()).await.is_ok());
    assert!(
        raw_grpc(&endpoint, vec![]).await.is_ok(),
        "an empty message is an empty export"
    );
    for (name, body) in [
        ("malformed", b"\xff\xff\xff\xff garbage".to_vec()),
        ("truncated", valid[..valid.len() - 3].to_vec()),
    ] {
        let status = raw_grpc(&endpoint, body).await.unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{name}: {status:?}"
        );
    }
    let mut client = LogsServiceClient::connect(endpoint.clone())
        .await
        .unwrap()
        .max_encoding_message_size(usize::MAX);
    let huge: ExportLogsServiceRequest = export_request(&vec!["x".repeat(1024); 100]);
    let status = client.export(huge).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    // The server is still healthy and accepting, and counted every refusal.
    client
        .export(export_request(&["still alive".to_string()]))
        .await
        .unwrap();
    assert_eq!(
        porthole
            .counter(
                "porthole_ingest_requests_rejected_total",
                &["reason=\"invalid\""]
            )
            .await,
        2.0
    );
    assert_eq!(
        porthole
            .counter(
                "porthole_ingest_requests_rejected_total",
                &["reason=\"too_large\""]
            )
            .await,
        1.0
    );
}

/// OTLP/JSON written by the standard protobuf JSON printers (Go's `protojson`, Java's
/// `JsonFormat`) carries enum values by name. They were refused with 400 (logs, spans),
/// and a metric's whole `sum` was silently dropped (then refused as "no data"); now names
/// and numbers are both taken, as the OpenTelemetry Collector takes them.
#[tokio::test(flavor = "multi_thread")]
async fn otlp_json_enum_names_doubles_as_strings_and_nulls_are_taken() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = server(dir.path()).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_string();
    let exports = [
        (
            "/v1/logs",
            serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
                {"timeUnixNano": now, "severityNumber": "SEVERITY_NUMBER_WARN",
                 "body": {"stringValue": "named severity"},
                 // null is the field's default in the proto3 JSON mapping.
                 "attributes": null, "traceId": null, "observedTimeUnixNano": null}]}]}]}),
        ),
        (
            "/v1/traces",
            serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [
                {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
                 "name": "GET /named", "kind": "SPAN_KIND_SERVER",
                 "startTimeUnixNano": now, "endTimeUnixNano": now,
                 "status": {"code": "STATUS_CODE_ERROR"}}]}]}]}),
        ),
        (
            "/v1/metrics",
            serde_json::json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
                {"name": "named_requests", "sum": {
                    "aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA",
                    "isMonotonic": true,
                    "dataPoints": [{"timeUnixNano": now, "asInt": "7"}]}},
                // Doubles the JSON mapping writes as strings: they used to arrive as nulls.
                {"name": "ratio", "gauge": {"dataPoints": [
                    {"timeUnixNano": now, "asDouble": "NaN"},
                    {"timeUnixNano": now, "asDouble": "-Infinity"},
                    {"timeUnixNano": now, "asDouble": "1.5"}]}}]}]}]}),
        ),
    ];
    for (path, export) in exports {
        let response = reqwest::Client::new()
            .post(porthole.otlp_http_url(path))
            .json(&export)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert_eq!(
            (path, status, response.text().await.unwrap()),
            (path, 200, "{}".into())
        );
    }
    let sql = |query| crate::collector::sql(&porthole, query);
    let logs = sql("SELECT severity, severity_number FROM logs").await;
    assert_eq!(
        logs,
        [serde_json::json!({"severity": "WARN", "severity_number": 13})]
    );
    let spans = sql("SELECT kind, status_code FROM spans").await;
    assert_eq!(
        spans,
        [serde_json::json!({"kind": "SERVER", "status_code": "ERROR"})]
    );
    let metrics = sql(
        "SELECT aggregation_temporality, value_int FROM metrics WHERE metric_name = 'named_requests'",
    )
    .await;
    // AGGREGATION_TEMPORALITY_DELTA is 1.
    assert_eq!(
        metrics,
        [serde_json::json!({"aggregation_temporality": 1, "value_int": 7})]
    );
    // The API writes them as OTLP/JSON does (arrow's JSON writer wrote null, as for no
    // value).
    let ratio = sql(
        "SELECT isnan(value_double) AS nan, value_double FROM metrics \
         WHERE metric_name = 'ratio' ORDER BY nan DESC, value_double",
    )
    .await;
    assert_eq!(
        ratio,
        [
            serde_json::json!({"nan": true, "value_double": "NaN"}),
            serde_json::json!({"nan": false, "value_double": "-Infinity"}),
            serde_json::json!({"nan": false, "value_double": 1.5}),
        ]
    );
    // Keys that are no OTLP field are ignored, as OTLP has it, and the sender is warned in
    // the partial success (rejected 0): a misspelt field's data went without a word.
    let misspelt = serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": now, "body": {"stringvalue": "lost body"}, "severity": "WARN"},
        {"timeUnixNano": now, "body": {"stringValue": "kept"}, "atributes": []}]}]}]});
    let response = reqwest::Client::new()
        .post(porthole.otlp_http_url("/v1/logs"))
        .json(&misspelt)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    let warning = answer["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap_or_default();
    assert!(
        warning.starts_with(
            r#"3 key(s) that are no OTLP field were ignored, with their values: "stringvalue", "severity", "atributes""#
        ),
        "{answer}"
    );
    assert!(
        ["0", "", "null"].contains(
            &answer["partialSuccess"]["rejectedLogRecords"]
                .to_string()
                .trim_matches('"')
        ),
        "{answer}"
    );

    // A metric whose data does not decode used to be taken with its data dropped.
    let broken = serde_json::json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "dropped", "sum": {"isMonotonic": "yes",
            "dataPoints": [{"timeUnixNano": now, "asInt": "1"}]}}]}]}]});
    let response = reqwest::Client::new()
        .post(porthole.otlp_http_url("/v1/metrics"))
        .json(&broken)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let message = response.text().await.unwrap();
    assert!(
        message.contains(r#"metrics[0] (\"dropped\"): `sum`: invalid type: string \"yes\""#),
        "{message}"
    );
}
