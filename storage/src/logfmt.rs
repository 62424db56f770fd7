//! The `key=value` pairs of a plain text log line: logfmt, as Go's `slog` and logrus, Ruby's
//! and Heroku's routers and many other programs write them, often after a timestamp and a
//! level (`2026-12-07T10:00:00Z INFO request done status=503 duration_ms=1840`). Loki's
//! `| logfmt` finds them at query time; Porthole indexes them as a JSON line's fields are,
//! so `status:>=500` and `user:u1` find such lines too.
//!
//! Hand-written rather than a crate: the logfmt crates read a whole line as pairs and refuse
//! the free text around them, and the ones that exist are unmaintained or a few weeks old.

use serde_json::{Map, Number, Value};

/// The pairs of `line`, as an object whose values are numbers where they are written as
/// numbers (`200`, `-1.5`) and text otherwise; `None` without a pair.
///
/// A key starts a word (the line's start or after whitespace) with a letter or `_`, holds
/// letters, digits, `_`, `.` and `-`, and is followed by `=` at once. A value is a
/// double-quoted string (with `\"`, `\\`, `\n` and `\t` escapes; unterminated, it runs to
/// the line's end) or runs to the next (ASCII) whitespace. The UI lists a line's pairs by
/// the same rules (`logfmtFields` in web/src/format.ts). Empty values are left out; a key given
/// twice keeps its last value.
pub fn fields(line: &str) -> Option<Map<String, Value>> {
    let bytes = line.as_bytes();
    let mut fields = Map::new();
    let mut i = 0;
    while i < bytes.len() {
        let word_start = i == 0 || bytes[i - 1].is_ascii_whitespace();
        if !word_start || !(bytes[i].is_ascii_alphabetic() || bytes[i] == b'_') {
            i += 1;
            continue;
        }
        let key_end = i + bytes[i..]
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))
            .unwrap_or(bytes.len() - i);
        if bytes.get(key_end) != Some(&b'=') {
            i = key_end;
            continue;
        }
        let key = &line[i..key_end];
        let (value, end) = match bytes.get(key_end + 1) {
            Some(b'"') => quoted(&line[key_end + 2..]),
            _ => {
                let rest = &line[key_end + 1..];
                let len = rest
                    .find(|c: char| c.is_ascii_whitespace())
                    .unwrap_or(rest.len());
                (typed(&rest[..len]), len)
            }
        };
        if value != Value::String(String::new()) {
            fields.insert(key.to_owned(), value);
        }
        i = key_end + 1 + end;
    }
    (!fields.is_empty()).then_some(fields)
}

/// A quoted value's text, from just after its opening quote, and how many bytes it took
/// from there (its quotes included).
fn quoted(rest: &str) -> (Value, usize) {
    let mut text = String::new();
    let mut chars = rest.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return (Value::String(text), at + 2),
            '\\' => match chars.next() {
                Some((_, 'n')) => text.push('\n'),
                Some((_, 't')) => text.push('\t'),
                Some((_, other)) => text.push(other),
                None => text.push('\\'),
            },
            c => text.push(c),
        }
    }
    (Value::String(text), rest.len() + 1)
}

/// Digits that JavaScript and JSON readers take exactly: beyond 2^53 an integer is an id,
/// kept as its text.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// An unquoted value: a number when it is written as one (no leading zeros, which ids and
/// codes such as `007` have; at most 15 significant digits, so it is exact), else text.
fn typed(text: &str) -> Value {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    let numeric = !whole.is_empty()
        && plain(whole)
        && plain(fraction)
        && (whole == "0" || !whole.starts_with('0'))
        && !(digits.contains('.') && fraction.is_empty())
        && whole.len() + fraction.len() <= 15;
    let number = match numeric {
        true if fraction.is_empty() => text
            .parse::<i64>()
            .ok()
            .filter(|n| n.abs() <= MAX_SAFE_INTEGER)
            .map(Number::from),
        true => text.parse::<f64>().ok().and_then(Number::from_f64),
        false => None,
    };
    number.map_or_else(|| Value::String(text.to_owned()), Value::Number)
}

#[cfg(test)]
mod tests {
    use super::fields;
    use serde_json::json;

    fn object(line: &str) -> serde_json::Value {
        fields(line).map_or(serde_json::Value::Null, serde_json::Value::Object)
    }

    #[test]
    fn the_pairs_of_a_line_are_found_among_its_words() {
        assert_eq!(
            object(
                "2026-12-07T10:00:00Z INFO POST /checkout status=503 duration_ms=1840.5 \
                 user=u1 http.route=/pay trace_id=0af7651916cd43dd8448eb211c80319c"
            ),
            json!({
                "status": 503,
                "duration_ms": 1840.5,
                "user": "u1",
                "http.route": "/pay",
                "trace_id": "0af7651916cd43dd8448eb211c80319c",
            })
        );
        // Go's slog text handler.
        assert_eq!(
            object(
                r#"time=2026-12-07T10:00:00.123Z level=ERROR msg="payment failed: \"card\" declined" attempt=2"#
            ),
            json!({
                "time": "2026-12-07T10:00:00.123Z",
                "level": "ERROR",
                "msg": "payment failed: \"card\" declined",
                "attempt": 2,
            })
        );
    }

    #[test]
    fn lines_without_pairs_and_pairs_that_are_not_are_left_alone() {
        for line in [
            "",
            "connection refused",
            "a == b",
            "=value",
            "GET /search?q=shoes&page=2 200",
            "1x=2 -a=3 é=4",
            "empty= values=\"\"",
        ] {
            assert_eq!(fields(line), None, "{line:?}");
        }
        // A pair is a word of its own: `x=1` inside `(x=1)` is not one.
        assert_eq!(object("f(x=1) y=2"), json!({"y": 2}));
    }

    #[test]
    fn numbers_are_numbers_only_when_they_are_exact_and_written_as_numbers() {
        assert_eq!(
            object(
                "a=0 b=-7 c=1.25 d=007 e=1e5 f=12345678901234567890 g=9007199254740993 \
                 h=1. i=.5 j=0x1f k=true l=2.0.1 m=-"
            ),
            json!({
                "a": 0, "b": -7, "c": 1.25, "d": "007", "e": "1e5",
                "f": "12345678901234567890", "g": "9007199254740993", "h": "1.", "i": ".5",
                "j": "0x1f", "k": "true", "l": "2.0.1", "m": "-",
            })
        );
    }

    #[test]
    fn quoted_values_take_escapes_multibyte_text_and_an_unterminated_end() {
        assert_eq!(
            object(r#"msg="naïve café \\ done\n" next=1 last="no end"#),
            json!({"msg": "naïve café \\ done\n", "next": 1, "last": "no end"})
        );
        assert_eq!(object(r#"k="a" k=b"#), json!({"k": "b"}));
        assert_eq!(object("k=\"\\"), json!({"k": "\\"}));
    }
}
