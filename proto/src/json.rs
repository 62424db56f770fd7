//! OTLP/JSON decoding that accepts enum values by name as well as by number.
//!
//! The OTLP specification has senders write enums as integers (`"severityNumber": 9`),
//! but the standard protobuf JSON printers (Go's `protojson`, Java's `JsonFormat`) write
//! their names (`"severityNumber": "SEVERITY_NUMBER_INFO"`), and the proto3 JSON mapping
//! has parsers accept both, as the OpenTelemetry Collector does. The generated types take
//! only numbers; worse, a name inside a metric's `sum`/`gauge`/… (a flattened oneof) is
//! not even an error there: serde drops the whole data and the metric arrives empty. So
//! an export that holds an enum value name is decoded with the names of its four enum
//! fields replaced by their numbers. One scan for the names' prefixes is all an export
//! without them costs.

use serde::de::DeserializeOwned;

use crate::{logs, metrics, trace};

/// Decodes an OTLP/JSON message; enum fields may hold names or numbers. An error's
/// position is in the text with the names replaced, when there were any.
pub fn from_otlp_json<M: DeserializeOwned>(json: &[u8]) -> Result<M, serde_json::Error> {
    match enum_names_as_numbers(json) {
        Some(numbered) => serde_json::from_slice(&numbered),
        None => serde_json::from_slice(json),
    }
}

/// How every enum value name of the four fields starts.
const NAME_PREFIXES: [&[u8]; 4] = [
    b"\"SEVERITY_NUMBER_",
    b"\"SPAN_KIND_",
    b"\"STATUS_CODE_",
    b"\"AGGREGATION_TEMPORALITY_",
];

/// The number of enum value `name` of the OTLP/JSON field `key`.
fn enum_number(key: &[u8], name: &str) -> Option<i32> {
    match key {
        b"severityNumber" => logs::SeverityNumber::from_str_name(name).map(|v| v as i32),
        b"kind" => trace::span::SpanKind::from_str_name(name).map(|v| v as i32),
        b"code" => trace::status::StatusCode::from_str_name(name).map(|v| v as i32),
        b"aggregationTemporality" => {
            metrics::AggregationTemporality::from_str_name(name).map(|v| v as i32)
        }
        _ => None,
    }
}

/// `json` with every enum field's value name (a string right after one of the enum
/// fields' keys) written as its number; `None` when there is none. Strings elsewhere (a
/// body that reads `SPAN_KIND_SERVER`, an attribute named `kind`) are copied as they are.
fn enum_names_as_numbers(json: &[u8]) -> Option<Vec<u8>> {
    if !NAME_PREFIXES
        .iter()
        .any(|prefix| memchr::memmem::find(json, prefix).is_some())
    {
        return None;
    }
    let mut out = Vec::with_capacity(json.len());
    let mut replaced = false;
    // The key whose value comes next, once its `:` is read.
    let mut key: Option<&[u8]> = None;
    let mut at = 0;
    while at < json.len() {
        let byte = json[at];
        if byte != b'"' {
            if !byte.is_ascii_whitespace() {
                key = None;
            }
            out.push(byte);
            at += 1;
            continue;
        }
        let end = string_end(json, at)?;
        let content = &json[at + 1..end];
        if let Some(field) = key.take() {
            let number = std::str::from_utf8(content)
                .ok()
                .and_then(|name| enum_number(field, name));
            match number {
                Some(number) => {
                    out.extend_from_slice(number.to_string().as_bytes());
                    replaced = true;
                }
                None => out.extend_from_slice(&json[at..=end]),
            }
            at = end + 1;
            continue;
        }
        let colon = (end + 1..json.len()).find(|&i| !json[i].is_ascii_whitespace());
        match colon {
            Some(colon) if json[colon] == b':' => {
                out.extend_from_slice(&json[at..=colon]);
                key = Some(content);
                at = colon + 1;
            }
            _ => {
                out.extend_from_slice(&json[at..=end]);
                at = end + 1;
            }
        }
    }
    replaced.then_some(out)
}

/// Where the string starting at `start` (its opening quote) ends (its closing quote).
fn string_end(json: &[u8], start: usize) -> Option<usize> {
    let mut at = start + 1;
    while at < json.len() {
        match json[at] {
            b'\\' => at += 2,
            b'"' => return Some(at),
            _ => at += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs_service::ExportLogsServiceRequest;
    use crate::metrics_service::ExportMetricsServiceRequest;
    use crate::trace_service::ExportTraceServiceRequest;

    #[test]
    fn enum_fields_take_names_as_well_as_numbers() {
        let logs: ExportLogsServiceRequest = from_otlp_json(
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
                {"severityNumber" : "SEVERITY_NUMBER_WARN",
                 "body":{"stringValue":"SEVERITY_NUMBER_ERROR \"kind\": \"SPAN_KIND_SERVER\""},
                 "attributes":[{"key":"kind","value":{"stringValue":"SPAN_KIND_CLIENT"}}]},
                {"severityNumber":17}]}]}]}"#,
        )
        .unwrap();
        let records = &logs.resource_logs[0].scope_logs[0].log_records;
        assert_eq!(records[0].severity_number, 13);
        assert_eq!(records[1].severity_number, 17);
        let body = format!("{:?}", records[0].body);
        assert!(
            body.contains(r#"SEVERITY_NUMBER_ERROR \"kind\": \"SPAN_KIND_SERVER\""#),
            "{body}"
        );
        let attribute = format!("{:?}", records[0].attributes[0].value);
        assert!(attribute.contains("SPAN_KIND_CLIENT"), "{attribute}");

        let spans: ExportTraceServiceRequest = from_otlp_json(
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"GET /","kind":"SPAN_KIND_SERVER",
                "status":{"code":"STATUS_CODE_ERROR","message":"boom"}}]}]}]}"#,
        )
        .unwrap();
        let span = &spans.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!((span.kind, span.status.as_ref().unwrap().code), (2, 2));

        let metrics: ExportMetricsServiceRequest = from_otlp_json(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"requests",
                "sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_CUMULATIVE","isMonotonic":true,
                "dataPoints":[{"asInt":"3"}]}}]}]}]}"#,
        )
        .unwrap();
        let metric = &metrics.resource_metrics[0].scope_metrics[0].metrics[0];
        match &metric.data {
            Some(crate::metrics::metric::Data::Sum(sum)) => {
                assert_eq!((sum.aggregation_temporality, sum.data_points.len()), (2, 1));
            }
            data => panic!("the sum was dropped: {data:?}"),
        }
    }

    #[test]
    fn unknown_names_and_broken_json_are_errors() {
        let unknown_name = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
            {"severityNumber":"SEVERITY_NUMBER_LOUD"}]}]}]}"#;
        let error = from_otlp_json::<ExportLogsServiceRequest>(unknown_name).unwrap_err();
        assert!(
            error.to_string().contains("invalid type: string"),
            "{error}"
        );
        let broken = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"SEVERITY_NUMBER_INFO","#;
        assert!(from_otlp_json::<ExportLogsServiceRequest>(broken).is_err());
    }
}
