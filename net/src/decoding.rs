//! Memory for decoding exports (the servers' `--max-decode-bytes`, the collector's
//! `otlp.max_decode_bytes`).
//!
//! An OTLP message takes many times its wire size once decoded: an empty log record is 2
//! bytes on the wire and hundreds in memory. A request size limit alone did not bound
//! that: one 7.6 MiB export of 2 million empty log records took a server from 160 to
//! 900 MB, and one 3.6 MiB export took a collector sidecar from 20 to 366 MiB. So before
//! a message is decoded, its decoded size is estimated from its wire bytes alone (every
//! nested message counted, at [`NODE_BYTES`] each) and reserved from one budget for the
//! process; the reservation is given back once the message is done with (on a server,
//! once its rows are converted: the write buffer counts them from then on). A message
//! whose estimate alone passes the budget is refused as too large; others wait their
//! turn. The same estimate on both tiers means an export a collector accepted is one a
//! server with at least the same budget accepts too.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A message whose estimate alone is more than the whole budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "request would take about {estimate} bytes decoded, more than the {limit} bytes all \
     exports being decoded share; send smaller exports"
)]
pub struct PastBudget {
    pub estimate: usize,
    pub limit: usize,
}

/// What one decoded message costs, with its part of the rows it converts to: measured as
/// 370–400 bytes for empty log records and attributes (prost's struct, the vector it sits
/// in, the row), the smallest messages there are.
pub const NODE_BYTES: usize = 384;
/// Nested messages are counted this deep; deeper length-delimited fields each count as one.
const MAX_DEPTH: usize = 24;
/// The budget is kept in units of this many bytes (a semaphore counts in `u32`).
const UNIT: usize = 1024;

#[derive(Clone)]
pub struct DecodeBudget {
    permits: Arc<Semaphore>,
    bytes: usize,
}

/// Memory reserved for one message until it is converted; empty when none was needed.
#[derive(Default)]
pub struct Reservation {
    _permit: Option<OwnedSemaphorePermit>,
}

/// A [`Reservation`] carried in a gRPC request's extensions from admission to the handler
/// (extensions must be `Clone`).
#[derive(Clone, Default)]
pub struct Reserved(Arc<Mutex<Option<Reservation>>>);

impl Reserved {
    pub fn new(reservation: Reservation) -> Self {
        Self(Arc::new(Mutex::new(Some(reservation))))
    }

    pub fn take(&self) -> Reservation {
        self.0
            .lock()
            .map(|mut held| held.take().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl DecodeBudget {
    pub fn new(bytes: usize) -> Self {
        let units = (bytes / UNIT).clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Self {
            permits: Arc::new(Semaphore::new(units)),
            bytes,
        }
    }

    /// Reserves `estimate` bytes (see [`decoded_estimate`]), waiting while other exports
    /// hold the budget; refuses a message that would take more than the whole budget.
    pub async fn reserve(&self, estimate: usize) -> Result<Reservation, PastBudget> {
        if estimate > self.bytes {
            return Err(PastBudget {
                estimate,
                limit: self.bytes,
            });
        }
        let units = estimate.div_ceil(UNIT).max(1) as u32;
        match self.permits.clone().acquire_many_owned(units).await {
            Ok(permit) => Ok(Reservation {
                _permit: Some(permit),
            }),
            Err(_) => unreachable!("the budget's semaphore is never closed"),
        }
    }
}

/// The bytes `message` is estimated to take decoded and converted: its own bytes (the
/// strings are copied) and [`NODE_BYTES`] for every message nested in it.
pub fn decoded_estimate(message: &[u8]) -> usize {
    let nodes = messages_in(message, 0).unwrap_or(1);
    message
        .len()
        .saturating_add(nodes.saturating_mul(NODE_BYTES))
}

/// As [`decoded_estimate`] for OTLP/JSON: every object (`{`, strings included, so it errs
/// high) counts as a message.
pub fn decoded_estimate_json(json: &[u8]) -> usize {
    let objects = memchr::memchr_iter(b'{', json).count();
    json.len()
        .saturating_add(objects.saturating_mul(NODE_BYTES))
}

/// How many messages `buf` holds, itself included, if it parses as one: every
/// length-delimited field that parses as a message is counted as one (a string that
/// happens to parse is counted too, so this errs high). `None` when `buf` is not a
/// well-formed message.
fn messages_in(buf: &[u8], depth: usize) -> Option<usize> {
    let mut count = 1usize;
    let mut rest = buf;
    while !rest.is_empty() {
        let key = varint(&mut rest)?;
        match key & 7 {
            0 => {
                varint(&mut rest)?;
            }
            1 => rest = rest.get(8..)?,
            5 => rest = rest.get(4..)?,
            2 => {
                let len = usize::try_from(varint(&mut rest)?).ok()?;
                let field = rest.get(..len)?;
                rest = &rest[len..];
                count += if depth >= MAX_DEPTH {
                    1
                } else {
                    messages_in(field, depth + 1).unwrap_or(0)
                };
            }
            _ => return None,
        }
        if key >> 3 == 0 {
            return None; // field number 0 is never valid
        }
    }
    Some(count)
}

fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Some(value);
        }
    }
    None
}

/// An OTLP response as OTLP/JSON, with unset fields left out: a full success is `{}`, as
/// the specification asks ("leave the partial_success field unset"), not
/// `{"partialSuccess":null}`.
pub fn otlp_json<M: serde::Serialize>(message: &M) -> Vec<u8> {
    fn drop_nulls(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(fields) => {
                fields.retain(|_, field| !field.is_null());
                fields.values_mut().for_each(drop_nulls);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(drop_nulls),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(message).unwrap_or_default();
    drop_nulls(&mut value);
    serde_json::to_vec(&value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use porthole_proto::common::{AnyValue, KeyValue, any_value};
    use porthole_proto::logs::{LogRecord, ResourceLogs, ScopeLogs};
    use porthole_proto::logs_service::ExportLogsServiceRequest;
    use prost::Message;

    fn logs(records: Vec<LogRecord>) -> Vec<u8> {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn every_nested_message_is_counted_and_strings_are_not() {
        let attribute = |key: &str, value: &str| KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..Default::default()
        };
        let record = LogRecord {
            time_unix_nano: 1,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue("GET /pay 200".into())),
            }),
            attributes: vec![attribute("http.route", "/pay"), attribute("status", "200")],
            ..Default::default()
        };
        let wire = logs(vec![record.clone(), record]);
        // The request, ResourceLogs, ScopeLogs, and per record: itself, its body, and two
        // attributes each with a value: 3 + 2 × 6.
        assert_eq!(messages_in(&wire, 0), Some(15));
        assert_eq!(decoded_estimate(&wire), wire.len() + 15 * NODE_BYTES);
    }

    #[test]
    fn tiny_messages_estimate_hundreds_of_times_their_wire_size_and_malformed_bytes_one() {
        let empty = LogRecord {
            severity_number: 1,
            ..Default::default()
        };
        let wire = logs(vec![empty; 10_000]);
        assert!(wire.len() < 50_000, "{}", wire.len());
        assert!(decoded_estimate(&wire) > 10_000 * NODE_BYTES);
        assert_eq!(messages_in(&[0xff, 0xff], 0), None);
        assert_eq!(decoded_estimate(&[0xff, 0xff]), 2 + NODE_BYTES);
    }

    #[tokio::test]
    async fn a_message_past_the_whole_budget_is_refused_and_others_wait_their_turn() {
        let wire = logs(vec![LogRecord::default(); 1_000]);
        let estimate = decoded_estimate(&wire);
        let budget = DecodeBudget::new(estimate * 3 / 2);
        let first = budget.reserve(estimate).await.unwrap();
        let second = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(estimate).await.map(|_| ()) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(
            !second.is_finished(),
            "the second waits while the first holds the budget"
        );
        drop(first);
        second.await.unwrap().unwrap();
        let small = DecodeBudget::new(estimate - 1);
        match small.reserve(estimate).await {
            Err(refused) => assert_eq!(refused.limit, estimate - 1),
            Ok(_) => panic!("a message past the whole budget was admitted"),
        }
    }
}
