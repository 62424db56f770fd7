//! Inventory and config drift with real collectors, one per simulated pod: the inventory
//! lists exactly the running pods by service and version, with health from their logs;
//! a pod whose environment differs from its siblings', or whose watched file changes
//! while it runs, is flagged naming the variable or file; values never appear.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::collector::write_config;
use crate::harness::{Collector, Porthole, wait_for};

struct Pod {
    dir: PathBuf,
    collector: Collector,
}

async fn start_pod(root: &Path, porthole: &Porthole, name: &str, version: &str, mode: &str) -> Pod {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/app.yaml"), "listen: 8080\nretries: 3\n").unwrap();
    std::fs::write(dir.join("app.log"), "").unwrap();
    let config = write_config(
        &dir,
        &porthole.grpc_endpoint(),
        &format!(
            "files: [{{include: ['{dir}/app.log']}}]\n\
             inventory: {{interval: 2s, check_interval: 200ms, \
               watch_files: ['etc/*.yaml'], env: ['APP_*', 'DB_PASSWORD']}}\n",
            dir = dir.display()
        ),
    );
    let image = format!("registry.example/cart:{version}");
    let env = [
        ("SERVICE_NAME", "cart"),
        ("SERVICE_VERSION", version),
        ("POD_NAMESPACE", "shop"),
        ("POD_NAME", name),
        ("NODE_NAME", "node-a"),
        ("CONTAINER_NAME", "app"),
        ("CONTAINER_IMAGE", image.as_str()),
        ("APP_MODE", mode),
        ("DB_PASSWORD", "hunter2-not-for-eyes"),
    ];
    // Every pod has the file at the same path, as containers of one image do: `etc/…`
    // relative to the pod's own directory.
    let collector = Collector::start_in(&config, &env, Some(&dir)).await;
    Pod { dir, collector }
}

async fn inventory(porthole: &Porthole, query: &str) -> Value {
    reqwest::get(porthole.url(&format!("/api/v1/inventory?{query}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// (version, pod) of every listed pod, sorted.
fn listed(inventory: &Value) -> Vec<(String, String)> {
    let mut pods = Vec::new();
    for service in inventory["services"].as_array().unwrap() {
        assert_eq!(service["service"], "cart");
        for version in service["versions"].as_array().unwrap() {
            for pod in version["pods"].as_array().unwrap() {
                pods.push((
                    version["version"].as_str().unwrap().to_string(),
                    pod["pod"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    pods.sort();
    pods
}

fn pod<'a>(inventory: &'a Value, name: &str) -> &'a Value {
    inventory["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["versions"].as_array().unwrap())
        .flat_map(|v| v["pods"].as_array().unwrap())
        .find(|p| p["pod"] == name)
        .unwrap_or_else(|| panic!("{name} in {inventory}"))
}

fn drift(inventory: &Value, name: &str) -> Vec<(String, String, String)> {
    pod(inventory, name)["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap().to_string();
            (s("kind"), s("name"), s("reason"))
        })
        .collect()
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inventory_lists_the_running_pods_and_flags_drift_by_name() {
    let root = tempfile::tempdir().unwrap();
    let porthole = Porthole::start(
        "serve",
        &root.path().join("data"),
        &["--batch-window", "50ms"],
        &[],
    )
    .await;
    let mut pods = Vec::new();
    for (name, version, mode) in [
        ("cart-1", "v1", "fast"),
        ("cart-2", "v1", "fast"),
        ("cart-3", "v1", "slow"),
        ("cart-4", "v2", "fast"),
    ] {
        pods.push(start_pod(root.path(), &porthole, name, version, mode).await);
    }
    std::fs::write(
        pods[0].dir.join("app.log"),
        "ERROR payment failed\nERROR payment failed\nINFO ok\nERROR payment failed\n",
    )
    .unwrap();

    let all_four = owned(&[
        ("v1", "cart-1"),
        ("v1", "cart-2"),
        ("v1", "cart-3"),
        ("v2", "cart-4"),
    ]);
    let now = wait_for(
        "four pods and cart-1's logs",
        Duration::from_secs(30),
        || async {
            let now = inventory(&porthole, "").await;
            (listed(&now) == all_four && pod(&now, "cart-1")["logs"] == 4).then_some(now)
        },
    )
    .await;
    let one = pod(&now, "cart-1");
    assert_eq!(one["error_logs"], 3, "{one}");
    assert!(one["last_log"].is_string(), "{one}");
    assert_eq!(one["namespace"], "shop");
    assert_eq!(one["node"], "node-a");
    assert_eq!(one["containers"][0]["tag"], "v1", "{one}");
    assert_eq!(pod(&now, "cart-2")["error_logs"], 0);
    // cart-3's APP_MODE differs from the other v1 pods'; cart-4 (v2) is compared with no
    // one; nothing else drifts, and no value is ever shown.
    assert_eq!(
        drift(&now, "cart-3"),
        [("env".into(), "APP_MODE".into(), "differs".into())]
    );
    for clean in ["cart-1", "cart-2", "cart-4"] {
        assert_eq!(drift(&now, clean), [], "{clean}");
    }
    assert_eq!(now["drifted_pods"], 1);
    let text = now.to_string();
    for secret in ["hunter2", "fast", "slow", "listen: 8080"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }

    // A file changed inside a running "container" is drift, named, at once.
    let watched = pods[1].dir.join("etc/app.yaml");
    std::fs::write(&watched, "listen: 8080\nretries: 30\n").unwrap();
    let path = "etc/app.yaml".to_string();
    let changed = wait_for("cart-2's changed file", Duration::from_secs(20), || async {
        let now = inventory(&porthole, "").await;
        (!drift(&now, "cart-2").is_empty()).then_some(now)
    })
    .await;
    assert_eq!(
        drift(&changed, "cart-2"),
        [
            ("file".into(), path.clone(), "differs".into()),
            ("file".into(), path, "changed_since_start".into()),
        ]
    );

    // A pod that stops leaves the running inventory at once; status=all still shows it.
    let gone = pods.pop().unwrap();
    let mut collector = gone.collector;
    assert!(collector.terminate().success());
    let three = owned(&[("v1", "cart-1"), ("v1", "cart-2"), ("v1", "cart-3")]);
    wait_for("cart-4 to leave", Duration::from_secs(20), || async {
        (listed(&inventory(&porthole, "").await) == three).then_some(())
    })
    .await;
    let everything = inventory(&porthole, "status=all").await;
    assert_eq!(pod(&everything, "cart-4")["status"], "stopped");
    assert_eq!(listed(&inventory(&porthole, "service=nothing").await), []);

    let bad = reqwest::get(porthole.url("/api/v1/inventory?status=maybe"))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
