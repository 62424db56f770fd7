//! Prometheus remote_write 1.0: `POST /api/v1/write`, a snappy-compressed protobuf
//! `WriteRequest`. Every sample becomes a gauge point of the `metrics` table named by its
//! `__name__`, with the other labels as attributes, so PromQL reads back exactly the
//! series Prometheus sent (staleness markers included: their NaN bits are kept). The
//! answer is 204 only once the samples are committed; a retryable failure is a 5xx,
//! which Prometheus retries, and bad data a 4xx, which it drops.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use porthole_proto::common::{AnyValue, KeyValue, any_value};
use porthole_proto::metrics::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use porthole_proto::metrics_service::ExportMetricsServiceRequest;
use porthole_storage::Signal;

use crate::IngestError;
use crate::http::HttpState;

/// The remote_write 1.0 messages (prometheus/prompb `remote.proto` and `types.proto`),
/// only the fields Porthole reads; prost skips the rest.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Native histograms, which Porthole does not store; counted as refused.
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub histograms: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Scope name stamped on remote-written points, so SQL users can tell them apart.
pub const REMOTE_WRITE_SCOPE: &str = "prometheus.remote_write";

/// The OTLP export a write request amounts to, and what of it had to be refused.
pub fn to_otlp(request: WriteRequest) -> (ExportMetricsServiceRequest, u64, Option<String>) {
    let mut refused = 0u64;
    let mut reason = None;
    let mut metrics = Vec::with_capacity(request.timeseries.len());
    for series in request.timeseries {
        refused += series.histograms.len() as u64;
        if !series.histograms.is_empty() {
            reason.get_or_insert_with(|| "native histograms are not stored".to_string());
        }
        if series.samples.is_empty() {
            continue;
        }
        let Some(name) = series
            .labels
            .iter()
            .find(|l| l.name == "__name__" && !l.value.is_empty())
            .map(|l| l.value.clone())
        else {
            refused += series.samples.len() as u64;
            reason.get_or_insert_with(|| "a series has no __name__ label".to_string());
            continue;
        };
        let attributes: Vec<KeyValue> = series
            .labels
            .iter()
            .filter(|l| l.name != "__name__" && !l.value.is_empty())
            .map(|l| KeyValue {
                key: l.name.clone(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(l.value.clone())),
                }),
                ..Default::default()
            })
            .collect();
        let mut points = Vec::with_capacity(series.samples.len());
        for sample in series.samples {
            if sample.timestamp < 0 {
                refused += 1;
                reason.get_or_insert_with(|| format!("{name}: a sample before 1970"));
                continue;
            }
            points.push(NumberDataPoint {
                attributes: attributes.clone(),
                time_unix_nano: sample.timestamp as u64 * 1_000_000,
                value: Some(number_data_point::Value::AsDouble(sample.value)),
                ..Default::default()
            });
        }
        metrics.push(Metric {
            name,
            data: Some(metric::Data::Gauge(Gauge {
                data_points: points,
            })),
            ..Default::default()
        });
    }
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                scope: Some(porthole_proto::common::InstrumentationScope {
                    name: REMOTE_WRITE_SCOPE.into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    (request, refused, reason)
}

fn reply(error: &IngestError) -> Response {
    let status = match error {
        // Prometheus drops a batch on a 4xx and retries a 5xx; too large will never fit.
        IngestError::TooLarge { .. } => StatusCode::BAD_REQUEST,
        other => other.http_status(),
    };
    (status, error.to_string()).into_response()
}

pub(crate) async fn write(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let tenant = match state.access.admit(&headers) {
        Ok(tenant) => tenant,
        Err(error) => return reply(&error),
    };
    let Ok(_inflight) = state.limits.place() else {
        state
            .pipeline
            .rejected(Signal::Metrics, &IngestError::Overloaded, 0, 0);
        return reply(&IngestError::Overloaded);
    };
    let limit = state.limits.max_bytes;
    let decoded = async {
        let encoding = headers
            .get(axum::http::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("snappy")
            .trim()
            .to_ascii_lowercase();
        if encoding != "snappy" {
            return Err(IngestError::Unsupported {
                what: "content-encoding (remote_write needs snappy)",
                value: encoding,
            });
        }
        let raw = porthole_net::body::read(body, limit, state.limits.read_timeout).await?;
        let wire = raw.len();
        let size = snap::raw::decompress_len(&raw)
            .map_err(|e| IngestError::InvalidRequest(format!("snappy: {e}")))?;
        if size > limit {
            return Err(IngestError::TooLarge { limit });
        }
        let bytes = snap::raw::Decoder::new()
            .decompress_vec(&raw)
            .map_err(|e| IngestError::InvalidRequest(format!("snappy: {e}")))?;
        let estimate = porthole_net::decoding::decoded_estimate(&bytes);
        let reservation = state.limits.decoding.reserve(estimate).await?;
        let request = <WriteRequest as prost::Message>::decode(bytes.as_slice())
            .map_err(|e| IngestError::InvalidRequest(format!("protobuf WriteRequest: {e}")))?;
        Ok((request, wire, reservation))
    }
    .await;
    let (request, wire_bytes, reservation) = match decoded {
        Ok(decoded) => decoded,
        Err(error) => {
            // As OTLP/HTTP counts it: the declared size, whether or not it was all read.
            let declared = crate::http::declared_length(&headers);
            state
                .pipeline
                .rejected(Signal::Metrics, &error, 0, declared);
            return reply(&error);
        }
    };
    let (export, refused, reason) = to_otlp(request);
    let exported = state
        .pipeline
        .export(export, wire_bytes, tenant, reservation)
        .await;
    if let Err(error) = exported {
        return reply(&error);
    }
    if refused > 0 {
        let reason = reason.unwrap_or_default();
        state.pipeline.refused(Signal::Metrics, refused, &reason);
        // The rest is stored; a 4xx tells Prometheus not to resend the refused part.
        return (
            StatusCode::BAD_REQUEST,
            format!("{refused} samples refused: {reason}"),
        )
            .into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, value: &str) -> Label {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn samples_become_gauge_points_named_by_their_name_label() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let request = WriteRequest {
            timeseries: vec![
                TimeSeries {
                    labels: vec![
                        label("__name__", "up"),
                        label("job", "node"),
                        label("empty", ""),
                    ],
                    samples: vec![
                        Sample {
                            value: 1.0,
                            timestamp: 1_000,
                        },
                        Sample {
                            value: stale,
                            timestamp: 2_000,
                        },
                    ],
                    histograms: vec![],
                },
                TimeSeries {
                    labels: vec![label("job", "x")],
                    samples: vec![Sample {
                        value: 2.0,
                        timestamp: 1,
                    }],
                    histograms: vec![],
                },
            ],
        };
        let (export, refused, reason) = to_otlp(request);
        assert_eq!(refused, 1);
        assert!(reason.unwrap().contains("__name__"));
        let metrics = &export.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 1);
        assert_eq!(metrics[0].name, "up");
        let Some(metric::Data::Gauge(g)) = &metrics[0].data else {
            panic!()
        };
        assert_eq!(g.data_points.len(), 2);
        assert_eq!(g.data_points[0].time_unix_nano, 1_000_000_000);
        assert_eq!(
            g.data_points[0].attributes.len(),
            1,
            "empty labels are absent labels"
        );
        let Some(number_data_point::Value::AsDouble(v)) = g.data_points[1].value else {
            panic!()
        };
        assert_eq!(
            v.to_bits(),
            stale.to_bits(),
            "the staleness marker survives"
        );
    }
}
