//! Porthole's query tier: the `/api/v1` HTTP API (log search over the tantivy indexes and
//! Parquet files, live tail, traces, SQL, Prometheus-compatible metrics), alert rules and
//! the UI. Not built yet (issue 4); the tables it will read are written by
//! `porthole-storage` today and can be queried with any Delta Lake reader.
