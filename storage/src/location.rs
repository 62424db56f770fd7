//! Where the tables live: a local directory (the default), S3-compatible object storage, or
//! memory (tests).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use url::Url;

use crate::{Result, Signal, StorageError};

/// Environment variables passed through to the S3 client, the standard AWS ones.
const AWS_ENV: [&str; 7] = [
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ALLOW_HTTP",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 {
        bucket: String,
        prefix: String,
    },
    /// One process's memory; gone when it exits. `prefix` separates tenants.
    Memory {
        prefix: String,
    },
}

impl Location {
    /// `--storage` wins when given (`s3://bucket/prefix`, `file:///path`, `memory://`, or a
    /// path); otherwise the `--data-dir`.
    pub fn parse(storage: Option<&str>, data_dir: &Path) -> Result<Self> {
        let Some(storage) = storage.filter(|s| !s.is_empty()) else {
            return Ok(Location::Local(absolute(data_dir)?));
        };
        let invalid = |reason: &str| StorageError::InvalidLocation {
            location: storage.to_string(),
            reason: reason.to_string(),
        };
        if !storage.contains("://") {
            return Ok(Location::Local(absolute(Path::new(storage))?));
        }
        let url = Url::parse(storage).map_err(|e| invalid(&e.to_string()))?;
        match url.scheme() {
            "s3" | "s3a" => {
                let bucket = url
                    .host_str()
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| invalid("no bucket name"))?;
                Ok(Location::S3 {
                    bucket: bucket.to_string(),
                    prefix: url.path().trim_matches('/').to_string(),
                })
            }
            "file" => Ok(Location::Local(
                url.to_file_path()
                    .map_err(|_| invalid("not a local path"))?,
            )),
            "memory" => Ok(Location::Memory {
                prefix: String::new(),
            }),
            other => Err(invalid(&format!(
                "unsupported scheme {other:?}; use s3://, file:// or a path"
            ))),
        }
    }

    /// The table's URL; local folders are created so the table can be.
    pub fn table_url(&self, signal: Signal) -> Result<Url> {
        self.url_under(signal.table_name())
    }

    /// Where Porthole keeps state that is not a table (alert states, audit events, the
    /// alerting lease): `_porthole/NAME/` under the root, which Delta readers skip.
    pub fn state_url(&self, name: &str) -> Result<Url> {
        self.url_under(&format!("_porthole/{name}"))
    }

    /// The root of one tenant's tables and state: `tenants/NAME/` under this root. Tenants
    /// never share a table, so a query engine given one tenant's tables cannot reach
    /// another's, and each prefix can have its own bucket policy, retention and vacuum.
    pub fn tenant(&self, tenant: &crate::Tenant) -> Location {
        let sub = format!("tenants/{}", tenant.name());
        let join = |prefix: &str| {
            if prefix.is_empty() {
                sub.clone()
            } else {
                format!("{prefix}/{sub}")
            }
        };
        match self {
            Location::Local(root) => Location::Local(root.join("tenants").join(tenant.name())),
            Location::S3 { bucket, prefix } => Location::S3 {
                bucket: bucket.clone(),
                prefix: join(prefix),
            },
            Location::Memory { prefix } => Location::Memory {
                prefix: join(prefix),
            },
        }
    }

    /// The folder `relative` (`/`-separated) under the root, created when local.
    fn url_under(&self, relative: &str) -> Result<Url> {
        let url = match self {
            Location::Local(root) => {
                let dir = root.join(relative);
                std::fs::create_dir_all(&dir)?;
                Ok(
                    Url::from_directory_path(&dir).map_err(|_| StorageError::InvalidLocation {
                        location: dir.display().to_string(),
                        reason: "not an absolute path".into(),
                    })?,
                )
            }
            Location::S3 { bucket, prefix } if prefix.is_empty() => {
                Url::parse(&format!("s3://{bucket}/{relative}/"))
            }
            Location::S3 { bucket, prefix } => {
                Url::parse(&format!("s3://{bucket}/{prefix}/{relative}/"))
            }
            Location::Memory { prefix } if prefix.is_empty() => {
                Url::parse(&format!("memory:///{relative}/"))
            }
            Location::Memory { prefix } => Url::parse(&format!("memory:///{prefix}/{relative}/")),
        }
        .map_err(|e| StorageError::InvalidLocation {
            location: format!("{self:?}"),
            reason: e.to_string(),
        })?;
        Ok(url)
    }

    /// Options for the object store client: the AWS_* environment for S3, plus short
    /// retries so an outage fails a batch quickly (the sender retries) instead of hanging.
    pub fn storage_options(&self) -> HashMap<String, String> {
        let mut options = HashMap::from([
            ("max_retries".to_string(), "2".to_string()),
            ("retry_timeout".to_string(), "5s".to_string()),
        ]);
        if matches!(self, Location::S3 { .. }) {
            for key in AWS_ENV {
                if let Ok(value) = std::env::var(key) {
                    options.insert(key.to_string(), value);
                }
            }
            options
                .entry("AWS_REGION".into())
                .or_insert_with(|| "us-east-1".into());
            options.insert("timeout".into(), "10s".into());
            options.insert("connect_timeout".into(), "3s".into());
        }
        options
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(std::path::absolute(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_rejects_the_rest() {
        let dir = Path::new("/data");
        assert_eq!(
            Location::parse(None, dir).unwrap(),
            Location::Local("/data".into())
        );
        assert_eq!(
            Location::parse(Some("s3://bucket/a/b/"), dir).unwrap(),
            Location::S3 {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            Location::parse(Some("file:///x"), dir).unwrap(),
            Location::Local("/x".into())
        );
        assert_eq!(
            Location::parse(Some("memory://"), dir).unwrap(),
            Location::Memory {
                prefix: String::new()
            }
        );
        let err = Location::parse(Some("gs://b"), dir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported scheme"), "{err}");
        assert!(Location::parse(Some("s3:///nobucket"), dir).is_err());
    }

    #[test]
    fn a_tenant_lives_under_tenants_slash_its_name() {
        let team = crate::Tenant::new("team-a").unwrap();
        assert_eq!(
            Location::Local("/data".into()).tenant(&team),
            Location::Local("/data/tenants/team-a".into())
        );
        let s3 = Location::S3 {
            bucket: "b".into(),
            prefix: "porthole".into(),
        };
        assert_eq!(
            s3.tenant(&team).table_url(Signal::Logs).unwrap().as_str(),
            "s3://b/porthole/tenants/team-a/logs/"
        );
        let bare = Location::S3 {
            bucket: "b".into(),
            prefix: String::new(),
        };
        assert_eq!(
            bare.tenant(&team).state_url("alerts").unwrap().as_str(),
            "s3://b/tenants/team-a/_porthole/alerts/"
        );
        let memory = Location::Memory {
            prefix: String::new(),
        };
        assert_eq!(
            memory
                .tenant(&team)
                .table_url(Signal::Spans)
                .unwrap()
                .as_str(),
            "memory:///tenants/team-a/spans/"
        );
    }
}
