//! OTLP spans → Arrow rows of the `spans` table. Events and links keep their OTLP/JSON
//! encoding in a text column each: lossless, and rarely filtered on.

use std::sync::Arc;

use arrow::array::{Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use porthole_proto::json::to_otlp_json;
use porthole_proto::trace::{span::SpanKind, status::StatusCode};
use porthole_proto::trace_service::ExportTraceServiceRequest;

use crate::attributes::AttributeMapBuilder;
use crate::batch::{Converted, Rejections, assemble, column, hex_id, micros, nanos, refused_time};
use crate::resource::{ResourceColumns, ResourceContext, non_empty};

/// Converts an export received at `received_at_nanos` (0: unknown).
pub fn convert_spans(request: &ExportTraceServiceRequest, received_at_nanos: i64) -> Converted {
    let mut b = SpanColumns::default();
    let mut rejections = Rejections::default();
    for resource_spans in &request.resource_spans {
        let resource =
            ResourceContext::new(resource_spans.resource.as_ref(), &resource_spans.schema_url);
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                let (Some(trace_id), Some(span_id)) = (
                    (span.trace_id.len() == 16)
                        .then(|| hex_id(&span.trace_id))
                        .flatten(),
                    (span.span_id.len() == 8)
                        .then(|| hex_id(&span.span_id))
                        .flatten(),
                ) else {
                    rejections.reject(|| {
                        format!(
                            "span {:?} needs a non-zero 16-byte trace_id and 8-byte span_id, got {} and {} bytes",
                            span.name,
                            span.trace_id.len(),
                            span.span_id.len()
                        )
                    });
                    continue;
                };
                // OTLP requires a span's start. Without one, or with one that cannot be
                // right (1970 for milliseconds written as nanoseconds), it would be stored
                // where no trace search looks and retention deletes first, as a metric
                // point without a time (which Prometheus refuses too).
                let start = nanos(span.start_time_unix_nano);
                if let Some(refused) =
                    refused_time("start_time_unix_nano", start, received_at_nanos)
                {
                    rejections.reject(|| format!("span {:?} {refused}", span.name));
                    continue;
                }
                let end = nanos(span.end_time_unix_nano);
                b.timestamp.append_value(micros(start));
                b.start_time_unix_nano.append_value(start);
                b.end_time_unix_nano.append_value(end);
                b.duration_ns.append_value(end.saturating_sub(start).max(0));
                b.trace_id.append_value(trace_id);
                b.span_id.append_value(span_id);
                b.parent_span_id.append_option(hex_id(&span.parent_span_id));
                b.trace_state.append_option(non_empty(&span.trace_state));
                b.flags.append_value(i64::from(span.flags));
                b.name.append_value(&span.name);
                b.kind.append_value(span_kind(span.kind));
                let status = span.status.clone().unwrap_or_default();
                b.status_code.append_value(status_code(status.code));
                b.status_message.append_option(non_empty(&status.message));
                b.attributes.append(&span.attributes);
                b.dropped_attributes_count
                    .append_value(i64::from(span.dropped_attributes_count));
                b.events
                    .append_option((!span.events.is_empty()).then(|| to_otlp_json(&span.events)));
                b.dropped_events_count
                    .append_value(i64::from(span.dropped_events_count));
                b.links
                    .append_option((!span.links.is_empty()).then(|| to_otlp_json(&span.links)));
                b.dropped_links_count
                    .append_value(i64::from(span.dropped_links_count));
                b.resource.append(&resource, scope_spans.scope.as_ref());
            }
        }
    }
    rejections.into_converted(b.finish())
}

/// `SPAN_KIND_SERVER` → `SERVER`; unknown numbers keep their number.
fn span_kind(kind: i32) -> String {
    SpanKind::try_from(kind)
        .map(|k| k.as_str_name().trim_start_matches("SPAN_KIND_").to_string())
        .unwrap_or_else(|_| kind.to_string())
}

fn status_code(code: i32) -> String {
    StatusCode::try_from(code)
        .map(|c| {
            c.as_str_name()
                .trim_start_matches("STATUS_CODE_")
                .to_string()
        })
        .unwrap_or_else(|_| code.to_string())
}

#[derive(Default)]
struct SpanColumns {
    timestamp: TimestampMicrosecondBuilder,
    start_time_unix_nano: Int64Builder,
    end_time_unix_nano: Int64Builder,
    duration_ns: Int64Builder,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    parent_span_id: StringBuilder,
    trace_state: StringBuilder,
    flags: Int64Builder,
    name: StringBuilder,
    kind: StringBuilder,
    status_code: StringBuilder,
    status_message: StringBuilder,
    attributes: AttributeMapBuilder,
    dropped_attributes_count: Int64Builder,
    events: StringBuilder,
    dropped_events_count: Int64Builder,
    links: StringBuilder,
    dropped_links_count: Int64Builder,
    resource: ResourceColumns,
}

impl SpanColumns {
    fn finish(mut self) -> arrow::array::RecordBatch {
        let mut columns = vec![
            column(
                "timestamp",
                Arc::new(self.timestamp.finish().with_timezone("UTC")),
                false,
            ),
            column(
                "start_time_unix_nano",
                Arc::new(self.start_time_unix_nano.finish()),
                false,
            ),
            column(
                "end_time_unix_nano",
                Arc::new(self.end_time_unix_nano.finish()),
                false,
            ),
            column("duration_ns", Arc::new(self.duration_ns.finish()), false),
            column("trace_id", Arc::new(self.trace_id.finish()), false),
            column("span_id", Arc::new(self.span_id.finish()), false),
            column(
                "parent_span_id",
                Arc::new(self.parent_span_id.finish()),
                true,
            ),
            column("trace_state", Arc::new(self.trace_state.finish()), true),
            column("flags", Arc::new(self.flags.finish()), false),
            column("name", Arc::new(self.name.finish()), false),
            column("kind", Arc::new(self.kind.finish()), false),
            column("status_code", Arc::new(self.status_code.finish()), false),
            column(
                "status_message",
                Arc::new(self.status_message.finish()),
                true,
            ),
            column("attributes", self.attributes.finish(), true),
            column(
                "dropped_attributes_count",
                Arc::new(self.dropped_attributes_count.finish()),
                false,
            ),
            column("events", Arc::new(self.events.finish()), true),
            column(
                "dropped_events_count",
                Arc::new(self.dropped_events_count.finish()),
                false,
            ),
            column("links", Arc::new(self.links.finish()), true),
            column(
                "dropped_links_count",
                Arc::new(self.dropped_links_count.finish()),
                false,
            ),
        ];
        columns.extend(self.resource.finish());
        assemble(columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use porthole_proto::trace::{ResourceSpans, ScopeSpans, Span, Status, span::Event};

    #[test]
    fn span_fields_and_events_survive_and_bad_ids_or_no_start_are_rejected() {
        let good = Span {
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            name: "GET /cart".into(),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 5_000,
            status: Some(Status {
                code: StatusCode::Error as i32,
                message: "boom".into(),
            }),
            events: vec![Event {
                name: "retry".into(),
                time_unix_nano: 2_000,
                ..Default::default()
            }],
            ..Default::default()
        };
        let bad = Span {
            trace_id: vec![0; 16],
            span_id: vec![1; 8],
            start_time_unix_nano: 1_000,
            ..Default::default()
        };
        let untimed = Span {
            name: "untimed".into(),
            start_time_unix_nano: 0,
            end_time_unix_nano: 5_000,
            ..good.clone()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![good.clone(), untimed, bad],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let converted = convert_spans(&request, 0);
        assert_eq!(converted.rejected, 2);
        // Beside the time it was received, a start that cannot be right is refused too.
        let received = 1_796_636_780_000_000_000;
        let at = |start: u64| Span {
            start_time_unix_nano: start,
            end_time_unix_nano: start + 5,
            ..good.clone()
        };
        let day = 24 * 3600 * 1_000_000_000;
        let timed = |spans| ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let refused = convert_spans(
            &timed(vec![
                at(received - 1_000),
                at(received + 2 * day),
                at(received / 1_000_000),
            ]),
            received as i64,
        );
        assert_eq!(refused.batch.num_rows(), 1);
        assert_eq!(refused.rejected, 2);
        assert_eq!(
            refused.rejection_reason.as_deref(),
            Some(
                "span \"GET /cart\" has start_time_unix_nano 1796809580000000000, which is more than a day ahead of the time it was received"
            )
        );
        assert_eq!(
            converted.rejection_reason.as_deref(),
            Some("span \"untimed\" has no start_time_unix_nano (OTLP requires it)")
        );
        let batch = converted.batch;
        assert_eq!(batch.num_rows(), 1);
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap()
                .as_string::<i32>()
                .value(0)
                .to_string()
        };
        assert_eq!(text("trace_id"), "ab".repeat(16));
        assert_eq!(text("kind"), "SERVER");
        assert_eq!(text("status_code"), "ERROR");
        let events: Vec<Event> = serde_json::from_str(&text("events")).unwrap();
        assert_eq!(events[0].name, "retry");
        let duration = batch
            .column_by_name("duration_ns")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(duration.value(0), 4_000);
    }
}
