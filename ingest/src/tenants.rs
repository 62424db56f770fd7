//! `--tenants FILE`: which tokens belong to which tenant, and each tenant's limits.
//!
//! ```yaml
//! tenants:
//!   - name: team-a
//!     tokens: ["…"]                  # the file is a mounted Secret…
//!     token_env: [TEAM_A_TOKEN]      # …or name environment variables holding tokens
//!     ingest_bytes_per_second: 5000000   # optional: decoded request bytes, all signals
//!     ingest_burst_bytes: 20000000       # optional: default max(rate, request limit)
//!     retention: {logs: 7d, spans: 3d}   # optional: overrides --retention
//!     rules: /etc/porthole/rules/team-a  # optional: alert rules over this tenant's data
//! ```
//!
//! A token is looked up by comparing it with every configured token in constant time, so
//! the timing says nothing about which tenant's token was close; tokens are never logged.

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::HeaderMap;
use porthole_storage::{Signal, Tenant};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::IngestError;
use crate::auth::{BearerAuth, presented_token};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tenants: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default)]
    tokens: Vec<String>,
    #[serde(default)]
    token_env: Vec<String>,
    ingest_bytes_per_second: Option<u32>,
    ingest_burst_bytes: Option<u32>,
    #[serde(default, with = "retention")]
    retention: BTreeMap<String, Duration>,
    rules: Option<PathBuf>,
}

mod retention {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Age(#[serde(with = "humantime_serde")] Duration);
        let ages = BTreeMap::<String, Age>::deserialize(d)?;
        Ok(ages.into_iter().map(|(k, Age(v))| (k, v)).collect())
    }
}

/// One tenant as configured.
pub struct TenantConfig {
    pub tenant: Tenant,
    tokens: Vec<BearerAuth>,
    limiter: Option<(DefaultDirectRateLimiter, u32)>,
    /// Per-table ages that override `--retention` for this tenant.
    pub retention: BTreeMap<Signal, Duration>,
    /// Alert rules evaluated over this tenant's tables.
    pub rules: Option<PathBuf>,
}

impl TenantConfig {
    /// An `authorization` header value with one of the tenant's tokens, for this node's
    /// own calls as the tenant to other nodes (live tail). Never log it.
    pub fn authorization(&self) -> String {
        let token = self.tokens[0].expected();
        format!("Bearer {}", String::from_utf8_lossy(token))
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabel {
    tenant: String,
    signal: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabel {
    tenant: String,
    reason: String,
}

/// Every tenant, looked up by token.
pub struct Tenants {
    tenants: Vec<TenantConfig>,
    records_accepted: Family<TenantLabel, Counter>,
    bytes_accepted: Family<TenantLabel, Counter>,
    requests_refused: Family<RefusedLabel, Counter>,
    unknown_tokens: Counter,
}

impl std::fmt::Debug for Tenants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.tenants.iter().map(|t| t.tenant.name()))
            .finish()
    }
}

/// Reads an environment variable (`std::env::var`, or a test's stand-in).
type Env<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// A tenant's tokens: those listed and those its `token_env` variables hold, each a
/// valid bearer token that no other tenant (`seen`) has.
fn tokens_of(
    name: &str,
    entry: &Entry,
    env: &Env<'_>,
    seen: &mut HashSet<String>,
) -> Result<Vec<BearerAuth>, String> {
    let mut raw = entry.tokens.clone();
    for var in &entry.token_env {
        let value = env(var)
            .ok_or_else(|| format!("tenant {name:?}: the environment variable {var} is not set"))?;
        raw.push(value.trim().to_string());
    }
    if raw.is_empty() {
        return Err(format!(
            "tenant {name:?} has no token; give `tokens` or `token_env`"
        ));
    }
    let mut tokens = Vec::new();
    for (i, token) in raw.into_iter().enumerate() {
        let auth = BearerAuth::new(&token)
            .map_err(|why| format!("tenant {name:?}, token {}: {why}", i + 1))?;
        if !seen.insert(token) {
            return Err(format!(
                "tenant {name:?}, token {}: the same token is given twice; each \
                 token must name one tenant",
                i + 1
            ));
        }
        tokens.push(auth);
    }
    Ok(tokens)
}

impl Tenants {
    /// Reads the tenants file; `env` looks up `token_env` names. `max_request_bytes` is the
    /// smallest burst allowed, so one largest-allowed export can always pass.
    pub fn from_file(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
        max_request_bytes: usize,
    ) -> Result<Self, String> {
        Self::read(path, Some(&env), max_request_bytes)
    }

    pub fn parse(
        yaml: &str,
        env: impl Fn(&str) -> Option<String>,
        max_request_bytes: usize,
    ) -> Result<Self, String> {
        Self::parse_with(yaml, Some(&env), max_request_bytes)
    }

    /// The tenants file for commands that serve no requests (`porthole compact`): names,
    /// retention and rules, without reading `token_env` variables a maintenance job does
    /// not have. Its tenants have no tokens, so no request names any of them.
    pub fn from_file_without_tokens(path: &Path) -> Result<Self, String> {
        Self::read(path, None, usize::MAX)
    }

    fn read(path: &Path, env: Option<&Env<'_>>, max_request_bytes: usize) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the tenants file {}: {e}", path.display()))?;
        Self::parse_with(&text, env, max_request_bytes)
            .map_err(|why| format!("the tenants file {}: {why}", path.display()))
    }

    /// `env: None` reads no tokens at all.
    fn parse_with(
        yaml: &str,
        env: Option<&Env<'_>>,
        max_request_bytes: usize,
    ) -> Result<Self, String> {
        let file: File = serde_norway::from_str(yaml).map_err(|e| e.to_string())?;
        if file.tenants.is_empty() {
            return Err("no tenants; list at least one under `tenants:`".into());
        }
        let mut names = HashSet::new();
        let mut seen_tokens: HashSet<String> = HashSet::new();
        let mut tenants = Vec::new();
        for entry in file.tenants {
            let tenant = Tenant::new(&entry.name).map_err(|e| e.to_string())?;
            let name = tenant.name().to_string();
            if !names.insert(name.clone()) {
                return Err(format!("tenant {name:?} is listed twice"));
            }
            let tokens = match env {
                Some(env) => tokens_of(&name, &entry, env, &mut seen_tokens)?,
                None => Vec::new(),
            };
            let limiter = match entry.ingest_bytes_per_second {
                None => None,
                Some(rate) => {
                    let rate = NonZeroU32::new(rate).ok_or_else(|| {
                        format!("tenant {name:?}: ingest_bytes_per_second must be more than 0")
                    })?;
                    let floor = u32::try_from(max_request_bytes).unwrap_or(u32::MAX);
                    let burst = entry.ingest_burst_bytes.unwrap_or(rate.get()).max(floor);
                    let burst = NonZeroU32::new(burst).unwrap_or(rate);
                    let quota = Quota::per_second(rate).allow_burst(burst);
                    Some((RateLimiter::direct(quota), rate.get()))
                }
            };
            let mut retention = BTreeMap::new();
            for (table, age) in entry.retention {
                let signal = Signal::from_table_name(&table).ok_or_else(|| {
                        format!("tenant {name:?}: retention for {table:?}: the tables are logs, spans and metrics")
                    })?;
                if age.is_zero() {
                    return Err(format!(
                        "tenant {name:?}: a retention of zero for {table} would remove everything"
                    ));
                }
                retention.insert(signal, age);
            }
            tenants.push(TenantConfig {
                tenant,
                tokens,
                limiter,
                retention,
                rules: entry.rules,
            });
        }
        Ok(Self {
            tenants,
            records_accepted: Family::default(),
            bytes_accepted: Family::default(),
            requests_refused: Family::default(),
            unknown_tokens: Counter::default(),
        })
    }

    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("porthole_tenant");
        r.register(
            "records_accepted",
            "Records made durable and acked, per tenant",
            self.records_accepted.clone(),
        );
        r.register(
            "bytes_accepted",
            "Decoded request bytes of acked exports, per tenant",
            self.bytes_accepted.clone(),
        );
        r.register(
            "requests_refused",
            "Exports refused per tenant, by reason (rate_limited, …)",
            self.requests_refused.clone(),
        );
        r.register(
            "unknown_tokens",
            "Requests whose bearer token belongs to no tenant",
            self.unknown_tokens.clone(),
        );
    }

    pub fn configs(&self) -> &[TenantConfig] {
        &self.tenants
    }

    pub fn names(&self) -> Vec<Tenant> {
        self.tenants.iter().map(|t| t.tenant.clone()).collect()
    }

    /// The tenant whose token the request carries. Every token is compared, in constant
    /// time, whatever matched.
    pub fn tenant_of(&self, headers: &HeaderMap) -> Option<&TenantConfig> {
        let Some(presented) = presented_token(headers) else {
            self.unknown_tokens.inc();
            return None;
        };
        let mut found = None;
        for config in &self.tenants {
            let mut matched = subtle::Choice::from(0);
            for token in &config.tokens {
                matched |= presented.ct_eq(token.expected());
            }
            if bool::from(matched) {
                found = Some(config);
            }
        }
        if found.is_none() {
            self.unknown_tokens.inc();
        }
        found
    }

    /// The configuration of `tenant`.
    pub fn config(&self, tenant: &Tenant) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| &t.tenant == tenant)
    }

    /// Takes `bytes` from the tenant's ingest rate, or refuses the export (retryable).
    pub fn charge(&self, tenant: &Tenant, bytes: usize) -> Result<(), IngestError> {
        let Some((limiter, rate)) = self.config(tenant).and_then(|c| c.limiter.as_ref()) else {
            return Ok(());
        };
        let n = NonZeroU32::new(u32::try_from(bytes.max(1)).unwrap_or(u32::MAX))
            .unwrap_or(NonZeroU32::MIN);
        match limiter.check_n(n) {
            Ok(Ok(())) => Ok(()),
            // Over the rate now, or larger than the burst ever allows: either way, slow down.
            Ok(Err(_)) | Err(_) => Err(IngestError::RateLimited {
                tenant: tenant.name().to_string(),
                bytes_per_second: *rate,
            }),
        }
    }

    pub fn accepted(&self, tenant: &Tenant, signal: Signal, records: u64, bytes: u64) {
        let label = TenantLabel {
            tenant: tenant.name().into(),
            signal: signal.table_name().into(),
        };
        self.records_accepted.get_or_create(&label).inc_by(records);
        self.bytes_accepted.get_or_create(&label).inc_by(bytes);
    }

    pub fn refused(&self, tenant: &Tenant, reason: &'static str) {
        let label = RefusedLabel {
            tenant: tenant.name().into(),
            reason: reason.into(),
        };
        self.requests_refused.get_or_create(&label).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    const FILE: &str = r#"
tenants:
  - name: team-a
    tokens: [token-a1, token-a2]
    ingest_bytes_per_second: 1000
    ingest_burst_bytes: 3000
    retention: {logs: 7d}
  - name: team-b
    token_env: [TEAM_B_TOKEN]
"#;

    fn env(name: &str) -> Option<String> {
        (name == "TEAM_B_TOKEN").then(|| "token-b\n".to_string())
    }

    #[test]
    fn maintenance_reads_names_and_retention_without_any_token() {
        // TEAM_B_TOKEN is not set, which `serve` refuses; compaction needs no token.
        assert!(Tenants::parse(FILE, |_| None, 100).is_err());
        let tenants = Tenants::parse_with(FILE, None, usize::MAX).unwrap();
        let names: Vec<String> = tenants.names().iter().map(|t| t.to_string()).collect();
        assert_eq!(names, ["team-a", "team-b"]);
        let a = tenants.config(&Tenant::new("team-a").unwrap()).unwrap();
        assert_eq!(
            a.retention.get(&Signal::Logs),
            Some(&Duration::from_secs(7 * 86_400))
        );
        // No token at all names a tenant.
        for token in ["token-a1", "token-b", ""] {
            assert!(tenants.tenant_of(&bearer(token)).is_none(), "{token}");
        }
        // The rest of the file is still checked.
        let bad = "tenants:\n  - name: a\n    token_env: [X]\n    retention: {logz: 1d}\n";
        let error = Tenants::parse_with(bad, None, usize::MAX).err().unwrap();
        assert!(error.contains("logz"), "{error}");
    }

    #[test]
    fn each_token_names_its_tenant_and_nothing_else_does() {
        let tenants = Tenants::parse(FILE, env, 100).unwrap();
        let name = |token: &str| tenants.tenant_of(&bearer(token)).map(|t| t.tenant.name());
        assert_eq!(name("token-a1"), Some("team-a"));
        assert_eq!(name("token-a2"), Some("team-a"));
        assert_eq!(name("token-b"), Some("team-b"));
        for wrong in ["token-a", "token-b2", "", "team-a"] {
            assert_eq!(name(wrong), None, "{wrong:?}");
        }
        assert!(tenants.tenant_of(&HeaderMap::new()).is_none());
        assert_eq!(tenants.unknown_tokens.get(), 5);
        assert_eq!(
            tenants.configs()[0].retention.get(&Signal::Logs),
            Some(&Duration::from_secs(7 * 86_400))
        );
        assert!(!format!("{tenants:?}").contains("token"));
    }

    #[test]
    fn the_rate_limit_refuses_beyond_the_burst_and_counts_per_tenant() {
        let tenants = Tenants::parse(FILE, env, 100).unwrap();
        let a = Tenant::new("team-a").unwrap();
        let b = Tenant::new("team-b").unwrap();
        tenants.charge(&a, 2_000).unwrap();
        let refused = tenants.charge(&a, 2_000).unwrap_err();
        assert!(refused.is_retryable(), "{refused}");
        assert!(refused.to_string().contains("team-a"), "{refused}");
        // team-b has no limit.
        for _ in 0..100 {
            tenants.charge(&b, 1_000_000).unwrap();
        }
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let cases = [
            ("tenants: []", "no tenants"),
            ("tenants: [{name: A, tokens: [x]}]", "tenant name"),
            ("tenants: [{name: a}]", "has no token"),
            (
                "tenants: [{name: a, tokens: [x]}, {name: a, tokens: [y]}]",
                "twice",
            ),
            (
                "tenants: [{name: a, tokens: [x]}, {name: b, tokens: [x]}]",
                "same token",
            ),
            ("tenants: [{name: a, token_env: [NOPE]}]", "NOPE is not set"),
            ("tenants: [{name: a, tokens: ['two words']}]", "printable"),
            (
                "tenants: [{name: a, tokens: [x], retention: {traces: 1d}}]",
                "logs, spans",
            ),
            (
                "tenants: [{name: a, tokens: [x], ingest_bytes_per_second: 0}]",
                "more than 0",
            ),
            (
                "tenants: [{name: a, tokens: [x], colour: red}]",
                "unknown field",
            ),
        ];
        for (yaml, expected) in cases {
            let err = Tenants::parse(yaml, |_| None, 100).unwrap_err();
            assert!(err.contains(expected), "{yaml}: {err}");
        }
    }
}
