//! TLS on the listeners (rustls): a certificate and key (PEM) for every listener, and
//! optionally a client CA that OTLP clients must present a certificate from (mutual TLS,
//! for collector → ingest). The HTTP listeners take handshakes concurrently, each bounded
//! in time, so a client that never finishes one holds up nobody.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// A handshake not finished in this long is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the server to take them, at most.
const ACCEPTED_QUEUE: usize = 128;
/// Handshakes in progress per listener, at most; connections beyond are closed and counted.
const MAX_HANDSHAKES: usize = 1024;

/// The PEM files of `--tls-cert`, `--tls-key` and `--tls-client-ca`.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, OTLP clients must present a certificate this CA signed.
    pub client_ca: Option<PathBuf>,
}

/// Loaded and checked TLS settings.
#[derive(Clone)]
pub struct Tls {
    files: TlsFiles,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    client_ca_pem: Option<Vec<u8>>,
    /// For the API port: no client certificates asked.
    server: Arc<rustls::ServerConfig>,
    /// For the OTLP ports: client certificates required when a client CA is set.
    otlp: Arc<rustls::ServerConfig>,
    /// Connections closed because [`MAX_HANDSHAKES`] were in progress.
    refused: Counter,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

/// Shows the files only: never key material.
impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Tls {
    pub fn load(files: TlsFiles) -> Result<Self, String> {
        let cert_pem = read(&files.cert, "--tls-cert")?;
        let key_pem = read(&files.key, "--tls-key")?;
        let client_ca_pem = match &files.client_ca {
            Some(path) => Some(read(path, "--tls-client-ca")?),
            None => None,
        };
        let certs = || -> Result<Vec<CertificateDer<'static>>, String> {
            let certs: Vec<_> = CertificateDer::pem_slice_iter(&cert_pem)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("--tls-cert {}: {e}", files.cert.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "--tls-cert {}: no certificate in it",
                    files.cert.display()
                ));
            }
            Ok(certs)
        };
        let key = || {
            PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| format!("--tls-key {}: {e}", files.key.display()))
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = || {
            rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())
        };
        let finish = |config: Result<rustls::ServerConfig, rustls::Error>| {
            let mut config = config.map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Ok::<_, String>(Arc::new(config))
        };
        let server = finish(
            builder()?
                .with_no_client_auth()
                .with_single_cert(certs()?, key()?),
        )?;
        let otlp = match (&client_ca_pem, &files.client_ca) {
            (Some(pem), Some(path)) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert =
                        cert.map_err(|e| format!("--tls-client-ca {}: {e}", path.display()))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("--tls-client-ca {}: {e}", path.display()))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| format!("--tls-client-ca {}: {e}", path.display()))?;
                finish(
                    builder()?
                        .with_client_cert_verifier(verifier)
                        .with_single_cert(certs()?, key()?),
                )?
            }
            _ => server.clone(),
        };
        Ok(Self {
            files,
            cert_pem,
            key_pem,
            client_ca_pem,
            server,
            otlp,
            refused: Counter::default(),
        })
    }

    /// Adds `porthole_tls_handshakes_refused_total` to `registry`.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "porthole_tls_handshakes_refused",
            "Connections closed unhandled because too many TLS handshakes were in progress",
            self.refused.clone(),
        );
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// tonic's settings for the OTLP gRPC port (same certificate and client CA).
    pub fn grpc_config(&self) -> tonic::transport::ServerTlsConfig {
        let identity = tonic::transport::Identity::from_pem(&self.cert_pem, &self.key_pem);
        let config = tonic::transport::ServerTlsConfig::new().identity(identity);
        match &self.client_ca_pem {
            Some(ca) => config.client_ca_root(tonic::transport::Certificate::from_pem(ca)),
            None => config,
        }
    }

    /// A TLS listener for the OTLP/HTTP port (client certificates as configured).
    pub fn otlp_listener(&self, tcp: TcpListener) -> std::io::Result<TlsListener> {
        TlsListener::new(tcp, self.otlp.clone(), self.refused.clone())
    }

    /// A TLS listener for the API and UI port (no client certificates: browsers use it).
    pub fn api_listener(&self, tcp: TcpListener) -> std::io::Result<TlsListener> {
        TlsListener::new(tcp, self.server.clone(), self.refused.clone())
    }
}

/// Accepts TCP connections and hands on those whose TLS handshake succeeded.
pub struct TlsListener {
    local: SocketAddr,
    accepted: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    fn new(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
        refused: Counter,
    ) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let (tx, accepted) = tokio::sync::mpsc::channel(ACCEPTED_QUEUE);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                    refused.inc();
                    continue; // dropping the stream closes it
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { local, accepted })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(conn) => conn,
            // The accept loop only ends once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
