//! OTLP log records → Arrow rows of the `logs` table.

use std::sync::Arc;

use arrow::array::{
    Int32Builder, Int64Array, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use porthole_proto::logs_service::ExportLogsServiceRequest;

use crate::attributes::{AttributeMapBuilder, render_value};
use crate::batch::{
    Converted, Rejections, assemble, column, hex_id, implausible_time, micros, nanos,
};
use crate::resource::{ResourceColumns, ResourceContext, non_empty};

/// Converts an export; `received_at_nanos` stands in for records with no time at all.
pub fn convert_logs(request: &ExportLogsServiceRequest, received_at_nanos: i64) -> Converted {
    let mut b = LogColumns::default();
    let mut rejections = Rejections::default();
    for resource_logs in &request.resource_logs {
        let resource =
            ResourceContext::new(resource_logs.resource.as_ref(), &resource_logs.schema_url);
        for scope_logs in &resource_logs.scope_logs {
            for record in &scope_logs.log_records {
                if !matches!(record.trace_id.len(), 0 | 16)
                    || !matches!(record.span_id.len(), 0 | 8)
                {
                    rejections.reject(|| {
                        format!(
                            "log record has a trace_id of {} bytes and a span_id of {} bytes; they must be 16 and 8 bytes or empty",
                            record.trace_id.len(),
                            record.span_id.len()
                        )
                    });
                    continue;
                }
                let time = nanos(record.time_unix_nano);
                let observed = nanos(record.observed_time_unix_nano);
                b.timestamp
                    .append_value(micros(filed_at(time, observed, received_at_nanos)));
                // A placeholder: a record gets its id in the file it is written to
                // (`number_records`), the one place ids are drawn.
                b.record_id.append_value(0);
                b.time_unix_nano.append_value(time);
                b.observed_time_unix_nano.append_value(observed);
                b.severity
                    .append_option(severity(record.severity_number, &record.severity_text));
                b.severity_number.append_value(record.severity_number);
                b.severity_text
                    .append_option(non_empty(&record.severity_text));
                let (body_type, body) = render_value(record.body.as_ref());
                b.body.append_option(body);
                b.body_type.append_value(body_type);
                b.trace_id.append_option(hex_id(&record.trace_id));
                b.span_id.append_option(hex_id(&record.span_id));
                b.flags.append_value(i64::from(record.flags));
                b.event_name.append_option(non_empty(&record.event_name));
                b.attributes.append(&record.attributes);
                b.dropped_attributes_count
                    .append_value(i64::from(record.dropped_attributes_count));
                b.resource.append(&resource, scope_logs.scope.as_ref());
            }
        }
    }
    rejections.into_converted(b.finish())
}

/// The time a record is filed under (the `timestamp` column, which searches filter, order
/// and page by, and retention deletes by): its own time, else its observed time, else the
/// time ingest received it (`received`; 0 when unknown). A time is taken only when it is
/// plausible beside `received`: from 2000 on and at most a day ahead of it. Milliseconds
/// written as nanoseconds (1970-01-01) or a clock years ahead filed a record where no search
/// looks by default, and a 1970 day was the first thing retention deleted: taken, then
/// lost. Such a record is filed when it arrived; its own times stay in `time_unix_nano`
/// and `observed_time_unix_nano` as sent.
fn filed_at(time: i64, observed: i64, received: i64) -> i64 {
    [time, observed]
        .into_iter()
        .find(|t| implausible_time(*t, received).is_none())
        .unwrap_or(received.max(0))
}

/// Numbers the records of one new data file in file order: a random base plus the row's
/// ordinal (see `encode_file`), unique across files and nodes without coordination; an
/// Int64 (Delta has no unsigned type), never negative. Rows without a `record_id` column
/// (other signals) pass.
pub(crate) fn number_records(rows: RecordBatch) -> crate::Result<RecordBatch> {
    let Some((position, _)) = rows.schema().column_with_name("record_id") else {
        return Ok(rows);
    };
    let base = (uuid::Uuid::new_v4().as_u64_pair().0 >> 2) as i64;
    let ids = Int64Array::from_iter_values((0..rows.num_rows() as i64).map(|row| base + row));
    let mut columns = rows.columns().to_vec();
    columns[position] = Arc::new(ids);
    Ok(RecordBatch::try_new(rows.schema(), columns)?)
}

/// The normalised severity: from the number when set (the OTLP ranges), else the text.
fn severity(number: i32, text: &str) -> Option<std::borrow::Cow<'static, str>> {
    let name = match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => return non_empty(text).map(|t| t.to_ascii_uppercase().into()),
    };
    Some(name.into())
}

#[derive(Default)]
struct LogColumns {
    timestamp: TimestampMicrosecondBuilder,
    record_id: Int64Builder,
    time_unix_nano: Int64Builder,
    observed_time_unix_nano: Int64Builder,
    severity: StringBuilder,
    severity_number: Int32Builder,
    severity_text: StringBuilder,
    body: StringBuilder,
    body_type: StringBuilder,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    flags: Int64Builder,
    event_name: StringBuilder,
    attributes: AttributeMapBuilder,
    dropped_attributes_count: Int64Builder,
    resource: ResourceColumns,
}

impl LogColumns {
    fn finish(mut self) -> arrow::array::RecordBatch {
        let mut columns = vec![
            column(
                "timestamp",
                Arc::new(self.timestamp.finish().with_timezone("UTC")),
                false,
            ),
            // Stable identity of a record across compactions: the search cursor's tie-break
            // among records of one microsecond.
            column("record_id", Arc::new(self.record_id.finish()), false),
            column(
                "time_unix_nano",
                Arc::new(self.time_unix_nano.finish()),
                false,
            ),
            column(
                "observed_time_unix_nano",
                Arc::new(self.observed_time_unix_nano.finish()),
                false,
            ),
            column("severity", Arc::new(self.severity.finish()), true),
            column(
                "severity_number",
                Arc::new(self.severity_number.finish()),
                false,
            ),
            column("severity_text", Arc::new(self.severity_text.finish()), true),
            column("body", Arc::new(self.body.finish()), true),
            column("body_type", Arc::new(self.body_type.finish()), false),
            column("trace_id", Arc::new(self.trace_id.finish()), true),
            column("span_id", Arc::new(self.span_id.finish()), true),
            column("flags", Arc::new(self.flags.finish()), false),
            column("event_name", Arc::new(self.event_name.finish()), true),
            column("attributes", self.attributes.finish(), true),
            column(
                "dropped_attributes_count",
                Arc::new(self.dropped_attributes_count.finish()),
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
    use arrow::array::{Array, AsArray};
    use porthole_proto::common::{AnyValue, KeyValue, any_value::Value};
    use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
    use porthole_proto::resource::Resource;

    fn string_kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    fn request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        string_kv("service.name", "checkout"),
                        string_kv("k8s.namespace.name", "shop"),
                        string_kv("k8s.pod.name", "checkout-7d9f"),
                        string_kv("k8s.container.name", "app"),
                        string_kv("service.version", "v2"),
                        string_kv("container.image.id", "sha256:abc"),
                    ],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn promoted_columns_and_body_survive() {
        let record = LogRecord {
            time_unix_nano: 1_700_000_000_123_456_789,
            severity_number: 17,
            body: Some(AnyValue {
                value: Some(Value::StringValue("payment failed".into())),
            }),
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            attributes: vec![string_kv("order", "42")],
            ..Default::default()
        };
        let converted = convert_logs(&request(vec![record]), 1_700_000_000_200_000_000);
        assert_eq!(converted.rejected, 0);
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
        assert_eq!(text("body"), "payment failed");
        assert_eq!(text("severity"), "ERROR");
        assert_eq!(text("service"), "checkout");
        assert_eq!(text("namespace"), "shop");
        assert_eq!(text("pod"), "checkout-7d9f");
        assert_eq!(text("container"), "app");
        assert_eq!(text("version"), "v2");
        assert_eq!(text("image_digest"), "sha256:abc");
        assert_eq!(text("trace_id"), "01".repeat(16));
        let t = batch
            .column_by_name("time_unix_nano")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(t.value(0), 1_700_000_000_123_456_789);
    }

    #[test]
    fn bad_ids_are_rejected_and_counted_not_fatal() {
        let good = LogRecord {
            time_unix_nano: 1,
            ..Default::default()
        };
        let bad = LogRecord {
            trace_id: vec![1; 3],
            ..Default::default()
        };
        let converted = convert_logs(&request(vec![good, bad]), 5);
        assert_eq!(converted.batch.num_rows(), 1);
        assert_eq!(converted.rejected, 1);
        assert!(converted.rejection_reason.unwrap().contains("3 bytes"));
    }

    #[test]
    fn severity_comes_from_the_number_else_the_text_uppercased() {
        assert_eq!(severity(9, "whatever").as_deref(), Some("INFO"));
        assert_eq!(severity(24, "").as_deref(), Some("FATAL"));
        assert_eq!(severity(0, "Warning").as_deref(), Some("WARNING"));
        assert_eq!(severity(0, ""), None);
        assert_eq!(severity(99, "notice").as_deref(), Some("NOTICE"));
    }

    #[test]
    fn a_record_without_times_gets_the_receive_time() {
        let converted = convert_logs(&request(vec![LogRecord::default()]), 7_000);
        let ts = converted.batch.column_by_name("timestamp").unwrap();
        assert_eq!(
            ts.as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .value(0),
            7
        );
        assert!(converted.batch.column_by_name("body").unwrap().is_null(0));
    }

    /// A time that cannot be the record's (before 2000, more than a day ahead of its
    /// arrival) does not file it: the next plausible time does, else the arrival.
    #[test]
    fn a_record_is_filed_by_its_first_plausible_time_else_when_it_arrived() {
        const DAY: u64 = 24 * 3600 * 1_000_000_000;
        let received: u64 = 1_796_636_780_000_000_000;
        let record = |time: u64, observed: u64| LogRecord {
            time_unix_nano: time,
            observed_time_unix_nano: observed,
            ..Default::default()
        };
        let records = vec![
            record(received - 3600 * 1_000_000_000, 0), // an hour ago: its own
            record(received / 1_000_000, 0),            // milliseconds as nanoseconds
            record(received / 1_000_000, received - 5), // ...with a good observed time
            record(received + 365 * DAY, 0),            // a clock a year ahead
            record(received + DAY - 1_000, 0),          // a clock most of a day ahead
            record(946_684_800_000_000_000, 0),         // 2000-01-01, as early as taken
        ];
        let converted = convert_logs(&request(records), received as i64);
        let batch = &converted.batch;
        let filed = batch
            .column_by_name("timestamp")
            .unwrap()
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        let micros = |nanos: u64| (nanos / 1_000) as i64;
        assert_eq!(
            filed.values().to_vec(),
            [
                micros(received - 3600 * 1_000_000_000),
                micros(received),
                micros(received - 5),
                micros(received),
                micros(received + DAY - 1_000),
                micros(946_684_800_000_000_000),
            ]
        );
        // The record's own times are kept as sent.
        let sent = batch
            .column_by_name("time_unix_nano")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(sent.value(1), (received / 1_000_000) as i64);
        assert_eq!(sent.value(3), (received + 365 * DAY) as i64);
    }
}
