//! Live tail (`GET /api/v1/logs/tail`): log records that match a search, as they commit.
//!
//! In `serve` the records come from this process's own commits
//! ([`Storage::subscribe_commits`]); each committed file's own index answers the search, so
//! tail and search agree on what matches. A query node running apart from ingest
//! (`--ingest-nodes`) subscribes instead to every ingest node's gRPC [`TailService`], which
//! runs the same matching there. Every subscriber has a bounded buffer: one that falls
//! behind gets a `dropped` event and is disconnected, and is counted; ingest never waits.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;

use arrow::array::UInt64Array;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use porthole_net::{Place, Places};
use porthole_proto::tail::tail_client::TailClient;
use porthole_proto::tail::tail_server::{Tail, TailServer};
use porthole_proto::tail::{Filter, SubscribeRequest, TailEvent, tail_event};
use porthole_storage::{CommittedFile, Signal, Storage, Stores, Tenant, open_packed_index};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;
use tantivy::collector::DocSetCollector;
use tantivy::query_grammar::UserInputAst;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::QueryError;
use crate::search::{Cursor, LogSearch, file_query, parse_user_query, rows_of, validate_filters};

/// Records buffered for one subscriber, at most.
pub const SUBSCRIBER_BUFFER: usize = 1024;

/// What a subscriber receives.
#[derive(Debug)]
pub enum TailItem {
    Record(Value),
    /// The subscriber is being disconnected, and why; nothing follows.
    Dropped(String),
}

/// How many live tails this process serves at once (`--max-tails`), SSE and gRPC
/// together: every open tail matches every committed file on its own, so their number
/// bounds that work. One past it is refused with 503 / RESOURCE_EXHAUSTED, and counted.
#[derive(Clone)]
pub struct TailSlots {
    max: usize,
    places: Places,
}

impl TailSlots {
    pub fn new(max_tails: usize, registry: &mut Registry) -> Self {
        let (open, refused) = (Gauge::default(), Counter::default());
        registry.register(
            "porthole_tails_open",
            "Live tails open (SSE subscribers and ingest nodes' gRPC streams)",
            open.clone(),
        );
        registry.register(
            "porthole_tails_refused",
            "Live tails refused because --max-tails were open",
            refused.clone(),
        );
        Self {
            max: max_tails,
            places: Places::new(max_tails, open, refused),
        }
    }

    fn take(&self) -> Result<Place, QueryError> {
        self.places.try_take().ok_or_else(|| {
            QueryError::Overloaded(format!(
                "this node has as many live tails open as --max-tails allows ({}); retry shortly",
                self.max
            ))
        })
    }
}

/// An open tail: its records, and its slot for as long as it is read.
pub struct Subscriber {
    rx: mpsc::Receiver<TailItem>,
    _slot: Place,
}

/// Where live records come from, and the count of subscribers dropped for being slow.
#[derive(Clone)]
pub struct TailSource {
    pub storage: Arc<Storage>,
    /// gRPC URLs of the ingest nodes (`--ingest-nodes`); empty means this process's commits.
    pub ingest_nodes: Vec<String>,
    /// Sent to ingest nodes as `authorization` when the cluster uses a token.
    pub authorization: Option<String>,
    /// Whether this process commits (runs ingest); a query-only node without ingest nodes
    /// has nothing to tail.
    pub local_commits: bool,
    pub dropped: Counter,
    /// For `https://` ingest nodes: the CA to trust and the client certificate to show.
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    /// Cancelled when the server shuts down: every open stream then ends (an open stream
    /// would hold the server's graceful shutdown for ever).
    pub closing: CancellationToken,
    pub slots: TailSlots,
}

/// A checked subscription: the query and filters of a log search, over all time.
#[derive(Clone)]
struct Subscription {
    search: LogSearch,
    ast: Option<UserInputAst>,
}

impl Subscription {
    fn new(query: &str, filters: Vec<(String, String)>) -> Result<Self, QueryError> {
        let ast = parse_user_query(query)?;
        validate_filters(&filters)?;
        Ok(Self {
            search: LogSearch {
                query: query.to_string(),
                filters,
                start_micros: i64::MIN,
                end_micros: i64::MAX,
                limit: 0,
                cursor: None,
                forward: false,
            },
            ast,
        })
    }

    /// Rows of one committed logs file that match, oldest first, as API rows.
    fn matching(&self, file: &CommittedFile) -> Result<Vec<Value>, QueryError> {
        let internal = |e: &dyn std::fmt::Display| QueryError::Internal(e.to_string());
        let Some(packed) = &file.index else {
            return Ok(Vec::new());
        };
        let index = open_packed_index(packed)?;
        let searcher = index.reader().map_err(|e| internal(&e))?.searcher();
        let query = file_query(&index, &self.search, self.ast.as_ref(), None)?;
        let docs: Vec<_> = searcher
            .search(&query, &DocSetCollector)
            .map_err(|e| internal(&e))?
            .into_iter()
            .collect();
        let mut rows = rows_of(&searcher, &docs)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        rows.sort_unstable();
        let taken = arrow::compute::take_record_batch(&file.rows, &UInt64Array::from(rows))
            .map_err(|e| internal(&e))?;
        let mut records: Vec<Value> = crate::rows::batch_to_json(&taken)?
            .iter()
            .map(crate::rows::log_json)
            .collect();
        // Each row's cursor, as a search page gives it: a live row's context starts there.
        for (record, cursor) in records.iter_mut().zip(cursors(&taken)?) {
            record["cursor"] = Value::from(cursor.encode());
        }
        // Timestamps are RFC 3339 in UTC with nanoseconds: text order is time order.
        records.sort_by(|a, b| a["timestamp"].as_str().cmp(&b["timestamp"].as_str()));
        Ok(records)
    }
}

/// The search order's key of each row of logs `rows`: its timestamp and record id.
fn cursors(rows: &arrow::array::RecordBatch) -> Result<Vec<Cursor>, QueryError> {
    use arrow::array::AsArray;
    use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
    let column = |name: &str| {
        rows.column_by_name(name)
            .ok_or_else(|| QueryError::Internal(format!("logs rows without {name}")))
    };
    let times = column("timestamp")?.as_primitive_opt::<TimestampMicrosecondType>();
    let ids = column("record_id")?.as_primitive_opt::<Int64Type>();
    let (Some(times), Some(ids)) = (times, ids) else {
        return Err(QueryError::Internal("logs rows of unexpected types".into()));
    };
    Ok(times
        .values()
        .iter()
        .zip(ids.values().iter())
        .map(|(&timestamp, &id)| Cursor {
            timestamp,
            record_id: id as u64,
        })
        .collect())
}

fn dropped_message(why: &str) -> String {
    format!("live tail stopped: {why}")
}

/// Feeds `tx` with the matching records of this process's commits until the receiver
/// is gone, or drops the subscriber when it falls behind.
fn follow_local_commits(
    storage: &Storage,
    subscription: Subscription,
    tx: mpsc::Sender<TailItem>,
    dropped: Counter,
) {
    let mut commits = storage.subscribe_commits();
    let subscription = Arc::new(subscription);
    tokio::spawn(async move {
        loop {
            let file = tokio::select! {
                _ = tx.closed() => return,
                next = commits.recv() => next,
            };
            let file = match file {
                Ok(file) if file.signal == Signal::Logs => file,
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(files)) => {
                    dropped.inc();
                    let why = format!("it fell {files} files behind the commits");
                    let _ = tx.try_send(TailItem::Dropped(dropped_message(&why)));
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let matcher = subscription.clone();
            let matched = tokio::task::spawn_blocking(move || matcher.matching(&file)).await;
            let records = match matched {
                Ok(Ok(records)) => records,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "live tail: a committed file could not be matched");
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "live tail: matcher panicked");
                    continue;
                }
            };
            for record in records {
                // The last slot is kept for the message that says why the stream ends.
                if tx.capacity() <= 1 {
                    dropped.inc();
                    let why = format!("it did not read {SUBSCRIBER_BUFFER} buffered records");
                    let _ = tx.try_send(TailItem::Dropped(dropped_message(&why)));
                    return;
                }
                if tx.send(TailItem::Record(record)).await.is_err() {
                    return;
                }
            }
        }
    });
}

impl TailSource {
    /// A request to an ingest node, with the cluster's (or the tenant's) `authorization`.
    pub(crate) fn ingest_request<T>(&self, message: T) -> Result<tonic::Request<T>, QueryError> {
        let mut call = tonic::Request::new(message);
        if let Some(authorization) = &self.authorization {
            let value = authorization
                .parse()
                .map_err(|_| QueryError::Internal("authorization header".into()))?;
            call.metadata_mut().insert("authorization", value);
        }
        Ok(call)
    }

    /// Starts a subscription; errors (a bad query, unreachable ingest nodes) come before
    /// any record.
    pub async fn subscribe(
        &self,
        query: &str,
        filters: Vec<(String, String)>,
    ) -> Result<Subscriber, QueryError> {
        let subscription = Subscription::new(query, filters)?;
        if self.ingest_nodes.is_empty() && !self.local_commits {
            return Err(QueryError::Misconfigured(
                "live tail on a query node needs --ingest-nodes (the gRPC addresses of the ingest nodes)".into(),
            ));
        }
        let slot = self.slots.take()?;
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER + 1);
        if self.ingest_nodes.is_empty() {
            follow_local_commits(&self.storage, subscription, tx, self.dropped.clone());
            return Ok(Subscriber { rx, _slot: slot });
        }
        let request = SubscribeRequest {
            query: subscription.search.query.clone(),
            filters: subscription
                .search
                .filters
                .iter()
                .map(|(field, value)| Filter {
                    field: field.clone(),
                    value: value.clone(),
                })
                .collect(),
        };
        for node in &self.ingest_nodes {
            let call = self.ingest_request(request.clone())?;
            let channel = connect(node, self.tls.as_ref()).await?;
            let mut client = TailClient::new(channel);
            let stream = client.subscribe(call).await.map_err(|e| {
                if e.code() == tonic::Code::ResourceExhausted {
                    QueryError::Overloaded(format!("ingest node {node}: {}", e.message()))
                } else {
                    unreachable(node, &e)
                }
            })?;
            tokio::spawn(forward_remote(
                stream.into_inner(),
                tx.clone(),
                node.clone(),
            ));
        }
        Ok(Subscriber { rx, _slot: slot })
    }
}

fn unreachable(node: &str, e: &dyn std::fmt::Display) -> QueryError {
    tracing::warn!(node, error = %e, "ingest node unreachable");
    QueryError::Misconfigured("an ingest node of --ingest-nodes is unreachable".into())
}

/// A connection to one of `--ingest-nodes` (TLS for `https://` ones).
pub(crate) async fn connect(
    node: &str,
    tls: Option<&tonic::transport::ClientTlsConfig>,
) -> Result<tonic::transport::Channel, QueryError> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(node.to_string())
        .map_err(|e| unreachable(node, &e))?;
    if let Some(tls) = tls
        && node.starts_with("https://")
    {
        endpoint = endpoint
            .tls_config(tls.clone())
            .map_err(|e| unreachable(node, &e))?;
    }
    endpoint.connect().await.map_err(|e| unreachable(node, &e))
}

/// Copies one ingest node's tail stream into the subscriber's buffer.
async fn forward_remote(
    mut stream: tonic::Streaming<TailEvent>,
    tx: mpsc::Sender<TailItem>,
    node: String,
) {
    loop {
        let event = tokio::select! {
            _ = tx.closed() => return,
            event = stream.message() => event,
        };
        let item = match event {
            Ok(Some(TailEvent {
                event: Some(tail_event::Event::RecordJson(json)),
            })) => match serde_json::from_str(&json) {
                Ok(record) => TailItem::Record(record),
                Err(e) => {
                    tracing::warn!(node, error = %e, "live tail: unreadable record from an ingest node");
                    continue;
                }
            },
            Ok(Some(TailEvent {
                event: Some(tail_event::Event::Dropped(why)),
            })) => TailItem::Dropped(why),
            Ok(Some(TailEvent { event: None })) => continue,
            Ok(None) | Err(_) => {
                TailItem::Dropped(dropped_message("the connection to an ingest node ended"))
            }
        };
        let last = matches!(item, TailItem::Dropped(_));
        if tx.capacity() <= 1 && !last {
            let _ = tx.try_send(TailItem::Dropped(dropped_message(&format!(
                "it did not read {SUBSCRIBER_BUFFER} buffered records"
            ))));
            return;
        }
        if tx.send(item).await.is_err() || last {
            return;
        }
    }
}

/// The subscriber's items until the first `Dropped` (which says why the stream ends), or
/// until `closing`: then a `Dropped` saying that `who` is shutting down.
/// The subscriber's slot goes with the stream: back when it ends or its reader leaves.
fn until_closing(
    subscriber: Subscriber,
    closing: CancellationToken,
    who: &'static str,
) -> impl Stream<Item = TailItem> {
    futures::stream::unfold(Some((subscriber, closing)), move |state| async move {
        let (mut subscriber, closing) = state?;
        let item = tokio::select! {
            biased;
            _ = closing.cancelled() => {
                TailItem::Dropped(dropped_message(&format!("{who} is shutting down")))
            }
            item = subscriber.rx.recv() => item?,
        };
        let next = match item {
            TailItem::Dropped(_) => None,
            TailItem::Record(_) => Some((subscriber, closing)),
        };
        Some((item, next))
    })
}

/// At most this many records are sent when a tail resumes; past them, a `missed` event
/// says from when to search for the rest.
pub const MAX_RESUMED_RECORDS: usize = 10_000;

/// Where a tail's stream starts, and what it sends before its live records: for a client
/// that resumes, the records committed after the last one it received, oldest first, and
/// why some are not among them.
#[derive(Debug)]
pub struct Resumed {
    /// The position the stream starts from (the client's `Last-Event-ID`, else now).
    pub(crate) after: Cursor,
    pub(crate) records: Vec<Value>,
    pub(crate) missed: Option<Missed>,
}

/// Matching records committed while a tail was away that its resume does not send: past
/// [`MAX_RESUMED_RECORDS`], a search from `from` (oldest first) finds them.
#[derive(Debug, Clone, PartialEq)]
pub struct Missed {
    pub message: String,
    /// The timestamp (RFC 3339) of the first record not sent.
    pub from: String,
}

impl Resumed {
    /// A new subscription: it starts now.
    pub fn fresh() -> Self {
        Self {
            after: Cursor {
                timestamp: crate::time::now_micros(),
                record_id: 0,
            },
            records: Vec::new(),
            missed: None,
        }
    }
}

/// The records matching `query` and `filters` that follow `after` in time order, as a
/// client that received `after` and then lost its stream (a restart of the server, a
/// broken connection, a drop for falling behind) missed them: a forward search, a page at
/// a time, of at most `max_records` ([`MAX_RESUMED_RECORDS`] in the API).
///
/// A record committed while the client was away with a timestamp before `after` (a
/// collector that delivers late) is not found: it was not followed live either.
pub async fn resume(
    storage: &Arc<Storage>,
    query: &str,
    filters: Vec<(String, String)>,
    after: Cursor,
    max_records: usize,
) -> Result<Resumed, QueryError> {
    let mut resumed = Resumed {
        after: after.clone(),
        records: Vec::new(),
        missed: None,
    };
    let mut search = LogSearch {
        query: query.to_string(),
        filters,
        start_micros: after.timestamp,
        end_micros: i64::MAX,
        limit: RESUME_PAGE_ROWS.min(max_records + 1),
        cursor: Some(after),
        forward: true,
    };
    loop {
        let page = crate::api::log_page(storage, &search).await?;
        for record in page.rows {
            if resumed.records.len() == max_records {
                let from = record["timestamp"].as_str().unwrap_or_default().to_owned();
                resumed.missed = Some(Missed {
                    message: format!(
                        "more than {max_records} records were committed while the live tail \
                         was away; the rest are found by a search from {from} \
                         (direction=forward)"
                    ),
                    from,
                });
                return Ok(resumed);
            }
            resumed.records.push(record);
        }
        match page.next_cursor {
            Some(next) => search.cursor = Some(Cursor::decode(&next)?),
            None => return Ok(resumed),
        }
    }
}

/// Rows a page of a resuming search holds (the API's most).
const RESUME_PAGE_ROWS: usize = 5_000;

/// The subscriber's records as Server-Sent Events, after the `resumed` ones: each record a
/// `message` event with the row as JSON; a `missed` event when `resumed` is not all that
/// was missed; a `dropped` event, then the end, when it is disconnected.
///
/// Event ids are positions to resume from (`Last-Event-ID`): the stream opens with an
/// event of its starting position alone (so a client that receives no record before it
/// reconnects still resumes from when it subscribed), and each record's id is the newest
/// cursor sent so far (records come in commit order, which is not quite time order: a
/// late record's own cursor would resume before records the client already has), but not
/// past the time it is sent: a record stamped ahead (a clock up to a day fast, which ingest
/// allows) would make a resume skip everything until then; this way it is sent again.
///
/// A live record that `resumed` already holds (committed while the resuming search ran) is
/// sent once.
pub fn sse(
    resumed: Resumed,
    subscriber: Subscriber,
    closing: CancellationToken,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let sent: std::collections::HashSet<String> = resumed
        .records
        .iter()
        .filter_map(|record| Some(record["cursor"].as_str()?.to_owned()))
        .collect();
    let live = until_closing(subscriber, closing, "the server").filter(move |item| {
        let again = matches!(item, TailItem::Record(record)
            if record["cursor"].as_str().is_some_and(|cursor| sent.contains(cursor)));
        std::future::ready(!again)
    });
    let start = Event::default().id(resumed.after.encode());
    let missed = resumed.missed.map(|missed| {
        let data = serde_json::json!({"message": missed.message, "from": missed.from});
        Event::default().event("missed").data(data.to_string())
    });
    let mut newest = resumed.after;
    let mut record_event = move |record: Value| {
        if let Some(cursor) = record["cursor"]
            .as_str()
            .and_then(|c| Cursor::decode(c).ok())
        {
            let now = Cursor {
                timestamp: crate::time::now_micros(),
                record_id: 0,
            };
            newest = newest.clone().max(cursor.min(now));
        }
        Event::default()
            .id(newest.encode())
            .data(record.to_string())
    };
    let records: Vec<Event> = resumed.records.into_iter().map(&mut record_event).collect();
    let events = futures::stream::iter(std::iter::once(start).chain(records).chain(missed))
        .chain(live.map(move |item| match item {
            TailItem::Record(record) => record_event(record),
            TailItem::Dropped(why) => Event::default().event("dropped").data(message_json(&why)),
        }))
        .map(Ok);
    Sse::new(events).keep_alive(KeepAlive::default())
}

fn message_json(message: &str) -> String {
    serde_json::json!({ "message": message }).to_string()
}

/// The gRPC side, served by ingest nodes: the same matching, over their own commits — with
/// tenants, only the commits of the tenant whose token the subscriber presented (the OTLP
/// port's admission puts that [`Tenant`] in the request's extensions).
#[derive(Clone)]
pub struct TailService {
    stores: Arc<Stores>,
    dropped: Counter,
    closing: CancellationToken,
    slots: TailSlots,
}

impl TailService {
    /// `closing` ends every stream when the server shuts down.
    pub fn server(
        stores: Arc<Stores>,
        dropped: Counter,
        closing: CancellationToken,
        slots: TailSlots,
    ) -> TailServer<Self> {
        TailServer::new(Self {
            stores,
            dropped,
            closing,
            slots,
        })
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<TailEvent, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl Tail for TailService {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: tonic::Request<SubscribeRequest>,
    ) -> Result<tonic::Response<EventStream>, tonic::Status> {
        let tenant = request.extensions().get::<Tenant>();
        let storage = self
            .stores
            .scoped(tenant)
            .cloned()
            .ok_or_else(|| tonic::Status::unauthenticated("no tenant's token"))?;
        let request = request.into_inner();
        let filters = request
            .filters
            .into_iter()
            .map(|f| (f.field, f.value))
            .collect();
        let subscription = Subscription::new(&request.query, filters)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let slot = self
            .slots
            .take()
            .map_err(|e| tonic::Status::resource_exhausted(e.to_string()))?;
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER + 1);
        follow_local_commits(&storage, subscription, tx, self.dropped.clone());
        // A query node passes this on to its own subscribers: name which server it was.
        let subscriber = Subscriber { rx, _slot: slot };
        let events =
            until_closing(subscriber, self.closing.clone(), "an ingest node").map(|item| {
                let event = match item {
                    TailItem::Record(record) => tail_event::Event::RecordJson(record.to_string()),
                    TailItem::Dropped(why) => tail_event::Event::Dropped(why),
                };
                Ok(TailEvent { event: Some(event) })
            });
        Ok(tonic::Response::new(Box::pin(events)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    /// A subscriber fed by the sender.
    fn subscriber() -> (mpsc::Sender<TailItem>, Subscriber) {
        let slots = TailSlots::new(1, &mut Registry::default());
        let (tx, rx) = mpsc::channel(8);
        let slot = slots.take().unwrap();
        (tx, Subscriber { rx, _slot: slot })
    }

    /// The whole event stream of [`sse`], which ends after a `dropped` item.
    async fn stream_text(resumed: Resumed, subscriber: Subscriber) -> String {
        let response = sse(resumed, subscriber, CancellationToken::new()).into_response();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_resumed_stream_sends_each_record_once_with_the_newest_cursor_as_its_id() {
        let (tx, subscriber) = subscriber();
        let record = |cursor: &str| serde_json::json!({"body": "x", "cursor": cursor});
        let resumed = Resumed {
            after: Cursor::decode("1.0").unwrap(),
            records: vec![record("1.1"), record("2.1")],
            missed: Some(Missed {
                message: "more were committed".into(),
                from: "2026-12-07T10:00:00Z".into(),
            }),
        };
        // "2.1" was committed while the resuming search ran, which found it too; "1.5" is a
        // late record, older than records sent before it.
        for cursor in ["2.1", "2.2", "1.5", "3.1"] {
            tx.send(TailItem::Record(record(cursor))).await.unwrap();
        }
        tx.send(TailItem::Dropped("stopped".into())).await.unwrap();
        let body = stream_text(resumed, subscriber).await;
        let message = |cursor: &str, id: &str| format!("id: {id}\ndata: {}\n\n", record(cursor));
        assert_eq!(
            body,
            [
                "id: 1.0\n\n".into(),
                message("1.1", "1.1"),
                message("2.1", "2.1"),
                "event: missed\ndata: {\"from\":\"2026-12-07T10:00:00Z\",\"message\":\"more were committed\"}\n\n".into(),
                message("2.2", "2.2"),
                message("1.5", "2.2"),
                message("3.1", "3.1"),
                "event: dropped\ndata: {\"message\":\"stopped\"}\n\n".into(),
            ]
            .concat()
        );
    }

    #[tokio::test]
    async fn a_record_stamped_ahead_does_not_move_the_resume_position_past_now() {
        let (tx, subscriber) = subscriber();
        let ahead = crate::time::now_micros() + 3_600_000_000;
        let record = serde_json::json!({"body": "x", "cursor": format!("{ahead}.1")});
        tx.send(TailItem::Record(record)).await.unwrap();
        tx.send(TailItem::Dropped("stopped".into())).await.unwrap();
        let before = crate::time::now_micros();
        let body = stream_text(Resumed::fresh(), subscriber).await;
        let after = crate::time::now_micros();
        let ids: Vec<i64> = body
            .lines()
            .filter_map(|line| line.strip_prefix("id: "))
            .map(|id| Cursor::decode(id).unwrap().timestamp)
            .collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(
            ids.iter()
                .all(|&id| id >= before - 1_000_000 && id <= after),
            "{ids:?}"
        );
    }
}
