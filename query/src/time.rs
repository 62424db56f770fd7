//! Times in queries: RFC 3339, unix nanoseconds, or relative to now (`now`, `now-15m`).

/// Microseconds since the epoch (the tables' `timestamp` unit).
pub fn parse_time(text: &str, now_micros: i64) -> Result<i64, String> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("now") {
        let rest = rest.trim();
        if rest.is_empty() {
            return Ok(now_micros);
        }
        let (sign, span) = match rest.split_at(1) {
            ("-", span) => (-1, span),
            ("+", span) => (1, span),
            _ => {
                return Err(format!(
                    "{text:?}: expected now, now-<duration> or now+<duration>"
                ));
            }
        };
        let duration =
            humantime::parse_duration(span.trim()).map_err(|e| format!("{text:?}: {e}"))?;
        return Ok(now_micros + sign * duration.as_micros() as i64);
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let nanos: i64 = text
            .parse()
            .map_err(|_| format!("{text:?} is out of range for unix nanoseconds"))?;
        return Ok(nanos / 1_000);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_micros())
        .map_err(|e| format!("{text:?} is not RFC 3339, unix nanoseconds or now-<duration>: {e}"))
}

pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// RFC 3339 with nanoseconds, the API's time format.
pub fn format_nanos(nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(nanos)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// A timestamp from SQL as every other timestamp of the API: RFC 3339 with nanoseconds
/// (left as it is when it does not parse).
pub(crate) fn normalize(text: String) -> String {
    match parse_time(&text, 0) {
        Ok(micros) => format_nanos(micros * 1000),
        Err(_) => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000_000_000;

    #[test]
    fn every_documented_form_parses() {
        assert_eq!(parse_time("now", NOW).unwrap(), NOW);
        assert_eq!(parse_time("now-15m", NOW).unwrap(), NOW - 900_000_000);
        assert_eq!(parse_time("now - 1h", NOW).unwrap(), NOW - 3_600_000_000);
        assert_eq!(parse_time("1764000000000000000", NOW).unwrap(), NOW);
        assert_eq!(parse_time("2025-11-24T16:00:00Z", NOW).unwrap(), NOW);
        assert_eq!(parse_time("2025-11-24T17:00:00+01:00", NOW).unwrap(), NOW);
    }

    #[test]
    fn nonsense_is_an_error_that_quotes_the_input() {
        for bad in [
            "yesterday",
            "now-",
            "now*2",
            "now-15parsecs",
            "",
            "99999999999999999999999",
        ] {
            let err = parse_time(bad, NOW).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
