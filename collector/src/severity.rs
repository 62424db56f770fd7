//! Severity from the common shapes of a log line: a JSON `level` field, logfmt
//! `level=warn`, or a level word such as `ERROR` near the start of the line.

/// OTLP severity numbers (the first of each range) and their canonical text.
const LEVELS: &[(&str, i32, &str)] = &[
    ("trace", 1, "TRACE"),
    ("debug", 5, "DEBUG"),
    ("dbug", 5, "DEBUG"),
    ("info", 9, "INFO"),
    ("information", 9, "INFO"),
    ("notice", 10, "INFO"),
    ("warn", 13, "WARN"),
    ("warning", 13, "WARN"),
    ("error", 17, "ERROR"),
    ("err", 17, "ERROR"),
    ("eror", 17, "ERROR"),
    ("critical", 21, "FATAL"),
    ("crit", 21, "FATAL"),
    ("fatal", 21, "FATAL"),
    ("panic", 21, "FATAL"),
    ("emerg", 21, "FATAL"),
    ("alert", 21, "FATAL"),
];

/// Quoted as they appear in JSON, so each line is searched without formatting them.
const JSON_KEYS: &[&str] = &[
    r#""level""#,
    r#""severity""#,
    r#""lvl""#,
    r#""loglevel""#,
    r#""log.level""#,
    r#""levelname""#,
    r#""log_level""#,
];
const LOGFMT_KEYS: &[&str] = &["level=", "lvl=", "severity="];
/// A level word is looked for only this far into the line, where loggers put it.
const PREFIX_BYTES: usize = 96;

/// `(severity number, severity text)` if the line names a level.
pub fn parse(line: &str) -> Option<(i32, &'static str)> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('{')
        && let Some(found) = from_json(trimmed)
    {
        return Some(found);
    }
    from_logfmt(line).or_else(|| from_prefix(line))
}

fn level(word: &str) -> Option<(i32, &'static str)> {
    let word = word.trim_matches(|c: char| !c.is_ascii_alphabetic());
    if word.len() > 11 {
        return None;
    }
    let lower = word.to_ascii_lowercase();
    LEVELS
        .iter()
        .find(|(name, _, _)| *name == lower)
        .map(|(_, number, text)| (*number, *text))
}

/// Finds `"level": "warn"` (or a pino number) without parsing the whole object: this
/// runs on every JSON line.
fn from_json(line: &str) -> Option<(i32, &'static str)> {
    JSON_KEYS.iter().find_map(|quoted| {
        let at = line.find(quoted)?;
        let rest = line[at + quoted.len()..]
            .trim_start()
            .strip_prefix(':')?
            .trim_start();
        if let Some(text) = rest.strip_prefix('"') {
            return level(&text[..text.find('"')?]);
        }
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        match rest[..digits].parse::<u64>().ok()? {
            10 => Some((1, "TRACE")),
            20 => Some((5, "DEBUG")),
            30 => Some((9, "INFO")),
            40 => Some((13, "WARN")),
            50 => Some((17, "ERROR")),
            60 => Some((21, "FATAL")),
            _ => None,
        }
    })
}

fn from_logfmt(line: &str) -> Option<(i32, &'static str)> {
    LOGFMT_KEYS.iter().find_map(|key| {
        let at = line.find(key)?;
        // Only at a field boundary: `xlevel=` is another field.
        if at > 0 && !line.as_bytes()[at - 1].is_ascii_whitespace() {
            return None;
        }
        let value = &line[at + key.len()..];
        let value = value.trim_start_matches('"');
        let end = value
            .find(|c: char| c.is_whitespace() || c == '"')
            .unwrap_or(value.len());
        level(&value[..end])
    })
}

fn from_prefix(line: &str) -> Option<(i32, &'static str)> {
    let mut end = line.len().min(PREFIX_BYTES);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end]
        .split(|c: char| c.is_whitespace() || c == '|' || c == ':')
        .filter(|word| {
            // Upper case or bracketed, so the English word "error" in a message is not a level.
            let bare = word.trim_matches(|c: char| !c.is_ascii_alphabetic());
            !bare.is_empty()
                && (bare.chars().all(|c| c.is_ascii_uppercase())
                    || (word.starts_with('[') && word.ends_with(']')))
        })
        .find_map(level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_found_in_common_formats() {
        let cases = [
            (r#"{"level":"error","msg":"boom"}"#, Some("ERROR")),
            (r#"{"severity":"WARNING","message":"slow"}"#, Some("WARN")),
            (r#"{"level":50,"msg":"pino"}"#, Some("ERROR")),
            (
                r#"{"ts": 1, "log.level" : "info", "msg": "x"}"#,
                Some("INFO"),
            ),
            (
                r#"{"msg":"level is not here","lvl":"error"}"#,
                Some("ERROR"),
            ),
            (
                "ts=2024-01-01 level=warn msg=\"disk almost full\"",
                Some("WARN"),
            ),
            ("time=1 lvl=\"debug\" x=y", Some("DEBUG")),
            (
                "2024-05-01 12:00:00,123 ERROR [main] payment failed",
                Some("ERROR"),
            ),
            ("WARN: retrying", Some("WARN")),
            ("[error] upstream timed out", Some("ERROR")),
            ("I 2024 ... FATAL: out of memory", Some("FATAL")),
            ("the error was handled fine", None),
            ("GET /index.html 200", None),
            ("xlevel=error", None),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line).map(|(_, text)| text), want, "{line}");
        }
        assert_eq!(parse("ERROR x"), Some((17, "ERROR")));
    }
}
