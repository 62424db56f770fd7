//! The web UI is served by `porthole` itself: the app built from web/ into the binary at
//! `/`, its views (`/logs`, `/traces/<id>`, …) answered with index.html so links work, its
//! hashed assets with their types, and API paths untouched. The UI's own behaviour is
//! tested in a real browser by web/e2e (tests/run.sh runs both).

use crate::harness::Porthole;

async fn get(porthole: &Porthole, path: &str) -> (u16, String, String) {
    let response = reqwest::get(porthole.url(path)).await.unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, response.text().await.unwrap())
}

/// The asset paths index.html refers to (`/assets/…`).
fn assets_of(index: &str) -> Vec<String> {
    index
        .split(['"', '\''])
        .filter(|part| part.starts_with("/assets/"))
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_built_in_ui_is_served_at_the_root_and_for_every_view() {
    let dir = tempfile::tempdir().unwrap();
    let porthole = Porthole::start("serve", &dir.path().join("data"), &[], &[]).await;
    let (status, kind, index) = get(&porthole, "/").await;
    assert_eq!(status, 200, "{index}");
    assert!(kind.starts_with("text/html"), "{kind}");
    let assets = assets_of(&index);
    assert!(
        assets.iter().any(|a| a.ends_with(".js")),
        "index.html loads the app's script: {index}"
    );
    for asset in &assets {
        let (status, kind, _) = get(&porthole, asset).await;
        assert_eq!(status, 200, "{asset}");
        let expected = if asset.ends_with(".js") {
            "text/javascript"
        } else if asset.ends_with(".css") {
            "text/css"
        } else {
            ""
        };
        assert!(kind.starts_with(expected), "{asset}: {kind}");
    }
    for view in [
        "/logs?q=error&since=15m",
        "/traces/0af7651916cd43dd8448eb211c80319c",
        "/graph?q=up",
        "/alerts",
    ] {
        let (status, _, body) = get(&porthole, view).await;
        assert_eq!((status, body.as_str()), (200, index.as_str()), "{view}");
    }
    // The server's own paths stay its own: /metrics is the Prometheus exposition.
    let (status, kind, _) = get(&porthole, "/metrics").await;
    assert_eq!(status, 200);
    assert!(kind.contains("openmetrics"), "{kind}");
    // Missing assets and unknown API paths are 404s, not the app.
    let (status, _, _) = get(&porthole, "/assets/missing-1234.js").await;
    assert_eq!(status, 404);
    let (status, kind, body) = get(&porthole, "/api/v1/no-such-thing").await;
    assert_eq!(status, 404);
    assert!(kind.starts_with("application/json"), "{kind}: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn web_dir_serves_a_directory_instead_and_must_hold_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("assets")).unwrap();
    std::fs::write(
        site.join("index.html"),
        "<script src=\"/assets/dev.js\"></script>",
    )
    .unwrap();
    std::fs::write(site.join("assets/dev.js"), "console.log(1)").unwrap();
    let porthole = Porthole::start(
        "serve",
        &dir.path().join("data"),
        &["--web-dir", site.to_str().unwrap()],
        &[],
    )
    .await;
    let (_, _, index) = get(&porthole, "/traces").await;
    assert_eq!(index, "<script src=\"/assets/dev.js\"></script>");
    assert_eq!(get(&porthole, "/assets/dev.js").await.2, "console.log(1)");
    assert_eq!(get(&porthole, "/../Cargo.toml").await.0, 404);

    // A directory without index.html is refused at start, saying why.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let stderr = Porthole::refused(
        "serve",
        &dir.path().join("data2"),
        &["--web-dir", empty.to_str().unwrap()],
    );
    assert!(stderr.contains("no index.html"), "{stderr}");
}
