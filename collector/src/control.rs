//! Snapshots on request, pulled: the collector long-polls ingest (`Control/Poll`) over the
//! connection it ships on, so it never listens for requests; when one comes it reads the
//! pod's processes, file descriptors, sockets and environments from `/proc` and answers
//! (`Control/Answer`). Environment values of secret-looking names, and secret-looking
//! command-line flags, are redacted before anything leaves the pod.
//!
//! With `shareProcessNamespace: true` the sidecar sees every container's processes; without
//! it, only its own (the snapshot says how many it saw). Environments and descriptors of
//! processes of other users need the same UID or CAP_SYS_PTRACE; unreadable ones are null.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use porthole_proto::control::control_client::ControlClient;
use porthole_proto::control::{AnswerRequest, PollRequest};
use procfs::net::TcpState;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::config::SnapshotConfig;
use crate::resource::Identity;
use crate::shipper::authorized;

/// How long one poll waits on the server before it answers "nothing".
const POLL_WAIT: Duration = Duration::from_secs(20);
/// Longest command line and environment value kept, in bytes.
const MAX_TEXT: usize = 4096;
/// Environment variables kept per process, at most.
const MAX_ENV: usize = 256;
const REDACTED: &str = "[redacted]";

/// Whether a variable or flag name looks like it holds a secret.
pub fn secret_looking(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "TOKEN",
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "KEY",
        "CREDENTIAL",
        "PRIVATE",
        "AUTH",
        "COOKIE",
        "SESSION",
    ]
    .iter()
    .any(|word| upper.contains(word))
}

fn cut(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// A command line with the values of secret-looking flags (`--db-password=x`,
/// `--token x`) redacted.
fn redact_cmdline(args: &[String]) -> String {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for arg in args {
        if hide_next {
            out.push(REDACTED.to_string());
            hide_next = false;
            continue;
        }
        match arg.split_once('=') {
            Some((flag, _)) if flag.starts_with('-') && secret_looking(flag) => {
                out.push(format!("{flag}={REDACTED}"));
            }
            _ => {
                hide_next = arg.starts_with('-') && !arg.contains('=') && secret_looking(arg);
                out.push(arg.clone());
            }
        }
    }
    cut(out.join(" "))
}

/// The pod as its collector sees it now.
pub fn snapshot(config: &SnapshotConfig) -> Value {
    let root = &config.proc_root;
    let ticks = procfs::ticks_per_second() as f64;
    let page = procfs::page_size();
    let mut processes = Vec::new();
    let mut truncated = false;
    if let Ok(all) = procfs::process::all_processes_with_root(root) {
        for process in all.flatten() {
            if processes.len() >= config.max_processes {
                truncated = true;
                break;
            }
            let Ok(stat) = process.stat() else { continue };
            let env = process.environ().ok().map(|vars| {
                let mut kept: BTreeMap<String, String> = BTreeMap::new();
                for (name, value) in vars.into_iter().take(MAX_ENV) {
                    let name = name.to_string_lossy().into_owned();
                    let value = if secret_looking(&name) {
                        REDACTED.to_string()
                    } else {
                        cut(value.to_string_lossy().into_owned())
                    };
                    kept.insert(name, value);
                }
                kept
            });
            processes.push(json!({
                "pid": stat.pid,
                "ppid": stat.ppid,
                "command": stat.comm,
                "cmdline": process.cmdline().map(|args| redact_cmdline(&args)).ok(),
                "state": stat.state.to_string(),
                "threads": stat.num_threads,
                "rss_bytes": stat.rss * page,
                "cpu_seconds": (stat.utime + stat.stime) as f64 / ticks,
                "open_fds": process.fd_count().ok(),
                "env": env,
            }));
        }
    }
    let (listening, established) = sockets(root);
    json!({
        "taken_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "processes": processes,
        "processes_truncated": truncated,
        "sockets": {"listening": listening, "established": established},
        "note": "processes of other containers appear only with shareProcessNamespace: true",
    })
}

/// TCP sockets of the pod's network namespace (shared by its containers).
fn sockets(root: &Path) -> (Vec<Value>, Vec<Value>) {
    let (mut listening, mut established) = (Vec::new(), Vec::new());
    let Ok(me) = procfs::process::Process::new_with_root(root.join("self")) else {
        return (listening, established);
    };
    let entries = me
        .tcp()
        .unwrap_or_default()
        .into_iter()
        .chain(me.tcp6().unwrap_or_default());
    for entry in entries {
        match entry.state {
            TcpState::Listen => listening.push(json!({"local": entry.local_address.to_string()})),
            TcpState::Established => established.push(json!({
                "local": entry.local_address.to_string(),
                "remote": entry.remote_address.to_string(),
            })),
            _ => {}
        }
    }
    (listening, established)
}

/// Polls for requests until `stop`; answers each with a snapshot.
pub async fn run(
    config: SnapshotConfig,
    identity: std::sync::Arc<Identity>,
    channel: Channel,
    token: Option<MetadataValue<Ascii>>,
    stop: CancellationToken,
) -> Result<(), crate::CollectorError> {
    let Some(pod) = identity.get("k8s.pod.name").map(String::from) else {
        tracing::warn!("no pod name (POD_NAME / K8S_POD_NAME): snapshots are off");
        stop.cancelled().await;
        return Ok(());
    };
    let namespace = identity
        .get("k8s.namespace.name")
        .unwrap_or_default()
        .to_string();
    let mut client = ControlClient::new(channel);
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut poll = authorized(
            &token,
            PollRequest {
                namespace: namespace.clone(),
                pod: pod.clone(),
                wait_ms: POLL_WAIT.as_millis() as u32,
            },
        );
        poll.set_timeout(POLL_WAIT + Duration::from_secs(10));
        let polled = tokio::select! {
            polled = client.poll(poll) => polled,
            () = stop.cancelled() => return Ok(()),
        };
        let request_id = match polled {
            Ok(response) => {
                backoff = Duration::from_millis(500);
                response.into_inner().request_id
            }
            Err(status) => {
                tracing::debug!(%status, "control poll failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        if request_id.is_empty() {
            continue;
        }
        tracing::info!(request_id, "snapshot requested");
        let taken = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || snapshot(&config)).await
        };
        let answer = match taken {
            Ok(snapshot) => AnswerRequest {
                request_id,
                json: snapshot.to_string(),
                error: String::new(),
            },
            Err(e) => AnswerRequest {
                request_id,
                json: String::new(),
                error: format!("the snapshot failed: {e}"),
            },
        };
        let answer = authorized(&token, answer);
        if let Err(status) = client.answer(answer).await {
            tracing::warn!(%status, "could not deliver a snapshot");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_from_command_lines() {
        let args: Vec<String> = [
            "app",
            "--db-password=hunter2",
            "--token",
            "abc",
            "--port",
            "80",
        ]
        .map(String::from)
        .to_vec();
        let line = redact_cmdline(&args);
        assert_eq!(
            line,
            "app --db-password=[redacted] --token [redacted] --port 80"
        );
        for name in [
            "API_TOKEN",
            "DB_PASSWORD",
            "AWS_SECRET_ACCESS_KEY",
            "SIGNING_KEY",
        ] {
            assert!(secret_looking(name), "{name}");
        }
        assert!(!secret_looking("PORT"));
    }

    #[test]
    fn a_snapshot_lists_processes_with_secrets_redacted() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env("SNAPSHOT_TEST_TOKEN", "do-not-show-7f3a")
            .env("SNAPSHOT_TEST_MODE", "visible")
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100)); // let it exec
        let snap = snapshot(&SnapshotConfig::default());
        let _ = child.kill();
        let _ = child.wait();
        let find = |pid: u32| {
            snap["processes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["pid"] == pid as i64)
                .unwrap_or_else(|| panic!("pid {pid} is listed"))
                .clone()
        };
        let me = find(std::process::id());
        assert!(me["threads"].as_i64().unwrap() >= 1);
        assert!(me["rss_bytes"].as_u64().unwrap() > 0);
        assert!(me["open_fds"].as_u64().unwrap() > 0);
        let sleeper = find(child.id());
        assert_eq!(sleeper["command"], "sleep");
        assert_eq!(sleeper["cmdline"], "sleep 30");
        assert_eq!(sleeper["env"]["SNAPSHOT_TEST_TOKEN"], REDACTED);
        assert_eq!(sleeper["env"]["SNAPSHOT_TEST_MODE"], "visible");
        assert!(!snap.to_string().contains("do-not-show-7f3a"));
    }
}
