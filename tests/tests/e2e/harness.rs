//! Starts the real binaries on free loopback ports and finds the tools the tests need.
//! A missing tool is a failure that says how to get it, never a skip.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `target/debug/<name>`, next to this test binary's `deps/` folder.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (the README test command does)",
        path.display()
    );
    path
}

/// A tool installed by the test command, or named by an environment variable.
pub fn tool(env: &str, default: &str, how: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(default));
    assert!(
        path.exists(),
        "{} is missing ({env} not set); {how}. The README test command installs it.",
        path.display()
    );
    path
}

pub fn python() -> PathBuf {
    tool(
        "PORTHOLE_TEST_PYTHON",
        ".venv/bin/python",
        "create it with `python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.lock`",
    )
}

pub fn s3s_fs() -> PathBuf {
    tool(
        "PORTHOLE_TEST_S3S_FS",
        ".tools/bin/s3s-fs",
        "install it with `cargo install s3s-fs --version 0.14.1 --features binary --locked --root .tools`",
    )
}

/// Polls `check` until it returns `Some` or the deadline passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running `porthole` process; killed when dropped. Its output is kept for failures.
pub struct Porthole {
    child: Child,
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub http: SocketAddr,
    output: Arc<Mutex<Vec<String>>>,
}

impl Porthole {
    /// `porthole <command> --data-dir DIR <extra>` on port 0 everywhere `extra` does not
    /// name an address.
    pub async fn start(
        command: &str,
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let porthole = Self::spawn(command, data_dir, extra, env);
        wait_ready(porthole.url("/readyz"), Duration::from_secs(30)).await;
        porthole
    }

    /// `porthole <command> --data-dir DIR <extra>`, port 0 where `extra` names no address.
    fn command(command: &str, data_dir: &Path, extra: &[&str]) -> Command {
        let mut cmd = Command::new(binary("porthole"));
        cmd.arg(command)
            .arg("--data-dir")
            .arg(data_dir)
            .args(
                ["--otlp-grpc-addr", "--otlp-http-addr", "--http-addr"]
                    .into_iter()
                    .filter(|flag| !extra.contains(flag))
                    .flat_map(|flag| [flag, "127.0.0.1:0"]),
            )
            .args(extra);
        cmd
    }

    /// Runs a `porthole <command>` that must refuse to start; returns what it printed on
    /// stderr.
    pub fn refused(command: &str, data_dir: &Path, extra: &[&str]) -> String {
        let output = Self::command(command, data_dir, extra).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "it started: {stderr}");
        stderr
    }

    /// As [`Porthole::start`], without waiting for `/readyz` over plain HTTP (for TLS).
    pub fn spawn(command: &str, data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Self::command(command, data_dir, extra);
        cmd.env(
            "PORTHOLE_LOG",
            "info,porthole_ingest=debug,buoyant_kernel=off,deltalake_core=warn",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (mut child, output, rx) =
            spawn_capturing(&mut cmd, |line| line.contains("\"listening\""));
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "porthole did not start:\n{}",
                    output.lock().unwrap().join("\n")
                );
            }
        };
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        // A query-only process has no OTLP receivers.
        let addr = |key: &str| json[key].as_str().unwrap_or("0.0.0.0:0").parse().unwrap();
        Self {
            child,
            otlp_grpc: addr("otlp_grpc"),
            otlp_http: addr("otlp_http"),
            http: addr("http"),
            output,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.otlp_grpc)
    }

    pub fn otlp_http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.otlp_http)
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Sum of a counter's samples whose line contains every `filter`.
    pub async fn counter(&self, name: &str, filters: &[&str]) -> f64 {
        self.metrics()
            .await
            .lines()
            .filter(|l| l.starts_with(name) && filters.iter().all(|f| l.contains(f)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits until at least `bytes` of exports wait in the write buffer (`what` names them
    /// in a failure).
    pub async fn wait_buffered(&self, what: &str, bytes: usize) {
        wait_for(what, Duration::from_secs(30), || async {
            (self.counter("porthole_ingest_buffered_bytes", &[]).await >= bytes as f64)
                .then_some(())
        })
        .await;
    }

    pub fn kill9(&mut self) {
        kill9(&mut self.child);
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.terminate_within(Duration::from_secs(60))
    }

    /// SIGTERM; fails if the process has not exited `within`.
    pub fn terminate_within(&mut self, within: Duration) -> std::process::ExitStatus {
        terminate(&mut self.child, "porthole", &self.output, within)
    }
}

fn kill9(child: &mut Child) {
    child.kill().expect("SIGKILL");
    let _ = child.wait();
}

/// SIGTERM, then the exit status; fails with the process's output if it does not exit.
fn terminate(
    child: &mut Child,
    what: &str,
    output: &Mutex<Vec<String>>,
    within: Duration,
) -> std::process::ExitStatus {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what} ignored SIGTERM:\n{}",
            output.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Spawns `cmd` keeping every line of its stdout and stderr; the lines `signal` picks are
/// also sent on the returned channel (how a process says where it listens).
fn spawn_capturing(
    cmd: &mut Command,
    signal: fn(&str) -> bool,
) -> (
    Child,
    Arc<Mutex<Vec<String>>>,
    std::sync::mpsc::Receiver<String>,
) {
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    let output = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let (out, tx) = (output.clone(), tx.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if signal(&line) {
                    let _ = tx.send(line.clone());
                }
                out.lock().unwrap().push(line);
            }
        });
    }
    (child, output, rx)
}

/// Polls `url` until it answers 2xx.
async fn wait_ready(url: String, timeout: Duration) {
    let client = reqwest::Client::new();
    wait_for(&url.clone(), timeout, || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            client
                .get(url)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        }
    })
    .await;
}

impl Drop for Porthole {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- porthole output ---\n{}", self.output());
        }
    }
}

/// A real S3-compatible server (s3s-fs) on a free loopback port.
pub struct S3Server {
    child: Option<Child>,
    pub port: u16,
    pub root: PathBuf,
}

pub const S3_ACCESS_KEY: &str = "porthole-test";
pub const S3_SECRET_KEY: &str = "porthole-test-secret";

impl S3Server {
    pub async fn start(root: &Path, bucket: &str) -> Self {
        std::fs::create_dir_all(root.join(bucket)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            child: None,
            port,
            root: root.to_path_buf(),
        };
        server.resume().await;
        server
    }

    /// (Re)starts the server on the same port and directory.
    pub async fn resume(&mut self) {
        let child = Command::new(s3s_fs())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--access-key",
                S3_ACCESS_KEY,
                "--secret-key",
                S3_SECRET_KEY,
            ])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn s3s-fs");
        self.child = Some(child);
        let port = self.port;
        wait_for("s3s-fs to listen", Duration::from_secs(20), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The AWS_* environment that points a client at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a Python script from tests/python with the venv's interpreter; returns stdout,
/// or panics with everything it printed.
pub fn run_python(script: &str, args: &[String], env: &[(&str, String)]) -> String {
    let output = Command::new(python())
        .arg(repo_root().join("tests/python").join(script))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A running `porthole-collector`; killed when dropped. Its output is kept for failures.
pub struct Collector {
    child: Child,
    pub http: SocketAddr,
    pub otlp_grpc: Option<SocketAddr>,
    pub otlp_http: Option<SocketAddr>,
    output: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    /// `porthole-collector --config FILE` with every address on port 0 unless the file
    /// says otherwise; returns once `/readyz` answers.
    pub async fn start(config: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_in(config, env, None).await
    }

    /// As [`Collector::start`], in the working directory `cwd` (relative paths in its
    /// config are then the same for every simulated pod).
    pub async fn start_in(config: &Path, env: &[(&str, &str)], cwd: Option<&Path>) -> Self {
        let mut cmd = Command::new(binary("porthole-collector"));
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        cmd.arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (mut child, output, rx) = spawn_capturing(&mut cmd, |line| {
            line.contains("listening") || line.contains("collector running")
        });
        let (mut http, mut otlp_grpc, mut otlp_http) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let exited = child.try_wait().ok().flatten();
            let line = match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => line,
                Err(_) if exited.is_none() && Instant::now() < deadline => continue,
                Err(_) => {
                    let _ = child.kill();
                    std::thread::sleep(Duration::from_millis(200)); // let the readers finish
                    panic!(
                        "porthole-collector did not start ({exited:?}):\n{}",
                        output.lock().unwrap().join("\n")
                    );
                }
            };
            let addr = || -> Option<SocketAddr> {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix("addr=")?.parse().ok())
            };
            if line.contains("health and metrics listening") {
                http = addr();
            } else if line.contains("OTLP gRPC receiver listening") {
                otlp_grpc = addr();
            } else if line.contains("OTLP HTTP receiver listening") {
                otlp_http = addr();
            } else if line.contains("collector running") {
                break;
            }
        }
        let collector = Collector {
            child,
            http: http.expect("the collector logs its http address"),
            otlp_grpc,
            otlp_http,
            output,
        };
        wait_ready(
            format!("http://{}/readyz", collector.http),
            Duration::from_secs(10),
        )
        .await;
        collector
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// The value of one of its `/metrics` samples (summed over labels containing `filter`).
    pub async fn metric(&self, name: &str, filter: &str) -> f64 {
        reqwest::get(format!("http://{}/metrics", self.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .lines()
            .filter(|l| {
                (l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
                    && l.contains(filter)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill9(&mut self) {
        kill9(&mut self.child);
    }

    /// SIGTERM, then the exit status (within a pod's 30 s grace period and then some).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        terminate(
            &mut self.child,
            "the collector",
            &self.output,
            Duration::from_secs(40),
        )
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- porthole-collector output ---\n{}", self.output());
        }
    }
}

/// Debian's `prometheus` and `promtool` (the README test command installs the package).
pub fn prometheus_tool(name: &str) -> PathBuf {
    let env = format!("PORTHOLE_TEST_{}", name.to_ascii_uppercase());
    let path = std::env::var_os(&env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin").join(name));
    assert!(
        path.exists(),
        "{} is missing ({env} not set); install Debian's `prometheus` package (apt-get install prometheus). The README test command installs it.",
        path.display()
    );
    path
}

/// A real Prometheus server on a loopback port; killed when dropped.
pub struct PrometheusServer {
    child: Child,
    pub addr: SocketAddr,
    output: Arc<Mutex<Vec<String>>>,
}

impl PrometheusServer {
    /// `prometheus` with `config` (YAML) over the TSDB in `data_dir`.
    pub async fn start(data_dir: &Path, config: &str) -> Self {
        let config_path = data_dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut cmd = Command::new(prometheus_tool("prometheus"));
        cmd.arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                data_dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--storage.tsdb.retention.time=30d")
            .arg("--log.level=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (child, output, _rx) = spawn_capturing(&mut cmd, |_| false);
        let server = Self {
            child,
            addr,
            output,
        };
        wait_ready(server.url("/-/ready"), Duration::from_secs(60)).await;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
