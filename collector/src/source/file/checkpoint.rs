//! Saved read positions of tailed files: where to resume after a restart. A position is
//! saved only once everything before it is in the disk buffer (or acked), so a restart
//! re-reads at most what was in flight, and never skips a line.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::CollectorError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileCheckpoint {
    /// Identity of the file's content: a hash of its first line (see `fingerprint`).
    pub fingerprint: u64,
    /// Last path it was seen at (for people reading the file; identity is the fingerprint).
    pub path: PathBuf,
    pub inode: u64,
    /// Everything before this byte is in the buffer.
    pub offset: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CheckpointFile {
    version: u32,
    files: Vec<FileCheckpoint>,
}

pub struct Checkpoints {
    path: PathBuf,
}

impl Checkpoints {
    pub fn new(path: PathBuf) -> Self {
        Checkpoints { path }
    }

    /// The saved positions by fingerprint. A missing file is an empty start; an unreadable
    /// one is logged and treated the same (files are then read from the beginning, which
    /// may send lines twice but loses none).
    pub fn load(&self) -> HashMap<u64, FileCheckpoint> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return HashMap::new(),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot read checkpoints; starting over");
                return HashMap::new();
            }
        };
        match serde_json::from_slice::<CheckpointFile>(&text) {
            Ok(file) => file.files.into_iter().map(|c| (c.fingerprint, c)).collect(),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "corrupt checkpoint file ignored; files are read again from their start");
                HashMap::new()
            }
        }
    }

    /// Replaces the saved positions atomically (write then rename).
    pub fn save(&self, files: Vec<FileCheckpoint>) -> Result<(), CollectorError> {
        let body = serde_json::to_vec(&CheckpointFile { version: 1, files })
            .expect("checkpoints serialize");
        crate::buffer::replace_file(&self.path, &body).map_err(|e| {
            CollectorError::Buffer(format!(
                "saving checkpoints to {}: {e}",
                self.path.display()
            ))
        })
    }
}

/// Identity of a file's content: its first line (at most `FINGERPRINT_BYTES`), hashed
/// with its length. Stable while the file grows; changes when it is truncated and
/// rewritten; the same for a copy (copytruncate), so the copy is read on from where the
/// original was left. `None` until the first line is complete.
pub fn fingerprint(head: &[u8]) -> Option<u64> {
    let first = match head.iter().position(|&b| b == b'\n') {
        Some(newline) => &head[..newline],
        None if head.len() >= FINGERPRINT_BYTES => &head[..FINGERPRINT_BYTES],
        None => return None,
    };
    let first = &first[..first.len().min(FINGERPRINT_BYTES)];
    Some(((crc32fast::hash(first) as u64) << 32) | first.len() as u64)
}

pub const FINGERPRINT_BYTES: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_while_a_file_grows() {
        assert_eq!(fingerprint(b"partial"), None);
        let a = fingerprint(b"line one\n").unwrap();
        assert_eq!(fingerprint(b"line one\nline two\n"), Some(a));
        assert_ne!(fingerprint(b"line uno\n"), Some(a));
        let long = vec![b'x'; 5000];
        assert_eq!(fingerprint(&long), fingerprint(&long[..FINGERPRINT_BYTES]));
    }

    #[test]
    fn saved_positions_load_back_and_corruption_means_a_clean_start() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = Checkpoints::new(dir.path().join("checkpoints.json"));
        assert!(checkpoints.load().is_empty());
        let entry = FileCheckpoint {
            fingerprint: 42,
            path: "/var/log/app.log".into(),
            inode: 7,
            offset: 1234,
        };
        checkpoints.save(vec![entry.clone()]).unwrap();
        assert_eq!(checkpoints.load().get(&42), Some(&entry));
        std::fs::write(dir.path().join("checkpoints.json"), b"{not json").unwrap();
        assert!(checkpoints.load().is_empty());
    }
}
