//! Snapshots from real collectors: `POST /api/v1/snapshots` (and `porthole snapshot POD`)
//! returns the collector's real process list with secret-looking environment values
//! redacted, pulled over its own connection to ingest; it is stored and audit-logged; on
//! split tiers the query node finds the pod's collector through the ingest nodes, and with
//! tenants only the pod's own tenant can ask.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::collector::write_config;
use crate::harness::{Collector, Porthole, binary, wait_for};

const SECRETS: [(&str, &str); 4] = [
    ("API_TOKEN", "tok-value-91f2"),
    ("DB_PASSWORD", "pw-value-3c7e"),
    ("SESSION_SECRET", "secret-value-55"),
    ("SIGNING_KEY", "key-value-a0b1"),
];

async fn collector(dir: &Path, endpoint: &str, pod: &str, extra: &str) -> Collector {
    std::fs::create_dir_all(dir).unwrap();
    let config = write_config(dir, endpoint, extra);
    let mut env = vec![
        ("POD_NAMESPACE", "shop"),
        ("POD_NAME", pod),
        ("SERVICE_NAME", "snapper"),
        ("APP_MODE", "visible-mode"),
    ];
    env.extend(SECRETS);
    Collector::start(&config, &env).await
}

async fn ask(porthole: &Porthole, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(porthole.url("/api/v1/snapshots"))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn process(record: &Value, pid: u32) -> &Value {
    record["snapshot"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("pid {pid} in the snapshot"))
}

fn assert_no_secret_values(text: &str) {
    for (_, value) in SECRETS {
        assert!(!text.contains(value), "{value} leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_is_the_collectors_real_process_list_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    // A snapshot stored two hours ago, past a retention of one hour (the default 30 days
    // would keep it): taking the next one deletes it.
    let stored_dir = dir.path().join("data/_porthole/snapshots");
    std::fs::create_dir_all(&stored_dir).unwrap();
    let now_micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let two_hours_ago = now_micros - 2 * 3_600_000_000;
    let old = stored_dir.join(format!("{two_hours_ago:016}-{:032x}.json", 7));
    std::fs::write(&old, "{}").unwrap();
    let porthole = Porthole::start(
        "serve",
        &dir.path().join("data"),
        &["--snapshot-retention", "1h"],
        &[],
    )
    .await;
    assert!(old.exists());
    let collector = collector(
        &dir.path().join("pod"),
        &porthole.grpc_endpoint(),
        "snap-1",
        "",
    )
    .await;

    let (status, record) = ask(
        &porthole,
        None,
        json!({"namespace": "shop", "pod": "snap-1", "requested_by": "tester"}),
    )
    .await;
    assert_eq!(status, 200, "{record}");
    let me = process(&record, collector.pid());
    assert_eq!(me["command"], "porthole-collec", "{me}"); // comm is cut at 15 bytes
    assert!(me["cmdline"].as_str().unwrap().contains("--config"), "{me}");
    assert!(me["threads"].as_i64().unwrap() >= 1);
    assert!(me["rss_bytes"].as_u64().unwrap() > 1_000_000, "{me}");
    assert!(me["open_fds"].as_u64().unwrap() > 3, "{me}");
    for (name, _) in SECRETS {
        assert_eq!(me["env"][name], "[redacted]", "{name}");
    }
    assert_eq!(me["env"]["APP_MODE"], "visible-mode");
    let listening = record["snapshot"]["sockets"]["listening"].to_string();
    assert!(
        listening.contains(&collector.http.to_string()),
        "the collector's own port in {listening}"
    );
    assert_eq!(record["requested_by"], "tester");
    assert_no_secret_values(&record.to_string());
    assert!(
        !old.exists(),
        "the snapshot past --snapshot-retention is deleted"
    );
    assert_eq!(
        porthole
            .counter("porthole_snapshots_pruned_total", &[])
            .await,
        1.0
    );

    // Stored: listed and fetched back; the ask is in the server's audit log.
    let id = record["id"].as_str().unwrap();
    let listed: Value = reqwest::get(porthole.url("/api/v1/snapshots?pod=snap-1&limit=5"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["snapshots"][0]["id"], id, "{listed}");
    assert_eq!(listed["snapshots"][0]["requested_by"], "tester");
    let stored: Value = reqwest::get(porthole.url(&format!("/api/v1/snapshots/{id}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["snapshot"], record["snapshot"]);
    // The output is read from the process's pipe by a thread: give it a moment.
    let audit = wait_for("the audit line", Duration::from_secs(5), || async {
        let audit = porthole.output();
        let line = audit.lines().find(|l| l.contains("snapshot taken"))?;
        (line.contains("requested_by") && line.contains("\"tester\"")).then_some(audit)
    })
    .await;
    assert_no_secret_values(&audit);
    assert_no_secret_values(&collector.output());

    // The CLI prints the table.
    let output = Command::new(binary("porthole"))
        .args(["snapshot", "snap-1", "-n", "shop", "--server"])
        .arg(format!("http://{}", porthole.http))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(printed.contains("COMMAND"), "{printed}");
    assert!(printed.contains(&collector.pid().to_string()), "{printed}");
    assert_no_secret_values(&printed);

    // A pod nobody runs, or a bad request, says so.
    let (status, body) = ask(
        &porthole,
        None,
        json!({"namespace": "shop", "pod": "nobody"}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = ask(&porthole, None, json!({"pod": ""})).await;
    assert_eq!(status, 400);
    // A name longer than Kubernetes allows is refused without being echoed back whole.
    let long = "p".repeat(100_000);
    for body in [
        json!({"namespace": "shop", "pod": long}),
        json!({"namespace": "n".repeat(64), "pod": "snap-1"}),
    ] {
        let (status, answer) = ask(&porthole, None, body).await;
        assert_eq!(status, 400, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("in Kubernetes") && message.len() < 200,
            "{message}"
        );
    }
    let missing = reqwest::get(porthole.url("/api/v1/snapshots/abc123"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_split_tiers_with_tenants_only_the_pods_tenant_reaches_its_collector() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants.yaml");
    std::fs::write(
        &tenants,
        "tenants:\n  - name: team-a\n    tokens: [snap-token-a]\n  - name: team-b\n    tokens: [snap-token-b]\n",
    )
    .unwrap();
    let tenants = tenants.to_str().unwrap();
    let ingest = Porthole::start("ingest", dir.path(), &["--tenants", tenants], &[]).await;
    let nodes = ingest.grpc_endpoint();
    let query = Porthole::start(
        "query",
        dir.path(),
        &["--tenants", tenants, "--ingest-nodes", &nodes],
        &[],
    )
    .await;
    let pod_dir = dir.path().join("pod");
    std::fs::create_dir_all(&pod_dir).unwrap();
    let token = pod_dir.join("token");
    std::fs::write(&token, "snap-token-a\n").unwrap();
    let collector = collector(
        &pod_dir,
        &ingest.grpc_endpoint(),
        "snap-2",
        &format!("token_file: {}\n", token.display()),
    )
    .await;
    let body = json!({"namespace": "shop", "pod": "snap-2"});
    let (status, record) = ask(&query, Some("snap-token-a"), body.clone()).await;
    assert_eq!(status, 200, "{record}");
    process(&record, collector.pid());
    assert_eq!(record["tenant"], "team-a");
    assert_no_secret_values(&record.to_string());
    let (status, other) = ask(&query, Some("snap-token-b"), body.clone()).await;
    assert_eq!(status, 404, "team-b must not reach team-a's pod: {other}");
    let (status, _) = ask(&query, None, body).await;
    assert_eq!(status, 401);
}
