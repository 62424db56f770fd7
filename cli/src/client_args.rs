//! The client commands' arguments. The small `porthole` binary parses these itself; the
//! server binary (`porthole-server`) takes them as part of its whole command line.

use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Search logs: `porthole logs 'error AND status:>=500' --service checkout --since 1h`.
    Logs(LogsArgs),
    /// Follow logs as they arrive: `porthole tail 'severity:ERROR' --service checkout`.
    Tail(TailArgs),
    /// Run a read-only SQL query over the `logs`, `spans` and `metrics` tables.
    Sql(SqlArgs),
    /// Evaluates a PromQL expression now (or at `--time`) and prints each series' value.
    Metrics(MetricsArgs),
    /// Show one trace as an indented tree of spans with their durations.
    Trace(TraceArgs),
    /// Ask a pod's collector for a point-in-time view: processes, descriptors, sockets,
    /// environments (secret-looking values redacted). Stored and audit-logged.
    Snapshot(SnapshotArgs),
}

#[derive(Args, Clone)]
pub struct ClientArgs {
    /// The Porthole API to ask.
    #[arg(long, env = "PORTHOLE_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// `text` for people, `json` for scripts (`-o json`, as kubectl's and logcli's).
    #[arg(long, short = 'o', default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
    /// Bearer token, for a server started with --auth-token-file.
    #[arg(long, env = "PORTHOLE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate(s) (PEM) to trust for an `https://` server, instead of the system's
    /// roots (a server started with --tls-cert from a private CA).
    #[arg(long, env = "PORTHOLE_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Args, Clone)]
pub struct LogsArgs {
    #[command(flatten)]
    pub filter: LogFilter,
    /// How far back to look, e.g. `15m`, `2h`, `7d`.
    #[arg(long, default_value = "1h", conflicts_with = "from", value_parser = since)]
    pub since: String,
    /// Start of the time range instead of `--since`: RFC 3339
    /// (`2026-12-06T14:00:00Z`), unix nanoseconds or `now-2d`.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the time range (exclusive), in the same forms; default now.
    #[arg(long)]
    pub to: Option<String>,
    /// Oldest first: from the start of the range on, as an incident is read.
    #[arg(long)]
    pub forward: bool,
    #[arg(long, default_value = "100")]
    pub limit: usize,
    /// Then follow new records, as `kubectl logs -f`: the newest `--limit` records of the
    /// range print oldest first, then each record committed after them (`porthole tail`).
    #[arg(long, short = 'f', conflicts_with_all = ["to", "forward"])]
    pub follow: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Args, Clone)]
pub struct TailArgs {
    #[command(flatten)]
    pub filter: LogFilter,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Which log records `porthole logs` finds and `porthole tail` follows.
#[derive(Args, Clone)]
pub struct LogFilter {
    /// Lucene-style query over the body and attributes (`"connection refused"`,
    /// `status:>=500`); empty matches everything.
    #[arg(default_value = "")]
    pub query: String,
    /// Only this service (`service.name`).
    #[arg(long)]
    pub service: Option<String>,
    /// Only this namespace (`k8s.namespace.name`).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Only this pod (`k8s.pod.name`).
    #[arg(long)]
    pub pod: Option<String>,
    /// Only this container (`k8s.container.name`).
    #[arg(long, short = 'c')]
    pub container: Option<String>,
    /// Only this version of the service (`service.version`, else the image tag).
    #[arg(long = "version")]
    pub version: Option<String>,
    /// Only this severity, in any case: `error`, `WARN`.
    #[arg(long)]
    pub severity: Option<String>,
}

impl LogFilter {
    /// The filter as the API's query parameters: `q`, then each filter that is set.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![("q", self.query.clone())];
        for (name, value) in [
            ("service", &self.service),
            ("namespace", &self.namespace),
            ("pod", &self.pod),
            ("container", &self.container),
            ("version", &self.version),
            ("severity", &self.severity),
        ] {
            params.extend(value.clone().map(|v| (name, v)));
        }
        params
    }
}

#[derive(Args, Clone)]
pub struct SqlArgs {
    pub sql: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Args, Clone)]
pub struct MetricsArgs {
    pub promql: String,
    /// Evaluation time: RFC 3339 or unix seconds (default: now).
    #[arg(long)]
    pub time: Option<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Args, Clone)]
pub struct SnapshotArgs {
    /// The pod's name (`k8s.pod.name`).
    pub pod: String,
    /// The pod's namespace.
    #[arg(long, short = 'n', default_value = "")]
    pub namespace: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Args, Clone)]
pub struct TraceArgs {
    /// 32 hex digits.
    pub trace_id: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A `--since` the server takes as `now-<since>`, a duration as its parser reads them
/// (humantime), checked here so a typo is named as the flag (`invalid value '5x' for
/// '--since <SINCE>': …`), not as the `start` parameter the server was sent.
fn since(text: &str) -> Result<String, String> {
    humantime::parse_duration(text.trim())
        .map(|_| text.to_owned())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: super::ClientCommand,
    }

    /// A client command line, as `porthole` parses it.
    fn parse(args: &[&str]) -> Result<super::ClientCommand, clap::Error> {
        use clap::Parser;
        Cli::try_parse_from(args).map(|cli| cli.command)
    }

    /// `-o json` is `--output json` on every client command, as in kubectl and logcli.
    #[test]
    fn dash_o_is_the_output_on_every_client_command() {
        for args in [
            &["porthole", "logs", "error", "-o", "json"][..],
            &["porthole", "tail", "-o", "json"],
            &["porthole", "sql", "select 1", "-o", "json"],
            &["porthole", "metrics", "up", "-o", "json"],
            &[
                "porthole",
                "trace",
                "0123456789abcdef0123456789abcdef",
                "-o",
                "json",
            ],
            &["porthole", "snapshot", "pod-1", "-o", "json"],
        ] {
            let command = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            use super::ClientCommand::*;
            let client = match &command {
                Logs(a) => &a.client,
                Tail(a) => &a.client,
                Sql(a) => &a.client,
                Metrics(a) => &a.client,
                Trace(a) => &a.client,
                Snapshot(a) => &a.client,
            };
            assert_eq!(client.output, "json", "{args:?}");
        }
    }

    /// `logs -f` follows from the end of its range: an end (`--to`) or an order
    /// (`--forward`) of its own is a usage error.
    #[test]
    fn logs_follow_takes_no_end_and_no_order() {
        let Ok(super::ClientCommand::Logs(logs)) =
            parse(&["porthole", "logs", "-f", "--since", "5m"])
        else {
            panic!("logs -f");
        };
        assert!(logs.follow);
        for other in ["--to=now-1m", "--forward"] {
            let error = parse(&["porthole", "logs", "--follow", other]).err();
            let kind = error.map(|e| e.kind());
            assert_eq!(
                kind,
                Some(clap::error::ErrorKind::ArgumentConflict),
                "{other}"
            );
        }
    }

    #[test]
    fn a_since_that_is_no_duration_is_named_as_the_flag() {
        assert_eq!(super::since("90m").as_deref(), Ok("90m"));
        let why = super::since("5x").unwrap_err();
        assert!(why.starts_with("unknown time unit \"x\""), "{why}");
        assert!(super::since("").is_err());
    }
}
