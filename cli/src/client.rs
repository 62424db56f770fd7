//! The client commands: ask a running Porthole's API and print the answer for people (text)
//! or scripts (JSON).

use std::collections::BTreeMap;
use std::io::IsTerminal;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::args::{ClientArgs, LogsArgs, SqlArgs, TraceArgs};

/// Sends the request; an API error becomes an error carrying the API's own message.
async fn call(client: &ClientArgs, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let request = match &client.token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {}", client.server))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("{} answered {status} without JSON", client.server))?;
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        bail!("{status}: {message}");
    }
    Ok(body)
}

fn url(client: &ClientArgs, path: &str) -> String {
    format!("{}{path}", client.server.trim_end_matches('/'))
}

pub async fn logs(args: LogsArgs) -> anyhow::Result<()> {
    let mut query = vec![
        ("q", args.query.clone()),
        ("start", format!("now-{}", args.since)),
        ("limit", args.limit.to_string()),
    ];
    query.extend(args.service.clone().map(|s| ("service", s)));
    query.extend(args.severity.clone().map(|s| ("severity", s)));
    let http = reqwest::Client::new();
    let body = call(
        &args.client,
        http.get(url(&args.client, "/api/v1/logs")).query(&query),
    )
    .await?;
    let rows = body["rows"].as_array().cloned().unwrap_or_default();
    let colour = std::io::stdout().is_terminal() && args.client.output == "text";
    for row in rows {
        if args.client.output == "json" {
            println!("{row}");
            continue;
        }
        let severity = row["severity"].as_str().unwrap_or("-");
        let painted = match (colour, severity) {
            (true, "ERROR" | "FATAL") => format!("\x1b[31m{severity:5}\x1b[0m"),
            (true, "WARN") => format!("\x1b[33m{severity:5}\x1b[0m"),
            _ => format!("{severity:5}"),
        };
        println!(
            "{} {painted} {} {}",
            row["timestamp"].as_str().unwrap_or(""),
            row["service"].as_str().unwrap_or("-"),
            row["body"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

pub async fn sql(args: SqlArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let body = call(
        &args.client,
        http.post(url(&args.client, "/api/v1/sql"))
            .json(&serde_json::json!({"sql": args.sql})),
    )
    .await?;
    if args.client.output == "json" {
        println!("{body}");
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
    println!("{}", line(&columns));
    println!(
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ")
    );
    for row in &cells {
        println!("{}", line(row));
    }
    if body["truncated"].as_bool() == Some(true) {
        println!("(truncated to {} rows)", cells.len());
    }
    Ok(())
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub async fn trace(args: TraceArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let body = call(
        &args.client,
        http.get(url(
            &args.client,
            &format!("/api/v1/traces/{}", args.trace_id),
        )),
    )
    .await?;
    if args.client.output == "json" {
        println!("{body}");
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
    fn print(children: &BTreeMap<String, Vec<&Value>>, parent: &str, depth: usize) {
        for span in children.get(parent).into_iter().flatten() {
            let millis = span["duration_ns"].as_f64().unwrap_or(0.0) / 1e6;
            let status = span["status_code"]
                .as_str()
                .filter(|s| *s == "ERROR")
                .map(|_| " ERROR")
                .unwrap_or("");
            println!(
                "{}{} [{}] {millis:.3} ms{status}",
                "  ".repeat(depth),
                span["name"].as_str().unwrap_or("?"),
                span["service"].as_str().unwrap_or("-")
            );
            print(children, span["span_id"].as_str().unwrap_or(""), depth + 1);
        }
    }
    print(&children, "", 0);
    Ok(())
}
