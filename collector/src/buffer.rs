//! The on-disk buffer between the sources and the shipper: a queue of records in segment
//! files, each record fsynced before `append` returns, so whatever a source hands it
//! survives a SIGKILL and a file checkpoint may advance past it.
//!
//! A record on disk is `MAGIC | len u32 | crc32 u32 | body`, body = `kind u8 | records u32 |
//! ranges | payload` (ranges: which byte ranges of which source files the record holds, so a
//! corrupt record's lines can be read again from the file). The payload is compressed as
//! it is appended, with the `compression` ingest is sent (the kind byte's high bits say
//! which): it is then sent as it is, never compressed again per attempt nor held in memory
//! uncompressed while in flight, and the buffer holds several times more. The shipper reads records in
//! order and acknowledges them once ingest has; acknowledged segments are deleted. A
//! record that fails its checksum is skipped and counted, and reading resumes at the next
//! `MAGIC`: corruption never stops the collector. The total size is bounded by
//! `max_bytes`; when full, `block` makes appenders wait and `drop_oldest` deletes the
//! oldest segment, counting its records.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::CollectorError;
use crate::config::{BufferConfig, Compression, WhenFull};
use crate::telemetry::CollectorMetrics;

const MAGIC: &[u8; 4] = b"PHB1";
const HEADER: usize = 12;
/// Larger lengths are corruption, not records: no source makes records this big.
const MAX_RECORD: usize = 64 * 1024 * 1024;
const ACK_FILE: &str = "ack";
/// How long an append waits for room before it tries again.
const FULL_RETRY: std::time::Duration = std::time::Duration::from_secs(1);
const SEGMENT_SUFFIX: &str = ".seg";
/// Failed reads of a segment in a row before the rest of it is skipped, and the wait
/// between them.
const READ_ATTEMPTS: u32 = 10;
const READ_RETRY: std::time::Duration = if cfg!(test) {
    std::time::Duration::from_millis(10)
} else {
    std::time::Duration::from_secs(1)
};

/// What a record's payload is: an encoded OTLP export request of one signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Logs = 1,
    Traces = 2,
    Metrics = 3,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Logs),
            2 => Some(Kind::Traces),
            3 => Some(Kind::Metrics),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Logs => "logs",
            Kind::Traces => "traces",
            Kind::Metrics => "metrics",
        }
    }
}

impl Compression {
    /// The kind byte's high bits; records of a collector without compression have none.
    fn bits(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Zstd => 0x10,
            Compression::Gzip => 0x20,
        }
    }

    fn from_bits(bits: u8) -> Option<Compression> {
        match bits {
            0 => Some(Compression::None),
            0x10 => Some(Compression::Zstd),
            0x20 => Some(Compression::Gzip),
            _ => None,
        }
    }
}

/// The zstd level of buffer records: level 1 holds the collector's CPU and its compression
/// context (a few hundred KiB for a batch-sized input) lowest; logs still shrink ~8x.
const ZSTD_LEVEL: i32 = 1;

/// Compresses payloads on append, reusing its context and output buffer.
pub(crate) struct Packer {
    compression: Compression,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    out: Vec<u8>,
}

impl Packer {
    pub(crate) fn new(compression: Compression) -> Result<Packer, CollectorError> {
        let zstd = match compression {
            Compression::Zstd => Some(
                zstd::bulk::Compressor::new(ZSTD_LEVEL)
                    .map_err(|e| CollectorError::Buffer(format!("zstd: {e}")))?,
            ),
            _ => None,
        };
        Ok(Packer {
            compression,
            zstd,
            out: Vec::new(),
        })
    }

    /// The payload as it is stored and sent.
    pub(crate) fn pack<'a>(&'a mut self, payload: &'a [u8]) -> Result<&'a [u8], CollectorError> {
        let failed = |e: std::io::Error| CollectorError::Buffer(format!("compressing: {e}"));
        self.out.clear();
        match (self.compression, &mut self.zstd) {
            (Compression::None, _) => return Ok(payload),
            (Compression::Zstd, Some(zstd)) => {
                self.out
                    .reserve(zstd::zstd_safe::compress_bound(payload.len()));
                zstd.compress_to_buffer(payload, &mut self.out)
                    .map_err(failed)?;
            }
            (Compression::Zstd, None) => unreachable!("a zstd packer has its context"),
            (Compression::Gzip, _) => {
                let mut gzip =
                    flate2::write::GzEncoder::new(&mut self.out, flate2::Compression::default());
                gzip.write_all(payload).map_err(failed)?;
                gzip.finish().map_err(failed)?;
            }
        }
        // One large batch must not keep a large buffer for good.
        if self.out.capacity() > 4 * payload.len().max(64 * 1024) {
            self.out.shrink_to(self.out.len());
        }
        Ok(&self.out)
    }
}

/// A record's payload as the sources appended it (the shipper sends the stored bytes, and
/// reads them back only to cut an export ingest refused as too large).
pub fn unpack(encoding: Compression, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    match encoding {
        Compression::None => Ok(payload.to_vec()),
        Compression::Zstd => zstd::bulk::decompress(payload, MAX_RECORD),
        Compression::Gzip => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(payload)
                .take(MAX_RECORD as u64)
                .read_to_end(&mut out)?;
            Ok(out)
        }
    }
}

/// Bytes `start..end` of the source file with this fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceRange {
    pub fingerprint: u64,
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub kind: Kind,
    /// Log records, spans or metric data points in the payload.
    pub records: u32,
    pub ranges: Vec<SourceRange>,
    /// An encoded OTLP export request compressed with `encoding`, sent as it is.
    pub payload: bytes::Bytes,
    pub encoding: Compression,
    /// Where the next record starts; acknowledge with this.
    pub next: Position,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    bytes: u64,
}

struct State {
    segments: VecDeque<Segment>,
    /// The last segment's file; `None` while the disk cannot create it (created at the
    /// next append).
    writer: Option<File>,
    total_bytes: u64,
    /// The first record not yet handed out.
    read: Position,
    reader: Option<(u64, File)>,
    /// The first record not yet acknowledged; it and everything after it is kept.
    acked: Position,
    records: u64,
    /// Per source file, the end of the furthest range acknowledged (the shipper's, kept
    /// with the acknowledged position so the two never disagree after a crash).
    ledger: HashMap<u64, u64>,
    /// Segments dropped under `drop_oldest`, so far.
    drops: u64,
    /// The disk refused a write to the segment being written.
    refused: bool,
}

pub struct DiskBuffer {
    dir: PathBuf,
    config: BufferConfig,
    /// Locked apart from `state`, so the shipper reads while a source compresses.
    packer: Mutex<Packer>,
    state: Mutex<State>,
    /// Signalled when a record is appended.
    appended: Notify,
    /// Signalled when space is freed.
    freed: Notify,
    metrics: Arc<CollectorMetrics>,
}

/// The buffer is full and its policy is `block`.
#[derive(Debug)]
pub struct Full;

/// The disk failed a read of this segment.
#[derive(Debug)]
pub struct ReadError {
    pub segment: u64,
    pub error: std::io::Error,
}

impl DiskBuffer {
    /// Opens the buffer in `config.dir`; records appended from now on are compressed
    /// with `compression` (records already there keep theirs).
    pub fn open(
        config: &BufferConfig,
        compression: Compression,
        metrics: Arc<CollectorMetrics>,
    ) -> Result<Arc<DiskBuffer>, CollectorError> {
        let dir = config.dir.clone();
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        let mut ids: Vec<u64> = fs::read_dir(&dir)
            .map_err(|e| io_error(&dir, e))?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                name.strip_suffix(SEGMENT_SUFFIX)?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        // Past every name there, readable or not: a name taken by an entry that cannot be
        // looked at could never be created.
        let writer_id = ids.last().map_or(1, |id| id + 1);
        let mut segments = VecDeque::new();
        let mut total_bytes = 0;
        let mut records = 0;
        for id in ids {
            let path = segment_path(&dir, id);
            // A segment that cannot be looked at (a dangling link, an I/O error) is left
            // out, counted, rather than a reason not to start: a restart would find it again.
            let bytes = match fs::metadata(&path) {
                Ok(metadata) => metadata.len(),
                Err(error) => {
                    metrics.buffer_segments_skipped.inc();
                    tracing::warn!(path = %path.display(), %error, "unreadable buffer segment skipped");
                    continue;
                }
            };
            records += count_records(&path).0;
            total_bytes += bytes;
            segments.push_back(Segment { id, bytes });
        }
        let (acked, ledger) = match read_ack(&dir) {
            Some((ack, ledger)) if segments.iter().any(|s| s.id == ack.segment) => (ack, ledger),
            other => (
                Position {
                    segment: segments.front().map_or(0, |s| s.id),
                    offset: 0,
                },
                other.map(|(_, ledger)| ledger).unwrap_or_default(),
            ),
        };
        // Never append to a segment of an earlier run: a torn tail stays where it is.
        // A disk too full to create it (no inodes left) must not stop the collector: the
        // segments already there are sent, and their room makes the new one possible.
        let writer = create_segment(&dir, writer_id)
            .inspect_err(|error| metrics.disk_write_failed("segment", error))
            .ok();
        let refused = writer.is_none();
        segments.push_back(Segment {
            id: writer_id,
            bytes: 0,
        });
        let buffer = DiskBuffer {
            dir,
            config: config.clone(),
            packer: Mutex::new(Packer::new(compression)?),
            state: Mutex::new(State {
                segments,
                writer,
                total_bytes,
                read: acked,
                reader: None,
                acked,
                records,
                ledger,
                drops: 0,
                refused,
            }),
            appended: Notify::new(),
            freed: Notify::new(),
            metrics,
        };
        buffer.publish(&buffer.lock());
        Ok(Arc::new(buffer))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Appends and fsyncs one record; when the buffer is full (`when_full: block`, a full
    /// disk) waits until there is room, or until `stop`: false when it stopped without
    /// appending (the caller keeps what it has, or leaves it where it came from).
    pub async fn append(
        &self,
        kind: Kind,
        records: u32,
        ranges: &[SourceRange],
        payload: &[u8],
        stop: &CancellationToken,
    ) -> Result<bool, CollectorError> {
        loop {
            let freed = self.freed.notified();
            match self.try_append(kind, records, ranges, payload)? {
                Ok(()) => return Ok(true),
                Err(Full) if stop.is_cancelled() => return Ok(false),
                // Room comes back when the shipper frees a segment, or, on a full disk,
                // when something else frees space: look again at least every second.
                Err(Full) => {
                    tokio::select! {
                        _ = tokio::time::timeout(FULL_RETRY, freed) => {}
                        () = stop.cancelled() => {}
                    }
                }
            }
        }
    }

    /// Appends and fsyncs one record, or says the buffer is full (policy `block`, or a
    /// disk that refuses the write: no space, an I/O error).
    pub fn try_append(
        &self,
        kind: Kind,
        records: u32,
        ranges: &[SourceRange],
        payload: &[u8],
    ) -> Result<Result<(), Full>, CollectorError> {
        let mut packer = lock(&self.packer);
        let encoding = packer.compression;
        let payload = packer.pack(payload)?;
        let header = encode_header(kind, encoding, records, ranges, payload);
        let size = (header.len() + payload.len()) as u64;
        let mut state = self.lock();
        while state.total_bytes + size > self.config.max_bytes {
            match self.config.when_full {
                WhenFull::Block => {
                    self.metrics.buffer_full.inc();
                    return Ok(Err(Full));
                }
                WhenFull::DropOldest => {
                    if !self.drop_oldest(&mut state) {
                        break;
                    }
                }
            }
        }
        let (writer_id, before) = state.segments.back().map_or((0, 0), |s| (s.id, s.bytes));
        let writer = match &mut state.writer {
            Some(writer) => writer,
            None => match create_segment(&self.dir, writer_id) {
                Ok(created) => state.writer.insert(created),
                Err(error) => {
                    self.metrics.disk_write_failed("segment", &error);
                    return Ok(Err(Full));
                }
            },
        };
        // Two writes, no copy of the payload; a record torn between them (power loss)
        // fails its checksum and is skipped like any corrupt record.
        let written = writer
            .write_all(&header)
            .and_then(|()| writer.write_all(payload))
            .and_then(|()| writer.sync_data());
        if let Err(error) = written {
            // A disk that refuses the write (full, failing) is a full buffer: the record
            // waits, is refused or is skipped as its source does then. Failing would stop
            // the collector, and a restart would find the same disk. What part of the
            // record was written is cut off again.
            let _ = writer.set_len(before);
            state.refused = true;
            let path = segment_path(&self.dir, writer_id);
            self.metrics
                .disk_write_failed("segment", &io_error(&path, error));
            return Ok(Err(Full));
        }
        let current = state.segments.back_mut().expect("the writer's segment");
        current.bytes += size;
        let rotate = current.bytes >= self.config.segment_bytes;
        state.total_bytes += size;
        state.records += 1;
        if rotate {
            let id = writer_id + 1;
            // A segment the disk cannot create now is created at the next append.
            self.start_segment(&mut state, id);
        }
        self.publish(&state);
        drop(state);
        self.appended.notify_waiters();
        Ok(Ok(()))
    }

    /// Starts writing segment `id`; a segment the disk cannot create now is created at the
    /// next try, and writing goes on in the current one.
    fn start_segment(&self, state: &mut State, id: u64) {
        match create_segment(&self.dir, id) {
            Ok(writer) => {
                state.writer = Some(writer);
                state.segments.push_back(Segment { id, bytes: 0 });
                state.refused = false;
            }
            Err(error) => self.metrics.disk_write_failed("segment", &error),
        }
    }

    /// Deletes the oldest segment that is not being written; false if there is none.
    fn drop_oldest(&self, state: &mut State) -> bool {
        if state.segments.len() < 2 {
            return false;
        }
        let oldest = state.segments.pop_front().expect("two segments");
        let path = segment_path(&self.dir, oldest.id);
        let (batches, dropped) = count_records(&path);
        self.remove(&path);
        state.total_bytes -= oldest.bytes;
        state.records = state.records.saturating_sub(batches);
        // Counted like every other drop: in log records, spans or data points, not batches.
        self.metrics.dropped("buffer_full", dropped);
        tracing::warn!(
            segment = oldest.id,
            batches,
            records = dropped,
            "buffer full: dropped its oldest segment (when_full: drop_oldest)"
        );
        let next = Position {
            segment: state.segments.front().map_or(0, |s| s.id),
            offset: 0,
        };
        if state.read.segment <= oldest.id {
            state.read = next;
            state.reader = None;
        }
        if state.acked.segment <= oldest.id {
            state.acked = next;
        }
        state.drops += 1;
        true
    }

    /// Deletes a segment that is done with. One the disk will not delete stays where it
    /// is (counted): a restart sends what it holds again, duplicates rather than a
    /// collector that stops.
    fn remove(&self, path: &Path) {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => self
                .metrics
                .disk_write_failed("segment", &io_error(path, error)),
        }
    }

    /// The next record not yet handed out, waiting for one if there is none.
    ///
    /// A read the disk fails (an I/O error, a segment deleted from under the collector) is
    /// counted and tried again every second; after `READ_ATTEMPTS` failures in a row (at
    /// once for a segment that is gone) the rest of that segment is skipped and counted.
    /// The lines of files it held are read again from the files while they are there, as
    /// for a corrupt record. A failing read never stops the shipper: the collector would
    /// go on reading files into a buffer nobody sends.
    pub async fn next(&self) -> Record {
        let mut failures = 0;
        loop {
            let appended = self.appended.notified();
            match self.try_next() {
                Ok(Some(record)) => return record,
                Ok(None) => {
                    failures = 0;
                    appended.await;
                }
                Err(error) => {
                    self.metrics.buffer_read_errors.inc();
                    failures += 1;
                    let gone = error.error.kind() == std::io::ErrorKind::NotFound;
                    if gone || failures >= READ_ATTEMPTS {
                        self.skip_unreadable(&error);
                        failures = 0;
                    } else {
                        tracing::warn!(segment = error.segment, error = %error.error, "reading the buffer failed; trying again in a second");
                        tokio::time::sleep(READ_RETRY).await;
                    }
                }
            }
        }
    }

    /// Reading goes on after what is in `failed.segment` now.
    fn skip_unreadable(&self, failed: &ReadError) {
        let mut state = self.lock();
        state.reader = None;
        if state.read.segment != failed.segment {
            return;
        }
        let Some(at) = state.segments.iter().position(|s| s.id == failed.segment) else {
            return;
        };
        if at + 1 == state.segments.len() {
            // The segment being written: what comes next goes to a new one, which can be
            // read (or, if the disk cannot create it now, after what this one holds).
            self.start_segment(&mut state, failed.segment + 1);
        }
        state.read = match state.segments.get(at + 1) {
            Some(next) => Position {
                segment: next.id,
                offset: 0,
            },
            None => Position {
                segment: failed.segment,
                offset: state.segments[at].bytes,
            },
        };
        self.metrics.buffer_segments_skipped.inc();
        tracing::error!(
            segment = failed.segment,
            error = %failed.error,
            "buffer segment unreadable: the rest of it is skipped (lines of files still on disk are read again)"
        );
    }

    /// The next record not yet handed out, if there is one.
    pub fn try_next(&self) -> Result<Option<Record>, ReadError> {
        let mut state = self.lock();
        loop {
            let Some(segment) = state.segments.iter().find(|s| s.id == state.read.segment) else {
                // The read position's segment is gone (dropped): go to the oldest.
                match state.segments.front() {
                    Some(front) if front.id > state.read.segment => {
                        state.read = Position {
                            segment: front.id,
                            offset: 0,
                        };
                        continue;
                    }
                    _ => return Ok(None),
                }
            };
            let segment_bytes = segment.bytes;
            let is_writer = state.segments.back().map(|s| s.id) == Some(segment.id);
            let (id, offset) = (state.read.segment, state.read.offset);
            if offset >= segment_bytes {
                if is_writer {
                    return Ok(None);
                }
                let next = state
                    .segments
                    .iter()
                    .find(|s| s.id > id)
                    .map(|s| s.id)
                    .expect("the writer's segment comes later");
                state.read = Position {
                    segment: next,
                    offset: 0,
                };
                continue;
            }
            let read = self
                .reader(&mut state, id)
                .and_then(|file| read_record(file, offset, segment_bytes));
            let read = read.map_err(|error| ReadError { segment: id, error })?;
            match read {
                ReadOutcome::Record(body, len) => {
                    let next = Position {
                        segment: id,
                        offset: offset + len,
                    };
                    state.read = next;
                    match decode_body(&body) {
                        Some((kind, encoding, records, ranges, payload_start)) => {
                            return Ok(Some(Record {
                                kind,
                                records,
                                ranges,
                                payload: bytes::Bytes::from(body).slice(payload_start..),
                                encoding,
                                next,
                            }));
                        }
                        None => self.corrupt(id, offset),
                    }
                }
                ReadOutcome::Corrupt { resume_at } => {
                    self.corrupt(id, offset);
                    state.read = Position {
                        segment: id,
                        offset: resume_at,
                    };
                }
            }
        }
    }

    fn corrupt(&self, segment: u64, offset: u64) {
        self.metrics.buffer_corrupt_records.inc();
        tracing::warn!(
            segment,
            offset,
            "corrupt buffer record skipped; reading resumes at the next record"
        );
    }

    fn reader<'a>(&self, state: &'a mut State, id: u64) -> std::io::Result<&'a mut File> {
        if state.reader.as_ref().map(|(open, _)| *open) != Some(id) {
            state.reader = Some((id, File::open(segment_path(&self.dir, id))?));
        }
        Ok(&mut state.reader.as_mut().expect("just opened").1)
    }

    /// Everything before `position` has reached ingest: remember that and delete the
    /// segments it covers.
    /// `ledger` is saved with it (see [`DiskBuffer::ledger`]).
    pub fn ack(&self, position: Position, records: u64, ledger: &HashMap<u64, u64>) {
        let mut state = self.lock();
        if position <= state.acked {
            return;
        }
        state.acked = position;
        state.records = state.records.saturating_sub(records);
        state.ledger.clone_from(ledger);
        // An acknowledgement the disk cannot save (full) still frees the segments before
        // it, which makes room; the next one saves it. After a crash meanwhile, the older
        // saved position sends records ingest already has again: duplicates, no loss.
        if let Err(error) = write_ack(&self.dir, position, ledger) {
            self.metrics.disk_write_failed("ack", &error);
        }
        // On a disk too full for the next record, the segment being written may hold the
        // only room there is: once all of it is acknowledged, a new one is started so it
        // can go (the loop below deletes it). Otherwise it goes on until it is full.
        if state.refused
            && let Some(last) = state.segments.back()
            && last.bytes > 0
            && position
                >= (Position {
                    segment: last.id,
                    offset: last.bytes,
                })
        {
            let id = last.id + 1;
            self.start_segment(&mut state, id);
        }
        let mut freed = false;
        while state.segments.len() > 1
            && (state.segments[0].id < position.segment
                || (state.segments[0].id == position.segment
                    && position.offset >= state.segments[0].bytes))
        {
            let done = state.segments.pop_front().expect("checked");
            // Its room is the disk's again only once no descriptor holds it.
            if state.reader.as_ref().is_some_and(|(id, _)| *id == done.id) {
                state.reader = None;
            }
            self.remove(&segment_path(&self.dir, done.id));
            state.total_bytes -= done.bytes;
            freed = true;
        }
        self.publish(&state);
        drop(state);
        if freed {
            self.freed.notify_waiters();
        }
    }

    /// The ledger saved with the last acknowledgement.
    pub fn ledger(&self) -> HashMap<u64, u64> {
        self.lock().ledger.clone()
    }

    /// How many segments `drop_oldest` has deleted; their ranges are gaps not to refill.
    pub fn drops(&self) -> u64 {
        self.lock().drops
    }

    /// Records appended but not yet acknowledged.
    pub fn pending_records(&self) -> u64 {
        self.lock().records
    }

    /// True when every appended record has been acknowledged.
    pub fn is_drained(&self) -> bool {
        let state = self.lock();
        let acked = state.acked;
        state.segments.iter().all(|s| {
            s.id < acked.segment
                || (s.id == acked.segment && s.bytes <= acked.offset)
                || s.bytes == 0
        })
    }

    fn publish(&self, state: &State) {
        self.metrics.buffer_bytes.set(state.total_bytes as i64);
        self.metrics.buffer_records.set(state.records as i64);
    }
}

/// Everything of a record before its payload (the checksum covers both).
fn encode_header(
    kind: Kind,
    encoding: Compression,
    records: u32,
    ranges: &[SourceRange],
    payload: &[u8],
) -> Vec<u8> {
    let mut meta = Vec::with_capacity(7 + ranges.len() * 24);
    meta.push(kind as u8 | encoding.bits());
    meta.extend_from_slice(&records.to_le_bytes());
    meta.extend_from_slice(&(ranges.len() as u16).to_le_bytes());
    for range in ranges {
        meta.extend_from_slice(&range.fingerprint.to_le_bytes());
        meta.extend_from_slice(&range.start.to_le_bytes());
        meta.extend_from_slice(&range.end.to_le_bytes());
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&meta);
    crc.update(payload);
    let mut header = Vec::with_capacity(HEADER + meta.len());
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&((meta.len() + payload.len()) as u32).to_le_bytes());
    header.extend_from_slice(&crc.finalize().to_le_bytes());
    header.extend_from_slice(&meta);
    header
}

/// `(kind, compression, records, ranges, where the payload starts)`.
fn decode_body(body: &[u8]) -> Option<(Kind, Compression, u32, Vec<SourceRange>, usize)> {
    let first = *body.first()?;
    let kind = Kind::from_byte(first & 0x0f)?;
    let encoding = Compression::from_bits(first & 0xf0)?;
    let records = u32::from_le_bytes(body.get(1..5)?.try_into().ok()?);
    let count = u16::from_le_bytes(body.get(5..7)?.try_into().ok()?) as usize;
    let ranges_end = 7 + count * 24;
    let raw = body.get(7..ranges_end)?;
    let ranges = raw
        .chunks_exact(24)
        .map(|chunk| SourceRange {
            fingerprint: u64::from_le_bytes(chunk[0..8].try_into().expect("8 bytes")),
            start: u64::from_le_bytes(chunk[8..16].try_into().expect("8 bytes")),
            end: u64::from_le_bytes(chunk[16..24].try_into().expect("8 bytes")),
        })
        .collect();
    Some((kind, encoding, records, ranges, ranges_end))
}

enum ReadOutcome {
    /// A record's body and its length on disk.
    Record(Vec<u8>, u64),
    Corrupt {
        resume_at: u64,
    },
}

fn read_record(file: &mut File, offset: u64, segment_bytes: u64) -> std::io::Result<ReadOutcome> {
    file.seek(SeekFrom::Start(offset))?;
    let mut header = [0u8; HEADER];
    let available = segment_bytes - offset;
    if available >= HEADER as u64 {
        file.read_exact(&mut header)?;
        let len = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        if &header[..4] == MAGIC && len <= MAX_RECORD && (HEADER + len) as u64 <= available {
            let mut body = vec![0u8; len];
            file.read_exact(&mut body)?;
            if crc32fast::hash(&body) == crc {
                return Ok(ReadOutcome::Record(body, (HEADER + len) as u64));
            }
        }
    }
    Ok(ReadOutcome::Corrupt {
        resume_at: find_magic(file, offset + 1, segment_bytes)?,
    })
}

/// The offset of the next `MAGIC` at or after `from`, or the segment's end.
fn find_magic(file: &mut File, from: u64, segment_bytes: u64) -> std::io::Result<u64> {
    file.seek(SeekFrom::Start(from))?;
    let mut window = vec![0u8; 64 * 1024];
    let mut base = from;
    while base < segment_bytes {
        let want = ((segment_bytes - base) as usize).min(window.len());
        file.read_exact(&mut window[..want])?;
        if let Some(at) = window[..want].windows(MAGIC.len()).position(|w| w == MAGIC) {
            return Ok(base + at as u64);
        }
        // Step back so a MAGIC split across two windows is still found.
        let step = (want as u64).saturating_sub(MAGIC.len() as u64 - 1).max(1);
        base += step;
        file.seek(SeekFrom::Start(base))?;
    }
    Ok(segment_bytes)
}

/// `(buffer records, the log records, spans or metrics they hold)` in a segment.
fn count_records(path: &Path) -> (u64, u64) {
    let Ok(mut file) = File::open(path) else {
        return (0, 0);
    };
    let Ok(bytes) = file.metadata().map(|m| m.len()) else {
        return (0, 0);
    };
    let mut offset = 0;
    let mut count = (0, 0);
    while offset < bytes {
        match read_record(&mut file, offset, bytes) {
            Ok(ReadOutcome::Record(body, len)) => {
                count.0 += 1;
                count.1 += decode_body(&body).map_or(0, |(_, _, records, _, _)| u64::from(records));
                offset += len;
            }
            Ok(ReadOutcome::Corrupt { resume_at }) => offset = resume_at,
            Err(_) => break,
        }
    }
    count
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}{SEGMENT_SUFFIX}"))
}

fn create_segment(dir: &Path, id: u64) -> Result<File, CollectorError> {
    let path = segment_path(dir, id);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| io_error(&path, e))?;
    // The new name must survive a crash too, or the records in it would vanish.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))?;
    Ok(file)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct AckFile {
    segment: u64,
    offset: u64,
    ledger: HashMap<u64, u64>,
}

/// A missing or unreadable ack file means "nothing acknowledged": records are sent
/// again (duplicates), never skipped.
fn read_ack(dir: &Path) -> Option<(Position, HashMap<u64, u64>)> {
    let text = fs::read(dir.join(ACK_FILE)).ok()?;
    let ack: AckFile = match serde_json::from_slice(&text) {
        Ok(ack) => ack,
        Err(error) => {
            tracing::warn!(%error, "unreadable buffer ack file; sending the whole buffer again");
            return None;
        }
    };
    let position = Position {
        segment: ack.segment,
        offset: ack.offset,
    };
    Some((position, ack.ledger))
}

/// Replaces `path` with `body`: written beside it (`<name>.tmp`), then renamed over it, so
/// a crash leaves the old or the new content, never half. Not fsynced: each file written
/// so (the ack, checkpoints) only has records sent again when it is older after a power
/// loss.
pub(crate) fn replace_file(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    fs::write(&tmp, body).and_then(|()| fs::rename(&tmp, path))
}

fn write_ack(
    dir: &Path,
    position: Position,
    ledger: &HashMap<u64, u64>,
) -> Result<(), CollectorError> {
    let path = dir.join(ACK_FILE);
    let body = serde_json::to_vec(&AckFile {
        segment: position.segment,
        offset: position.offset,
        ledger: ledger.clone(),
    })
    .expect("the ack serializes");
    replace_file(&path, &body).map_err(|e| io_error(&path, e))
}

fn io_error(path: &Path, error: std::io::Error) -> CollectorError {
    CollectorError::Buffer(format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, max_bytes: u64, when_full: WhenFull) -> BufferConfig {
        BufferConfig {
            dir: dir.to_path_buf(),
            max_bytes,
            when_full,
            segment_bytes: 64 * 1024,
        }
    }

    fn range(n: u64) -> SourceRange {
        SourceRange {
            fingerprint: 7,
            start: n * 10,
            end: n * 10 + 10,
        }
    }

    fn drain(buffer: &DiskBuffer) -> Vec<Record> {
        let mut out = Vec::new();
        while let Some(record) = buffer.try_next().unwrap() {
            buffer.ack(record.next, 1, &HashMap::new());
            out.push(record);
        }
        out
    }

    #[test]
    fn records_survive_a_restart_and_acked_ones_are_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = CollectorMetrics::new();
        let cfg = config(dir.path(), 1 << 20, WhenFull::Block);
        let buffer = DiskBuffer::open(&cfg, Compression::None, metrics.clone()).unwrap();
        for n in 0..5u64 {
            buffer
                .try_append(
                    Kind::Logs,
                    1,
                    &[range(n)],
                    format!("payload {n}").as_bytes(),
                )
                .unwrap()
                .unwrap();
        }
        let first = buffer.try_next().unwrap().unwrap();
        assert_eq!(&first.payload[..], b"payload 0");
        assert_eq!(first.ranges, vec![range(0)]);
        buffer.ack(first.next, 1, &HashMap::new());
        // Handed out but not acknowledged: read again after a restart.
        let _second = buffer.try_next().unwrap().unwrap();
        drop(buffer);
        let buffer = DiskBuffer::open(&cfg, Compression::None, metrics).unwrap();
        let payloads: Vec<_> = drain(&buffer)
            .into_iter()
            .map(|r| r.payload.to_vec())
            .collect();
        assert_eq!(
            payloads,
            (1..5)
                .map(|n| format!("payload {n}").into_bytes())
                .collect::<Vec<_>>()
        );
        assert!(buffer.is_drained());
    }

    /// A disk that refuses writes (`/dev/full` answers every one with ENOSPC, as a full
    /// disk does) is a full buffer: `try_append` says so, `append` waits (or gives up when
    /// told to stop) and finishes once the disk takes writes again, the segment being
    /// written is freed once all of it is acknowledged, and an acknowledgement that cannot
    /// be saved still frees its segments (the room a full disk needs). Before, each was an
    /// error that stopped the collector, and a restart found the same disk: a crash loop.
    #[tokio::test]
    async fn a_full_disk_is_a_full_buffer_until_it_has_room_again() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = CollectorMetrics::new();
        let cfg = config(dir.path(), 1 << 20, WhenFull::Block);
        let buffer = DiskBuffer::open(&cfg, Compression::None, metrics.clone()).unwrap();
        let full = || OpenOptions::new().append(true).open("/dev/full").unwrap();
        buffer
            .try_append(Kind::Logs, 1, &[], b"before")
            .unwrap()
            .unwrap();
        let segment = buffer.lock().writer.replace(full());
        assert!(matches!(
            buffer.try_append(Kind::Logs, 1, &[], b"refused"),
            Ok(Err(Full))
        ));
        assert_eq!(metrics.disk_write_errors("segment"), 1);
        let waiting = tokio::spawn({
            let buffer = buffer.clone();
            async move {
                let never = CancellationToken::new();
                buffer.append(Kind::Logs, 1, &[], b"waited", &never).await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        assert!(!waiting.is_finished(), "it waits while the disk is full");
        assert!(metrics.disk_write_errors("segment") >= 2, "and tries again");
        // One that is told to stop gives up, so a collector that is stopped exits.
        let stop = CancellationToken::new();
        let stopping = tokio::spawn({
            let (buffer, stop) = (buffer.clone(), stop.clone());
            async move { buffer.append(Kind::Logs, 1, &[], b"given up", &stop).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        stop.cancel();
        assert!(!stopping.await.unwrap().unwrap());
        buffer.lock().writer = segment;
        waiting.await.unwrap().unwrap();
        let payloads: Vec<_> = std::iter::from_fn(|| buffer.try_next().unwrap())
            .map(|r| (r.payload.to_vec(), r.next))
            .collect();
        assert_eq!(
            payloads.iter().map(|(p, _)| &p[..]).collect::<Vec<_>>(),
            [&b"before"[..], b"waited"]
        );
        // All of the segment being written is acknowledged after a refused write: it is
        // deleted, a new one taking its place, so a disk it filled has room again.
        buffer.ack(payloads[1].1, 2, &HashMap::new());
        assert!(!segment_path(dir.path(), 1).exists());
        assert!(segment_path(dir.path(), 2).exists());

        // Fill a segment, then acknowledge it while the ack cannot be saved.
        let big = vec![b'x'; 70 * 1024];
        buffer
            .try_append(Kind::Logs, 1, &[], &big)
            .unwrap()
            .unwrap();
        buffer
            .try_append(Kind::Logs, 1, &[], b"kept")
            .unwrap()
            .unwrap();
        let first = buffer.try_next().unwrap().unwrap();
        std::os::unix::fs::symlink("/dev/full", dir.path().join("ack.tmp")).unwrap();
        buffer.ack(first.next, 1, &HashMap::new());
        assert_eq!(metrics.disk_write_errors("ack"), 1);
        assert!(
            !segment_path(dir.path(), 2).exists(),
            "the acked segment is freed"
        );
        // A restart before the next ack is saved sends again what followed the last saved
        // one; nothing after the acked position is lost.
        fs::remove_file(dir.path().join("ack.tmp")).unwrap();
        drop(buffer);
        let buffer = DiskBuffer::open(&cfg, Compression::None, metrics).unwrap();
        let payloads: Vec<_> = drain(&buffer).into_iter().map(|r| r.payload).collect();
        assert_eq!(payloads, [&b"kept"[..]]);
    }

    /// A segment the disk fails to read (here a directory where the file was: every read
    /// is EISDIR) is tried again, then skipped and counted, and the records after it are
    /// sent; one deleted from under the collector is skipped at once. Before, the read
    /// error ended the shipper, and the collector went on filling a buffer it never sent.
    #[tokio::test]
    async fn an_unreadable_segment_is_skipped_and_counted_and_the_records_after_it_are_sent() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = CollectorMetrics::new();
        let cfg = config(dir.path(), 1 << 20, WhenFull::Block);
        let buffer = DiskBuffer::open(&cfg, Compression::None, metrics.clone()).unwrap();
        let big = vec![b'x'; 70 * 1024];
        // Segment 1: lost, big; segment 2: second, big; segment 3: third.
        for payload in [&b"lost"[..], &big, b"second", &big, b"third"] {
            buffer
                .try_append(Kind::Logs, 1, &[], payload)
                .unwrap()
                .unwrap();
        }
        drop(buffer);
        let first = segment_path(dir.path(), 1);
        fs::remove_file(&first).unwrap();
        fs::create_dir_all(first.join("not empty")).unwrap();
        let buffer = DiskBuffer::open(&cfg, Compression::None, metrics.clone()).unwrap();
        let next = || async {
            tokio::time::timeout(std::time::Duration::from_secs(10), buffer.next())
                .await
                .expect("a record")
        };
        let record = next().await;
        assert_eq!(record.payload, &b"second"[..]);
        assert_eq!(metrics.buffer_read_errors.get(), u64::from(READ_ATTEMPTS));
        assert_eq!(metrics.buffer_segments_skipped.get(), 1);
        // Acknowledging past it deletes it; a segment the disk will not delete (this
        // directory) is counted, not an error.
        buffer.ack(record.next, 1, &HashMap::new());
        assert_eq!(metrics.disk_write_errors("segment"), 1);

        // A segment deleted from under the collector is skipped at once.
        fs::remove_file(segment_path(dir.path(), 3)).unwrap();
        buffer
            .try_append(Kind::Logs, 1, &[], b"fourth")
            .unwrap()
            .unwrap();
        assert_eq!(next().await.payload, big);
        assert_eq!(next().await.payload, &b"fourth"[..]);
        assert_eq!(
            metrics.buffer_read_errors.get(),
            u64::from(READ_ATTEMPTS) + 1
        );
        assert_eq!(metrics.buffer_segments_skipped.get(), 2);

        // So is the one being written, and a new one takes its place, so what comes
        // next is sent. (Had the reader had it open, it would have read on from there.)
        drop(buffer);
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), 1 << 20, WhenFull::Block);
        let buffer = DiskBuffer::open(&cfg, Compression::None, metrics.clone()).unwrap();
        buffer
            .try_append(Kind::Logs, 1, &[], b"lost")
            .unwrap()
            .unwrap();
        fs::remove_file(segment_path(dir.path(), 1)).unwrap();
        buffer
            .try_append(Kind::Logs, 1, &[], b"lost too")
            .unwrap()
            .unwrap();
        let waited = tokio::time::timeout(std::time::Duration::from_millis(100), buffer.next());
        assert!(waited.await.is_err(), "nothing to read");
        assert_eq!(metrics.buffer_segments_skipped.get(), 3);
        buffer
            .try_append(Kind::Logs, 1, &[], b"sent")
            .unwrap()
            .unwrap();
        assert!(segment_path(dir.path(), 2).is_file());
        let record = buffer.try_next().unwrap().unwrap();
        assert_eq!(record.payload, &b"sent"[..]);
    }

    /// A disk that cannot create the segment to write (no inodes left) and an entry that
    /// cannot be looked at do not stop the buffer: what is there is sent, appends find the
    /// buffer full, and once the disk has room the segment is created. Before, the
    /// collector exited at start, and its restarts found the same disk: a crash loop with
    /// a buffer it never sent. (At start the segment is left uncreated just as below, when
    /// the disk refuses it; checked by hand on a tmpfs with `nr_inodes=4`.)
    #[test]
    fn a_disk_with_no_room_for_a_new_segment_still_opens_the_buffer_and_sends_it() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = CollectorMetrics::new();
        let cfg = config(dir.path(), 1 << 20, WhenFull::Block);
        let buffer = DiskBuffer::open(&cfg, Compression::None, metrics.clone()).unwrap();
        buffer
            .try_append(Kind::Logs, 1, &[], b"kept")
            .unwrap()
            .unwrap();
        drop(buffer);
        // An entry that cannot be looked at (a dangling link; an I/O error) is skipped,
        // and the segment to write is named past it.
        let dangling = dir.path().join("no such dir/x");
        std::os::unix::fs::symlink(&dangling, segment_path(dir.path(), 2)).unwrap();
        let buffer = DiskBuffer::open(&cfg, Compression::None, metrics.clone()).unwrap();
        assert_eq!(
            metrics.buffer_segments_skipped.get(),
            1,
            "the dangling entry"
        );
        let writer = segment_path(dir.path(), 3);
        assert!(writer.is_file());
        // The disk refuses to create the segment to write.
        fs::remove_file(&writer).unwrap();
        std::os::unix::fs::symlink(&dangling, &writer).unwrap();
        buffer.lock().writer = None;
        assert!(matches!(
            buffer.try_append(Kind::Logs, 1, &[], b"refused"),
            Ok(Err(Full))
        ));
        assert_eq!(
            metrics.disk_write_errors("segment"),
            1,
            "segment 3 not created"
        );
        let record = buffer.try_next().unwrap().unwrap();
        assert_eq!(record.payload, &b"kept"[..]);
        buffer.ack(record.next, 1, &HashMap::new());
        assert!(
            !segment_path(dir.path(), 1).exists(),
            "sent, and its room freed"
        );
        fs::remove_file(&writer).unwrap();
        buffer
            .try_append(Kind::Logs, 1, &[], b"written")
            .unwrap()
            .unwrap();
        assert!(writer.is_file());
        assert_eq!(
            drain(&buffer)
                .into_iter()
                .map(|r| r.payload)
                .collect::<Vec<_>>(),
            [&b"written"[..]]
        );
    }

    #[test]
    fn a_corrupt_record_is_skipped_and_counted_and_the_rest_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = CollectorMetrics::new();
        let cfg = config(dir.path(), 1 << 20, WhenFull::Block);
        let buffer = DiskBuffer::open(&cfg, Compression::None, metrics.clone()).unwrap();
        for n in 0..3u64 {
            buffer
                .try_append(Kind::Logs, 1, &[range(n)], &vec![b'a' + n as u8; 1000])
                .unwrap()
                .unwrap();
        }
        drop(buffer);
        let segment = segment_path(dir.path(), 1);
        let mut bytes = fs::read(&segment).unwrap();
        // Flip bytes inside the second record's payload, and garble the third's magic.
        let record_len = bytes.len() / 3;
        bytes[record_len + 500] ^= 0xff;
        bytes[2 * record_len] = b'X';
        fs::write(&segment, &bytes).unwrap();
        let buffer = DiskBuffer::open(&cfg, Compression::None, metrics.clone()).unwrap();
        let records = drain(&buffer);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].ranges, vec![range(0)]);
        // One corrupt stretch: the bad record and the one whose magic is gone with it.
        assert_eq!(metrics.buffer_corrupt_records.get(), 1);
        // Garbage at the very end, as a torn write leaves it, is skipped the same way.
        drop(buffer);
        let mut file = OpenOptions::new()
            .append(true)
            .open(segment_path(dir.path(), 2))
            .unwrap();
        file.write_all(b"PHB1\xff\xff").unwrap();
        drop(file);
        let buffer = DiskBuffer::open(&cfg, Compression::None, metrics.clone()).unwrap();
        buffer
            .try_append(Kind::Traces, 1, &[], b"after")
            .unwrap()
            .unwrap();
        let records = drain(&buffer);
        assert_eq!(
            records.iter().map(|r| r.kind).collect::<Vec<_>>(),
            vec![Kind::Traces]
        );
        // The first stretch again (nothing after it was acknowledged), and the torn tail.
        assert_eq!(metrics.buffer_corrupt_records.get(), 3);
    }

    #[test]
    fn full_buffer_blocks_or_drops_the_oldest_segment_and_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = CollectorMetrics::new();
        let payload = vec![0u8; 30 * 1024];
        let cfg = config(dir.path(), 256 * 1024, WhenFull::Block);
        let buffer = DiskBuffer::open(&cfg, Compression::None, metrics.clone()).unwrap();
        let mut accepted = 0;
        while buffer
            .try_append(Kind::Logs, 1, &[], &payload)
            .unwrap()
            .is_ok()
        {
            accepted += 1;
        }
        assert!((7..=8).contains(&accepted), "{accepted}");
        assert!(metrics.buffer_full.get() >= 1);
        assert!(dir_bytes(dir.path()) <= 256 * 1024);
        // Acknowledging frees whole segments, after which appends go through again.
        let first_segment: Vec<_> = (0..2)
            .map(|_| buffer.try_next().unwrap().unwrap())
            .collect();
        let third = buffer.try_next().unwrap().unwrap();
        buffer.ack(first_segment[1].next, 2, &HashMap::new());
        buffer.ack(third.next, 1, &HashMap::new());
        assert!(
            buffer
                .try_append(Kind::Logs, 1, &[], &payload)
                .unwrap()
                .is_ok()
        );
        drop(buffer);

        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), 256 * 1024, WhenFull::DropOldest);
        let buffer = DiskBuffer::open(&cfg, Compression::None, metrics.clone()).unwrap();
        for n in 0..20u8 {
            let mut payload = payload.clone();
            payload[0] = n;
            buffer
                .try_append(Kind::Logs, 1, &[], &payload)
                .unwrap()
                .unwrap();
        }
        assert!(dir_bytes(dir.path()) <= 256 * 1024);
        let kept: Vec<u8> = drain(&buffer).iter().map(|r| r.payload[0]).collect();
        assert_eq!(*kept.last().unwrap(), 19, "the newest records are kept");
        let dropped = metrics.dropped_count("buffer_full");
        assert_eq!(
            dropped + kept.len() as u64,
            20,
            "every record is kept or counted"
        );
    }

    #[test]
    fn payloads_are_stored_compressed_and_older_records_read_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = CollectorMetrics::new();
        let cfg = config(dir.path(), 1 << 20, WhenFull::Block);
        let text = b"2026-12-03T10:00:00Z level=info msg=\"request done\" status=200\n".repeat(400);
        // Each run appends one record with its compression; the first as a collector
        // without compression (or an older one) wrote them.
        for compression in [Compression::None, Compression::Zstd, Compression::Gzip] {
            let buffer = DiskBuffer::open(&cfg, compression, metrics.clone()).unwrap();
            buffer
                .try_append(Kind::Logs, 1, &[], &text)
                .unwrap()
                .unwrap();
        }
        let buffer = DiskBuffer::open(&cfg, Compression::Zstd, metrics.clone()).unwrap();
        let records = drain(&buffer);
        let encodings: Vec<_> = records.iter().map(|r| r.encoding).collect();
        assert_eq!(
            encodings,
            [Compression::None, Compression::Zstd, Compression::Gzip]
        );
        for record in &records {
            assert_eq!(unpack(record.encoding, &record.payload).unwrap(), text);
        }
        assert_eq!(records[0].payload.len(), text.len());
        assert!(records[1].payload.len() * 10 < text.len());
        assert!(records[2].payload.len() * 10 < text.len());
        assert_eq!(metrics.buffer_corrupt_records.get(), 0);
    }

    fn dir_bytes(dir: &Path) -> u64 {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    }
}
