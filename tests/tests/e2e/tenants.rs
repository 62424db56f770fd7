//! `--tenants`: each tenant's token reaches only its own tables, through every endpoint
//! (search, histogram, traces, SQL, PromQL, versions, rules, live tail); the Python SDK
//! exports as a tenant with its token; per-tenant rate limits refuse with a retryable
//! status; per-tenant retention removes only that tenant's old days; /metrics counts per
//! tenant and is the operator's alone.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use porthole_proto::logs_service::ExportLogsServiceRequest;
use porthole_proto::logs_service::logs_service_client::LogsServiceClient;
use prost::Message;
use serde_json::{Value, json};

use crate::harness::{Porthole, binary, run_python};
use crate::load::export_request;
use crate::tail::next_event;

const TOKEN_A: &str = "tok-a-6c1f0e9d";
const TOKEN_A2: &str = "tok-a-second-77";
const TOKEN_B: &str = "tok-b-90ab13f2";
const TOKEN_C: &str = "tok-c-limited-1";
const OPERATOR: &str = "tok-operator-55";

/// A tenants file: team-a (two tokens, logs kept 7 days, a rule), team-b (token from the
/// environment), team-c (rate-limited to 1000 bytes/s, burst 64 KiB).
fn write_config(dir: &Path) -> (String, String) {
    let rules = dir.join("rules-a");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("a.yml"),
        "groups:\n  - name: team-a\n    rules:\n      - alert: TeamAErrors\n        logs: 'secret'\n        window: 1m\n        condition: count > 1000\n",
    )
    .unwrap();
    let file = dir.join("tenants.yaml");
    std::fs::write(
        &file,
        format!(
            "tenants:\n\
             \x20 - name: team-a\n    tokens: [{TOKEN_A}, {TOKEN_A2}]\n    retention: {{logs: 7d}}\n    rules: {}\n\
             \x20 - name: team-b\n    token_env: [TEAM_B_TOKEN]\n\
             \x20 - name: team-c\n    tokens: [{TOKEN_C}]\n    ingest_bytes_per_second: 1000\n    ingest_burst_bytes: 65536\n",
            rules.display()
        ),
    )
    .unwrap();
    let operator = dir.join("operator-token");
    std::fs::write(&operator, format!("{OPERATOR}\n")).unwrap();
    (
        file.to_str().unwrap().to_string(),
        operator.to_str().unwrap().to_string(),
    )
}

fn logs_for(service: &str, bodies: &[&str]) -> ExportLogsServiceRequest {
    let bodies: Vec<String> = bodies.iter().map(|b| b.to_string()).collect();
    let mut request = export_request(&bodies);
    let resource = request.resource_logs[0].resource.as_mut().unwrap();
    resource.attributes[0].value = Some(porthole_proto::common::AnyValue {
        value: Some(porthole_proto::common::any_value::Value::StringValue(
            service.into(),
        )),
    });
    request
}

async fn grpc_export(
    porthole: &Porthole,
    token: &str,
    request: ExportLogsServiceRequest,
) -> Result<(), tonic::Status> {
    let mut client = LogsServiceClient::connect(porthole.grpc_endpoint())
        .await
        .unwrap();
    let mut request = tonic::Request::new(request);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    client.export(request).await.map(|_| ())
}

async fn get(porthole: &Porthole, token: Option<&str>, path: &str) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(porthole.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn sql(porthole: &Porthole, token: &str, query: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(porthole.url("/api/v1/sql"))
        .bearer_auth(token)
        .json(&json!({ "sql": query }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn services(page: &Value) -> Vec<String> {
    let mut found: Vec<String> = page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["service"].as_str().unwrap().to_string())
        .collect();
    found.sort();
    found.dedup();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenants_token_reaches_only_its_own_data_through_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (tenants, operator) = write_config(dir.path());
    let data = dir.path().join("data");
    let porthole = Porthole::start(
        "serve",
        &data,
        &[
            "--tenants",
            &tenants,
            "--auth-token-file",
            &operator,
            "--batch-window",
            "50ms",
            "--max-request-bytes",
            "64KiB",
        ],
        &[("TEAM_B_TOKEN", TOKEN_B)],
    )
    .await;

    // The OpenTelemetry Python SDK exports as each tenant with its token (gRPC for A,
    // HTTP for B), and an independent Delta reader finds each tenant's records in its own
    // tables under tenants/NAME.
    for (token, protocol, endpoint, tenant, tag) in [
        (TOKEN_A, "grpc", porthole.grpc_endpoint(), "team-a", "ta"),
        (
            TOKEN_B,
            "http",
            format!("http://{}", porthole.otlp_http),
            "team-b",
            "tb",
        ),
    ] {
        let root = data.join("tenants").join(tenant);
        let args = [
            "--protocol",
            protocol,
            "--endpoint",
            &endpoint,
            "--table-root",
            root.to_str().unwrap(),
            "--tag",
            tag,
        ]
        .map(String::from);
        let header = format!("authorization=Bearer%20{token}");
        let out = run_python(
            "roundtrip.py",
            &args,
            &[("OTEL_EXPORTER_OTLP_HEADERS", header)],
        );
        assert!(out.contains("\"ok\": true"), "{tenant}: {out}");
    }
    // A second token of team-a writes to team-a too.
    grpc_export(
        &porthole,
        TOKEN_A2,
        logs_for("checkout-ta", &["second token line"]),
    )
    .await
    .unwrap();

    // Without a token, with a wrong one, or with the operator's, there is no tenant data.
    for token in [None, Some("tok-a-6c1f0e9e"), Some(OPERATOR)] {
        for path in [
            "/api/v1/logs",
            "/api/v1/traces",
            "/api/v1/rules",
            "/api/v1/metrics/query?query=up",
        ] {
            let (status, _) = get(&porthole, token, path).await;
            assert_eq!(status, 401, "{path} with {token:?}");
        }
        let refused = grpc_export(&porthole, token.unwrap_or(""), logs_for("x", &["x"]))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{token:?}");
    }

    let range = "start=now-1h&end=now%2B1m";
    for (token, own, other) in [
        (TOKEN_A, "checkout-ta", "checkout-tb"),
        (TOKEN_B, "checkout-tb", "checkout-ta"),
    ] {
        // Search and histogram.
        let (status, page) = get(
            &porthole,
            Some(token),
            &format!("/api/v1/logs?{range}&limit=1000"),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(services(&page), [own], "{token}: search");
        let (_, other_search) = get(
            &porthole,
            Some(token),
            &format!("/api/v1/logs?{range}&service={other}"),
        )
        .await;
        assert_eq!(
            other_search["rows"],
            json!([]),
            "{token}: naming the other service"
        );
        let (_, histogram) = get(
            &porthole,
            Some(token),
            &format!("/api/v1/logs/histogram?{range}&step=1h"),
        )
        .await;
        let counted: u64 = histogram["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum();
        let expected = if token == TOKEN_A { 21 } else { 20 };
        assert_eq!(counted, expected, "{token}: histogram {histogram}");

        // Traces: the list holds only its own, and the other's trace id is not found.
        let (_, traces) = get(&porthole, Some(token), &format!("/api/v1/traces?{range}")).await;
        let listed = traces["traces"].as_array().unwrap();
        assert_eq!(listed.len(), 1, "{token}: {traces}");
        let own_trace = listed[0]["trace_id"].as_str().unwrap().to_string();
        let other_token = if token == TOKEN_A { TOKEN_B } else { TOKEN_A };
        let (_, theirs) = get(
            &porthole,
            Some(other_token),
            &format!("/api/v1/traces?{range}"),
        )
        .await;
        let their_trace = theirs["traces"][0]["trace_id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(own_trace, their_trace);
        let (status, trace) = get(
            &porthole,
            Some(token),
            &format!("/api/v1/traces/{own_trace}"),
        )
        .await;
        assert_eq!(status, 200, "{trace}");
        let (status, _) = get(
            &porthole,
            Some(token),
            &format!("/api/v1/traces/{their_trace}"),
        )
        .await;
        assert_eq!(status, 404, "{token} must not see the other tenant's trace");

        // SQL: the tables are the tenant's own; another tenant's files cannot be named.
        let (status, counts) = sql(
            &porthole,
            token,
            "SELECT service, count(*) AS n FROM logs GROUP BY service",
        )
        .await;
        assert_eq!(status, 200, "{counts}");
        assert_eq!(
            counts["rows"],
            json!([{"service": own, "n": expected}]),
            "{token}"
        );
        let (_, spans) = sql(&porthole, token, "SELECT DISTINCT service FROM spans").await;
        assert_eq!(spans["rows"], json!([{"service": own}]), "{token}: spans");
        let other_tenant = if token == TOKEN_A { "team-b" } else { "team-a" };
        let other_table = data.join("tenants").join(other_tenant).join("logs");
        let parquet = std::fs::read_dir(&other_table)
            .unwrap()
            .flatten()
            .flat_map(|day| {
                std::fs::read_dir(day.path())
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .map(|f| f.path())
            .find(|p| p.extension().is_some_and(|e| e == "parquet"))
            .expect("the other tenant has a Parquet file");
        for sneaky in [
            format!("SELECT * FROM '{}'", parquet.display()),
            format!("SELECT * FROM '{}'", other_table.display()),
            format!("SELECT * FROM delta_scan('{}')", other_table.display()),
            "SELECT * FROM information_schema.tables WHERE table_schema <> 'information_schema'"
                .to_string(),
        ] {
            let (status, answer) = sql(&porthole, token, &sneaky).await;
            let leaked = answer.to_string().contains(other);
            assert!(!leaked, "{sneaky} leaked: {answer}");
            if !sneaky.contains("information_schema") {
                assert_eq!(status, 400, "{sneaky}: {answer}");
            }
        }

        // PromQL over the metrics the SDK sent: only its own series (tagged like its
        // service).
        let (_, prom) = get(
            &porthole,
            Some(token),
            "/api/v1/metrics/query?query=orders_total",
        )
        .await;
        let series = prom["data"]["result"].as_array().unwrap();
        assert_eq!(series.len(), 1, "{token}: {prom}");
        assert_eq!(
            format!("checkout-{}", series[0]["metric"]["tag"].as_str().unwrap()),
            own,
            "{token}: {prom}"
        );

        // Versions of the other tenant's service: nothing.
        let (_, versions) = get(
            &porthole,
            Some(token),
            &format!("/api/v1/versions?service={other}&{range}"),
        )
        .await;
        assert_eq!(versions["versions"], json!([]), "{token}: {versions}");
    }

    // Rules are per tenant: team-a's rule is team-a's alone.
    let (_, rules_a) = get(&porthole, Some(TOKEN_A), "/api/v1/rules").await;
    assert!(rules_a.to_string().contains("TeamAErrors"), "{rules_a}");
    let (_, rules_b) = get(&porthole, Some(TOKEN_B), "/api/v1/rules").await;
    assert!(!rules_b.to_string().contains("TeamAErrors"), "{rules_b}");

    // team-c is limited to 1000 bytes/s with a 64 KiB burst: a few 30 KB exports in a row
    // pass, then one is refused, retryable, on both protocols; team-a is not slowed.
    let big = "x".repeat(30_000);
    let mut limited = None;
    for _ in 0..4 {
        if let Err(status) = grpc_export(&porthole, TOKEN_C, logs_for("c", &[&big])).await {
            limited = Some(status);
            break;
        }
    }
    let limited = limited.expect("team-c's exports beyond its burst are refused");
    assert_eq!(
        limited.code(),
        tonic::Code::ResourceExhausted,
        "{limited:?}"
    );
    assert!(limited.message().contains("team-c"), "{limited:?}");
    use tonic_types::StatusExt;
    assert!(
        limited.get_details_retry_info().is_some(),
        "retryable: {limited:?}"
    );
    let body = logs_for("c", &[&big]).encode_to_vec();
    let response = reqwest::Client::new()
        .post(porthole.otlp_http_url("/v1/logs"))
        .bearer_auth(TOKEN_C)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    for _ in 0..4 {
        grpc_export(&porthole, TOKEN_A, logs_for("checkout-ta", &[&big]))
            .await
            .expect("team-a has no limit");
    }

    // Prometheus remote_write, on the API port and the OTLP/HTTP port: a tenant's token
    // writes (204 for a metadata-only request), no token or the operator's is refused.
    let empty = snap::raw::Encoder::new().compress_vec(&[]).unwrap();
    for url in [
        porthole.url("/api/v1/write"),
        porthole.otlp_http_url("/api/v1/write"),
    ] {
        for (token, expected) in [(Some(TOKEN_B), 204), (None, 401), (Some(OPERATOR), 401)] {
            let mut request = reqwest::Client::new()
                .post(&url)
                .header("content-encoding", "snappy")
                .body(empty.clone());
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let status = request.send().await.unwrap().status().as_u16();
            assert_eq!(status, expected, "{url} with {token:?}");
        }
    }

    // /metrics is the operator's: per-tenant counters, no tenant can read it.
    let (status, _) = get(&porthole, Some(TOKEN_A), "/metrics").await;
    assert_eq!(status, 401);
    let (status, metrics) = get(&porthole, Some(OPERATOR), "/metrics").await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap().to_string();
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(series))
            .unwrap_or_else(|| panic!("{series} in {metrics}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value("porthole_tenant_records_accepted_total{tenant=\"team-a\",signal=\"logs\"}"),
        25.0
    );
    assert_eq!(
        value("porthole_tenant_records_accepted_total{tenant=\"team-b\",signal=\"logs\"}"),
        20.0
    );
    assert!(
        value("porthole_tenant_requests_refused_total{tenant=\"team-c\",reason=\"rate_limited\"}")
            >= 2.0
    );
    assert!(!metrics.contains(TOKEN_A) && !porthole.output().contains(TOKEN_A));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_tail_on_a_query_node_carries_only_the_callers_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let (tenants, _) = write_config(dir.path());
    let env = [("TEAM_B_TOKEN", TOKEN_B)];
    let ingest = Porthole::start(
        "ingest",
        dir.path(),
        &["--tenants", &tenants, "--batch-window", "50ms"],
        &env,
    )
    .await;
    let nodes = ingest.grpc_endpoint();
    let query = Porthole::start(
        "query",
        dir.path(),
        &["--tenants", &tenants, "--ingest-nodes", &nodes],
        &env,
    )
    .await;
    let mut response = reqwest::Client::new()
        .get(query.url("/api/v1/logs/tail"))
        .query(&[("q", "tenanttail")])
        .bearer_auth(TOKEN_A)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Wait for the subscription to reach the ingest node: a keep-alive is not enough, so
    // send team-a lines until one arrives.
    let mut pending = String::new();
    let first = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            grpc_export(&ingest, TOKEN_A, logs_for("a", &["tenanttail warmup"]))
                .await
                .unwrap();
            if let Ok((_, event)) = tokio::time::timeout(
                Duration::from_millis(500),
                next_event(&mut response, &mut pending),
            )
            .await
            {
                break event;
            }
        }
    })
    .await
    .expect("team-a's tail delivers team-a's lines");
    assert_eq!(first["body"], "tenanttail warmup");
    grpc_export(&ingest, TOKEN_B, logs_for("b", &["tenanttail from team-b"]))
        .await
        .unwrap();
    grpc_export(&ingest, TOKEN_A, logs_for("a", &["tenanttail from team-a"]))
        .await
        .unwrap();
    loop {
        let (_, event) = next_event(&mut response, &mut pending).await;
        let body = event["body"].as_str().unwrap().to_string();
        assert_ne!(
            body, "tenanttail from team-b",
            "team-b's line reached team-a"
        );
        if body == "tenanttail from team-a" {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_per_tenant_removes_only_that_tenants_old_days() {
    let dir = tempfile::tempdir().unwrap();
    let (tenants, _) = write_config(dir.path());
    let data = dir.path().join("data");
    let env = [("TEAM_B_TOKEN", TOKEN_B)];
    let porthole = Porthole::start(
        "serve",
        &data,
        &["--tenants", &tenants, "--compaction-interval", "0s"],
        &env,
    )
    .await;
    let ten_days_ago = (std::time::SystemTime::now() - Duration::from_secs(10 * 86_400))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    for token in [TOKEN_A, TOKEN_B] {
        let mut old = logs_for("svc", &["agedline"]);
        old.resource_logs[0].scope_logs[0].log_records[0].time_unix_nano = ten_days_ago;
        grpc_export(&porthole, token, old).await.unwrap();
        grpc_export(&porthole, token, logs_for("svc", &["freshline"]))
            .await
            .unwrap();
    }
    // team-a keeps logs 7 days (its own setting); team-b keeps everything, and so would
    // team-a's spans: --retention names only metrics here.
    let output = Command::new(binary("porthole"))
        .args([
            "compact",
            "--vacuum-grace",
            "0s",
            "--retention",
            "metrics=1d",
        ])
        .arg("--data-dir")
        .arg(&data)
        .args(["--tenants", &tenants])
        // A maintenance job is given no tenant's token, and needs none.
        .env_remove("TEAM_B_TOKEN")
        .env("PORTHOLE_LOG", "warn,buoyant_kernel=off")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let reports: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expired = |tenant: &str, table: &str| {
        reports
            .iter()
            .find(|r| r["tenant"] == tenant && r["table"] == table)
            .unwrap_or_else(|| panic!("{tenant}/{table} in {reports:?}"))["expired_files"]
            .clone()
    };
    assert_eq!(expired("team-a", "logs"), json!(1));
    assert_eq!(expired("team-b", "logs"), json!(0));
    for (token, expected) in [
        (TOKEN_A, json!(["freshline"])),
        (TOKEN_B, json!(["agedline", "freshline"])),
    ] {
        let (_, page) = get(
            &porthole,
            Some(token),
            "/api/v1/logs?q=agedline%20OR%20freshline&start=now-30d",
        )
        .await;
        let mut bodies: Vec<&str> = page["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["body"].as_str().unwrap())
            .collect();
        bodies.sort();
        assert_eq!(json!(bodies), expected, "{token}");
    }
}

#[test]
fn a_bad_tenants_file_or_rules_beside_tenants_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.yaml");
    std::fs::write(&file, "tenants:\n  - name: Team A\n    tokens: [x]\n").unwrap();
    let stderr = Porthole::refused("serve", dir.path(), &["--tenants", file.to_str().unwrap()]);
    assert!(stderr.contains("tenant name"), "{stderr}");
    let (tenants, _) = write_config(dir.path());
    let stderr = Porthole::refused(
        "serve",
        dir.path(),
        &[
            "--tenants",
            &tenants,
            "--rules",
            dir.path().to_str().unwrap(),
        ],
    );
    assert!(stderr.contains("TEAM_B_TOKEN"), "{stderr}");
    std::fs::write(&file, "tenants:\n  - name: a\n    tokens: [x]\n").unwrap();
    let stderr = Porthole::refused(
        "serve",
        dir.path(),
        &[
            "--tenants",
            file.to_str().unwrap(),
            "--rules",
            dir.path().to_str().unwrap(),
        ],
    );
    assert!(stderr.contains("`rules:` in the tenants file"), "{stderr}");
}

/// Every tenant's rules engine shares the ALERTS and counter families of /metrics: the
/// same rule in two tenants must be two series, each labelled with its tenant, not one
/// series both overwrite (and one tenant's resolve would remove the other's). A rule's
/// own `tenant` label is kept as `exported_tenant`, as Prometheus does on a clash.
#[tokio::test]
async fn the_same_rule_in_two_tenants_is_two_alert_series() {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = String::new();
    for (tenant, token, extra) in [
        ("team-a", TOKEN_A, ""),
        ("team-b", TOKEN_B, "        labels: {tenant: spoofed}\n"),
    ] {
        let rules = dir.path().join(format!("rules-{tenant}"));
        std::fs::create_dir_all(&rules).unwrap();
        std::fs::write(
            rules.join("always.yml"),
            format!(
                "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Always\n        expr: vector(1)\n{extra}"
            ),
        )
        .unwrap();
        entries.push_str(&format!(
            "  - name: {tenant}\n    tokens: [{token}]\n    rules: {}\n",
            rules.display()
        ));
    }
    let tenants = dir.path().join("tenants.yaml");
    std::fs::write(&tenants, format!("tenants:\n{entries}")).unwrap();
    let operator = dir.path().join("operator-token");
    std::fs::write(&operator, OPERATOR).unwrap();
    let porthole = Porthole::start(
        "serve",
        &dir.path().join("data"),
        &[
            "--tenants",
            tenants.to_str().unwrap(),
            "--auth-token-file",
            operator.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let firing = crate::harness::wait_for(
        "both tenants' Always firing",
        Duration::from_secs(30),
        || async {
            let (_, metrics) = get(&porthole, Some(OPERATOR), "/metrics").await;
            let alerts: Vec<String> = metrics
                .as_str()?
                .lines()
                .filter(|l| {
                    l.starts_with("ALERTS{")
                        && l.contains("alertname=\"Always\"")
                        && l.contains("alertstate=\"firing\"")
                })
                .map(String::from)
                .collect();
            (alerts.len() == 2).then_some(alerts)
        },
    )
    .await;
    assert!(
        firing
            .iter()
            .any(|l| l.contains("tenant=\"team-a\"") && !l.contains("exported_tenant")),
        "{firing:?}"
    );
    assert!(
        firing
            .iter()
            .any(|l| l.contains(",tenant=\"team-b\"") && l.contains("exported_tenant=\"spoofed\"")),
        "{firing:?}"
    );
    for tenant in ["team-a", "team-b"] {
        let (_, metrics) = get(&porthole, Some(OPERATOR), "/metrics").await;
        assert!(
            metrics
                .as_str()
                .unwrap()
                .lines()
                .any(|l| l.starts_with("porthole_rule_evaluations_total{")
                    && l.contains(&format!("tenant=\"{tenant}\""))),
            "{tenant}: {metrics}"
        );
    }
}
