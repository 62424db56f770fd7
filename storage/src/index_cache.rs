//! Opened full-text indexes, kept for the next query.
//!
//! Data files and their indexes never change once committed, so an opened index stays
//! valid until its file is vacuumed; keeping it saves the object-store read and the open
//! on every search. Bounded by the packed bytes held (least recently used goes first), with
//! counters of hits, misses and evictions on `/metrics`.

use std::sync::Mutex;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tantivy::Searcher;

pub(crate) struct IndexCache {
    entries: Mutex<Entries>,
    capacity_bytes: usize,
    hits: Counter,
    misses: Counter,
    evictions: Counter,
    held_bytes: Gauge,
}

struct Entries {
    lru: lru::LruCache<String, (Searcher, usize)>,
    bytes: usize,
}

impl IndexCache {
    pub(crate) fn new(capacity_bytes: usize) -> Self {
        Self {
            entries: Mutex::new(Entries {
                lru: lru::LruCache::unbounded(),
                bytes: 0,
            }),
            capacity_bytes,
            hits: Counter::default(),
            misses: Counter::default(),
            evictions: Counter::default(),
            held_bytes: Gauge::default(),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<Searcher> {
        let mut entries = self.entries.lock().expect("index cache lock");
        match entries.lru.get(key) {
            Some((searcher, _)) => {
                self.hits.inc();
                Some(searcher.clone())
            }
            None => {
                self.misses.inc();
                None
            }
        }
    }

    /// Keeps `searcher` (opened from `bytes` packed bytes) unless it alone exceeds the
    /// capacity; evicts the least recently used entries to make room.
    pub(crate) fn insert(&self, key: String, searcher: Searcher, bytes: usize) {
        if bytes > self.capacity_bytes {
            return;
        }
        let mut entries = self.entries.lock().expect("index cache lock");
        if let Some((_, old)) = entries.lru.put(key, (searcher, bytes)) {
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

    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "porthole_index_cache_hits",
            "Searches that found their file's index already open",
            self.hits.clone(),
        );
        registry.register(
            "porthole_index_cache_misses",
            "Searches that had to read and open their file's index",
            self.misses.clone(),
        );
        registry.register(
            "porthole_index_cache_evictions",
            "Opened indexes dropped to stay within --index-cache-bytes",
            self.evictions.clone(),
        );
        registry.register(
            "porthole_index_cache_bytes",
            "Packed bytes of the indexes held open",
            self.held_bytes.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn searcher() -> Searcher {
        let schema = tantivy::schema::Schema::builder().build();
        tantivy::Index::create_in_ram(schema)
            .reader()
            .unwrap()
            .searcher()
    }

    #[test]
    fn stays_within_its_capacity_and_counts_what_it_drops() {
        let cache = IndexCache::new(100);
        cache.insert("a".into(), searcher(), 60);
        cache.insert("b".into(), searcher(), 30);
        assert!(cache.get("a").is_some()); // a is now the most recently used
        cache.insert("c".into(), searcher(), 30); // 120 > 100: b goes
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        cache.insert("huge".into(), searcher(), 101); // never held
        assert!(cache.get("huge").is_none());
        assert_eq!(cache.evictions.get(), 1);
        assert_eq!(cache.held_bytes.get(), 90);
        assert_eq!((cache.hits.get(), cache.misses.get()), (3, 2));
    }
}
