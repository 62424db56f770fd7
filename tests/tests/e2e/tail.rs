//! Live tail: records committed after subscribing arrive over Server-Sent Events (in
//! `serve`, and on a `porthole query` apart from `porthole ingest` through the gRPC tail
//! service), filtered like a search; `porthole tail` prints them; a subscriber that stops
//! reading is dropped with a message and counted, and ingest goes on acking.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use porthole_proto::logs_service::logs_service_client::LogsServiceClient;
use serde_json::Value;

use crate::harness::{Porthole, binary};
use crate::load::export_request;

/// One parsed SSE event: its type (`message` when unnamed) and its data as JSON.
pub(crate) async fn next_event(
    response: &mut reqwest::Response,
    pending: &mut String,
) -> (String, Value) {
    let (event, data, _) = next_event_with_id(response, pending).await;
    (event, data)
}

/// One parsed SSE event: its type, its data as JSON, and its `id`.
async fn next_event_with_id(
    response: &mut reqwest::Response,
    pending: &mut String,
) -> (String, Value, Option<String>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(end) = pending.find("\n\n") {
            let block: String = pending.drain(..end + 2).collect();
            let mut event = "message".to_string();
            let mut data = None;
            let mut id = None;
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event = name.trim().to_string();
                } else if let Some(text) = line.strip_prefix("data:") {
                    data = Some(serde_json::from_str(text.trim()).unwrap());
                } else if let Some(text) = line.strip_prefix("id:") {
                    id = Some(text.trim().to_string());
                }
            }
            if let Some(data) = data {
                return (event, data, id);
            }
            continue; // a keep-alive comment
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("an SSE event within 20 s")
            .unwrap()
            .expect("the stream stays open");
        pending.push_str(&String::from_utf8_lossy(&chunk));
    }
}

async fn subscribe(porthole: &Porthole, query: &[(&str, &str)]) -> reqwest::Response {
    subscribe_after(porthole, query, None).await
}

/// Subscribes, resuming after the event `last_id` when given (`Last-Event-ID`).
async fn subscribe_after(
    porthole: &Porthole,
    query: &[(&str, &str)],
    last_id: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(porthole.url("/api/v1/logs/tail"))
        .query(query);
    if let Some(id) = last_id {
        request = request.header("Last-Event-ID", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response
}

async fn send(endpoint: String, bodies: &[&str]) {
    let bodies: Vec<String> = bodies.iter().map(|b| b.to_string()).collect();
    LogsServiceClient::connect(endpoint)
        .await
        .unwrap()
        .export(export_request(&bodies))
        .await
        .unwrap();
}

/// `porthole` with `args`, asking the server at `http`, its output piped.
fn cli(args: &[&str], http: impl std::fmt::Display) -> std::process::Child {
    Command::new(binary("porthole"))
        .args(args)
        .arg("--server")
        .arg(format!("http://{http}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends `body` through `endpoint` until the CLI prints it: the CLI subscribes
/// asynchronously, so one sent before it follows is not printed.
async fn send_until_printed(out: &mut TailOutput, endpoint: String, body: &str) {
    for _ in 0..40 {
        send(endpoint.clone(), &[body]).await;
        if out.read(Duration::from_millis(500), |o| o.printed(body) > 0) {
            return;
        }
    }
}

/// Subscribes on `reader`, sends through `writer`, and checks exactly the matching records
/// sent after subscribing arrive, in order.
async fn tail_delivers_matching_records(reader: &Porthole, writer: &Porthole) {
    send(writer.grpc_endpoint(), &["tailtest before subscribing"]).await;
    let mut response = subscribe(
        reader,
        &[("q", "tailtest AND NOT skipme"), ("service", "load")],
    )
    .await;
    let mut pending = String::new();
    send(
        writer.grpc_endpoint(),
        &["tailtest first", "tailtest skipme", "unrelated line"],
    )
    .await;
    send(writer.grpc_endpoint(), &["tailtest second"]).await;
    let mut bodies = Vec::new();
    let mut cursors = Vec::new();
    for _ in 0..2 {
        let (event, row) = next_event(&mut response, &mut pending).await;
        assert_eq!(event, "message", "{row}");
        assert_eq!(row["service"], "load");
        bodies.push(row["body"].as_str().unwrap().to_string());
        cursors.push(row["cursor"].clone());
    }
    assert_eq!(bodies, ["tailtest first", "tailtest second"]);
    // A live row carries the cursor a search gives the same record (its context).
    let searched = crate::query_api::search(reader, &[("q", "tailtest AND first")]).await;
    assert_eq!(searched[0]["cursor"], cursors[0], "{searched:?}");
    assert!(cursors[0].is_string(), "{cursors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tail_in_serve_delivers_new_matching_records_and_the_cli_prints_them() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "50ms"], &[]).await;
    tail_delivers_matching_records(&porthole, &porthole).await;

    let mut cli = cli(&["tail", "clitail"], porthole.http);
    let mut out = TailOutput::new(&mut cli);
    let hello = "clitail hello from the cli test";
    send_until_printed(&mut out, porthole.grpc_endpoint(), hello).await;
    let _ = cli.kill();
    let _ = cli.wait();
    let line = out.printed.first().expect("porthole tail printed a record");
    assert!(
        line.contains("INFO") && line.contains("load") && line.contains("clitail hello"),
        "{line}"
    );

    let (status, body) = {
        let response = reqwest::Client::new()
            .get(porthole.url("/api/v1/logs/tail"))
            .query(&[("q", "broken AND (")])
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    };
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tail_on_a_query_node_follows_the_ingest_nodes_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = Porthole::start("ingest", dir.path(), &["--batch-window", "50ms"], &[]).await;
    let nodes = ingest.grpc_endpoint();
    let query = Porthole::start("query", dir.path(), &["--ingest-nodes", &nodes], &[]).await;
    tail_delivers_matching_records(&query, &ingest).await;

    // An ingest node that shuts down ends the query node's tails, naming which server went.
    let mut ingest = ingest;
    let mut response = subscribe(&query, &[("q", "anything")]).await;
    assert!(ingest.terminate().success(), "{}", ingest.output());
    let (event, data) = next_event(&mut response, &mut String::new()).await;
    assert_eq!(event, "dropped", "{data}");
    assert_eq!(
        data["message"],
        "live tail stopped: an ingest node is shutting down"
    );

    // Without --ingest-nodes a query node says what is missing.
    let lonely = Porthole::start("query", dir.path(), &[], &[]).await;
    let response = reqwest::Client::new()
        .get(lonely.url("/api/v1/logs/tail"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--ingest-nodes"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_that_stops_reading_is_dropped_and_ingest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "50ms"], &[]).await;
    let mut response = subscribe(&porthole, &[("q", "flood")]).await;
    // ~40 MB of matching records, more than the subscriber buffer and the socket buffers
    // hold, while the subscriber reads nothing. Every export must still be acked.
    let padding = "x".repeat(1000);
    let bodies: Vec<String> = (0..1000).map(|i| format!("flood {i} {padding}")).collect();
    let mut client = LogsServiceClient::connect(porthole.grpc_endpoint())
        .await
        .unwrap();
    for _ in 0..40 {
        client.export(export_request(&bodies)).await.unwrap();
    }
    // Reading now: records, then the drop notice, then the end of the stream.
    let mut pending = String::new();
    let mut records = 0;
    loop {
        let (event, data) = next_event(&mut response, &mut pending).await;
        if event == "dropped" {
            assert!(
                data["message"]
                    .as_str()
                    .unwrap()
                    .contains("did not read 1024 buffered"),
                "{data}"
            );
            break;
        }
        records += 1;
        assert!(records < 40_000, "never dropped");
    }
    assert!(records < 40_000);
    let rest = tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .expect("the stream ends after the drop notice")
        .unwrap();
    assert!(rest.is_none(), "nothing follows the drop notice");
    assert_eq!(
        porthole
            .counter("porthole_tail_subscribers_dropped_total", &[])
            .await,
        1.0
    );
}

/// Past --max-tails open tails (SSE and gRPC together), one more is refused at once with
/// 503 / RESOURCE_EXHAUSTED and counted; a tail that ends gives its place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tails_past_the_limit_are_refused_until_one_ends() {
    use porthole_proto::tail::SubscribeRequest;
    use porthole_proto::tail::tail_client::TailClient;
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--max-tails", "2"], &[]).await;
    let open = || reqwest::get(porthole.url("/api/v1/logs/tail?q=capped"));
    let first = open().await.unwrap();
    let second = open().await.unwrap();
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );

    let refused = open().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("live tails open as --max-tails allows (2)"),
        "{message}"
    );
    // The ingest side's gRPC tail (what query nodes subscribe to) counts against the same.
    let mut client = TailClient::connect(porthole.grpc_endpoint()).await.unwrap();
    let status = client
        .subscribe(SubscribeRequest {
            query: "capped".into(),
            filters: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        porthole.counter("porthole_tails_refused_total", &[]).await,
        2.0
    );

    drop(first);
    crate::harness::wait_for(
        "the closed tail's place is free",
        Duration::from_secs(20),
        || async { (porthole.counter("porthole_tails_open", &[]).await == 1.0).then_some(()) },
    )
    .await;
    let third = open().await.unwrap();
    assert_eq!(third.status(), 200);
    drop(second);
}

/// What a `porthole tail` process printed (stdout) and said (stderr), read as it comes.
struct TailOutput {
    lines: std::sync::mpsc::Receiver<(bool, String)>,
    printed: Vec<String>,
    said: Vec<String>,
}

impl TailOutput {
    fn new(cli: &mut std::process::Child) -> Self {
        let (tx, lines) = std::sync::mpsc::channel();
        for (is_stdout, pipe) in [
            (
                true,
                Box::new(cli.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            ),
            (false, Box::new(cli.stderr.take().unwrap())),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send((is_stdout, line));
                }
            });
        }
        Self {
            lines,
            printed: Vec::new(),
            said: Vec::new(),
        }
    }

    /// Reads lines for up to `within` or until `done` holds; whether it does.
    fn read(&mut self, within: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let deadline = std::time::Instant::now() + within;
        while !done(self) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((true, line)) => self.printed.push(line),
                Ok((false, line)) => self.said.push(line),
                Err(_) => return false,
            }
        }
        true
    }

    fn printed(&self, text: &str) -> usize {
        self.printed.iter().filter(|l| l.contains(text)).count()
    }

    fn said(&self, text: &str) -> bool {
        self.said.iter().any(|l| l.contains(text))
    }
}

/// `porthole tail` outlives a restart of the server, as `tail -F` outlives a rotation: it
/// reconnects, first prints the records committed while it was away (here by another
/// ingest process while no server answered it, so only the catch-up search can find
/// them), then the new stream's, each record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_tail_reconnects_after_a_restart_and_prints_what_it_missed_once() {
    let dir = tempfile::tempdir().unwrap();
    let window = ["--batch-window", "50ms"];
    let mut first = Porthole::start("serve", dir.path(), &window, &[]).await;
    let http = first.http.to_string();
    let mut cli = cli(&["tail", "rejoin"], &http);
    let mut out = TailOutput::new(&mut cli);
    send_until_printed(&mut out, first.grpc_endpoint(), "rejoin before").await;
    assert!(
        out.printed("rejoin before") > 0,
        "porthole tail printed nothing"
    );

    assert!(first.terminate().success());
    let mut other = Porthole::start("ingest", dir.path(), &window, &[]).await;
    send(
        other.grpc_endpoint(),
        &["rejoin while away one", "rejoin while away two"],
    )
    .await;
    assert!(other.terminate().success());
    let second = Porthole::start(
        "serve",
        dir.path(),
        &["--batch-window", "50ms", "--http-addr", &http],
        &[],
    )
    .await;
    let caught_up = out.read(Duration::from_secs(30), |o| {
        o.said("reconnected") && o.printed("while away one") > 0 && o.printed("while away two") > 0
    });
    assert!(
        caught_up,
        "printed {:#?}, said {:#?}",
        out.printed, out.said
    );
    assert!(
        out.said("shutting down"),
        "it said why it reconnected: {:#?}",
        out.said
    );
    send(second.grpc_endpoint(), &["rejoin after"]).await;
    assert!(out.read(Duration::from_secs(20), |o| o.printed("rejoin after") > 0));
    // Anything printed twice would come within the batch window.
    out.read(Duration::from_millis(500), |_| false);
    let _ = cli.kill();
    let _ = cli.wait();
    for text in ["while away one", "while away two", "rejoin after"] {
        assert_eq!(out.printed(text), 1, "{text:?}: {:#?}", out.printed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tail_resumes_after_its_last_event_id_with_what_it_missed_once() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "50ms"], &[]).await;
    let query = [("q", "resume AND NOT skipme")];
    let mut response = subscribe(&porthole, &query).await;
    let mut pending = String::new();
    send(porthole.grpc_endpoint(), &["resume one"]).await;
    let (_, row, id) = next_event_with_id(&mut response, &mut pending).await;
    assert_eq!(row["body"], "resume one");
    // A record's event id is the newest cursor sent so far: here its own.
    assert_eq!(id.as_deref(), row["cursor"].as_str(), "{row}");
    let id = id.unwrap();

    // The client goes away; records are committed, in two files, while it is gone.
    drop(response);
    send(
        porthole.grpc_endpoint(),
        &["resume two", "resume skipme", "unrelated"],
    )
    .await;
    send(porthole.grpc_endpoint(), &["resume three"]).await;

    let mut response = subscribe_after(&porthole, &query, Some(&id)).await;
    let mut pending = String::new();
    let mut bodies = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (event, row, id) = next_event_with_id(&mut response, &mut pending).await;
        assert_eq!(event, "message", "{row}");
        bodies.push(row["body"].as_str().unwrap().to_string());
        ids.push(id.expect("every record has an id"));
    }
    assert_eq!(bodies, ["resume two", "resume three"]);
    // Then the live stream, without a record it already sent.
    send(porthole.grpc_endpoint(), &["resume four"]).await;
    let (_, row, _) = next_event_with_id(&mut response, &mut pending).await;
    assert_eq!(row["body"], "resume four");

    // Resuming after "three" starts at "four", then follows.
    let mut response = subscribe_after(&porthole, &query, Some(&ids[1])).await;
    let mut pending = String::new();
    send(porthole.grpc_endpoint(), &["resume five"]).await;
    for expected in ["resume four", "resume five"] {
        let (_, row, _) = next_event_with_id(&mut response, &mut pending).await;
        assert_eq!(row["body"], expected, "{row}");
    }

    // An id this server never sent is refused, saying what is wrong.
    let refused = reqwest::Client::new()
        .get(porthole.url("/api/v1/logs/tail"))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        r#"Last-Event-ID "yesterday" is not the id of an event this server sent"#
    );
}

/// `porthole logs … | head`: the CLI's reader goes away before its output ends; it stops
/// quietly, with success, where it panicked with a backtrace.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_stops_quietly_when_its_reader_goes_away() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "50ms"], &[]).await;
    // Far more than a pipe holds (64 KiB), so the CLI is still writing when it closes.
    let bodies: Vec<String> = (0..3000).map(|i| format!("piped line {i:04}")).collect();
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
    send(porthole.grpc_endpoint(), &bodies).await;
    let mut cli = cli(
        &["logs", "piped", "--limit", "3000", "--since", "1h"],
        porthole.http,
    );
    let mut stdout = cli.stdout.take().unwrap();
    let mut first = [0u8; 1024];
    let read = stdout.read(&mut first).unwrap();
    assert!(
        String::from_utf8_lossy(&first[..read]).contains("piped line"),
        "{}",
        String::from_utf8_lossy(&first[..read])
    );
    drop(stdout);
    let status = cli.wait().unwrap();
    let mut stderr = String::new();
    cli.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stderr, "", "nothing said, no panic");
}

/// `porthole logs -f`, as `kubectl logs -f`: the newest `--limit` records, oldest first,
/// then the live ones, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_follow_prints_the_newest_records_then_follows() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", dir.path(), &["--batch-window", "50ms"], &[]).await;
    send(porthole.grpc_endpoint(), &["follow old one"]).await;
    send(
        porthole.grpc_endpoint(),
        &["follow old two", "follow old three"],
    )
    .await;
    let mut cli = cli(&["logs", "follow", "-f", "--limit", "2"], porthole.http);
    let mut out = TailOutput::new(&mut cli);
    assert!(
        out.read(Duration::from_secs(20), |o| o.printed.len() >= 2),
        "{:#?} {:#?}",
        out.printed,
        out.said
    );
    // The follow starts from the newest printed: send until a new line shows up.
    send_until_printed(&mut out, porthole.grpc_endpoint(), "follow new").await;
    let _ = cli.kill();
    let _ = cli.wait();
    let bodies: Vec<&str> = out
        .printed
        .iter()
        .map(|line| {
            line.split_once(" follow ")
                .map_or(line.as_str(), |(_, b)| b)
        })
        .collect();
    assert_eq!(
        bodies[..3],
        ["old two", "old three", "new"],
        "{:#?}",
        out.printed
    );
}
