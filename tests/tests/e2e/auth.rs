//! `--auth-token-file`: without the token nothing gets in (OTLP on both protocols, the API,
//! /metrics) and with it everything works; health probes stay open; the token is never
//! printed.

use std::process::Command;
use std::time::Duration;

use porthole_proto::logs_service::logs_service_client::LogsServiceClient;
use prost::Message;

use crate::harness::{Porthole, binary, wait_for};
use crate::load::export_request;

const TOKEN: &str = "tok-3f9a1c77e2b84d10";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_guards_otlp_the_api_and_metrics_but_not_health_probes() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let porthole = Porthole::start(
        "serve",
        &dir.path().join("data"),
        &["--auth-token-file", token_file.to_str().unwrap()],
        &[],
    )
    .await;
    let http = reqwest::Client::new();
    let status = |response: reqwest::Response| response.status().as_u16();

    for open in ["/healthz", "/readyz"] {
        let response = http.get(porthole.url(open)).send().await.unwrap();
        assert_eq!(status(response), 200, "{open} must stay open to probes");
    }
    for guarded in ["/api/v1/logs", "/metrics", "/api/v1/metrics/query?query=1"] {
        let bare = http.get(porthole.url(guarded)).send().await.unwrap();
        assert_eq!(bare.headers()["www-authenticate"], "Bearer");
        assert_eq!(status(bare), 401, "{guarded} without a token");
        let wrong = http
            .get(porthole.url(guarded))
            .bearer_auth("tok-3f9a1c77e2b84d11")
            .send()
            .await
            .unwrap();
        assert_eq!(status(wrong), 401, "{guarded} with a wrong token");
        let right = http
            .get(porthole.url(guarded))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(status(right), 200, "{guarded} with the token");
    }

    // OTLP/gRPC: UNAUTHENTICATED without the token, accepted with it.
    let mut grpc = LogsServiceClient::connect(porthole.grpc_endpoint())
        .await
        .unwrap();
    let refused = grpc
        .export(export_request(&["unauthorised line".to_string()]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut request = tonic::Request::new(export_request(&["grpc line with token".to_string()]));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    grpc.export(request).await.unwrap();

    // Prometheus remote_write, on the API port and the OTLP/HTTP port: 401 without the
    // token, 204 with it (an empty, metadata-only request).
    let empty = snap::raw::Encoder::new().compress_vec(&[]).unwrap();
    for url in [
        porthole.url("/api/v1/write"),
        porthole.otlp_http_url("/api/v1/write"),
    ] {
        let write = |token: Option<&str>| {
            let mut request = http
                .post(&url)
                .header("content-encoding", "snappy")
                .body(empty.clone());
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };
        assert_eq!(
            status(write(None).await.unwrap()),
            401,
            "{url} without a token"
        );
        assert_eq!(
            status(write(Some(TOKEN)).await.unwrap()),
            204,
            "{url} with the token"
        );
    }

    // OTLP/HTTP: 401 without the token, 200 with it.
    let body = export_request(&["http line with token".to_string()]).encode_to_vec();
    let post = |token: Option<&str>| {
        let mut request = http
            .post(porthole.otlp_http_url("/v1/logs"))
            .header("content-type", "application/x-protobuf")
            .body(body.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(status(post(None).await.unwrap()), 401);
    assert_eq!(status(post(Some(TOKEN)).await.unwrap()), 200);

    // The accepted lines are there for a caller with the token, through the CLI too.
    let server = format!("http://{}", porthole.http);
    let cli = |token: Option<&str>| {
        let mut command = Command::new(binary("porthole"));
        command.args([
            "logs",
            "with AND token",
            "--server",
            &server,
            "--output",
            "json",
        ]);
        if let Some(token) = token {
            command.args(["--token", token]);
        }
        command.output().unwrap()
    };
    let denied = cli(None);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    wait_for("both lines searchable", Duration::from_secs(20), || {
        let out = cli(Some(TOKEN));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let found = out.status.success()
            && text.contains("grpc line with token")
            && text.contains("http line with token");
        async move { found.then_some(()) }
    })
    .await;

    let rejected = http
        .get(porthole.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        rejected
            .lines()
            .any(|l| l.contains("unauthenticated") && !l.starts_with('#')),
        "refused exports are counted:\n{rejected}"
    );
    assert!(
        !porthole.output().contains(TOKEN),
        "the token must never be logged"
    );
}
