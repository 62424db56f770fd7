//! The result of turning one OTLP export into Arrow: the accepted rows and what was rejected.

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Field, Schema};
use std::sync::Arc;

/// Rows converted from one export request.
#[derive(Debug)]
pub struct Converted {
    pub batch: RecordBatch,
    /// Records (log records, spans or data points) refused, for OTLP partial success.
    pub rejected: u64,
    /// Why the first refused record was refused.
    pub rejection_reason: Option<String>,
}

/// Counts rejected records and keeps the first reason.
#[derive(Default)]
pub struct Rejections {
    pub count: u64,
    pub first_reason: Option<String>,
}

impl Rejections {
    pub fn reject(&mut self, reason: impl FnOnce() -> String) {
        self.count += 1;
        if self.first_reason.is_none() {
            self.first_reason = Some(reason());
        }
    }

    pub fn into_converted(self, batch: RecordBatch) -> Converted {
        Converted {
            batch,
            rejected: self.count,
            rejection_reason: self.first_reason,
        }
    }
}

/// Assembles named columns into a batch; the schema follows the arrays' own types so the
/// two can never disagree.
pub fn assemble(columns: Vec<(Field, ArrayRef)>) -> RecordBatch {
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .expect("every builder appends exactly one value per row")
}

pub fn column(name: &str, array: ArrayRef, nullable: bool) -> (Field, ArrayRef) {
    (Field::new(name, array.data_type().clone(), nullable), array)
}

/// OTLP ids are raw bytes; an all-zero or empty id means "not set".
pub fn hex_id(id: &[u8]) -> Option<HexId> {
    if id.iter().all(|b| *b == 0) {
        return None;
    }
    let mut text = [0u8; 32];
    Some(match text.get_mut(..2 * id.len()) {
        Some(short) => {
            hex::encode_to_slice(id, short).expect("two hex digits a byte");
            HexId::Short(text, 2 * id.len() as u8)
        }
        None => HexId::Long(hex::encode(id)),
    })
}

/// An id in lowercase hex, kept on the stack when it is at most 16 bytes (every valid
/// trace and span id), so converting a record allocates nothing for its ids.
pub enum HexId {
    Short([u8; 32], u8),
    Long(String),
}

impl AsRef<str> for HexId {
    fn as_ref(&self) -> &str {
        match self {
            HexId::Short(text, len) => {
                std::str::from_utf8(&text[..usize::from(*len)]).expect("hex digits are ASCII")
            }
            HexId::Long(text) => text,
        }
    }
}

/// Nanoseconds since the epoch as the Delta timestamp type (microseconds, UTC).
pub fn micros(nanos: i64) -> i64 {
    nanos.div_euclid(1000)
}

/// OTLP times are u64 nanoseconds; anything past i64::MAX (year 2262) is clamped.
pub fn nanos(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// 2000-01-01T00:00:00Z: a record's time before it is a mistake (milliseconds written as
/// nanoseconds are 1970), not a time anything happened at.
const EARLIEST_PLAUSIBLE_NANOS: i64 = 946_684_800_000_000_000;
/// How far past the time it was received a record's time may be (a node's clock ahead).
const LATEST_PLAUSIBLE_AHEAD_NANOS: i64 = 24 * 3600 * 1_000_000_000;

/// Why `time` cannot be the time of a record received at `received` (0: unknown, when
/// every time but 0 passes): before 2000, or more than a day after `received`. Such a
/// record was filed where no search looks by default, and a 1970 day is the first thing
/// retention deletes: taken, then lost.
pub(crate) fn implausible_time(time: i64, received: i64) -> Option<&'static str> {
    if time <= 0 {
        Some("is not set")
    } else if received <= 0 {
        None
    } else if time < EARLIEST_PLAUSIBLE_NANOS {
        Some("is before 2000 (milliseconds or seconds written as nanoseconds?)")
    } else if time > received.saturating_add(LATEST_PLAUSIBLE_AHEAD_NANOS) {
        Some("is more than a day ahead of the time it was received")
    } else {
        None
    }
}

/// A record refused for its `field`'s `time`: the words after the record's name in the
/// refusal (`has no start_time_unix_nano (OTLP requires it)`, `has time_unix_nano 1796636780000,
/// which is before 2000 (…)`), written only if the refusal is.
pub(crate) struct RefusedTime {
    field: &'static str,
    time: i64,
    why: &'static str,
}

impl std::fmt::Display for RefusedTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.time {
            0 => write!(f, "has no {} (OTLP requires it)", self.field),
            time => write!(f, "has {} {time}, which {}", self.field, self.why),
        }
    }
}

/// [`implausible_time`] for a record that is refused for it (a span, a metric point).
pub(crate) fn refused_time(field: &'static str, time: i64, received: i64) -> Option<RefusedTime> {
    implausible_time(time, received).map(|why| RefusedTime { field, time, why })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_2000_or_a_day_ahead_are_implausible() {
        let received = 1_796_636_780_000_000_000;
        let day = LATEST_PLAUSIBLE_AHEAD_NANOS;
        for (time, plausible) in [
            (received, true),
            (received - 365 * day, true),
            (EARLIEST_PLAUSIBLE_NANOS, true),
            (received + day, true),
            (0, false),
            (received / 1_000_000, false),
            (EARLIEST_PLAUSIBLE_NANOS - 1, false),
            (received + day + 1, false),
        ] {
            assert_eq!(
                implausible_time(time, received).is_none(),
                plausible,
                "{time}"
            );
        }
        // Without a time received, only an unset time is.
        assert!(implausible_time(1, 0).is_none());
        assert!(implausible_time(0, 0).is_some());
    }

    #[test]
    fn ids_are_lowercase_hex_of_any_length_and_zero_or_empty_is_unset() {
        let hex = |id: &[u8]| hex_id(id).map(|h| h.as_ref().to_string());
        assert_eq!(hex(&[]), None);
        assert_eq!(hex(&[0; 16]), None);
        assert_eq!(hex(&[0xab; 8]).as_deref(), Some("abababababababab"));
        let trace: Vec<u8> = (0..16).map(|i| i * 17).collect();
        assert_eq!(hex(&trace), Some(::hex::encode(&trace)));
        // Longer than a trace id (a malformed parent span id): kept whole, not cut.
        let long: Vec<u8> = (1..=20).collect();
        assert_eq!(hex(&long), Some(::hex::encode(&long)));
    }
}
