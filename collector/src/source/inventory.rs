//! What is running here, for `/api/v1/inventory`: the pod's identity and fingerprints of
//! its configuration, reported every `interval` and at once when they change, as a log
//! record of scope `porthole.inventory` whose body is a JSON object.
//!
//! Fingerprints never carry contents: a watched file is its SHA-256; an environment
//! variable is its name and a hash of its value keyed with the collector's token (when it
//! has one), so equal values compare equal across pods without the hash being a lookup
//! table for guessable secrets. A file whose hash differs from the one at start is listed
//! in `changed_since_start`: something changed it inside a running container. On shutdown
//! a last report says `stopped`, so the pod leaves the inventory at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use porthole_proto::common::{AnyValue, any_value};
use porthole_proto::logs::LogRecord;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::CollectorError;
use crate::buffer::{DiskBuffer, Kind};
use crate::config::InventoryConfig;
use crate::resource::{Identity, string_attribute};
use crate::source::file::now_nanos;
use crate::telemetry::CollectorMetrics;

pub const SCOPE: &str = "porthole.inventory";

/// The configuration fingerprints at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprints {
    pub files: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
}

pub struct Inventory {
    config: InventoryConfig,
    /// Keys the hashes of environment values (the collector's token, when it has one).
    env_key: Vec<u8>,
    started_at: String,
}

impl Inventory {
    pub fn new(config: InventoryConfig, env_key: Vec<u8>) -> Self {
        Self {
            config,
            env_key,
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    /// Hashes every watched file and selected variable of `env` now.
    pub fn fingerprint(&self, env: impl Iterator<Item = (String, String)>) -> Fingerprints {
        let mut files = BTreeMap::new();
        for pattern in &self.config.watch_files {
            let Ok(paths) = glob::glob(pattern) else {
                continue;
            };
            for path in paths.flatten().filter(|p| p.is_file()) {
                let hash = match std::fs::read(&path) {
                    Ok(bytes) => format!("sha256:{}", &hex::encode(Sha256::digest(&bytes))[..16]),
                    Err(e) => format!("unreadable:{:?}", e.kind()),
                };
                files.insert(path.display().to_string(), hash);
            }
        }
        let patterns = |list: &[String]| -> Vec<glob::Pattern> {
            list.iter()
                .filter_map(|p| glob::Pattern::new(p).ok())
                .collect()
        };
        let (wanted, ignored) = (
            patterns(&self.config.env),
            patterns(&self.config.env_ignore),
        );
        let env = env
            .filter(|(name, _)| {
                wanted.iter().any(|p| p.matches(name)) && !ignored.iter().any(|p| p.matches(name))
            })
            .map(|(name, value)| {
                let mut hasher = Sha256::new();
                for part in [self.env_key.as_slice(), name.as_bytes(), value.as_bytes()] {
                    hasher.update((part.len() as u64).to_le_bytes());
                    hasher.update(part);
                }
                let hash = format!("h:{}", &hex::encode(hasher.finalize())[..16]);
                (name, hash)
            })
            .collect();
        Fingerprints { files, env }
    }

    /// The report's JSON body.
    pub fn report(
        &self,
        identity: &Identity,
        state: &str,
        now: &Fingerprints,
        at_start: &Fingerprints,
    ) -> Value {
        let changed: Vec<&String> = now
            .files
            .iter()
            .filter(|(path, hash)| at_start.files.get(*path).is_some_and(|h| h != *hash))
            .map(|(path, _)| path)
            .collect();
        let attr = |key: &str| identity.get(key);
        json!({
            "state": state,
            "interval_seconds": self.config.interval.as_secs_f64(),
            "started_at": self.started_at,
            "node": attr("k8s.node.name"),
            "pod_uid": attr("k8s.pod.uid"),
            "containers": [{
                "name": attr("k8s.container.name"),
                "image": attr("container.image.name"),
                "tag": attr("container.image.tag"),
                "digest": attr("container.image.id"),
            }],
            "collector_version": env!("CARGO_PKG_VERSION"),
            "files": now.files,
            "env": now.env,
            "changed_since_start": changed,
        })
    }
}

fn encode(identity: &Identity, state: &str, body: &Value) -> Vec<u8> {
    let record = LogRecord {
        time_unix_nano: now_nanos(),
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.to_string())),
        }),
        attributes: vec![string_attribute("porthole.inventory.state", state)],
        ..LogRecord::default()
    };
    super::encode_logs(identity, SCOPE, vec![record])
}

pub async fn run(
    inventory: Inventory,
    buffer: Arc<DiskBuffer>,
    identity: Arc<Identity>,
    metrics: Arc<CollectorMetrics>,
    stop: CancellationToken,
) -> Result<(), CollectorError> {
    let at_start = inventory.fingerprint(std::env::vars());
    let mut last: Option<(Fingerprints, Instant)> = None;
    let mut ticker = tokio::time::interval(inventory.config.check_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.cancelled() => break,
        }
        let now = inventory.fingerprint(std::env::vars());
        let due = match &last {
            None => true,
            Some((reported, at)) => *reported != now || at.elapsed() >= inventory.config.interval,
        };
        if due {
            if last.as_ref().is_some_and(|(reported, _)| *reported != now) {
                tracing::info!("configuration fingerprints changed; reporting");
            }
            let body = inventory.report(&identity, "running", &now, &at_start);
            append(&buffer, &metrics, &encode(&identity, "running", &body))?;
            last = Some((now, Instant::now()));
        }
    }
    let now = last.map(|(f, _)| f).unwrap_or_else(|| at_start.clone());
    let body = inventory.report(&identity, "stopped", &now, &at_start);
    append(&buffer, &metrics, &encode(&identity, "stopped", &body))
}

/// Reports are periodic: when the buffer is full one is skipped (and counted), not waited for.
fn append(
    buffer: &DiskBuffer,
    metrics: &CollectorMetrics,
    payload: &[u8],
) -> Result<(), CollectorError> {
    match buffer.try_append(Kind::Logs, 1, &[], payload)? {
        Ok(()) => metrics.received("logs", 1),
        Err(_full) => metrics.dropped("buffer_full", 1),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(dir: &std::path::Path, key: &[u8]) -> Inventory {
        Inventory::new(
            InventoryConfig {
                watch_files: vec![format!("{}/*.yaml", dir.display())],
                env: vec!["APP_*".into(), "DB_PASSWORD".into()],
                env_ignore: vec!["APP_POD_*".into()],
                ..InventoryConfig::default()
            },
            key.to_vec(),
        )
    }

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn fingerprints_hash_files_and_selected_variables_never_their_values() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.yaml"), "port: 80\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let inv = inventory(dir.path(), b"k");
        let vars = [
            ("APP_MODE", "fast"),
            ("APP_POD_IP", "10.0.0.1"),
            ("DB_PASSWORD", "hunter2"),
            ("PATH", "/bin"),
        ];
        let first = inv.fingerprint(env(&vars));
        assert_eq!(first.files.len(), 1);
        assert_eq!(
            first.env.keys().collect::<Vec<_>>(),
            ["APP_MODE", "DB_PASSWORD"]
        );
        let text = format!("{first:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("fast"),
            "{text}"
        );
        // Same inputs, same fingerprints; another key, other hashes; a changed file or
        // value, another hash.
        assert_eq!(inv.fingerprint(env(&vars)), first);
        let other_key = inventory(dir.path(), b"other").fingerprint(env(&vars));
        assert_ne!(other_key.env["DB_PASSWORD"], first.env["DB_PASSWORD"]);
        std::fs::write(dir.path().join("app.yaml"), "port: 81\n").unwrap();
        let changed = inv.fingerprint(env(&[("APP_MODE", "slow"), ("DB_PASSWORD", "hunter2")]));
        assert_ne!(changed.files, first.files);
        assert_ne!(changed.env["APP_MODE"], first.env["APP_MODE"]);
        assert_eq!(changed.env["DB_PASSWORD"], first.env["DB_PASSWORD"]);

        let report = inv.report(&Identity::default(), "running", &changed, &first);
        let path = dir.path().join("app.yaml").display().to_string();
        assert_eq!(report["changed_since_start"], json!([path]));
        assert_eq!(report["state"], "running");
    }
}
