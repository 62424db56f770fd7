//! The three kinds of telemetry Porthole stores, each in its own table.

use std::fmt;

use arrow::datatypes::SchemaRef;

/// One OTLP signal and its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    Logs,
    Spans,
    Metrics,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Logs, Signal::Spans, Signal::Metrics];

    /// The signal whose table is named `name` (`logs`, `spans`, `metrics`).
    pub fn from_table_name(name: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.table_name() == name)
    }

    /// The table's folder under the storage root, also its SQL name.
    pub fn table_name(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Spans => "spans",
            Signal::Metrics => "metrics",
        }
    }

    /// The Arrow schema of the table's data files (without the `day` partition column).
    pub fn file_schema(self) -> SchemaRef {
        let empty = match self {
            Signal::Logs => crate::logs::convert_logs(&Default::default(), 0),
            Signal::Spans => crate::spans::convert_spans(&Default::default(), 0),
            Signal::Metrics => crate::metrics::convert_metrics(&Default::default(), 0),
        };
        empty.batch.schema()
    }

    /// The column the full-text index covers, for the signals that have one.
    pub fn text_column(self) -> Option<&'static str> {
        match self {
            Signal::Logs => Some("body"),
            Signal::Spans => Some("name"),
            Signal::Metrics => None,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.table_name())
    }
}
