//! The client commands: ask a running Porthole's API and print the answer for people (text)
//! or scripts (JSON).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::IsTerminal;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::client_args::{
    ClientArgs, ClientCommand, LogsArgs, MetricsArgs, SnapshotArgs, SqlArgs, TailArgs, TraceArgs,
};

/// `println!` for a command's output. A reader that goes away before the output ends
/// (`porthole logs … | head`) ends the command quietly, with success, as it ends `grep`
/// or `kubectl`; `println!` panicked with a backtrace.
macro_rules! out {
    ($($arg:tt)*) => {
        write_line(format_args!($($arg)*))
    };
}

fn write_line(line: std::fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{line}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("porthole: cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// Text from the data (a log line, a span's name, a process's command line, a SQL value)
/// as printed for people: every control character is written escaped (`\u{1b}`, `\r`,
/// `\t`, `\u{0}`), never sent to the terminal. Whoever reaches a container's app writes
/// its log (a logged URL or header is enough): raw, `ESC ]` sets the terminal's title or
/// clipboard, and `\r` or `ESC [2K` hides the line it is on (kubectl's CVE-2021-25743).
/// `--output json` keeps the text as stored.
fn shown(text: &str) -> Cow<'_, str> {
    escaped(text, false)
}

/// [`shown`] for text whose lines are its own: a log record's body (a stack trace joined
/// to its line) keeps its newlines and tabs.
fn shown_lines(text: &str) -> Cow<'_, str> {
    escaped(text, true)
}

fn escaped(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && !(keep_newlines && matches!(c, '\n' | '\t'));
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Runs one client command.
pub async fn run(command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Logs(args) => logs(args).await,
        ClientCommand::Tail(args) => tail(args).await,
        ClientCommand::Sql(args) => sql(args).await,
        ClientCommand::Metrics(args) => metrics(args).await,
        ClientCommand::Trace(args) => trace(args).await,
        ClientCommand::Snapshot(args) => snapshot(args).await,
    }
}

/// Sends the request; an API error becomes an error carrying the API's own message.
async fn call(client: &ClientArgs, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let response = with_token(client, request)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", client.server))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("{} answered {status} without JSON", client.server))?;
    if !status.is_success() {
        bail!("{status}: {}", shown(api_error(&body)));
    }
    Ok(body)
}

/// The message of an API error's body: the Prometheus-compatible endpoints answer
/// `{"error": "…"}`, the rest `{"error": {"message": "…"}}`.
fn api_error(body: &Value) -> &str {
    body["error"]["message"]
        .as_str()
        .or(body["error"].as_str())
        .unwrap_or("no message")
}

/// `request` with the client's bearer token, when it has one.
fn with_token(client: &ClientArgs, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match &client.token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

fn url(client: &ClientArgs, path: &str) -> String {
    format!("{}{path}", client.server.trim_end_matches('/'))
}

/// The most rows the API gives in one page.
const MAX_PAGE_ROWS: usize = 5_000;

pub async fn logs(args: LogsArgs) -> anyhow::Result<()> {
    let mut query = args.filter.params();
    query.push((
        "start",
        args.from.clone().unwrap_or(format!("now-{}", args.since)),
    ));
    // Following goes on from the end of the range: a time of this client's, so that
    // nothing committed between the search and the tail is left out.
    let end_micros = chrono::Utc::now().timestamp_micros();
    let end = match (&args.to, args.follow) {
        (_, true) => Some((end_micros * 1000).to_string()),
        (to, false) => to.clone(),
    };
    query.extend(end.map(|to| ("end", to)));
    if args.forward {
        query.push(("direction", "forward".into()));
    }
    let http = http_client(&args.client)?;
    // A page may hold fewer rows than asked for (the server caps a page's bytes): follow
    // the cursor until `--limit` rows are printed or none are left.
    let (mut printed, mut cursor) = (0, None::<String>);
    let mut newest_first = Vec::new();
    while printed < args.limit {
        let mut page = query.clone();
        page.push((
            "limit",
            (args.limit - printed).min(MAX_PAGE_ROWS).to_string(),
        ));
        page.extend(cursor.take().map(|c| ("cursor", c)));
        let body = call(
            &args.client,
            http.get(url(&args.client, "/api/v1/logs")).query(&page),
        )
        .await?;
        for row in body["rows"].as_array().into_iter().flatten() {
            if args.follow {
                newest_first.push(row.clone());
            } else {
                print_row(row, &args.client.output);
            }
            printed += 1;
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    if printed == 0 && args.client.output != "json" {
        // On stderr, as kubectl says "No resources found": a pipe reads nothing.
        // (`--follow` takes no `--to`.)
        let range = args
            .to
            .as_ref()
            .map(|to| format!(" up to {to}"))
            .unwrap_or_default();
        let from = args
            .from
            .clone()
            .unwrap_or(format!("the last {}", args.since));
        eprintln!("no records match, searching from {from}{range}");
    }
    if !args.follow {
        return Ok(());
    }
    for row in newest_first.iter().rev() {
        print_row(row, &args.client.output);
    }
    // The live tail resumes after the newest record printed, else after the range.
    let after = newest_first
        .first()
        .and_then(|row| row["cursor"].as_str().map(str::to_owned))
        .unwrap_or(format!("{end_micros}.0"));
    let tail = TailArgs {
        filter: args.filter,
        client: args.client,
    };
    follow_live(&http, &tail, Some(after)).await
}

/// One log row: JSON for scripts, or a line for people with coloured severities when
/// stdout is a terminal.
fn print_row(row: &Value, output: &str) {
    if output == "json" {
        out!("{row}");
        return;
    }
    for line in row_lines(row, std::io::stdout().is_terminal()) {
        out!("{line}");
    }
}

/// A log row as text: its line, then the lines of the exception it carries, indented.
fn row_lines(row: &Value, colour: bool) -> Vec<String> {
    let severity = shown(row["severity"].as_str().unwrap_or("-"));
    let code = match &*severity {
        "FATAL" => "1;31",
        "ERROR" => "31",
        "WARN" => "33",
        "INFO" => "32",
        "DEBUG" | "TRACE" => "2",
        _ => "",
    };
    let painted = if colour && !code.is_empty() {
        format!("\x1b[{code}m{severity:5}\x1b[0m")
    } else {
        format!("{severity:5}")
    };
    let line = format!(
        "{} {painted} {} {}",
        shown(row["timestamp"].as_str().unwrap_or("")),
        shown(row["service"].as_str().unwrap_or("-")),
        shown_lines(row["body"].as_str().unwrap_or(""))
    );
    let exception = exception_lines(row).into_iter();
    [line]
        .into_iter()
        .chain(exception.map(|l| format!("    {}", shown_lines(&l))))
        .collect()
}

/// The exception a record carries in OpenTelemetry's attributes, as the lines a log file
/// would hold below its message: the stack trace, else `type: message`. A logger that
/// logs an exception through the OTel SDK (Python's `log.exception`) sends it there and
/// only the message it was given as the body, and searches find the record by it.
fn exception_lines(row: &Value) -> Vec<String> {
    let attribute = |key: &str| {
        row["attributes"][key]
            .as_str()
            .map(str::trim_end)
            .filter(|text| !text.is_empty())
    };
    if let Some(trace) = attribute("exception.stacktrace") {
        return trace.lines().map(str::to_owned).collect();
    }
    exception_summary(attribute("exception.type"), attribute("exception.message"))
        .into_iter()
        .collect()
}

/// An exception as `type: message`, or whichever of the two it has.
fn exception_summary(kind: Option<&str>, message: Option<&str>) -> Option<String> {
    match (kind, message) {
        (Some(kind), Some(message)) => Some(format!("{kind}: {message}")),
        (Some(only), None) | (None, Some(only)) => Some(only.to_owned()),
        (None, None) => None,
    }
}

/// Follows `/api/v1/logs/tail` (Server-Sent Events) as `tail -F` follows a file. When a
/// stream that was open ends (the server restarted or shut down, the connection broke, this
/// client fell behind and was dropped), it says so on stderr and reconnects, waiting 0.5 s
/// and then longer, up to 10 s, between tries. It reconnects with the id of the last event
/// it read as `Last-Event-ID`, so the server first sends the records committed while it
/// was away, each once. A first connection that fails, or a refusal (a bad query, a bad
/// token), ends it.
pub async fn tail(args: TailArgs) -> anyhow::Result<()> {
    follow_live(&http_client(&args.client)?, &args, None).await
}

/// [`tail`], from after the event `last_id` when given.
async fn follow_live(
    http: &reqwest::Client,
    args: &TailArgs,
    mut last_id: Option<String>,
) -> anyhow::Result<()> {
    let mut response = open_tail(http, args, last_id.as_deref())
        .await
        .map_err(|e| e.error)?;
    loop {
        let why = follow(response, args, &mut last_id).await;
        let mut wait = std::time::Duration::from_millis(500);
        response = loop {
            eprintln!("porthole tail: {why:#}; reconnecting in {wait:?}");
            tokio::time::sleep(wait).await;
            match open_tail(http, args, last_id.as_deref()).await {
                Ok(response) => break response,
                Err(e) if e.refused => return Err(e.error),
                Err(_) => wait = (wait * 2).min(std::time::Duration::from_secs(10)),
            }
        };
        eprintln!("porthole tail: reconnected to {}", args.client.server);
    }
}

/// Why opening the live tail failed, and whether trying again could help (a refusal
/// cannot: 4xx but 429).
struct OpenError {
    error: anyhow::Error,
    refused: bool,
}

/// Opens the live tail; after the event `last_id` when given.
async fn open_tail(
    http: &reqwest::Client,
    args: &TailArgs,
    last_id: Option<&str>,
) -> Result<reqwest::Response, OpenError> {
    let mut request = http
        .get(url(&args.client, "/api/v1/logs/tail"))
        .query(&args.filter.params());
    if let Some(id) = last_id {
        request = request.header("Last-Event-ID", id);
    }
    let response = with_token(&args.client, request)
        .send()
        .await
        .map_err(|e| OpenError {
            error: anyhow::Error::new(e).context(format!("cannot reach {}", args.client.server)),
            refused: false,
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body: Value = response.json().await.unwrap_or_default();
    Err(OpenError {
        error: anyhow::anyhow!("{status}: {}", shown(api_error(&body))),
        refused: status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS,
    })
}

/// Prints the stream's records until it ends, keeping the id of the last event in
/// `last_id`; why it ended.
async fn follow(
    mut response: reqwest::Response,
    args: &TailArgs,
    last_id: &mut Option<String>,
) -> anyhow::Error {
    let mut lines = Lines::default();
    let mut event = SseEvent::default();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return anyhow::anyhow!("the server closed the live tail"),
            Err(e) => return anyhow::Error::new(e).context("reading the live tail"),
        };
        for line in lines.push(&chunk) {
            if !event.read(&line) {
                continue;
            }
            let event = std::mem::take(&mut event);
            // The position to resume from, also of an event without data (the start).
            if event.id.is_some() {
                last_id.clone_from(&event.id);
            }
            let data: Value = serde_json::from_str(&event.data).unwrap_or_default();
            let message = data["message"].as_str();
            match event.kind.as_str() {
                "dropped" => return anyhow::anyhow!("{}", message.unwrap_or("live tail stopped")),
                "missed" => eprintln!(
                    "porthole tail: {}",
                    message.unwrap_or("records were missed")
                ),
                _ if event.data.is_empty() => {}
                _ => print_row(&data, &args.client.output),
            }
        }
    }
}

/// One Server-Sent Event, read a line at a time.
#[derive(Default)]
struct SseEvent {
    /// `message` when the stream names none.
    kind: String,
    data: String,
    id: Option<String>,
}

impl SseEvent {
    /// Takes in one line of the stream; whether it ended the event (an empty line).
    fn read(&mut self, line: &str) -> bool {
        if line.is_empty() {
            return !(self.data.is_empty() && self.kind.is_empty() && self.id.is_none());
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.kind = value.to_owned(),
            "id" => self.id = Some(value.to_owned()),
            "data" => {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
            _ => {}
        }
        false
    }
}

/// Splits a byte stream into lines, decoding each only once it is whole: a chunk may end
/// inside a multi-byte character, which decoding chunk by chunk would garble.
#[derive(Default)]
struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// The lines `chunk` completes, without their `\n` or `\r\n`.
    fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(chunk);
        let Some(last) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let rest = self.pending.split_off(last + 1);
        let whole = std::mem::replace(&mut self.pending, rest);
        whole[..last]
            .split(|&b| b == b'\n')
            .map(|line| {
                String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned()
            })
            .collect()
    }
}

/// The HTTP client for `--server`. A plain `http://` server needs no certificates, so the
/// system's root store (parsing it is most of a short command's CPU) is only loaded for
/// `https://`.
fn http_client(args: &ClientArgs) -> anyhow::Result<reqwest::Client> {
    let builder = reqwest::Client::builder();
    let builder = match &args.ca_file {
        Some(path) => {
            let pem =
                std::fs::read(path).with_context(|| format!("--ca-file {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("--ca-file {}: not PEM certificates", path.display()))?;
            anyhow::ensure!(
                !certs.is_empty(),
                "--ca-file {}: no certificate in it",
                path.display()
            );
            builder.tls_certs_only(certs)
        }
        None if args.server.starts_with("http://") => builder.tls_certs_only(Vec::new()),
        None => builder,
    };
    builder.build().context("building the HTTP client")
}

pub async fn metrics(args: MetricsArgs) -> anyhow::Result<()> {
    let http = http_client(&args.client)?;
    let mut query = vec![("query", args.promql.clone())];
    if let Some(time) = &args.time {
        query.push(("time", time.clone()));
    }
    let body = call(
        &args.client,
        http.get(url(&args.client, "/api/v1/metrics/query"))
            .query(&query),
    )
    .await?;
    if args.client.output == "json" {
        out!("{body}");
        return Ok(());
    }
    let data = &body["data"];
    let render = |metric: &Value| {
        let labels: Vec<String> = metric
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k != "__name__")
            .map(|(k, v)| format!("{k}={}", v))
            .collect();
        format!(
            "{}{{{}}}",
            shown(metric["__name__"].as_str().unwrap_or("")),
            labels.join(", ")
        )
    };
    match data["resultType"].as_str() {
        Some("scalar") | Some("string") => out!("{}", cell(&data["result"][1])),
        Some("matrix") => {
            for series in data["result"].as_array().into_iter().flatten() {
                out!("{}", render(&series["metric"]));
                for point in series["values"].as_array().into_iter().flatten() {
                    out!("  {} @{}", cell(&point[1]), point[0]);
                }
            }
        }
        _ if data["result"].as_array().is_some_and(|r| r.is_empty()) => {
            // On stderr: a pipe reads nothing.
            eprintln!("no series match {}", args.promql);
        }
        _ => {
            for sample in data["result"].as_array().into_iter().flatten() {
                out!(
                    "{} {}",
                    render(&sample["metric"]),
                    cell(&sample["value"][1])
                );
            }
        }
    }
    Ok(())
}

pub async fn sql(args: SqlArgs) -> anyhow::Result<()> {
    let http = http_client(&args.client)?;
    let body = call(
        &args.client,
        http.post(url(&args.client, "/api/v1/sql"))
            .json(&serde_json::json!({"sql": args.sql})),
    )
    .await?;
    if args.client.output == "json" {
        out!("{body}");
        return Ok(());
    }
    let columns: Vec<String> = body["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(String::from))
        .collect();
    let cells: Vec<Vec<String>> = body["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| columns.iter().map(|c| cell(&row[c])).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: &[String]| {
        values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    out!("{}", line(&columns));
    out!(
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ")
    );
    for row in &cells {
        out!("{}", line(row));
    }
    if body["truncated"].as_bool() == Some(true) {
        out!("(truncated to {} rows)", cells.len());
    }
    Ok(())
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => shown(s).into_owned(),
        other => other.to_string(),
    }
}

/// `porthole snapshot POD`: asks, then prints the processes and sockets (or the JSON).
pub async fn snapshot(args: SnapshotArgs) -> anyhow::Result<()> {
    let http = http_client(&args.client)?;
    let who = std::env::var("USER").ok();
    let body = call(
        &args.client,
        http.post(url(&args.client, "/api/v1/snapshots"))
            .json(&serde_json::json!({
                "namespace": args.namespace,
                "pod": args.pod,
                "requested_by": who,
            })),
    )
    .await?;
    if args.client.output == "json" {
        out!("{body}");
        return Ok(());
    }
    if let Some(error) = body["error"].as_str() {
        bail!("the collector could not take the snapshot: {error}");
    }
    let snap = &body["snapshot"];
    out!(
        "snapshot {} of {} taken {}",
        cell(&body["id"]),
        cell(&body["pod"]),
        cell(&snap["taken_at"])
    );
    out!(
        "{:>7} {:>7} {:>8} {:>10} {:>9} {:>5}  COMMAND",
        "PID",
        "PPID",
        "THREADS",
        "RSS",
        "CPU s",
        "FDS"
    );
    for p in snap["processes"].as_array().into_iter().flatten() {
        let rss = p["rss_bytes"].as_u64().unwrap_or(0);
        out!(
            "{:>7} {:>7} {:>8} {:>9}K {:>9.2} {:>5}  {}",
            cell(&p["pid"]),
            cell(&p["ppid"]),
            cell(&p["threads"]),
            rss / 1024,
            p["cpu_seconds"].as_f64().unwrap_or(0.0),
            cell(&p["open_fds"]),
            p["cmdline"]
                .as_str()
                .filter(|c| !c.is_empty())
                .map(|c| shown(c).into_owned())
                .unwrap_or_else(|| cell(&p["command"])),
        );
    }
    for (kind, sockets) in [
        ("listening", &snap["sockets"]["listening"]),
        ("established", &snap["sockets"]["established"]),
    ] {
        for s in sockets.as_array().into_iter().flatten() {
            match s["remote"].as_str() {
                Some(remote) => out!("{kind:<12} {} -> {}", cell(&s["local"]), shown(remote)),
                None => out!("{kind:<12} {}", cell(&s["local"])),
            }
        }
    }
    Ok(())
}

pub async fn trace(args: TraceArgs) -> anyhow::Result<()> {
    let http = http_client(&args.client)?;
    let body = call(
        &args.client,
        http.get(url(
            &args.client,
            &format!("/api/v1/traces/{}", args.trace_id),
        )),
    )
    .await?;
    if args.client.output == "json" {
        out!("{body}");
        return Ok(());
    }
    let spans = body["spans"].as_array().cloned().unwrap_or_default();
    let mut children: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    let ids: std::collections::HashSet<&str> =
        spans.iter().filter_map(|s| s["span_id"].as_str()).collect();
    for span in &spans {
        // A span whose parent is not in the trace (or none) is a root.
        let parent = span["parent_span_id"]
            .as_str()
            .filter(|p| ids.contains(p))
            .unwrap_or("");
        children.entry(parent.to_string()).or_default().push(span);
    }
    // Depth first with a stack of its own: a chain of thousands of spans, each the parent
    // of the next, would overflow the call stack. The roots first; then spans in a parent
    // cycle, which have none, rather than dropping them (as the web UI does).
    let roots = children.get("").into_iter().flatten().copied();
    let mut printed = std::collections::HashSet::new();
    let mut stack: Vec<(&Value, usize)> = roots.chain(&spans).rev().map(|s| (s, 0)).collect();
    while let Some((span, depth)) = stack.pop() {
        if !printed.insert(std::ptr::from_ref(span)) {
            continue;
        }
        let millis = span["duration_ns"].as_f64().unwrap_or(0.0) / 1e6;
        let status = match (
            span["status_code"].as_str(),
            span["status_message"].as_str(),
        ) {
            (Some("ERROR"), Some(message)) if !message.is_empty() => {
                format!(" ERROR: {}", shown(message))
            }
            (Some("ERROR"), _) => " ERROR".to_owned(),
            _ => String::new(),
        };
        out!(
            "{}{} [{}] {millis:.3} ms{status}",
            "  ".repeat(depth),
            shown(span["name"].as_str().unwrap_or("?")),
            shown(span["service"].as_str().unwrap_or("-"))
        );
        for exception in span_exceptions(span) {
            out!("{}! {}", "  ".repeat(depth + 1), shown(&exception));
        }
        let id = span["span_id"].as_str().unwrap_or("");
        stack.extend(
            children
                .get(id)
                .into_iter()
                .flatten()
                .rev()
                .map(|child| (*child, depth + 1)),
        );
    }
    if body["truncated"] == true {
        eprintln!(
            "porthole: the trace has {} spans; these are the earliest {}",
            body["span_count"],
            spans.len()
        );
    }
    Ok(())
}

/// The exceptions a span recorded (events named `exception`, as OTel SDKs record them),
/// each as `type: message`.
fn span_exceptions(span: &Value) -> Vec<String> {
    let events = span["events"].as_array().into_iter().flatten();
    events
        .filter(|event| event["name"] == "exception")
        .map(|event| {
            let attributes = event["attributes"].as_array().into_iter().flatten();
            let attribute = |key: &str| {
                attributes
                    .clone()
                    .find(|kv| kv["key"] == key)
                    .and_then(|kv| kv["value"]["stringValue"].as_str())
                    .filter(|text| !text.is_empty())
            };
            exception_summary(attribute("exception.type"), attribute("exception.message"))
                .unwrap_or_else(|| "exception".to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Lines, cell, exception_lines, row_lines, span_exceptions};

    /// A record the catch-up printed is not printed again when the new stream delivers it;
    /// the newest record printed is where the next catch-up starts, whatever the order.
    #[test]
    fn server_sent_events_are_read_with_their_type_data_and_id() {
        let mut event = super::SseEvent::default();
        let mut ended = Vec::new();
        let stream = ": keep-alive\n\nid: 200.7\ndata: {\"body\":\"x\"}\n\n\
                      event: missed\ndata: {\"message\":\n\ndata:a\ndata: b\n\n";
        for line in stream.lines() {
            if event.read(line) {
                let done = std::mem::take(&mut event);
                ended.push((done.kind, done.data, done.id));
            }
        }
        assert_eq!(
            ended,
            [
                (
                    String::new(),
                    r#"{"body":"x"}"#.into(),
                    Some("200.7".into())
                ),
                ("missed".into(), r#"{"message":"#.into(), None),
                (String::new(), "a\nb".into(), None),
            ]
        );
    }

    #[test]
    fn a_spans_recorded_exceptions_print_as_type_and_message() {
        let event = |name: &str, attributes: serde_json::Value| serde_json::json!({"name": name, "timeUnixNano": "1", "attributes": attributes});
        let string =
            |key: &str, text: &str| serde_json::json!({"key": key, "value": {"stringValue": text}});
        let span = serde_json::json!({"events": [
            event("retry", serde_json::json!([string("exception.type", "not an exception")])),
            event("exception", serde_json::json!([
                string("exception.type", "ValueError"),
                string("exception.message", "card declined"),
                string("exception.stacktrace", "Traceback ..."),
            ])),
            event("exception", serde_json::json!([string("exception.message", "timed out")])),
            event("exception", serde_json::json!([])),
        ]});
        assert_eq!(
            span_exceptions(&span),
            ["ValueError: card declined", "timed out", "exception"]
        );
        assert!(span_exceptions(&serde_json::json!({"events": []})).is_empty());
        assert!(span_exceptions(&serde_json::json!({"name": "no events"})).is_empty());
    }

    #[test]
    fn a_records_exception_prints_below_it_as_in_a_log_file() {
        let row = |attributes: serde_json::Value| serde_json::json!({"attributes": attributes});
        let trace = "Traceback (most recent call last):\n  File \"w.py\", line 3\nZeroDivisionError: division by zero\n";
        assert_eq!(
            exception_lines(&row(serde_json::json!({
                "exception.type": "ZeroDivisionError",
                "exception.stacktrace": trace,
            }))),
            [
                "Traceback (most recent call last):",
                "  File \"w.py\", line 3",
                "ZeroDivisionError: division by zero"
            ]
        );
        assert_eq!(
            exception_lines(&row(serde_json::json!({
                "exception.type": "IOError",
                "exception.message": "disk full",
            }))),
            ["IOError: disk full"]
        );
        assert_eq!(
            exception_lines(&row(serde_json::json!({"exception.message": "disk full"}))),
            ["disk full"]
        );
        assert!(exception_lines(&row(serde_json::json!({"status": 500}))).is_empty());
        assert!(exception_lines(&serde_json::json!({"body": "no attributes"})).is_empty());
    }

    /// The only control characters a row prints are its body's own newlines and tabs, and
    /// the colour codes of its severity on a terminal.
    #[test]
    fn control_characters_from_the_data_are_printed_escaped() {
        let row = serde_json::json!({
            "timestamp": "2026-12-07T00:00:00Z",
            "severity": "ERROR",
            "service": "svc\u{1b}[2K",
            "body": "title \u{1b}]0;x\u{7} cr\r nul\u{0} csi\u{9b}31m del\u{7f}\n\tat Frame(F.java:1)",
            "attributes": {"exception.stacktrace": "Boom\n\tat \u{1b}[8mFrame"},
        });
        let plain = row_lines(&row, false);
        assert_eq!(
            plain,
            [
                "2026-12-07T00:00:00Z ERROR svc\\u{1b}[2K title \\u{1b}]0;x\\u{7} cr\\r \
                 nul\\u{0} csi\\u{9b}31m del\\u{7f}\n\tat Frame(F.java:1)",
                "    Boom",
                "    \tat \\u{1b}[8mFrame",
            ]
        );
        let painted = row_lines(&row, true).concat();
        assert_eq!(painted.matches('\u{1b}').count(), 2, "{painted:?}");
        assert!(painted.starts_with("2026-12-07T00:00:00Z \u{1b}[31mERROR\u{1b}[0m svc\\u{1b}"));

        // A table's cell is one line.
        assert_eq!(
            cell(&serde_json::json!("a\u{1b}[1mb\nc\td")),
            "a\\u{1b}[1mb\\nc\\td"
        );
        assert_eq!(
            cell(&serde_json::json!("plain ünïcode ✓")),
            "plain ünïcode ✓"
        );
    }

    #[test]
    fn lines_split_inside_a_character_or_a_crlf_come_out_whole() {
        let text = "data: {\"body\":\"日本語 ✓\"}\r\n\nevent: dropped\n";
        let bytes = text.as_bytes();
        // Every split point, including inside each multi-byte character.
        for at in 0..=bytes.len() {
            let mut lines = Lines::default();
            let mut got = lines.push(&bytes[..at]);
            got.extend(lines.push(&bytes[at..]));
            assert_eq!(
                got,
                ["data: {\"body\":\"日本語 ✓\"}", "", "event: dropped"],
                "split at {at}"
            );
        }
        let mut lines = Lines::default();
        assert!(lines.push(b"no end yet").is_empty());
        assert_eq!(lines.push(b" ...\n"), ["no end yet ..."]);
    }
}
