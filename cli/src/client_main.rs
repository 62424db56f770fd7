//! `porthole`, the command people type. The client commands (logs, tail, sql, metrics,
//! trace, snapshot) only ask a running Porthole over HTTP, so they run here, in a binary
//! that links none of the server: it starts in about a millisecond, where the whole
//! server binary's start (the loader relocating 5 MB of DataFusion, Delta and tantivy
//! vtables) took several. Every other command (`serve`, `ingest`, `query`, `compact`,
//! `demo`, `--help`, `--version`) executes `porthole-server`, the binary beside this one,
//! in this process's place: same pid, same arguments, same signals.

mod client;
mod client_args;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use client_args::ClientCommand;

/// The name of the full binary, found beside this one.
const SERVER_BINARY: &str = "porthole-server";

#[derive(Parser)]
#[command(name = "porthole", version)]
struct ClientCli {
    /// Log output: `text` for people, `json` for log pipelines (as `porthole-server`'s; the
    /// client commands write no logs of their own).
    #[arg(long, env = "PORTHOLE_LOG_FORMAT", default_value = "text", global = true, value_parser = ["text", "json"])]
    _log_format: String,
    #[command(subcommand)]
    command: ClientCommand,
}

fn main() -> std::process::ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let is_client = args
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(ClientCommand::has_subcommand);
    if !is_client {
        return run_server(&args);
    }
    let cli = ClientCli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("porthole: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(client::run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("porthole: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Replaces this process with `porthole-server` and the same arguments; returns only when
/// that cannot be done.
fn run_server(args: &[OsString]) -> std::process::ExitCode {
    use std::os::unix::process::CommandExt;
    let server = match server_binary() {
        Ok(path) => path,
        Err(e) => {
            eprintln!("porthole: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let error = std::process::Command::new(&server)
        .arg0(args.first().cloned().unwrap_or_else(|| "porthole".into()))
        .args(args.iter().skip(1))
        .exec();
    eprintln!("porthole: cannot run {}: {error}", server.display());
    std::process::ExitCode::FAILURE
}

fn server_binary() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let server = me.with_file_name(SERVER_BINARY);
    if server.is_file() {
        Ok(server)
    } else {
        Err(format!(
            "{} is missing: every command but the client ones runs it (`cargo build --bins` \
             builds both binaries; install them side by side)",
            server.display()
        ))
    }
}
