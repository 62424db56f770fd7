//! Built-in joining of stack traces (`multiline: {stack_traces: true}`, `--stack-traces`):
//! the lines a crash or a logged exception prints become one record with the line before
//! them, as Fluent Bit's built-in `java`, `python` and `go` multiline parsers join them,
//! without a start pattern that fits the app's own log format.
//!
//! A line continues the record when it is:
//! - indented: Java's and .NET's `\tat …`, Node's `    at …`, Python's `  File …`, Ruby's
//!   `\tfrom …`, Go's `\t/src/main.go:8 +0x1d`;
//! - JVM chaining: `Caused by: …`, `Suppressed: …`, `... 12 more`;
//! - a JVM or .NET exception's first line under the line that logged it
//!   (`java.lang.IllegalStateException: pool exhausted`, as logback's and log4j's default
//!   patterns print it): a qualified name ending in `Exception`, `Error` or `Throwable`;
//! - a Python traceback's header (after the line that logged it), its exception line
//!   (`ValueError: bad`), and between chained tracebacks their blank lines and
//!   `During handling of the above exception…`;
//! - in a Go panic (from `panic: …` or `fatal error: …`): blank lines, `goroutine 1
//!   [running]:`, function lines (`main.main()`), `created by …`, `[signal …`.
//!
//! Anything else starts a new record.

/// What the record being joined is, as far as its lines tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Trace {
    /// A line, perhaps with a JVM, Node, .NET or Ruby trace below it.
    #[default]
    Line,
    /// In a Python traceback; `ended` once its exception line has been seen.
    Python { ended: bool },
    /// In a Go panic's goroutine dump.
    Go,
}

const PYTHON_HEADER: &str = "Traceback (most recent call last):";

impl Trace {
    /// What a record is from its first line.
    pub fn first(line: &str) -> Self {
        if line.trim_end().ends_with(PYTHON_HEADER) {
            Trace::Python { ended: false }
        } else if line.starts_with("panic: ") || line.starts_with("fatal error: ") {
            Trace::Go
        } else {
            Trace::Line
        }
    }

    /// Whether `line` continues the record; follows it into a traceback it starts.
    pub fn continues(&mut self, line: &str) -> bool {
        let blank = line.trim().is_empty();
        let indented = !blank && line.starts_with([' ', '\t']);
        match self {
            Trace::Line if line.starts_with(PYTHON_HEADER) => {
                *self = Trace::Python { ended: false };
                true
            }
            Trace::Line => indented || jvm_chain(line) || qualified_exception(line),
            Trace::Python { ended } => {
                let chained = line.starts_with(PYTHON_HEADER)
                    || line.starts_with("During handling of the above exception")
                    || line.starts_with("The above exception was the direct cause");
                if indented || chained {
                    *ended = false;
                    true
                } else if blank {
                    // Between chained tracebacks; trailing ones are cut from the record.
                    true
                } else if !*ended && python_exception(line) {
                    *ended = true;
                    true
                } else {
                    false
                }
            }
            Trace::Go => {
                indented
                    || blank
                    || line.starts_with("goroutine ")
                    || line.starts_with("created by ")
                    || line.starts_with("[signal ")
                    || line.trim_end().ends_with(')')
            }
        }
    }
}

/// `Caused by: …`, `Suppressed: …` (indented under its parent), `... 12 more`.
fn jvm_chain(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("Caused by: ")
        || line.starts_with("Suppressed: ")
        || (line.starts_with("... ") && (line.ends_with(" more") || line.ends_with("omitted")))
}

/// A JVM or .NET exception's first line: `java.lang.IllegalStateException: message`,
/// `com.shop.Pool$ExhaustedError`, `System.InvalidOperationException: …`. The name has a
/// package, so a line of the app's own (`Error: could not connect`) is not taken for one.
fn qualified_exception(line: &str) -> bool {
    let name = line
        .split_once(": ")
        .map_or(line.trim_end(), |(name, _)| name);
    let part = |part: &str| {
        part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    name.contains('.')
        && name.split('.').all(part)
        && ["Exception", "Error", "Throwable"]
            .iter()
            .any(|end| name.ends_with(end))
}

/// A traceback's last line: the exception's dotted name, then `: message` or nothing
/// (`ZeroDivisionError: division by zero`, `requests.exceptions.ConnectionError: …`,
/// `KeyboardInterrupt`).
fn python_exception(line: &str) -> bool {
    let name = line
        .split_once(": ")
        .map_or(line.trim_end(), |(name, _)| name);
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use crate::config::{Format, MultilineConfig};
    use crate::source::file::format::{Assembler, tests::feed};

    /// The records `text`'s lines make through a file's assembler with `stack_traces: true`,
    /// the last one sent as at shutdown.
    fn records(text: &str) -> Vec<String> {
        let config = MultilineConfig {
            stack_traces: true,
            ..MultilineConfig::default()
        };
        let mut assembler = Assembler::new(Format::Plain, Some(&config), 1 << 20);
        let lines: Vec<&str> = text.lines().collect();
        let mut out = feed(&mut assembler, &lines);
        assembler.flush_idle(std::time::Instant::now(), true, &mut out);
        out.into_iter().map(|record| record.body).collect()
    }

    #[test]
    fn a_logged_python_traceback_joins_the_line_that_logged_it() {
        let text = "\
2026-12-07 10:00:00 ERROR settlement run aborted
Traceback (most recent call last):
  File \"/app/settle.py\", line 12, in run
    total = amount / count
ZeroDivisionError: division by zero
2026-12-07 10:00:01 INFO next run in 60s";
        let records = records(text);
        assert_eq!(records.len(), 2, "{records:#?}");
        assert!(records[0].ends_with("ZeroDivisionError: division by zero"));
        assert_eq!(records[1], "2026-12-07 10:00:01 INFO next run in 60s");
    }

    #[test]
    fn chained_python_tracebacks_are_one_record() {
        let text = "\
Traceback (most recent call last):
  File \"a.py\", line 1, in <module>
KeyError: 'card'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File \"a.py\", line 3, in <module>
payments.errors.Declined: card declined

done";
        let records = records(text);
        assert_eq!(records.len(), 2, "{records:#?}");
        assert!(records[0].contains("KeyError: 'card'\n\nDuring handling"));
        assert!(
            records[0]
                .trim_end()
                .ends_with("payments.errors.Declined: card declined")
        );
        assert_eq!(records[1], "done");
    }

    #[test]
    fn jvm_and_node_traces_join_their_exception_line() {
        let text = "\
java.lang.IllegalStateException: pool exhausted
\tat com.shop.Pool.take(Pool.java:42)
\tat com.shop.Checkout.run(Checkout.java:7)
Caused by: java.net.ConnectException: refused
\tat java.base/sun.nio.ch.Net.connect(Net.java:579)
\t... 12 more
12:00:01.000 INFO  retrying
TypeError: Cannot read properties of undefined (reading 'id')
    at handler (/app/server.js:10:5)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)
12:00:02.000 INFO  ok";
        let records = records(text);
        assert_eq!(records.len(), 4, "{records:#?}");
        assert!(records[0].ends_with("\t... 12 more"));
        assert_eq!(records[1], "12:00:01.000 INFO  retrying");
        assert!(records[2].ends_with("task_queues:95:5)"));
    }

    /// logback's and log4j2's default patterns print the exception under the message
    /// that logged it, its first line not indented; .NET's `ex.ToString()` does the same.
    /// Before, that line started a record of its own, with the trace, apart from the
    /// message.
    #[test]
    fn a_logged_jvm_exception_joins_the_line_that_logged_it() {
        let text = "\
2026-12-07 10:00:00.123 ERROR [main] c.s.Checkout - checkout failed for order 77
java.lang.IllegalStateException: pool exhausted
\tat com.shop.Pool.take(Pool.java:42)
Caused by: com.shop.db.Pool$TimeoutException
\t... 3 more
2026-12-07 10:00:00.200 WARN  [main] c.s.Retry - retrying
System.InvalidOperationException: Sequence contains no elements
   at System.Linq.ThrowHelper.ThrowNoElementsException()
2026-12-07 10:00:01.000 INFO  [main] c.s.Checkout - Error: could not connect
Error: not qualified, a line of its own
java.lang.String is not an exception";
        let records = records(text);
        assert_eq!(records.len(), 5, "{records:#?}");
        assert!(records[0].starts_with("2026-12-07 10:00:00.123 ERROR"));
        assert!(records[0].contains("\njava.lang.IllegalStateException: pool exhausted\n"));
        assert!(records[0].ends_with("\t... 3 more"));
        assert!(records[1].starts_with("2026-12-07 10:00:00.200 WARN"));
        assert!(records[1].ends_with("ThrowNoElementsException()"));
        assert_eq!(records[3], "Error: not qualified, a line of its own");
        assert_eq!(records[4], "java.lang.String is not an exception");
    }

    #[test]
    fn a_go_panic_is_one_record_with_its_goroutines() {
        let text = "\
panic: runtime error: index out of range [5] with length 3

goroutine 1 [running]:
main.lookup(...)
\t/app/main.go:8
main.main()
\t/app/main.go:13 +0x1d

goroutine 6 [chan receive]:
created by main.main in goroutine 1
\t/app/main.go:11 +0x25
exit status 2";
        let records = records(text);
        assert_eq!(records.len(), 2, "{records:#?}");
        assert!(records[0].ends_with("/app/main.go:11 +0x25"));
        assert_eq!(records[1], "exit status 2");
    }

    #[test]
    fn plain_lines_stay_apart() {
        let text = "\
GET / 200
POST /pay 502
ValueError: not in a traceback, a line of its own

...
after a blank line";
        assert_eq!(records(text).len(), 6);
    }
}
