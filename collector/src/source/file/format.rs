//! From raw lines to log records: the container-runtime framing (Docker JSON, CRI) is
//! removed and its partial lines joined, then multiline rules join continuation lines
//! (stack traces) to the record they belong to.
//!
//! Every record knows the file offset just past its last line, and the assembler tells
//! where its unfinished record starts, so a checkpoint never lands inside a record.

use std::time::{Duration, Instant};

use regex::Regex;

use super::stack::Trace;
use crate::config::{Format, MultilineConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub body: String,
    /// The runtime's timestamp (Docker, CRI), in unix nanoseconds.
    pub time_nanos: Option<i64>,
    pub stream: Option<Stream>,
    /// A CRI `P` line or a Docker line without its newline: more of it follows.
    pub partial: bool,
}

/// Removes the runtime framing of one line (without its `\n`).
pub fn decode(format: Format, raw: &[u8]) -> LogLine {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    match format {
        Format::Plain => plain(raw),
        Format::Docker => docker(raw).unwrap_or_else(|| plain(raw)),
        Format::Cri => cri(raw).unwrap_or_else(|| plain(raw)),
        Format::Auto => {
            if raw.first() == Some(&b'{')
                && let Some(line) = docker(raw)
            {
                return line;
            }
            cri(raw).unwrap_or_else(|| plain(raw))
        }
    }
}

fn plain(raw: &[u8]) -> LogLine {
    LogLine {
        body: String::from_utf8_lossy(raw).into_owned(),
        time_nanos: None,
        stream: None,
        partial: false,
    }
}

#[derive(serde::Deserialize)]
struct DockerLine {
    log: String,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    time: Option<String>,
}

fn docker(raw: &[u8]) -> Option<LogLine> {
    let line: DockerLine = serde_json::from_slice(raw).ok()?;
    let partial = !line.log.ends_with('\n');
    let mut body = line.log;
    if !partial {
        body.pop();
        if body.ends_with('\r') {
            body.pop();
        }
    }
    Some(LogLine {
        body,
        time_nanos: line.time.as_deref().and_then(rfc3339_nanos),
        stream: line.stream.as_deref().and_then(stream),
        partial,
    })
}

/// `2024-01-02T03:04:05.123456789Z stdout F message`
fn cri(raw: &[u8]) -> Option<LogLine> {
    let text = std::str::from_utf8(raw).ok();
    let text = match text {
        Some(text) => std::borrow::Cow::Borrowed(text),
        None => String::from_utf8_lossy(raw),
    };
    let mut parts = text.splitn(4, ' ');
    let time = parts.next()?;
    let stream = stream(parts.next()?)?;
    let tag = parts.next()?;
    let time_nanos = rfc3339_nanos(time)?;
    let partial = tag.split(':').any(|t| t == "P");
    if !tag.split(':').any(|t| t == "P" || t == "F") {
        return None;
    }
    Some(LogLine {
        body: parts.next().unwrap_or("").to_string(),
        time_nanos: Some(time_nanos),
        stream: Some(stream),
        partial,
    })
}

fn stream(name: &str) -> Option<Stream> {
    match name {
        "stdout" => Some(Stream::Stdout),
        "stderr" => Some(Stream::Stderr),
        _ => None,
    }
}

fn rfc3339_nanos(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()?
        .timestamp_nanos_opt()
}

/// A finished record: one line, several joined partial lines, or a multiline group.
#[derive(Debug, Clone, PartialEq)]
pub struct Assembled {
    pub body: String,
    pub time_nanos: Option<i64>,
    pub stream: Option<Stream>,
    /// File offset just past the record's last line.
    pub end: u64,
    /// Part of it was cut to stay within `max_line_bytes`.
    pub truncated: bool,
}

struct Pending {
    record: Assembled,
    start: u64,
    lines: usize,
    last_line_at: Instant,
}

/// How a multiline record's lines are told from the next record's first line.
enum Joiner {
    /// The next record's first line matches this.
    Start(Regex),
    /// A line that does not continue the record's stack trace ([`Trace`]) starts the next.
    StackTraces(Trace),
}

impl Joiner {
    /// Whether `line` joins the record before it.
    fn continues(&mut self, line: &str) -> bool {
        match self {
            Joiner::Start(start) => !start.is_match(line),
            Joiner::StackTraces(trace) => trace.continues(line),
        }
    }

    /// A record begins with `line`.
    fn begin(&mut self, line: &str) {
        if let Joiner::StackTraces(trace) = self {
            *trace = Trace::first(line);
        }
    }

    /// The record as sent: a stack trace's trailing blank lines (kept while a chained
    /// traceback might follow) are cut.
    fn finish(&self, mut record: Assembled) -> Assembled {
        if let Joiner::StackTraces(_) = self {
            let kept = record.body.trim_end_matches(['\n', '\r']).len();
            record.body.truncate(kept);
        }
        record
    }
}

/// Turns a file's lines into records, one assembler per file.
pub struct Assembler {
    format: Format,
    multiline: Option<(Joiner, usize, Duration)>,
    max_bytes: usize,
    /// Partial runtime lines waiting for their final piece.
    partial: Option<Pending>,
    /// A multiline record waiting for the next start line.
    group: Option<Pending>,
}

impl Assembler {
    pub fn new(format: Format, multiline: Option<&MultilineConfig>, max_bytes: usize) -> Self {
        let multiline = multiline.map(|m| {
            let joiner = match &m.start {
                Some(start) => Joiner::Start(Regex::new(start).expect("validated with the config")),
                None => Joiner::StackTraces(Trace::default()),
            };
            (joiner, m.max_lines, m.timeout)
        });
        Assembler {
            format,
            multiline,
            max_bytes,
            partial: None,
            group: None,
        }
    }

    /// Feeds one line (`start..end` in the file, `end` past its newline; `cut_short` if the
    /// reader already cut it short); finished records go to `out`. Returns whether body
    /// was cut here to stay in bounds.
    pub fn push(
        &mut self,
        raw: &[u8],
        cut_short: bool,
        start: u64,
        end: u64,
        now: Instant,
        out: &mut Vec<Assembled>,
    ) -> bool {
        let line = decode(self.format, raw);
        let mut cut = false;
        let joined = match self.partial.take() {
            Some(mut pending) => {
                cut |= append_capped(&mut pending.record.body, &line.body, self.max_bytes);
                pending.record.truncated |= cut || cut_short;
                pending.record.end = end;
                pending.lines += 1;
                pending.last_line_at = now;
                pending
            }
            None => Pending {
                record: Assembled {
                    body: line.body,
                    time_nanos: line.time_nanos,
                    stream: line.stream,
                    end,
                    truncated: cut_short,
                },
                start,
                lines: 1,
                last_line_at: now,
            },
        };
        if line.partial {
            self.partial = Some(joined);
            return cut;
        }
        let Some((joiner, max_lines, _)) = &mut self.multiline else {
            out.push(joined.record);
            return cut;
        };
        match self.group.as_mut() {
            Some(group) if group.lines < *max_lines && joiner.continues(&joined.record.body) => {
                group.record.body.push('\n');
                cut |= append_capped(&mut group.record.body, &joined.record.body, self.max_bytes);
                group.record.truncated |= cut || joined.record.truncated;
                group.record.end = joined.record.end;
                group.lines += 1;
                group.last_line_at = now;
            }
            _ => {
                joiner.begin(&joined.record.body);
                if let Some(done) = self.group.replace(joined) {
                    out.push(joiner.finish(done.record));
                }
            }
        }
        cut
    }

    /// Sends a multiline record that has waited `timeout` for more lines (or any waiting
    /// record when `force`, at shutdown).
    pub fn flush_idle(&mut self, now: Instant, force: bool, out: &mut Vec<Assembled>) {
        let timeout = self.multiline.as_ref().map_or(Duration::ZERO, |m| m.2);
        if self.partial.is_none()
            && let Some(group) = &self.group
            && (force || now.duration_since(group.last_line_at) >= timeout)
        {
            let record = self.group.take().expect("checked").record;
            out.push(match &self.multiline {
                Some((joiner, ..)) => joiner.finish(record),
                None => record,
            });
        }
        if force && let Some(partial) = self.partial.take() {
            out.push(partial.record);
        }
    }

    /// Where the first line not yet part of a finished record starts, if any is waiting.
    pub fn pending_start(&self) -> Option<u64> {
        match (&self.group, &self.partial) {
            (Some(group), _) => Some(group.start),
            (None, Some(partial)) => Some(partial.start),
            (None, None) => None,
        }
    }
}

/// Appends `more` while the total stays within `max`; true if anything was cut.
fn append_capped(body: &mut String, more: &str, max: usize) -> bool {
    let room = max.saturating_sub(body.len());
    if more.len() <= room {
        body.push_str(more);
        return false;
    }
    let mut end = room;
    while !more.is_char_boundary(end) {
        end -= 1;
    }
    body.push_str(&more[..end]);
    true
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The records `lines` finish, fed one after another as a file's lines.
    pub(in crate::source::file) fn feed(
        assembler: &mut Assembler,
        lines: &[&str],
    ) -> Vec<Assembled> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut offset = 0u64;
        for line in lines {
            let end = offset + line.len() as u64 + 1;
            assembler.push(line.as_bytes(), false, offset, end, now, &mut out);
            offset = end;
        }
        out
    }

    #[test]
    fn runtime_framings_are_removed() {
        let docker = decode(
            Format::Auto,
            br#"{"log":"hello world\n","stream":"stderr","time":"2024-01-02T03:04:05.5Z"}"#,
        );
        assert_eq!(docker.body, "hello world");
        assert_eq!(docker.stream, Some(Stream::Stderr));
        assert_eq!(docker.time_nanos, Some(1_704_164_645_500_000_000));
        assert!(!docker.partial);
        let cri = decode(
            Format::Auto,
            b"2024-01-02T03:04:05.000000001Z stdout P part one ",
        );
        assert_eq!(cri.body, "part one ");
        assert!(cri.partial);
        assert_eq!(cri.time_nanos, Some(1_704_164_645_000_000_001));
        let plain = decode(Format::Auto, b"2024-01-02 plain text line\r");
        assert_eq!(plain.body, "2024-01-02 plain text line");
        assert_eq!(plain.time_nanos, None);
        // A JSON application log that is not Docker framing stays as it is.
        let json = decode(Format::Auto, br#"{"level":"info","msg":"x"}"#);
        assert_eq!(json.body, r#"{"level":"info","msg":"x"}"#);
    }

    #[test]
    fn cri_partial_lines_become_one_record_ending_after_the_last_piece() {
        let mut assembler = Assembler::new(Format::Cri, None, 1 << 20);
        let out = feed(
            &mut assembler,
            &[
                "2024-01-02T03:04:05Z stdout P first ",
                "2024-01-02T03:04:05Z stdout P second ",
                "2024-01-02T03:04:05Z stdout F third",
                "2024-01-02T03:04:06Z stdout P dangling",
            ],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].body, "first second third");
        assert_eq!(out[0].end, 37 + 38 + 36);
        assert_eq!(assembler.pending_start(), Some(37 + 38 + 36));
    }

    /// `stack_traces: true` joins a trace without a start pattern, and a record sent by
    /// the timeout is cut of its trailing blank lines as one sent by the next line is.
    #[test]
    fn built_in_stack_traces_join_without_a_pattern() {
        let config = MultilineConfig {
            stack_traces: true,
            timeout: Duration::from_millis(10),
            ..MultilineConfig::default()
        };
        let mut assembler = Assembler::new(Format::Plain, Some(&config), 1 << 20);
        let mut out = feed(
            &mut assembler,
            &[
                "ERROR settle failed",
                "Traceback (most recent call last):",
                "  File \"a.py\", line 1, in <module>",
                "ValueError: bad",
                "",
                "INFO next",
                "panic: boom",
                "",
                "goroutine 1 [running]:",
                "main.main()",
                "\t/app/main.go:13 +0x1d",
                "",
            ],
        );
        assembler.flush_idle(Instant::now() + Duration::from_secs(1), false, &mut out);
        let bodies: Vec<_> = out.iter().map(|r| r.body.as_str()).collect();
        assert_eq!(
            bodies,
            vec![
                "ERROR settle failed\nTraceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nValueError: bad",
                "INFO next",
                "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:13 +0x1d",
            ]
        );
        assert_eq!(assembler.pending_start(), None);
    }

    #[test]
    fn stack_traces_join_the_line_that_started_them() {
        let config = MultilineConfig {
            start: Some(r"^\d{4}-\d{2}-\d{2}".into()),
            stack_traces: false,
            max_lines: 3,
            timeout: Duration::from_millis(10),
        };
        let mut assembler = Assembler::new(Format::Plain, Some(&config), 1 << 20);
        let out = feed(
            &mut assembler,
            &[
                "2024-01-01 ERROR boom",
                "java.lang.IllegalStateException: x",
                "\tat a.b(C.java:1)",
                "\tat d.e(F.java:2)",
                "2024-01-01 INFO next",
            ],
        );
        let bodies: Vec<_> = out.iter().map(|r| r.body.as_str()).collect();
        assert_eq!(
            bodies,
            vec![
                "2024-01-01 ERROR boom\njava.lang.IllegalStateException: x\n\tat a.b(C.java:1)",
                "\tat d.e(F.java:2)",
            ],
            "max_lines splits an endless group"
        );
        assert_eq!(assembler.pending_start(), Some(out[1].end));
        let mut rest = Vec::new();
        assembler.flush_idle(Instant::now() + Duration::from_secs(1), false, &mut rest);
        assert_eq!(rest[0].body, "2024-01-01 INFO next");
        assert_eq!(assembler.pending_start(), None);
    }

    #[test]
    fn joined_records_stay_within_the_byte_limit() {
        let mut assembler = Assembler::new(Format::Cri, None, 10);
        let mut out = Vec::new();
        let now = Instant::now();
        assert!(!assembler.push(
            b"2024-01-02T03:04:05Z stdout P 123456",
            false,
            0,
            10,
            now,
            &mut out
        ));
        assert!(assembler.push(
            b"2024-01-02T03:04:05Z stdout F 789abcdef",
            false,
            10,
            20,
            now,
            &mut out
        ));
        assert_eq!(out[0].body, "123456789a");
        assert!(out[0].truncated);
    }
}
