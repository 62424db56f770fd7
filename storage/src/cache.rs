//! What queries keep between requests: opened full-text indexes and Parquet footers.
//!
//! Data files and their indexes never change once committed, so what was read from one
//! stays valid until the file is vacuumed; keeping it saves the object-store read and the
//! decoding on every search. Each cache is bounded by the bytes it holds (least recently
//! used goes first), with counters of hits, misses and evictions on `/metrics`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub(crate) struct Cache<V> {
    /// Metric name prefix, e.g. `porthole_index_cache`.
    name: &'static str,
    /// What one entry is, for the metrics' help texts.
    what: &'static str,
    entries: Mutex<Entries<V>>,
    /// Keys being loaded now, each by one caller ([`Cache::load_alone`]).
    loading: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    capacity_bytes: usize,
    hits: Counter,
    misses: Counter,
    evictions: Counter,
    held_bytes: Gauge,
}

struct Entries<V> {
    lru: lru::LruCache<String, (V, usize)>,
    bytes: usize,
}

impl<V: Clone> Cache<V> {
    pub(crate) fn new(name: &'static str, what: &'static str, capacity_bytes: usize) -> Self {
        Self {
            name,
            what,
            entries: Mutex::new(Entries {
                lru: lru::LruCache::unbounded(),
                bytes: 0,
            }),
            loading: Mutex::default(),
            capacity_bytes,
            hits: Counter::default(),
            misses: Counter::default(),
            evictions: Counter::default(),
            held_bytes: Gauge::default(),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<V> {
        let mut entries = self.entries.lock().expect("cache lock");
        match entries.lru.get(key) {
            Some((value, _)) => {
                self.hits.inc();
                Some(value.clone())
            }
            None => {
                self.misses.inc();
                None
            }
        }
    }

    /// Like [`Cache::get`], but a key not held is not counted as a miss: for a lookup
    /// that may still find the value another caller is loading ([`Cache::load_alone`]).
    pub(crate) fn lookup(&self, key: &str) -> Option<V> {
        let mut entries = self.entries.lock().expect("cache lock");
        let (value, _) = entries.lru.get(key)?;
        self.hits.inc();
        Some(value.clone())
    }

    /// Counts a read that has to fetch and decode its value itself.
    pub(crate) fn missed(&self) {
        self.misses.inc();
    }

    /// Waits until no other caller is loading `key`, and holds it until the guard is
    /// dropped: callers that miss the same key at once then load it once, the others
    /// finding it kept ([`Cache::lookup`]) once the first is done. The map holds only
    /// the keys being loaded or waited for.
    pub(crate) async fn load_alone(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut loading = self.loading.lock().expect("cache lock");
            loading.retain(|_, lock| lock.strong_count() > 0);
            match loading.get(key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    loading.insert(key.to_string(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    /// Keeps `value` (weighing `bytes`) unless it alone exceeds the capacity; evicts the
    /// least recently used entries to make room.
    pub(crate) fn insert(&self, key: String, value: V, bytes: usize) {
        if bytes > self.capacity_bytes {
            return;
        }
        let mut entries = self.entries.lock().expect("cache lock");
        if let Some((_, old)) = entries.lru.put(key, (value, bytes)) {
            entries.bytes -= old;
        }
        entries.bytes += bytes;
        while entries.bytes > self.capacity_bytes {
            let Some((_, (_, evicted))) = entries.lru.pop_lru() else {
                break;
            };
            entries.bytes -= evicted;
            self.evictions.inc();
        }
        self.held_bytes.set(entries.bytes as i64);
    }

    /// Forgets `key` (its file left the table).
    pub(crate) fn remove(&self, key: &str) {
        let mut entries = self.entries.lock().expect("cache lock");
        if let Some((_, bytes)) = entries.lru.pop(key) {
            entries.bytes -= bytes;
            self.held_bytes.set(entries.bytes as i64);
        }
    }

    pub(crate) fn register(&self, registry: &mut Registry) {
        let name = |suffix: &str| format!("{}_{suffix}", self.name);
        registry.register(
            name("hits"),
            format!("Reads that found their file's {} already kept", self.what),
            self.hits.clone(),
        );
        registry.register(
            name("misses"),
            format!(
                "Reads that had to fetch and decode their file's {}",
                self.what
            ),
            self.misses.clone(),
        );
        registry.register(
            name("evictions"),
            format!(
                "Kept {}s dropped to stay within the cache's bytes",
                self.what
            ),
            self.evictions.clone(),
        );
        registry.register(
            name("bytes"),
            format!("Bytes of the {}s kept", self.what),
            self.held_bytes.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_capacity_and_counts_what_it_drops() {
        let cache = Cache::new("test_cache", "entry", 100);
        cache.insert("a".into(), "v", 60);
        cache.insert("b".into(), "v", 30);
        assert!(cache.get("a").is_some()); // a is now the most recently used
        cache.insert("c".into(), "v", 30); // 120 > 100: b goes
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        cache.insert("huge".into(), "v", 101); // never held
        assert!(cache.get("huge").is_none());
        assert_eq!(cache.evictions.get(), 1);
        assert_eq!(cache.held_bytes.get(), 90);
        assert_eq!((cache.hits.get(), cache.misses.get()), (3, 2));
        cache.remove("a");
        assert_eq!(cache.held_bytes.get(), 30);
        assert!(cache.get("a").is_none());
    }
}
