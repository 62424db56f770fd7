//! The tailer against real files in a temp dir and a real disk buffer: rotation both ways,
//! restarts from checkpoints, long lines, and re-reading a range.

use std::io::Write;

use porthole_proto::common::any_value;
use porthole_proto::logs::{ResourceLogs, ScopeLogs};
use porthole_proto::logs_service::ExportLogsServiceRequest;

use super::*;
use crate::buffer::DiskBuffer;
use crate::config::{BufferConfig, Config, FileSource, Format, WhenFull};

struct Rig {
    _dir: tempfile::TempDir,
    logs: PathBuf,
    config: Config,
    buffer: Arc<DiskBuffer>,
    metrics: Arc<CollectorMetrics>,
}

fn rig(pattern: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut config = Config {
        buffer: BufferConfig {
            dir: dir.path().join("buffer"),
            max_bytes: 64 << 20,
            when_full: WhenFull::Block,
            segment_bytes: 1 << 20,
        },
        max_line_bytes: 1024,
        ..Config::default()
    };
    config.files.push(FileSource {
        include: vec![logs.join(pattern).to_string_lossy().into_owned()],
        exclude: vec!["*.gz".into()],
        format: Format::Auto,
        multiline: None,
        attributes: [("team".to_string(), "payments".to_string())].into(),
    });
    let metrics = CollectorMetrics::new();
    let buffer = DiskBuffer::open(&config.buffer, config.compression, metrics.clone()).unwrap();
    Rig {
        _dir: dir,
        logs,
        config,
        buffer,
        metrics,
    }
}

impl Rig {
    fn tailer(&self) -> Tailer {
        Tailer::new(
            &self.config,
            self.buffer.clone(),
            Arc::new(Identity::default()),
            Arc::new(Redactor::new(&self.config.redact).unwrap()),
            self.metrics.clone(),
        )
    }

    /// One pass of the tailer's loop, flushing whatever it read.
    async fn pass(&self, tailer: &mut Tailer) {
        self.pass_at(tailer, Instant::now()).await;
    }

    /// [`Rig::pass`] as if the clock read `now`.
    async fn pass_at(&self, tailer: &mut Tailer, now: Instant) {
        tailer.scan(now).unwrap();
        while tailer.read_all(now).1 {}
        tailer.flush_idle_groups(now, false);
        tailer.flush().await.unwrap();
    }

    /// Bodies of every log record in the buffer not yet taken.
    fn take(&self) -> Vec<String> {
        self.take_records()
            .into_iter()
            .map(|(body, _)| body)
            .collect()
    }

    /// Bodies of every log record in the buffer not yet taken, and whether each was cut
    /// (carries `porthole.truncated: true`).
    fn take_records(&self) -> Vec<(String, bool)> {
        let records = crate::source::take_log_records(&self.buffer);
        records
            .into_iter()
            .map(|log| {
                let truncated = log.attributes.iter().any(|a| {
                    a.key == super::TRUNCATED_ATTRIBUTE
                        && a.value.as_ref().and_then(|v| v.value.as_ref())
                            == Some(&any_value::Value::BoolValue(true))
                });
                match log.body.and_then(|b| b.value) {
                    Some(any_value::Value::StringValue(body)) => (body, truncated),
                    other => panic!("unexpected body {other:?}"),
                }
            })
            .collect()
    }
}

fn append(path: &Path, lines: std::ops::Range<usize>) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for n in lines {
        writeln!(file, "line {n}").unwrap();
    }
}

fn expect(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("line {n}")).collect()
}

#[tokio::test]
async fn rename_rotation_reads_the_old_file_to_its_end_then_the_new_one() {
    let rig = rig("app.log*");
    let log = rig.logs.join("app.log");
    let mut tailer = rig.tailer();
    append(&log, 0..10);
    rig.pass(&mut tailer).await;
    // Written after the last read, then rotated away before the tailer looks again.
    append(&log, 10..15);
    std::fs::rename(&log, rig.logs.join("app.log.1")).unwrap();
    append(&log, 15..20);
    rig.pass(&mut tailer).await;
    rig.pass(&mut tailer).await;
    let mut got = rig.take();
    got.sort_by_key(|l| l[5..].parse::<usize>().unwrap());
    assert_eq!(got, expect(0..20));
}

#[tokio::test]
async fn copytruncate_goes_on_in_the_copy_and_then_the_truncated_file() {
    let rig = rig("app.log*");
    let log = rig.logs.join("app.log");
    let mut tailer = rig.tailer();
    append(&log, 0..10);
    rig.pass(&mut tailer).await;
    append(&log, 10..15);
    std::fs::copy(&log, rig.logs.join("app.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, 15..40);
    rig.pass(&mut tailer).await;
    rig.pass(&mut tailer).await;
    let mut got = rig.take();
    got.sort_by_key(|l| l[5..].parse::<usize>().unwrap());
    assert_eq!(got, expect(0..40));
}

#[tokio::test]
async fn a_restart_resumes_at_the_checkpoint_and_files_that_appear_later_are_read() {
    let rig = rig("*.log");
    let log = rig.logs.join("app.log");
    append(&log, 0..5);
    let mut tailer = rig.tailer();
    rig.pass(&mut tailer).await;
    // A half-written line is not shipped, and the checkpoint stays before it.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"line 5 is still being wri")
        .unwrap();
    rig.pass(&mut tailer).await;
    drop(tailer);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"tten\n")
        .unwrap();
    append(&log, 6..8);
    append(&rig.logs.join("later.log"), 100..102);
    let mut tailer = rig.tailer();
    rig.pass(&mut tailer).await;
    let got = rig.take();
    let mut want = expect(0..5);
    want.push("line 5 is still being written".into());
    want.extend(expect(6..8));
    want.extend(expect(100..102));
    let mut sorted = got.clone();
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want);
}

#[tokio::test]
async fn long_lines_are_cut_and_counted_and_reading_goes_on() {
    let rig = rig("*.log");
    let log = rig.logs.join("app.log");
    let mut file = std::fs::File::create(&log).unwrap();
    writeln!(file, "first").unwrap();
    writeln!(file, "{}", "x".repeat(5000)).unwrap();
    writeln!(file, "after").unwrap();
    // Longer than one read: cut while it is being read, not when it ends.
    writeln!(file, "{}", "y".repeat(200_000)).unwrap();
    writeln!(file, "last").unwrap();
    drop(file);
    let mut tailer = rig.tailer();
    rig.pass(&mut tailer).await;
    let got = rig.take_records();
    assert_eq!(got.len(), 5);
    assert_eq!(got[1].0.len(), 1024);
    assert_eq!(got[3].0.len(), 1024);
    // A cut record says so, where a search finds it; the others carry nothing.
    let cut: Vec<bool> = got.iter().map(|(_, truncated)| *truncated).collect();
    assert_eq!(cut, [false, true, false, true, false]);
    assert_eq!(got[2].0, "after");
    assert_eq!(got[4].0, "last");
    assert_eq!(rig.metrics.lines_truncated.get(), 2);
}

fn write(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// A line the writer is still writing waits for its newline; a last line without one is
/// sent once the file has been quiet for `UNENDED_LINE_WAIT`, once, and counted. What the
/// writer adds later is a line of its own.
#[tokio::test]
async fn a_last_line_without_its_newline_is_sent_once_the_file_is_quiet() {
    let rig = rig("*.log");
    let log = rig.logs.join("app.log");
    write(&log, "first\nslow wri");
    let mut tailer = rig.tailer();
    let start = Instant::now();
    rig.pass_at(&mut tailer, start).await;
    assert_eq!(rig.take(), ["first"]);
    write(&log, "ter done\nlast words");
    let later = start + UNENDED_LINE_WAIT / 2;
    rig.pass_at(&mut tailer, later).await;
    assert_eq!(rig.take(), ["slow writer done"]);
    rig.pass_at(&mut tailer, later + UNENDED_LINE_WAIT / 2)
        .await;
    assert!(rig.take().is_empty(), "the wait starts again with new data");
    rig.pass_at(&mut tailer, later + UNENDED_LINE_WAIT).await;
    assert_eq!(rig.take(), ["last words"]);
    assert_eq!(rig.metrics.lines_unended.get(), 1);
    rig.pass_at(&mut tailer, later + UNENDED_LINE_WAIT * 2)
        .await;
    assert!(rig.take().is_empty(), "sent once");
    write(&log, " and more\nnext\n");
    rig.pass(&mut tailer).await;
    assert_eq!(rig.take(), [" and more", "next"]);
    // Its checkpoint is past it: a restart sends nothing again.
    drop(tailer);
    let mut restarted = rig.tailer();
    rig.pass(&mut restarted).await;
    assert!(rig.take().is_empty());
}

/// A file rotated away whose last line has no newline is closed only after that line is
/// sent; it was closed with the line unsent, and the line was lost.
#[tokio::test]
async fn a_rotated_files_last_line_without_its_newline_is_sent_before_it_is_closed() {
    let rig = rig("*.log");
    let log = rig.logs.join("app.log");
    write(&log, "a\nlast words");
    let mut tailer = rig.tailer();
    let start = Instant::now();
    rig.pass_at(&mut tailer, start).await;
    std::fs::rename(&log, rig.logs.join("app.log.1")).unwrap();
    write(&log, "b\n");
    rig.pass_at(&mut tailer, start).await;
    for after in 1..=3 {
        rig.pass_at(&mut tailer, start + ROTATE_WAIT * after).await;
    }
    assert_eq!(rig.take(), ["a", "b", "last words"]);
    assert_eq!(tailer.files.len(), 1, "the rotated file is closed");
}

/// A collector that stops sends its files' last lines without their newline.
#[tokio::test]
async fn a_stopping_collector_sends_last_lines_without_their_newline() {
    let rig = rig("*.log");
    write(&rig.logs.join("app.log"), "a\nlast words");
    let stop = CancellationToken::new();
    let (_rereads, receiver) = mpsc::channel(1);
    let running = tokio::spawn(rig.tailer().run(receiver, stop.clone()));
    let mut got = Vec::new();
    while got.is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
        got = rig.take();
    }
    assert_eq!(got, ["a"]);
    stop.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(rig.take(), ["last words"]);
}

#[tokio::test]
async fn a_range_lost_in_the_buffer_is_read_again_from_the_file() {
    let rig = rig("*.log");
    let log = rig.logs.join("app.log");
    append(&log, 0..10);
    let mut tailer = rig.tailer();
    rig.pass(&mut tailer).await;
    let record = rig.buffer.try_next().unwrap().unwrap();
    assert_eq!(record.ranges.len(), 1);
    rig.buffer.ack(record.next, 1, &HashMap::new());
    let lost = SourceRange {
        end: record.ranges[0].start + "line 0\nline 1\n".len() as u64,
        ..record.ranges[0]
    };
    tailer.reread(lost).await.unwrap();
    assert_eq!(rig.take(), expect(0..2));
    assert_eq!(rig.metrics.reread_ranges.get(), 1);
}

#[tokio::test]
async fn a_symlink_is_followed_to_its_file() {
    let rig = rig("*.log");
    let elsewhere = rig.logs.parent().unwrap().join("real");
    std::fs::create_dir_all(&elsewhere).unwrap();
    append(&elsewhere.join("target.txt"), 0..3);
    std::os::unix::fs::symlink(elsewhere.join("target.txt"), rig.logs.join("app.log")).unwrap();
    let mut tailer = rig.tailer();
    rig.pass(&mut tailer).await;
    append(&elsewhere.join("target.txt"), 3..5);
    rig.pass(&mut tailer).await;
    assert_eq!(rig.take(), expect(0..5));
}

#[test]
fn batches_framed_by_hand_are_the_export_prost_would_encode() {
    // A usual pod, and one whose resource is larger than the room kept for framing.
    let big = [("team.notes".to_string(), "x".repeat(2 * FRAMING_ROOM))].into();
    for attributes in [Default::default(), big] {
        let identity = Identity::build(
            &crate::config::ResourceConfig {
                service: Some("checkout".into()),
                attributes,
                ..Default::default()
            },
            |_| None,
        )
        .unwrap();
        let mut batch = Batch::default();
        // Twice: the second batch reuses the first one's buffer.
        for round in 0..2 {
            let records: Vec<LogRecord> = (0..300)
                .map(|n| LogRecord {
                    time_unix_nano: n,
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(format!(
                            "round {round} line {n}"
                        ))),
                    }),
                    attributes: vec![string_attribute("log.file.path", "/var/log/app.log")],
                    ..LogRecord::default()
                })
                .collect();
            for record in &records {
                batch.push(record, 1);
            }
            let (payload, count) = batch.take(&identity);
            assert_eq!(count, 300);
            let expected = ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: Some(identity.resource()),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: "porthole-collector".into(),
                            version: env!("CARGO_PKG_VERSION").into(),
                            ..InstrumentationScope::default()
                        }),
                        log_records: records,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            };
            assert_eq!(&payload[..], &expected.encode_to_vec()[..]);
            assert_eq!(batch.records, 0);
        }
    }
}
