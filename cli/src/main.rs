//! `porthole-server`, the whole of Porthole: parses arguments, builds the configuration,
//! runs the libraries. The `porthole` command users type is the small binary of
//! `client_main.rs`, which runs the client commands itself and every other command by
//! executing this one in its place.

mod args;
mod client;
mod client_args;
mod compactor;
mod demo;
mod tenancy;
mod web;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use porthole_ingest::{BearerAuth, Ingest, IngestConfig};
use porthole_query::{TailService, TailSource};
use porthole_storage::{Location, Storage};
use prometheus_client::registry::Registry;

use args::{Cli, Command, CompactArgs, RepairArgs, ServeArgs, StorageArgs};

/// mimalloc, not glibc's malloc: ingest allocates and frees a batch's worth of small
/// strings and tantivy arena blocks every second, and under glibc malloc, free and the page
/// faults of returned-then-refetched memory were ~9% of the server's CPU in a profile of
/// `bench-ingest`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    args::init_logging(&cli.log_format);
    // A client command makes a request or two: one thread starts faster than a pool.
    let client = matches!(cli.command, Command::Client(_));
    let mut builder = if client {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        // Parsers and planners recurse per level of a query's nesting; the query tier
        // bounds that nesting for this stack size.
        builder.thread_stack_size(porthole_query::THREAD_STACK_BYTES);
        builder
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("porthole: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => {
                serve(
                    args,
                    Roles {
                        ingest: true,
                        query: true,
                    },
                )
                .await
            }
            Command::Ingest(args) => {
                serve(
                    args,
                    Roles {
                        ingest: true,
                        query: false,
                    },
                )
                .await
            }
            Command::Query(args) => {
                serve(
                    args,
                    Roles {
                        ingest: false,
                        query: true,
                    },
                )
                .await
            }
            Command::Client(command) => client::run(command).await,
            Command::Compact(args) => compact(args).await,
            Command::Repair(args) => repair(args).await,
            Command::Demo(args) => demo::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("porthole: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Which tiers this process runs; `serve` runs both.
struct Roles {
    ingest: bool,
    query: bool,
}

/// Runs the chosen tiers and the operations endpoints until SIGTERM or Ctrl-C, then stops
/// accepting, commits and acks what is buffered, and returns.
async fn open_storage(args: &StorageArgs) -> anyhow::Result<Storage> {
    let location = Location::parse(args.storage.as_deref(), &args.data_dir)
        .context("reading --storage / --data-dir")?;
    Storage::open(location.clone())
        .await
        .with_context(|| format!("opening the tables at {location:?}"))
}

/// `porthole compact`: one pass, a line per table, exit.
async fn compact(args: CompactArgs) -> anyhow::Result<()> {
    let root = Arc::new(open_storage(&args.storage).await?);
    let tenants = tenancy::load(&args.storage, usize::MAX, false)?;
    let stores = tenancy::stores(root, tenants.as_deref()).await?;
    let metrics = compactor::CompactionMetrics::default();
    let base = args.compaction.maintenance();
    for (tenant, storage) in stores.all() {
        let maintenance = tenancy::maintenance_for(&base, tenants.as_deref(), tenant.as_ref());
        for (signal, pass) in compactor::pass(&storage, &maintenance, &metrics).await? {
            print_pass(tenant.as_ref(), signal, &pass);
        }
    }
    Ok(())
}

/// `porthole repair`: a JSON line per table (and tenant) with the unreadable data files
/// it found and, unless `--dry-run`, took out of the table.
async fn repair(args: RepairArgs) -> anyhow::Result<()> {
    let root = Arc::new(open_storage(&args.storage).await?);
    let tenants = tenancy::load(&args.storage, usize::MAX, false)?;
    let stores = tenancy::stores(root, tenants.as_deref()).await?;
    let how = porthole_storage::Repair {
        dry_run: args.dry_run,
        deep: args.deep,
    };
    for (tenant, storage) in stores.all() {
        for signal in porthole_storage::Signal::ALL {
            let report = storage
                .repair(signal, how)
                .await
                .with_context(|| format!("repairing the {} table", signal.table_name()))?;
            let unreadable: Vec<_> = (report.unreadable.iter())
                .map(|(path, problem)| serde_json::json!({"path": path, "problem": problem}))
                .collect();
            println!(
                "{}",
                serde_json::json!({
                    "tenant": tenant.as_ref().map(|t| t.name()),
                    "table": signal.table_name(),
                    "unreadable": unreadable,
                    "removed": if args.dry_run { 0 } else { unreadable.len() },
                    "version": report.version,
                    "dry_run": args.dry_run,
                    "deep": args.deep,
                })
            );
        }
    }
    Ok(())
}

/// One JSON line per table a `porthole compact` pass visited.
fn print_pass(
    tenant: Option<&porthole_storage::Tenant>,
    signal: porthole_storage::Signal,
    pass: &compactor::Pass,
) {
    let report = &pass.compaction;
    println!(
        "{}",
        serde_json::json!({
            "tenant": tenant.map(|t| t.name()),
            "table": signal.table_name(),
            "files_replaced": report.files_replaced,
            "files_written": report.files_written,
            "rows": report.rows,
            "bytes_replaced": report.bytes_replaced,
            "bytes_written": report.bytes_written,
            "conflicts": report.conflicts,
            "unreadable_files": report.unreadable,
            "expired_files": pass.expired,
            "vacuumed_objects": pass.vacuumed,
        })
    );
}

/// How a query node talks TLS to `https://` ingest nodes (live tail), when configured.
fn ingest_client_tls(
    args: &ServeArgs,
) -> anyhow::Result<Option<tonic::transport::ClientTlsConfig>> {
    if args.ingest_ca_file.is_none() && args.ingest_client_cert.is_none() {
        return Ok(None);
    }
    let read = |path: &std::path::Path, flag: &str| {
        std::fs::read(path).with_context(|| format!("{flag} {}", path.display()))
    };
    let mut tls = tonic::transport::ClientTlsConfig::new();
    tls = match &args.ingest_ca_file {
        Some(path) => tls.ca_certificate(tonic::transport::Certificate::from_pem(read(
            path,
            "--ingest-ca-file",
        )?)),
        None => tls.with_webpki_roots(),
    };
    if let (Some(cert), Some(key)) = (&args.ingest_client_cert, &args.ingest_client_key) {
        tls = tls.identity(tonic::transport::Identity::from_pem(
            read(cert, "--ingest-client-cert")?,
            read(key, "--ingest-client-key")?,
        ));
    }
    Ok(Some(tls))
}

async fn serve(args: ServeArgs, roles: Roles) -> anyhow::Result<()> {
    let root = Arc::new(
        open_storage(&args.storage)
            .await?
            .with_index_cache_bytes(args.index_cache_bytes.0),
    );
    let tenants = tenancy::load(&args.storage, args.max_request_bytes.0, true)?;
    let stores = Arc::new(tenancy::stores(root.clone(), tenants.as_deref()).await?);
    let auth = args
        .auth_token_file
        .as_deref()
        .map(BearerAuth::from_file)
        .transpose()
        .map_err(anyhow::Error::msg)
        .context("--auth-token-file")?;
    anyhow::ensure!(
        tenants.is_none() || args.rules.is_none(),
        "--rules cannot be used with --tenants: give each tenant its rule directory as \
         `rules:` in the tenants file, so its rules read only its data"
    );
    anyhow::ensure!(
        !Duration::from(args.snapshot_retention).is_zero(),
        "--snapshot-retention must be more than 0s: a snapshot would be deleted as it is stored"
    );
    let access = match (&tenants, &auth) {
        (Some(tenants), _) => porthole_ingest::Access::Tenants(tenants.clone()),
        (None, Some(auth)) => porthole_ingest::Access::Token(auth.clone()),
        (None, None) => porthole_ingest::Access::Open,
    };
    let mut registry = Registry::default();
    root.register_metrics(&mut registry);
    if let Some(tenants) = &tenants {
        tenants.register(&mut registry);
    }
    let compaction_metrics = compactor::CompactionMetrics::register(&mut registry);
    let prom_metrics = porthole_query::promql::PromMetrics::register(&mut registry);
    let request_metrics = porthole_query::RequestMetrics::register(&mut registry);
    // One SQL memory pool for the process, every tenant's queries included.
    let sql_limits = porthole_query::SqlLimits::default();
    let query_slots = porthole_query::QuerySlots::new(
        args.max_concurrent_queries as usize,
        args.max_queued_queries as usize,
        &mut registry,
    );
    let alert_metrics = porthole_alerts::AlertMetrics::register(&mut registry);
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = porthole_ingest::tls::Tls::load(porthole_ingest::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: args.tls_client_ca.clone(),
            })
            .map_err(anyhow::Error::msg)?;
            tls.register(&mut registry);
            Some(tls)
        }
        _ => None,
    };
    let tail_slots = porthole_query::TailSlots::new(args.max_tails as usize, &mut registry);
    let tail_dropped = prometheus_client::metrics::counter::Counter::default();
    registry.register(
        "porthole_tail_subscribers_dropped",
        "Live-tail subscribers disconnected for falling behind",
        tail_dropped.clone(),
    );
    let token = match &args.auth_token_file {
        Some(path) => Some(std::fs::read_to_string(path).context("--auth-token-file")?),
        None => None,
    };
    // Ends live-tail streams and collectors' polls on shutdown, which would otherwise
    // hold it open.
    let closing = tokio_util::sync::CancellationToken::new();
    // Snapshot requests meet the collectors polling this process here.
    let control = Arc::new(porthole_query::Control::new(closing.clone()));
    registry.register(
        "porthole_snapshot_requests_refused",
        "Collector polls and snapshot requests refused over their limits",
        control.refused.clone(),
    );
    registry.register(
        "porthole_snapshots_pruned",
        "Stored snapshots deleted past --snapshot-retention, or beyond the newest 1000",
        control.pruned.clone(),
    );
    let connections = porthole_net::Limits {
        max_connections: args.max_connections as usize,
        header_timeout: args.read_timeout.into(),
    };
    let connection_metrics =
        porthole_net::ConnectionMetrics::register(registry.sub_registry_with_prefix("porthole"));
    let http_gate = porthole_net::Gate::new("http", connections, &connection_metrics);
    let ingest = if roles.ingest {
        let config = IngestConfig {
            otlp_grpc_addr: args.otlp_grpc_addr,
            otlp_http_addr: args.otlp_http_addr,
            max_request_bytes: args.max_request_bytes.0,
            max_inflight_requests: args.max_inflight_requests as usize,
            batch: porthole_ingest::BatchConfig {
                window: args.batch_window.into(),
                max_batch_bytes: args.max_batch_bytes.0,
                max_buffer_bytes: args.max_buffer_bytes.0,
                write_timeout: args.write_timeout.into(),
            },
            access: access.clone(),
            tls: tls.clone(),
            connections,
            connection_metrics: connection_metrics.clone(),
            max_decode_bytes: args.max_decode_bytes.0,
        };
        Some(
            Ingest::start(config, stores.clone(), &mut registry, {
                let mut routes = tonic::service::RoutesBuilder::default();
                routes.add_service(TailService::server(
                    stores.clone(),
                    tail_dropped.clone(),
                    closing.clone(),
                    tail_slots.clone(),
                ));
                routes.add_service(porthole_query::ControlService::server(control.clone()));
                routes
            })
            .await
            .context("starting the OTLP receivers")?,
        )
    } else {
        None
    };
    let stop_compaction = tokio_util::sync::CancellationToken::new();
    let mut compactions = Vec::new();
    if roles.ingest && !Duration::from(args.compaction_interval).is_zero() {
        let base = args.compaction.maintenance();
        for (tenant, storage) in stores.all() {
            compactions.push(compactor::spawn(
                storage,
                tenancy::maintenance_for(&base, tenants.as_deref(), tenant.as_ref()),
                args.compaction_interval.into(),
                compaction_metrics.clone(),
                stop_compaction.clone(),
            ));
        }
    }
    let http_listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding --http-addr {}", args.http_addr))?;
    let http_addr = http_listener.local_addr()?;
    let (open, mut protected) = porthole_ingest::ops_routers(root.clone(), Arc::new(registry));
    // remote_write authenticates itself (and finds its tenant), so it sits outside the
    // API's token check, which with tenants is the operator's.
    let exports = match &ingest {
        Some(ingest) => ingest.remote_write_router(),
        None => axum::Router::new(),
    };
    let prom_limits = porthole_query::promql::PromLimits {
        max_series: args.promql_max_series,
        max_samples: args.promql_max_samples,
        timeout: args.promql_timeout.into(),
    };
    // Read once for every tenant's live tail and snapshot requests.
    let ingest_tls = match roles.query {
        true => ingest_client_tls(&args)?,
        false => None,
    };
    let stop_alerts = tokio_util::sync::CancellationToken::new();
    let mut alerting = Vec::new();
    let mut api_routers = std::collections::BTreeMap::new();
    for (tenant, storage) in stores.all() {
        let config = tenants
            .as_deref()
            .zip(tenant.as_ref())
            .and_then(|(tenants, tenant)| tenants.config(tenant));
        let rules = match config {
            Some(config) => config.rules.clone(),
            None => args.rules.clone(),
        };
        let mut api = axum::Router::new();
        if let (true, Some(dir)) = (roles.query, rules) {
            let lease_slot: Duration = args.alert_lease_slot.into();
            let events_keep_days =
                (Duration::from(args.alert_events_retention).as_secs() / 86_400) as i64;
            anyhow::ensure!(
                events_keep_days >= porthole_alerts::audit::MIN_KEEP_DAYS,
                "--alert-events-retention must be at least {}d: guardrails and \
                 /api/v1/alerts/events read that far back",
                porthole_alerts::audit::MIN_KEEP_DAYS
            );
            anyhow::ensure!(
                lease_slot > porthole_alerts::store::Lease::SAFETY * 2,
                "--alert-lease-slot must be more than {:?}",
                porthole_alerts::store::Lease::SAFETY * 2
            );
            let engine = porthole_alerts::Engine::new(
                storage.clone(),
                prom_limits.clone(),
                porthole_alerts::AlertsConfig {
                    rules_dir: dir.clone(),
                    default_interval: args.rules_interval.into(),
                    webhooks: args.alert_webhooks.clone(),
                    alertmanagers: args.alertmanager_urls.clone(),
                    actions: args.alert_actions,
                    max_actions_per_hour: args.alert_max_actions_per_hour,
                    external_url: args
                        .external_url
                        .clone()
                        .unwrap_or_else(|| format!("http://{http_addr}")),
                    lease_slot,
                    events_keep_days,
                },
                alert_metrics.for_tenant(tenant.as_ref().map(|t| t.name())),
            )
            .with_context(|| match &tenant {
                Some(tenant) => format!("the rules of tenant {tenant}"),
                None => "--rules".to_string(),
            })?;
            api = api.merge(porthole_alerts::router(engine.clone()));
            alerting.push(tokio::spawn(engine.run(stop_alerts.clone())));
        }
        if roles.query {
            // Live tail from other ingest nodes: as this tenant, or with the cluster token.
            let authorization = match config {
                Some(config) => Some(config.authorization()),
                None => token.as_ref().map(|t| format!("Bearer {}", t.trim())),
            };
            let tail = TailSource {
                storage: storage.clone(),
                ingest_nodes: args.ingest_nodes.clone(),
                authorization,
                local_commits: roles.ingest,
                dropped: tail_dropped.clone(),
                tls: ingest_tls.clone(),
                closing: closing.clone(),
                slots: tail_slots.clone(),
            };
            api = api.merge(porthole_query::router(porthole_query::QueryState {
                storage,
                sql_limits: sql_limits.clone(),
                prom_limits: prom_limits.clone(),
                prom_metrics: prom_metrics.clone(),
                tail,
                snapshots: porthole_query::SnapshotSource {
                    control: control.clone(),
                    tenant: tenant.clone(),
                    keep_for: args.snapshot_retention.into(),
                },
                slots: query_slots.clone(),
                query_timeout: args.query_timeout.into(),
            }));
        }
        // Only a query node has API routes (axum refuses a route layer over none).
        if roles.query {
            api = api.route_layer(axum::middleware::from_fn_with_state(
                request_metrics.clone(),
                porthole_query::RequestMetrics::observe,
            ));
        }
        api_routers.insert(tenant, api);
    }
    let tenant_api = match &tenants {
        Some(tenants) => {
            let routers = api_routers
                .into_iter()
                .filter_map(|(tenant, api)| Some((tenant?, api)))
                .collect();
            Some(tenancy::TenantApi {
                tenants: tenants.clone(),
                routers: Arc::new(routers),
            })
        }
        None => {
            if let Some(api) = api_routers.remove(&None) {
                protected = protected.merge(api);
            }
            None
        }
    };
    if let Some(auth) = auth {
        protected = protected.route_layer(axum::middleware::from_fn_with_state(
            auth,
            porthole_ingest::require_bearer,
        ));
    }
    let http = open.merge(protected).merge(exports);
    let ui = web::Web::new(args.web_dir.clone())?;
    let serve_ui = roles.query;
    // With tenants, the API is found here, after the token picked the tenant's routes
    // (a fallback, so those routes see their own path parameters only).
    let http = http.fallback(move |request: axum::extract::Request| async move {
        use axum::response::IntoResponse;
        if let Some(api) = &tenant_api
            && request.uri().path().starts_with("/api/")
        {
            return tenancy::tenant_api(api, request).await;
        }
        let (method, uri) = (request.method().clone(), request.uri().clone());
        if method == axum::http::Method::GET
            && serve_ui
            && let Some(page) = ui.serve(&uri).await
        {
            return page;
        }
        let message = format!("no route {}", uri.path());
        (
            axum::http::StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": {"code": "not_found", "message": message}})),
        )
            .into_response()
    });
    let stop_http = tokio_util::sync::CancellationToken::new();
    let stopped = stop_http.clone().cancelled_owned();
    let http_server = match &tls {
        Some(tls) => tokio::spawn(porthole_net::serve(
            tls.api_listener(http_listener)?,
            http_gate,
            http,
            stopped,
        )),
        None => tokio::spawn(porthole_net::serve(http_listener, http_gate, http, stopped)),
    };
    // One machine-readable line so scripts and tests learn the bound ports (port 0 works).
    let address = |addr: Option<std::net::SocketAddr>| addr.map(|a| a.to_string());
    println!(
        "{}",
        serde_json::json!({
            "event": "listening",
            "otlp_grpc": address(ingest.as_ref().map(Ingest::otlp_grpc_addr)),
            "otlp_http": address(ingest.as_ref().map(Ingest::otlp_http_addr)),
            "http": http_addr.to_string(),
        })
    );
    tracing::info!(%http_addr, "porthole is running");
    args::shutdown_signal().await;
    tracing::info!("shutting down: no new exports; committing what is buffered");
    // Streams and long polls end now, so the servers' graceful shutdowns can finish.
    closing.cancel();
    stop_compaction.cancel();
    stop_alerts.cancel();
    for alerting in alerting {
        let _ = alerting.await;
    }
    for compaction in compactions {
        let _ = compaction.await;
    }
    if let Some(ingest) = ingest {
        ingest.shutdown().await;
    }
    stop_http.cancel();
    if tokio::time::timeout(porthole_ingest::SHUTDOWN_WAIT, http_server)
        .await
        .is_err()
    {
        tracing::warn!(
            "the API's connections did not close within {:?}; exiting anyway",
            porthole_ingest::SHUTDOWN_WAIT
        );
    }
    tracing::info!("shutdown complete");
    Ok(())
}
