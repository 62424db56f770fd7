//! What happens to every export, whichever protocol brought it: convert, queue, wait for
//! the commit, count.

use std::sync::Arc;

use porthole_storage::{Signal, Tenant};

use crate::IngestError;
use crate::batcher::Batcher;
use crate::export::OtlpExport;
use crate::telemetry::IngestMetrics;
use crate::tenants::Tenants;
use porthole_net::decoding::Reservation;

#[derive(Clone)]
pub struct Pipeline {
    pub(crate) batcher: Arc<Batcher>,
    pub(crate) metrics: Arc<IngestMetrics>,
    /// With tenants: their rate limits and counters.
    pub(crate) tenants: Option<Arc<Tenants>>,
}

impl Pipeline {
    /// Converts and durably stores one decoded export in `tenant`'s tables (the root's
    /// without tenants); the response says which records, if any, were refused.
    /// `reservation` holds the memory reserved for decoding `request` until its rows are
    /// converted.
    pub async fn export<E: OtlpExport>(
        &self,
        request: E,
        wire_bytes: usize,
        tenant: Option<Tenant>,
        reservation: Reservation,
    ) -> Result<E::Response, IngestError> {
        let result = self
            .export_for(request, wire_bytes, tenant.as_ref(), reservation)
            .await;
        if let (Some(tenants), Some(tenant)) = (&self.tenants, &tenant)
            && let Err(error) = &result
        {
            tenants.refused(tenant, error.reason());
        }
        result
    }

    async fn export_for<E: OtlpExport>(
        &self,
        request: E,
        wire_bytes: usize,
        tenant: Option<&Tenant>,
        reservation: Reservation,
    ) -> Result<E::Response, IngestError> {
        if let (Some(tenants), Some(tenant)) = (&self.tenants, tenant)
            && let Err(error) = tenants.charge(tenant, wire_bytes)
        {
            self.rejected(E::SIGNAL, &error, 0, wire_bytes);
            return Err(error);
        }
        let received_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        // Converting an 8 MiB export takes tens of milliseconds of CPU: on the blocking
        // pool, so health probes and other requests on the runtime are not held up.
        // The work keeps the decoding memory reserved until it is done, even when the
        // export is abandoned meanwhile (its sender gone).
        let converted = porthole_net::body::off_the_runtime(move || {
            let converted = request.convert(received_at);
            drop(request);
            // The rows are counted by the write buffer from here.
            drop(reservation);
            converted
        })
        .await;
        let rows = converted.batch.num_rows() as u64;
        if converted.rejected > 0 {
            self.metrics.records_refused(E::SIGNAL, converted.rejected);
            tracing::warn!(signal = %E::SIGNAL, rejected = converted.rejected, reason = converted.rejection_reason.as_deref().unwrap_or(""), "records refused");
        }
        if rows > 0
            && let Err(error) = self
                .batcher
                .submit(E::SIGNAL, converted.batch, tenant.cloned())
                .await
        {
            self.rejected(E::SIGNAL, &error, rows, wire_bytes);
            return Err(error);
        }
        self.metrics
            .export_accepted(E::SIGNAL, rows, wire_bytes as u64);
        if let (Some(tenants), Some(tenant)) = (&self.tenants, tenant) {
            tenants.accepted(tenant, E::SIGNAL, rows, wire_bytes as u64);
        }
        Ok(E::response(converted.rejected, converted.rejection_reason))
    }

    /// Counts and logs records refused before conversion (e.g. remote_write series
    /// without a name).
    pub fn refused(&self, signal: Signal, records: u64, reason: &str) {
        self.metrics.records_refused(signal, records);
        tracing::warn!(%signal, rejected = records, reason, "records refused");
    }

    /// Counts and logs a refused export.
    pub fn rejected(&self, signal: Signal, error: &IngestError, records: u64, wire_bytes: usize) {
        self.metrics
            .export_rejected(signal, error.reason(), records, wire_bytes as u64);
        tracing::warn!(%signal, reason = error.reason(), %error, wire_bytes, "export refused");
    }
}
