//! TLS on every listener and mutual TLS for collector → ingest: certificates made by
//! `openssl` for the test (a CA, a server certificate for 127.0.0.1/localhost, a client
//! certificate), a real `porthole serve` and a real `porthole-collector`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Collector, Porthole, wait_for};

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed to make the test's certificates (Debian package openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// ca.pem, server.pem/server.key (127.0.0.1 and localhost), client.pem/client.key (signed
/// by the CA) and stranger.pem/stranger.key (self-signed, another CA).
fn certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=porthole test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ];
    ca.extend(ec);
    openssl(dir, &ca);
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        let mut req = vec!["req", "-new", "-subj", "/CN=porthole-test", "-keyout"];
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let pem = format!("{name}.pem");
        let extfile = format!("{name}.ext");
        std::fs::write(dir.join(&extfile), ext).unwrap();
        req.extend([key.as_str(), "-out", csr.as_str()]);
        req.extend(ec);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &extfile,
                "-out",
                &pem,
            ],
        );
    }
    let mut stranger = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=stranger",
        "-keyout",
        "stranger.key",
        "-out",
        "stranger.pem",
    ];
    stranger.extend(ec);
    openssl(dir, &stranger);
}

/// `porthole <command>` over `dir`/data with the test's certificates (made in `dir`/certs):
/// TLS on every listener, client certificates required on the OTLP ports.
fn spawn_with_mutual_tls(command: &str, dir: &Path, batch_window: &str) -> (Porthole, PathBuf) {
    let certs = dir.join("certs");
    std::fs::create_dir(&certs).unwrap();
    certificates(&certs);
    let path = |name: &str| certs.join(name).display().to_string();
    let porthole = Porthole::spawn(
        command,
        &dir.join("data"),
        &[
            "--tls-cert",
            &path("server.pem"),
            "--tls-key",
            &path("server.key"),
            "--tls-client-ca",
            &path("ca.pem"),
            "--batch-window",
            batch_window,
        ],
        &[],
    );
    (porthole, certs)
}

fn client(dir: &Path, identity: Option<&str>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10));
    if let Some(name) = identity {
        let mut pem = std::fs::read(dir.join(format!("{name}.pem"))).unwrap();
        pem.extend(std::fs::read(dir.join(format!("{name}.key"))).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

fn log_export(body: &str) -> Value {
    serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "tls-e2e"}}]},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": "1700000000000000000", "body": {"stringValue": body}}]}]
    }]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_speaks_tls_and_the_otlp_ports_demand_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (porthole, certs) = spawn_with_mutual_tls("serve", dir.path(), "100ms");
    let path = |name: &str| certs.join(name).display().to_string();
    let api = |p: &str| format!("https://{}{p}", porthole.http);
    let otlp_http = format!("https://{}/v1/logs", porthole.otlp_http);
    let browser = client(&certs, None);
    wait_for("/readyz over TLS", Duration::from_secs(30), || async {
        let response = browser.get(api("/readyz")).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;

    // Plain HTTP is refused on both HTTP ports.
    let plain = reqwest::Client::new();
    assert!(
        plain
            .get(format!("http://{}/readyz", porthole.http))
            .send()
            .await
            .is_err()
    );
    assert!(
        plain
            .post(format!("http://{}/v1/logs", porthole.otlp_http))
            .json(&log_export("x"))
            .send()
            .await
            .is_err()
    );
    // OTLP/HTTP over TLS: without a client certificate, or with one from another CA, the
    // handshake fails; with the CA's client certificate the export is accepted.
    assert!(
        browser
            .post(&otlp_http)
            .json(&log_export("no cert"))
            .send()
            .await
            .is_err()
    );
    let stranger = client(&certs, Some("stranger"));
    assert!(
        stranger
            .post(&otlp_http)
            .json(&log_export("stranger"))
            .send()
            .await
            .is_err()
    );
    let collector_like = client(&certs, Some("client"));
    let response = collector_like
        .post(&otlp_http)
        .json(&log_export("mutual tls over http"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The collector ships over gRPC with TLS and its client certificate.
    let log = dir.path().join("app.log");
    std::fs::write(
        &log,
        "first line over mutual tls\nsecond line over mutual tls\n",
    )
    .unwrap();
    let config = crate::collector::write_config(
        dir.path(),
        &format!("https://127.0.0.1:{}", porthole.otlp_grpc.port()),
        &format!(
            "files: [{{include: ['{}']}}]\nresource: {{service: tls-collector}}\ntls: {{ca_file: {}, cert_file: {}, key_file: {}}}\n",
            log.display(),
            path("ca.pem"),
            path("client.pem"),
            path("client.key")
        ),
    );
    let collector = Collector::start(&config, &[]).await;
    let found = wait_for(
        "the collector's lines, via the API over TLS",
        Duration::from_secs(30),
        || async {
            let body: Value = browser
                .get(api("/api/v1/logs?q=%22mutual%20tls%22&start=0"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let records = body["rows"].as_array()?.clone();
            (records.len() == 3).then_some(records)
        },
    )
    .await;
    let services: Vec<&str> = found.iter().filter_map(|r| r["service"].as_str()).collect();
    assert_eq!(
        services.iter().filter(|s| **s == "tls-collector").count(),
        2,
        "{found:?}"
    );
    assert_eq!(
        services.iter().filter(|s| **s == "tls-e2e").count(),
        1,
        "{found:?}"
    );
    drop(collector);

    // A collector without a client certificate is refused and delivers nothing.
    let log2 = dir.path().join("other.log");
    std::fs::write(&log2, "refused line over mutual tls\n").unwrap();
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let config = crate::collector::write_config(
        &other,
        &format!("https://127.0.0.1:{}", porthole.otlp_grpc.port()),
        &format!(
            "files: [{{include: ['{}']}}]\nresource: {{service: tls-anonymous}}\ntls: {{ca_file: {}}}\n",
            log2.display(),
            path("ca.pem"),
        ),
    );
    let anonymous = Collector::start(&config, &[]).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        anonymous
            .metric("porthole_collector_records_shipped_total", "logs")
            .await,
        0.0
    );
    let body: Value = browser
        .get(api("/api/v1/logs?q=refused&start=0"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["rows"].as_array().unwrap().len(), 0, "{body}");

    // The CLI reaches the TLS API when told which CA to trust, and says why it cannot
    // when not.
    let cli = |extra: &[&str]| {
        Command::new(crate::harness::binary("porthole"))
            .args([
                "logs",
                "\"mutual tls\"",
                "--since",
                "1h",
                "--output",
                "json",
                "--server",
            ])
            .arg(format!("https://127.0.0.1:{}", porthole.http.port()))
            .args(extra)
            .env_remove("PORTHOLE_CA_FILE")
            .output()
            .unwrap()
    };
    let trusted = cli(&["--ca-file", &path("ca.pem")]);
    let stdout = String::from_utf8_lossy(&trusted.stdout);
    assert!(
        trusted.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(stdout.contains("first line over mutual tls"), "{stdout}");
    let untrusted = cli(&[]);
    assert!(!untrusted.status.success());
    let stderr = String::from_utf8_lossy(&untrusted.stderr).to_lowercase();
    assert!(
        stderr.contains("certificate") || stderr.contains("tls"),
        "{stderr}"
    );
    drop(porthole);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_certificate_file_is_refused_at_start_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let bogus = bogus.to_str().unwrap();
    let stderr = Porthole::refused(
        "serve",
        &dir.path().join("data"),
        &["--tls-cert", bogus, "--tls-key", bogus],
    );
    assert!(stderr.contains("--tls-cert"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_query_node_tails_ingest_nodes_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ingest, certs) = spawn_with_mutual_tls("ingest", dir.path(), "50ms");
    let path = |name: &str| certs.join(name).display().to_string();
    let nodes = format!("https://127.0.0.1:{}", ingest.otlp_grpc.port());
    let data = dir.path().join("data");
    let (ca, cert, key) = (path("ca.pem"), path("client.pem"), path("client.key"));
    let query = Porthole::start(
        "query",
        &data,
        &[
            "--ingest-nodes",
            &nodes,
            "--ingest-ca-file",
            &ca,
            "--ingest-client-cert",
            &cert,
            "--ingest-client-key",
            &key,
        ],
        &[],
    )
    .await;
    let subscribe = |q: &Porthole| {
        reqwest::Client::new()
            .get(q.url("/api/v1/logs/tail?q=tailtls"))
            .send()
    };
    let mut response = subscribe(&query).await.unwrap();
    assert_eq!(response.status(), 200);
    // The export itself goes over OTLP/HTTP with the client certificate.
    let sender = client(&certs, Some("client"));
    let otlp_http = format!("https://{}/v1/logs", ingest.otlp_http);
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            // Sent until the subscription (set up asynchronously) delivers it.
            let sent = sender
                .post(&otlp_http)
                .json(&log_export("tailtls over mutual tls"))
                .send()
                .await
                .unwrap();
            assert_eq!(sent.status(), 200);
            if let Ok(Ok(Some(chunk))) =
                tokio::time::timeout(Duration::from_millis(500), response.chunk()).await
            {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if seen.contains("tailtls over mutual tls") {
                    return;
                }
            }
        }
    })
    .await;
    assert!(found.is_ok(), "no tailed record over TLS: {seen}");

    // Without a client certificate the ingest node refuses the subscription.
    let anonymous = Porthole::start(
        "query",
        &data,
        &["--ingest-nodes", &nodes, "--ingest-ca-file", &ca],
        &[],
    )
    .await;
    let refused = subscribe(&anonymous).await.unwrap();
    assert_eq!(refused.status(), 503, "{}", refused.text().await.unwrap());
}
