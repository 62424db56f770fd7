//! Bearer-token authentication (`--auth-token-file`): every OTLP export and every API call
//! must carry `authorization: Bearer TOKEN`. Tokens are compared in constant time and
//! never logged.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use porthole_storage::Tenant;
use subtle::ConstantTimeEq;

use crate::IngestError;
use crate::tenants::Tenants;

/// The one token callers must present.
#[derive(Clone)]
pub struct BearerAuth {
    token: Arc<[u8]>,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerAuth(<redacted>)")
    }
}

impl BearerAuth {
    /// Reads the token from a file (surrounding whitespace, such as a final newline, is
    /// ignored); an empty or unprintable token is an error, never "no auth".
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the token file {}: {e}", path.display()))?;
        Self::new(text.trim()).map_err(|why| format!("the token file {}: {why}", path.display()))
    }

    pub fn new(token: &str) -> Result<Self, String> {
        if token.is_empty() {
            return Err("the token is empty".into());
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token must be printable ASCII without spaces".into());
        }
        Ok(Self {
            token: token.as_bytes().into(),
        })
    }

    /// Whether the `authorization` header carries the token. Only the token's length can
    /// be learnt from the timing.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        match presented_token(headers) {
            Some(token) => bool::from(token.ct_eq(&self.token)),
            None => false,
        }
    }

    pub(crate) fn expected(&self) -> &[u8] {
        &self.token
    }
}

/// The token of an `authorization: Bearer TOKEN` header.
pub(crate) fn presented_token(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
}

/// Who may send and read, as configured: anyone, the holders of one token
/// (`--auth-token-file`), or each tenant's token holders (`--tenants`).
#[derive(Clone, Debug, Default)]
pub enum Access {
    #[default]
    Open,
    Token(BearerAuth),
    Tenants(Arc<Tenants>),
}

impl Access {
    /// Whom the request is for: `Ok(None)` without tenants, `Ok(Some(tenant))` with them,
    /// `Err` when its token is missing or wrong.
    pub fn admit(&self, headers: &HeaderMap) -> Result<Option<Tenant>, IngestError> {
        match self {
            Access::Open => Ok(None),
            Access::Token(auth) if auth.allows(headers) => Ok(None),
            Access::Token(_) => Err(IngestError::Unauthenticated),
            Access::Tenants(tenants) => tenants
                .tenant_of(headers)
                .map(|config| Some(config.tenant.clone()))
                .ok_or(IngestError::Unauthenticated),
        }
    }

    pub fn tenants(&self) -> Option<&Arc<Tenants>> {
        match self {
            Access::Tenants(tenants) => Some(tenants),
            _ => None,
        }
    }
}

/// Axum middleware: 401 with `WWW-Authenticate: Bearer` unless the request has the token.
pub async fn require_bearer(
    State(auth): State<BearerAuth>,
    request: Request,
    next: Next,
) -> Response {
    if auth.allows(request.headers()) {
        return next.run(request).await;
    }
    tracing::debug!(
        path = request.uri().path(),
        "request refused: missing or wrong bearer token"
    );
    unauthorized()
}

/// 401 with `WWW-Authenticate: Bearer` and the API's error body.
pub fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(serde_json::json!({"error": {
            "code": "unauthorized",
            "message": "this server needs `Authorization: Bearer <token>` with a valid token",
        }})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_the_exact_token_is_allowed() {
        let auth = BearerAuth::new("s3cret-token").unwrap();
        assert!(auth.allows(&headers("Bearer s3cret-token")));
        for wrong in [
            "Bearer s3cret-toke",
            "Bearer s3cret-token2",
            "bearer s3cret-token",
            "s3cret-token",
            "Basic s3cret-token",
            "Bearer ",
        ] {
            assert!(!auth.allows(&headers(wrong)), "{wrong}");
        }
        assert!(!auth.allows(&HeaderMap::new()));
    }

    #[test]
    fn empty_or_spaced_tokens_are_refused_and_never_printed() {
        assert!(BearerAuth::new("").is_err());
        assert!(BearerAuth::new("two words").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc123\n").unwrap();
        let auth = BearerAuth::from_file(&path).unwrap();
        assert!(auth.allows(&headers("Bearer abc123")));
        assert!(!format!("{auth:?}").contains("abc123"));
        std::fs::write(&path, "  \n").unwrap();
        assert!(BearerAuth::from_file(&path).is_err());
    }
}
