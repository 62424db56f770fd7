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

#[cfg(test)]
mod tests {
    use super::*;

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
