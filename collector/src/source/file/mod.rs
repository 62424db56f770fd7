//! File tailing: globs re-evaluated every `glob_interval`, each file followed by
//! content identity (a fingerprint of its first line) so that rename+create rotation,
//! copytruncate, symlinks and restarts all resume at the right byte.
//!
//! One task owns every file and the batch being filled: it reads what is new, turns lines
//! into records ([`format`]), and when the batch is full or old enough appends it to the
//! disk buffer and only then moves the files' checkpoints past it. With
//! `when_full: block` that append waits, so reading stops and the lines wait in the
//! files. The shipper asks for byte ranges to be read again when their buffer record was
//! corrupt ([`Tailer::reread`]).

mod checkpoint;
pub(crate) mod format;
mod stack;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use porthole_proto::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
use porthole_proto::logs::LogRecord;
use prost::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use checkpoint::{Checkpoints, FileCheckpoint, fingerprint};
use format::{Assembled, Assembler};

use crate::CollectorError;
use crate::buffer::{DiskBuffer, Kind, SourceRange};
use crate::config::{Config, FileSource, ReadFrom};
use crate::redact::Redactor;
use crate::resource::{Identity, string_attribute};
use crate::severity;
use crate::telemetry::CollectorMetrics;

/// Bytes read from one file per pass, so one busy file cannot starve the others.
const READ_CHUNK: usize = 64 * 1024;
const MIN_POLL: Duration = Duration::from_millis(100);
const MAX_POLL: Duration = Duration::from_millis(500);
/// A file no longer matched by any glob (rotated away, deleted) is read to its end and
/// closed once it has been quiet this long.
const ROTATE_WAIT: Duration = Duration::from_secs(5);
/// A file's last line without its newline is sent as it is once the file has been quiet
/// this long (and when the file is closed or the collector stops): an app that crashed
/// mid-line, or wrote its last words without a newline, would otherwise never have them
/// read. A writer slower than this gets the rest of its line as a record of its own. The
/// OpenTelemetry Collector's filelog receiver waits 500 ms (`force_flush_period`).
const UNENDED_LINE_WAIT: Duration = ROTATE_WAIT;
/// The attribute a record cut to `max_line_bytes` carries (a bool, true).
pub const TRUNCATED_ATTRIBUTE: &str = "porthole.truncated";

struct Spec {
    include: Vec<String>,
    exclude: Vec<glob::Pattern>,
    source: FileSource,
    attributes: Vec<KeyValue>,
}

struct Tracked {
    spec: usize,
    fingerprint: u64,
    path: PathBuf,
    file: File,
    dev: u64,
    inode: u64,
    size: u64,
    /// Next byte to read.
    read_offset: u64,
    /// The line being read, not yet ended by `\n` (at most `max_line_bytes`).
    line: Vec<u8>,
    line_start: u64,
    line_cut: bool,
    assembler: Assembler,
    /// Everything before this byte is in the buffer (the saved checkpoint).
    committed: u64,
    matched: bool,
    /// Its inode was truncated or rewritten; it awaits a copy (copytruncate) or removal.
    stale: bool,
    last_data: Instant,
}

/// Where a file is and how it is read; the rest of a [`Tracked`] starts empty.
struct Opened {
    spec: usize,
    fingerprint: u64,
    path: PathBuf,
    file: File,
    dev: u64,
    inode: u64,
    size: u64,
}

impl Tracked {
    /// Follows `opened` from byte `offset`, with a fresh assembler for its source.
    fn new(
        opened: Opened,
        offset: u64,
        source: &FileSource,
        max_line_bytes: usize,
        now: Instant,
    ) -> Tracked {
        Tracked {
            spec: opened.spec,
            fingerprint: opened.fingerprint,
            path: opened.path,
            file: opened.file,
            dev: opened.dev,
            inode: opened.inode,
            size: opened.size,
            read_offset: offset,
            line: Vec::new(),
            line_start: offset,
            line_cut: false,
            assembler: Assembler::new(source.format, source.multiline.as_ref(), max_line_bytes),
            committed: offset,
            matched: true,
            stale: false,
            last_data: now,
        }
    }

    /// The first byte not yet part of a finished record.
    fn safe_offset(&self) -> u64 {
        let unfinished = if self.line.is_empty() && !self.line_cut {
            self.read_offset
        } else {
            self.line_start
        };
        self.assembler
            .pending_start()
            .map_or(unfinished, |start| start.min(unfinished))
    }
}

/// Bytes kept free in front of a batch's records for the export request's framing (the
/// pod's resource and the scope), so a full batch is framed in place, not copied.
const FRAMING_ROOM: usize = 4096;

/// Log records encoded as they are read (as the `log_records` field of one `ScopeLogs`),
/// so a batch costs its wire size in memory, not its decoded size.
#[derive(Default)]
struct Batch {
    /// `FRAMING_ROOM` bytes, then the records.
    encoded: Vec<u8>,
    records: usize,
    bytes: usize,
    started: Option<Instant>,
}

impl Batch {
    fn push(&mut self, record: &LogRecord, body_bytes: usize) {
        if self.records == 0 {
            if self.encoded.capacity() > 4 * 1024 * 1024 {
                self.encoded = Vec::new();
            }
            self.encoded.clear();
            self.encoded.resize(FRAMING_ROOM, 0);
        }
        prost::encoding::message::encode(2, record, &mut self.encoded);
        self.records += 1;
        self.bytes += body_bytes;
    }

    /// Adds the finished records of the file at `path` (empty ones are left out).
    fn add(&mut self, out: &mut Vec<Assembled>, path: &Path, attributes: &[KeyValue]) {
        let observed = now_nanos();
        for record in out.drain(..).filter(|r| !r.body.is_empty()) {
            let body_bytes = record.body.len();
            self.push(&log_record(record, path, attributes, observed), body_bytes);
        }
        if self.records > 0 && self.started.is_none() {
            self.started = Some(Instant::now());
        }
    }

    /// The whole export request and its record count; the batch is empty afterwards.
    fn take(&mut self, identity: &Identity) -> (Cow<'_, [u8]>, u32) {
        let records = std::mem::take(&mut self.records) as u32;
        self.bytes = 0;
        self.started = None;
        if records == 0 {
            return (Cow::Borrowed(&[]), 0);
        }
        let framing = logs_framing(identity, self.encoded.len() - FRAMING_ROOM);
        match FRAMING_ROOM.checked_sub(framing.len()) {
            Some(start) => {
                self.encoded[start..FRAMING_ROOM].copy_from_slice(&framing);
                (Cow::Borrowed(&self.encoded[start..]), records)
            }
            None => {
                let mut request = framing;
                request.extend_from_slice(&self.encoded[FRAMING_ROOM..]);
                (Cow::Owned(request), records)
            }
        }
    }
}

pub struct Tailer {
    specs: Vec<Spec>,
    files: Vec<Tracked>,
    saved: HashMap<u64, FileCheckpoint>,
    checkpoints: Checkpoints,
    first_scan: bool,
    max_line_bytes: usize,
    read_from: ReadFrom,
    glob_interval: Duration,
    max_open_files: usize,
    max_batch_records: usize,
    max_batch_bytes: usize,
    batch_timeout: Duration,
    batch: Batch,
    skipped_paths: HashSet<PathBuf>,
    read_buf: Vec<u8>,
    buffer: Arc<DiskBuffer>,
    identity: Arc<Identity>,
    metrics: Arc<CollectorMetrics>,
    /// `run`'s stop: an append waiting for room in the buffer gives up when it is set.
    stop: CancellationToken,
    redactor: Arc<Redactor>,
}

impl Tailer {
    pub fn new(
        config: &Config,
        buffer: Arc<DiskBuffer>,
        identity: Arc<Identity>,
        redactor: Arc<Redactor>,
        metrics: Arc<CollectorMetrics>,
    ) -> Tailer {
        let specs = config
            .files
            .iter()
            .map(|source| Spec {
                include: source.include.clone(),
                exclude: source
                    .exclude
                    .iter()
                    .map(|p| glob::Pattern::new(p).expect("validated with the config"))
                    .collect(),
                attributes: source
                    .attributes
                    .iter()
                    .map(|(k, v)| string_attribute(k, v))
                    .collect(),
                source: source.clone(),
            })
            .collect();
        let checkpoints = Checkpoints::new(config.checkpoint_path());
        Tailer {
            specs,
            files: Vec::new(),
            saved: checkpoints.load(),
            checkpoints,
            first_scan: true,
            max_line_bytes: config.max_line_bytes,
            read_from: config.read_from,
            glob_interval: config.glob_interval,
            max_open_files: config.max_open_files,
            max_batch_records: config.batch.max_records,
            max_batch_bytes: config.batch.max_bytes,
            batch_timeout: config.batch.timeout,
            batch: Batch::default(),
            skipped_paths: HashSet::new(),
            read_buf: vec![0; READ_CHUNK],
            buffer,
            identity,
            metrics,
            stop: CancellationToken::new(),
            redactor,
        }
    }

    /// Tails until `stop`, then flushes what it holds and saves checkpoints.
    pub async fn run(
        mut self,
        mut rereads: mpsc::Receiver<SourceRange>,
        stop: CancellationToken,
    ) -> Result<(), CollectorError> {
        self.stop = stop.clone();
        let mut next_scan = Instant::now();
        let mut poll = MIN_POLL;
        loop {
            let now = Instant::now();
            if now >= next_scan {
                self.scan(now)?;
                next_scan = now + self.glob_interval;
            }
            let (read, more) = self.read_all(now);
            self.flush_idle_groups(now, false);
            if self.batch_due(now) {
                self.flush().await?;
            }
            while let Ok(range) = rereads.try_recv() {
                self.reread(range).await?;
            }
            if more {
                tokio::task::yield_now().await;
                continue;
            }
            poll = if read {
                MIN_POLL
            } else {
                (poll * 2).min(MAX_POLL)
            };
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                Some(range) = rereads.recv() => self.reread(range).await?,
                () = stop.cancelled() => break,
            }
        }
        // What is still unread stays in the files, behind the saved checkpoints; records
        // still being assembled, and last lines without their newline, are sent as they
        // are, since the pod may be going away (when the buffer has room for them; else
        // they stay in the files too).
        self.flush_idle_groups(Instant::now(), true);
        self.flush().await?;
        tracing::info!(files = self.files.len(), "file tailing stopped");
        Ok(())
    }

    fn batch_due(&self, now: Instant) -> bool {
        self.batch.records >= self.max_batch_records
            || self.batch.bytes >= self.max_batch_bytes
            || self
                .batch
                .started
                .is_some_and(|started| now.duration_since(started) >= self.batch_timeout)
            // Checkpoints of files with nothing to ship (blank lines) still move on.
            || (self.batch.records == 0
                && self.files.iter().any(|f| f.safe_offset() > f.committed))
    }

    /// Re-evaluates the globs: new files, rotations, truncations, files gone.
    fn scan(&mut self, now: Instant) -> Result<(), CollectorError> {
        for tracked in &mut self.files {
            tracked.matched = false;
            match tracked.file.metadata() {
                Ok(meta) => {
                    tracked.size = meta.len();
                    let head = read_head(&tracked.file);
                    if meta.len() < tracked.read_offset
                        || head.as_deref().and_then(fingerprint) != Some(tracked.fingerprint)
                    {
                        tracked.stale = true;
                    }
                }
                Err(_) => tracked.stale = true,
            }
        }
        for (spec_index, path) in self.candidates() {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let (dev, inode) = (meta.dev(), meta.ino());
            if let Some(tracked) = self
                .files
                .iter_mut()
                .find(|t| !t.stale && t.dev == dev && t.inode == inode)
            {
                tracked.matched = true;
                if tracked.path != path {
                    tracing::debug!(from = %tracked.path.display(), to = %path.display(), "file renamed");
                    tracked.path = path;
                }
                continue;
            }
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let Some(print) = read_head(&file).as_deref().and_then(fingerprint) else {
                continue; // no complete first line yet
            };
            if let Some(tracked) = self.files.iter_mut().find(|t| t.fingerprint == print) {
                if tracked.stale && meta.len() >= tracked.read_offset {
                    // copytruncate: the copy holds what was not read yet; go on there.
                    tracing::info!(original = %tracked.path.display(), copy = %path.display(), offset = tracked.read_offset, "file was copied and truncated; reading on in the copy");
                    tracked.file = file;
                    tracked.dev = dev;
                    tracked.inode = inode;
                    tracked.size = meta.len();
                    tracked.path = path;
                    tracked.stale = false;
                    tracked.matched = true;
                }
                continue;
            }
            if self.files.len() >= self.max_open_files {
                if self.skipped_paths.len() < 4 * self.max_open_files
                    && self.skipped_paths.insert(path.clone())
                {
                    self.metrics.files_skipped.inc();
                    tracing::warn!(path = %path.display(), max_open_files = self.max_open_files, "too many files; not tailing this one");
                }
                continue;
            }
            let offset = match self.saved.remove(&print) {
                Some(saved) if saved.offset <= meta.len() => saved.offset,
                Some(_) => 0,
                None if self.first_scan && self.read_from == ReadFrom::End => {
                    last_line_end(&file, meta.len())
                }
                None => 0,
            };
            tracing::info!(path = %path.display(), offset, "tailing file");
            let opened = Opened {
                spec: spec_index,
                fingerprint: print,
                path,
                file,
                dev,
                inode,
                size: meta.len(),
            };
            let source = &self.specs[spec_index].source;
            self.files.push(Tracked::new(
                opened,
                offset,
                source,
                self.max_line_bytes,
                now,
            ));
        }
        let before = self.files.len();
        self.files.retain(|tracked| {
            if tracked.stale {
                tracing::warn!(path = %tracked.path.display(), read = tracked.read_offset, "file was truncated or replaced before it was read to its end, and no copy of it matches the globs; its unread tail is lost");
                return false;
            }
            // Gone from the globs, read to its end, quiet, everything shipped (its last
            // line too, newline or not): close it.
            let done = !tracked.matched
                && tracked.read_offset >= tracked.size
                && now.duration_since(tracked.last_data) >= ROTATE_WAIT
                && tracked.line.is_empty()
                && tracked.committed >= tracked.safe_offset()
                && tracked.assembler.pending_start().is_none();
            if done {
                tracing::info!(path = %tracked.path.display(), "rotated file read to its end; closed");
            }
            !done
        });
        if self.first_scan || self.files.len() != before {
            self.first_scan = false;
            self.saved.clear();
            self.save_checkpoints();
        }
        self.metrics.files_open.set(self.files.len() as i64);
        self.metrics.checkpoint_lag_bytes.set(
            self.files
                .iter()
                .map(|f| f.size.saturating_sub(f.committed))
                .sum::<u64>() as i64,
        );
        Ok(())
    }

    fn candidates(&self) -> Vec<(usize, PathBuf)> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (index, spec) in self.specs.iter().enumerate() {
            for pattern in &spec.include {
                let Ok(paths) = glob::glob(pattern) else {
                    continue;
                };
                for path in paths.flatten() {
                    if spec.exclude.iter().any(|p| p.matches_path(&path)) {
                        continue;
                    }
                    if seen.insert(path.clone()) {
                        out.push((index, path));
                    }
                }
            }
        }
        out
    }

    /// Reads up to `READ_CHUNK` of every file; returns (anything read, more waiting).
    fn read_all(&mut self, now: Instant) -> (bool, bool) {
        let mut read_any = false;
        let mut more = false;
        let mut out = Vec::new();
        for index in 0..self.files.len() {
            let tracked = &mut self.files[index];
            let n = match tracked
                .file
                .read_at(&mut self.read_buf, tracked.read_offset)
            {
                Ok(n) => n,
                Err(error) => {
                    tracing::warn!(path = %tracked.path.display(), %error, "read failed");
                    continue;
                }
            };
            if n == 0 {
                continue;
            }
            read_any = true;
            more |= n == READ_CHUNK;
            tracked.last_data = now;
            self.metrics.bytes_read.inc_by(n as u64);
            let lines = consume(
                tracked,
                &self.read_buf[..n],
                self.max_line_bytes,
                now,
                &mut out,
                &self.metrics,
            );
            self.metrics.lines_read.inc_by(lines);
            let tracked = &self.files[index];
            self.add_records(tracked.spec, &tracked.path.clone(), &mut out);
        }
        (read_any, more)
    }

    /// Sends what waits on a quiet file (`force`: on every file): its last line without a
    /// newline ([`UNENDED_LINE_WAIT`]), and a multiline group past its timeout.
    fn flush_idle_groups(&mut self, now: Instant, force: bool) {
        let mut out = Vec::new();
        for index in 0..self.files.len() {
            let tracked = &mut self.files[index];
            if !tracked.line.is_empty()
                && (force || now.duration_since(tracked.last_data) >= UNENDED_LINE_WAIT)
            {
                end_line(tracked, tracked.read_offset, now, &mut out, &self.metrics);
                self.metrics.lines_unended.inc();
                self.metrics.lines_read.inc();
            }
            self.files[index].assembler.flush_idle(now, force, &mut out);
            if !out.is_empty() {
                let (spec, path) = (self.files[index].spec, self.files[index].path.clone());
                self.add_records(spec, &path, &mut out);
            }
        }
    }

    fn add_records(&mut self, spec: usize, path: &Path, out: &mut Vec<Assembled>) {
        if !out.is_empty() {
            self.redact(out);
            self.batch.add(out, path, &self.specs[spec].attributes);
        }
    }

    /// Applies the `redact` rules to finished records.
    fn redact(&self, out: &mut [Assembled]) {
        if self.redactor.is_empty() {
            return;
        }
        for record in out {
            if self.redactor.string(&mut record.body) {
                self.metrics.redacted.inc();
            }
        }
    }

    /// Appends the batch to the buffer (waiting for room under `block`), then saves the
    /// checkpoints it covers.
    async fn flush(&mut self) -> Result<(), CollectorError> {
        let ranges: Vec<SourceRange> = self
            .files
            .iter()
            .filter(|f| f.safe_offset() > f.committed)
            .map(|f| SourceRange {
                fingerprint: f.fingerprint,
                start: f.committed,
                end: f.safe_offset(),
            })
            .collect();
        if ranges.is_empty() && self.batch.records == 0 {
            return Ok(());
        }
        let (payload, count) = self.batch.take(&self.identity);
        if count > 0 {
            let appended = self
                .buffer
                .append(Kind::Logs, count, &ranges, &payload, &self.stop)
                .await?;
            if !appended {
                // Stopping with the buffer full: the batch's lines stay in the files, behind
                // the checkpoints, and are read again at the next start.
                return Ok(());
            }
            self.metrics.received("logs", u64::from(count));
        }
        for file in &mut self.files {
            if let Some(range) = ranges.iter().find(|r| r.fingerprint == file.fingerprint) {
                file.committed = range.end;
            }
        }
        self.save_checkpoints();
        Ok(())
    }

    /// Saves where each file is; a disk that refuses it (full) is counted, and the next
    /// save tries again: a restart meanwhile reads from the older positions, sending lines
    /// twice, never skipping one.
    fn save_checkpoints(&self) {
        let saved = self.checkpoints.save(
            self.files
                .iter()
                .map(|f| FileCheckpoint {
                    fingerprint: f.fingerprint,
                    path: f.path.clone(),
                    inode: f.inode,
                    offset: f.committed,
                })
                .collect(),
        );
        if let Err(error) = saved {
            self.metrics.disk_write_failed("checkpoints", &error);
        }
    }

    /// Reads `range` of a file again because its buffer record was lost to corruption.
    async fn reread(&mut self, range: SourceRange) -> Result<(), CollectorError> {
        let Some(tracked) = self
            .files
            .iter()
            .find(|f| f.fingerprint == range.fingerprint)
        else {
            self.metrics.dropped("buffer_corrupt", 1);
            tracing::warn!(
                start = range.start,
                end = range.end,
                "a corrupt buffer record's file is gone; its lines are lost"
            );
            return Ok(());
        };
        let opened = Opened {
            spec: tracked.spec,
            fingerprint: tracked.fingerprint,
            path: tracked.path.clone(),
            file: tracked.file.try_clone().map_err(|e| {
                CollectorError::Buffer(format!("reopening {}: {e}", tracked.path.display()))
            })?,
            dev: tracked.dev,
            inode: tracked.inode,
            size: tracked.size,
        };
        let source = &self.specs[tracked.spec].source;
        let mut scratch = Tracked::new(
            opened,
            range.start,
            source,
            self.max_line_bytes,
            Instant::now(),
        );
        let now = Instant::now();
        let mut out = Vec::new();
        let mut buf = vec![0u8; READ_CHUNK];
        while scratch.read_offset < range.end {
            let want = ((range.end - scratch.read_offset) as usize).min(READ_CHUNK);
            let n = scratch
                .file
                .read_at(&mut buf[..want], scratch.read_offset)
                .map_err(|e| {
                    CollectorError::Buffer(format!("re-reading {}: {e}", scratch.path.display()))
                })?;
            if n == 0 {
                break;
            }
            consume(
                &mut scratch,
                &buf[..n],
                self.max_line_bytes,
                now,
                &mut out,
                &self.metrics,
            );
        }
        scratch.assembler.flush_idle(now, true, &mut out);
        self.redact(&mut out);
        let mut batch = Batch::default();
        batch.add(
            &mut out,
            &scratch.path,
            &self.specs[scratch.spec].attributes,
        );
        let (payload, count) = batch.take(&self.identity);
        self.metrics.reread_ranges.inc();
        tracing::warn!(path = %scratch.path.display(), start = range.start, end = range.end, records = count, "re-read lines whose buffer record was corrupt");
        if count > 0
            && !self
                .buffer
                .append(Kind::Logs, count, &[range], &payload, &self.stop)
                .await?
        {
            tracing::warn!(path = %scratch.path.display(), start = range.start, end = range.end, "stopping with the buffer full: the re-read lines are not sent");
        }
        Ok(())
    }
}

/// Splits `data` (read at `tracked.read_offset`) into lines and feeds them to the file's
/// assembler; returns how many lines ended. Lines longer than `max_line_bytes` are cut.
fn consume(
    tracked: &mut Tracked,
    data: &[u8],
    max_line_bytes: usize,
    now: Instant,
    out: &mut Vec<Assembled>,
    metrics: &CollectorMetrics,
) -> u64 {
    let base = tracked.read_offset;
    let mut pos = 0;
    let mut lines = 0;
    while let Some(newline) = memchr::memchr(b'\n', &data[pos..]) {
        let piece = &data[pos..pos + newline];
        let end = base + (pos + newline + 1) as u64;
        if tracked.line.is_empty() && !tracked.line_cut {
            let keep = piece.len().min(max_line_bytes);
            let cut = tracked.assembler.push(
                &piece[..keep],
                keep < piece.len(),
                base + pos as u64,
                end,
                now,
                out,
            );
            if cut || keep < piece.len() {
                metrics.lines_truncated.inc();
            }
        } else {
            tracked.line_cut |= append_capped(&mut tracked.line, piece, max_line_bytes);
            end_line(tracked, end, now, out, metrics);
        }
        lines += 1;
        pos += newline + 1;
    }
    let rest = &data[pos..];
    if !rest.is_empty() {
        if tracked.line.is_empty() && !tracked.line_cut {
            tracked.line_start = base + pos as u64;
        }
        if append_capped(&mut tracked.line, rest, max_line_bytes) {
            tracked.line_cut = true;
        }
    }
    tracked.read_offset = base + data.len() as u64;
    lines
}

/// Gives the assembler the line read so far (`tracked.line`, which ends before byte `end`)
/// as a whole line, counting it if it was cut.
fn end_line(
    tracked: &mut Tracked,
    end: u64,
    now: Instant,
    out: &mut Vec<Assembled>,
    metrics: &CollectorMetrics,
) {
    let line = std::mem::take(&mut tracked.line);
    let cut = tracked
        .assembler
        .push(&line, tracked.line_cut, tracked.line_start, end, now, out);
    if cut || tracked.line_cut {
        metrics.lines_truncated.inc();
    }
    tracked.line = line;
    tracked.line.clear();
    tracked.line_cut = false;
}

fn append_capped(line: &mut Vec<u8>, more: &[u8], max: usize) -> bool {
    let room = max.saturating_sub(line.len());
    line.extend_from_slice(&more[..more.len().min(room)]);
    more.len() > room
}

fn read_head(file: &File) -> Option<Vec<u8>> {
    let mut head = vec![0u8; checkpoint::FINGERPRINT_BYTES];
    let mut filled = 0;
    while filled < head.len() {
        match file.read_at(&mut head[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return None,
        }
    }
    head.truncate(filled);
    Some(head)
}

/// For `read_from: end`: just past the last complete line, so a half-written line is
/// read whole once it is finished.
fn last_line_end(file: &File, len: u64) -> u64 {
    let from = len.saturating_sub(64 * 1024);
    let mut tail = vec![0u8; (len - from) as usize];
    if file.read_exact_at(&mut tail, from).is_err() {
        return len;
    }
    match memchr::memrchr(b'\n', &tail) {
        Some(at) => from + at as u64 + 1,
        None => from,
    }
}

/// `porthole.truncated: true`, so a search can tell a cut line (a JSON line that no longer
/// parses) from one the app wrote so.
pub(crate) fn truncated_attribute() -> KeyValue {
    KeyValue {
        key: TRUNCATED_ATTRIBUTE.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::BoolValue(true)),
        }),
        ..KeyValue::default()
    }
}

fn log_record(record: Assembled, path: &Path, extra: &[KeyValue], observed: u64) -> LogRecord {
    let (severity_number, severity_text) = severity::parse(&record.body).unwrap_or((0, ""));
    let mut attributes = Vec::with_capacity(3 + extra.len());
    attributes.push(string_attribute("log.file.path", &path.to_string_lossy()));
    if let Some(name) = path.file_name() {
        attributes.push(string_attribute("log.file.name", &name.to_string_lossy()));
    }
    if let Some(stream) = record.stream {
        attributes.push(string_attribute("log.iostream", stream.name()));
    }
    if record.truncated {
        attributes.push(truncated_attribute());
    }
    attributes.extend_from_slice(extra);
    LogRecord {
        time_unix_nano: record.time_nanos.map_or(0, |t| t.max(0) as u64),
        observed_time_unix_nano: observed,
        severity_number,
        severity_text: severity_text.to_string(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(record.body)),
        }),
        attributes,
        ..LogRecord::default()
    }
}

/// The start of an `ExportLogsServiceRequest` of one resource (the pod) and one scope,
/// up to its records: followed by `records_len` bytes of records already encoded as
/// `ScopeLogs.log_records` fields, it is the whole request, with no record decoded again.
fn logs_framing(identity: &Identity, records_len: usize) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
    let scope = InstrumentationScope {
        name: "porthole-collector".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..InstrumentationScope::default()
    };
    let resource = identity.resource();
    let field_len = |len: usize| key_len(1) + encoded_len_varint(len as u64) + len;
    let scope_logs_len = field_len(scope.encoded_len()) + records_len;
    let resource_logs_len = field_len(resource.encoded_len()) + field_len(scope_logs_len);
    let mut out = Vec::with_capacity(field_len(resource_logs_len) - records_len);
    // ExportLogsServiceRequest.resource_logs = 1
    encode_key(1, WireType::LengthDelimited, &mut out);
    encode_varint(resource_logs_len as u64, &mut out);
    // ResourceLogs.resource = 1, .scope_logs = 2
    prost::encoding::message::encode(1, &resource, &mut out);
    encode_key(2, WireType::LengthDelimited, &mut out);
    encode_varint(scope_logs_len as u64, &mut out);
    // ScopeLogs.scope = 1, then the records (.log_records = 2)
    prost::encoding::message::encode(1, &scope, &mut out);
    out
}

pub fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests;
