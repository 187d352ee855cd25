//! The client tile cache, as the server models it: content keys, and which slot holds which key.
//!
//! The server dictates the slots: a viewer's [`TileCache`] maps the key of every tile the client
//! keeps to its slot, and picks the slot of each new tile (a free one, else the least recently
//! used). Since the client only ever fills a slot on `CacheStore` and frames arrive in order, the
//! client's slots always hold what this model says, through evictions too (`Canvas::cached_tiles`
//! and `Display::cached_tiles` let the tests check it after every frame).

use std::collections::{HashMap, HashSet};

/// The side of a cacheable block: the screen is cut into 64 × 64 blocks aligned on (0, 0); the
/// blocks of the right and bottom edges may be smaller.
pub(crate) const BLOCK: u16 = bascule_proto::CACHE_TILE;

/// The most tiles the server agrees to keep in one browser: 4096 tiles of 64 × 64 are 64 MiB of
/// RGBA. `CacheAgreed` carries the smaller of this and the client's offer.
pub const SERVER_CACHE_TILES: u32 = 4096;

/// The identity of a tile's content: its size and two independent 64-bit hashes of its RGBA bytes
/// (xxHash64 with two seeds), so that two different tiles share a key only if both hashes collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileKey {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// xxHash64 of the RGBA bytes with the seeds [`SEEDS`](TileKey::SEEDS).
    pub hash: [u64; 2],
}

impl TileKey {
    /// The seeds of the two hashes (fixed, so that keys are reproducible in tests and benchmarks).
    pub const SEEDS: [u64; 2] = [0, 0x9e37_79b9_7f4a_7c15];

    /// The key of `width × height` RGBA pixels (`rgba` holds them row by row).
    pub fn of(width: u16, height: u16, rgba: &[u8]) -> TileKey {
        TileKey { width, height, hash: xxh64_pair(rgba, TileKey::SEEDS) }
    }
}

const P1: u64 = 0x9e37_79b1_85eb_ca87;
const P2: u64 = 0xc2b2_ae3d_27d4_eb4f;
const P3: u64 = 0x1656_67b1_9e37_79f9;
const P4: u64 = 0x85eb_ca77_c2b2_ae63;
const P5: u64 = 0x27d4_eb2f_1656_67c5;

fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2)).rotate_left(31).wrapping_mul(P1)
}

fn merge_round(acc: u64, value: u64) -> u64 {
    (acc ^ round(0, value)).wrapping_mul(P1).wrapping_add(P4)
}

fn le64(bytes: &[u8]) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

fn le32(bytes: &[u8]) -> u64 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[..4]);
    u64::from(u32::from_le_bytes(word))
}

/// xxHash64 of `data` with each of the two seeds, in one pass over the data.
///
/// This is the reference algorithm (XXH64, as in `xxhsum -H64`); the tests check it against the
/// published vectors. It reads the data once and runs the two lane sets side by side.
pub(crate) fn xxh64_pair(data: &[u8], seeds: [u64; 2]) -> [u64; 2] {
    let mut hashes = [0u64; 2];
    let stripes = data.chunks_exact(32);
    let tail = stripes.remainder();
    if data.len() >= 32 {
        let mut lanes = seeds.map(|seed| {
            [seed.wrapping_add(P1).wrapping_add(P2), seed.wrapping_add(P2), seed, seed.wrapping_sub(P1)]
        });
        for stripe in stripes {
            let words = [le64(&stripe[0..]), le64(&stripe[8..]), le64(&stripe[16..]), le64(&stripe[24..])];
            for lane in &mut lanes {
                for (acc, word) in lane.iter_mut().zip(words) {
                    *acc = round(*acc, word);
                }
            }
        }
        for (hash, [v1, v2, v3, v4]) in hashes.iter_mut().zip(lanes) {
            let mut h = v1
                .rotate_left(1)
                .wrapping_add(v2.rotate_left(7))
                .wrapping_add(v3.rotate_left(12))
                .wrapping_add(v4.rotate_left(18));
            for v in [v1, v2, v3, v4] {
                h = merge_round(h, v);
            }
            *hash = h;
        }
    } else {
        hashes = seeds.map(|seed| seed.wrapping_add(P5));
    }
    for hash in &mut hashes {
        let mut h = hash.wrapping_add(data.len() as u64);
        let mut rest = tail;
        while rest.len() >= 8 {
            h = (h ^ round(0, le64(rest))).rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
            rest = &rest[8..];
        }
        if rest.len() >= 4 {
            h = (h ^ le32(rest).wrapping_mul(P1)).rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
            rest = &rest[4..];
        }
        for &byte in rest {
            h = (h ^ u64::from(byte).wrapping_mul(P5)).rotate_left(11).wrapping_mul(P1);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(P2);
        h ^= h >> 29;
        h = h.wrapping_mul(P3);
        h ^= h >> 32;
        *hash = h;
    }
    hashes
}

/// "No slot" in the LRU links.
const NIL: u32 = u32::MAX;

/// One viewer's tile cache as the server models it: which key each slot holds, a map back from
/// keys to slots, and the slots in least-recently-used order (a doubly linked list over slot
/// numbers, so that a hit, a store and an eviction are O(1)).
#[derive(Debug)]
pub(crate) struct TileCache {
    capacity: u32,
    keys: Vec<TileKey>,
    prev: Vec<u32>,
    next: Vec<u32>,
    /// Most recently used slot.
    head: u32,
    /// Least recently used slot: the next one to be reused once every slot is filled.
    tail: u32,
    slots: HashMap<TileKey, u32>,
    /// Keys of the blocks sent without being kept (partly changed blocks), in two generations
    /// of at most `capacity` keys each: a bounded memory of "content already sent once".
    seen: [HashSet<TileKey>; 2],
}

impl TileCache {
    /// An empty cache of `capacity` slots (at least 1).
    pub(crate) fn new(capacity: u32) -> TileCache {
        TileCache {
            capacity: capacity.max(1),
            keys: Vec::new(),
            prev: Vec::new(),
            next: Vec::new(),
            head: NIL,
            tail: NIL,
            slots: HashMap::new(),
            seen: [HashSet::new(), HashSet::new()],
        }
    }

    /// Records that a block of content `key` was sent without being kept; returns whether that
    /// content was already sent so recently (then it is worth keeping: it comes back).
    pub(crate) fn seen_before(&mut self, key: TileKey) -> bool {
        if self.seen.iter().any(|generation| generation.contains(&key)) {
            return true;
        }
        if self.seen[0].len() as u64 >= u64::from(self.capacity) {
            self.seen[1] = std::mem::take(&mut self.seen[0]);
        }
        self.seen[0].insert(key);
        false
    }

    fn unlink(&mut self, slot: u32) {
        let (prev, next) = (self.prev[slot as usize], self.next[slot as usize]);
        if prev == NIL { self.head = next } else { self.next[prev as usize] = next }
        if next == NIL { self.tail = prev } else { self.prev[next as usize] = prev }
    }

    fn push_front(&mut self, slot: u32) {
        self.prev[slot as usize] = NIL;
        self.next[slot as usize] = self.head;
        if self.head == NIL { self.tail = slot } else { self.prev[self.head as usize] = slot }
        self.head = slot;
    }

    /// The slot that holds `key`, marked as just used.
    pub(crate) fn hit(&mut self, key: &TileKey) -> Option<u32> {
        let slot = *self.slots.get(key)?;
        if self.head != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
        Some(slot)
    }

    /// Picks the slot for a new tile `key` (not in the cache): a never used slot while there is
    /// one, else the least recently used one, whose tile is forgotten.
    pub(crate) fn store(&mut self, key: TileKey) -> u32 {
        let slot = if (self.keys.len() as u64) < u64::from(self.capacity) {
            // INVARIANT: keys.len() < capacity <= u32::MAX.
            let slot = self.keys.len() as u32;
            self.keys.push(key);
            self.prev.push(NIL);
            self.next.push(NIL);
            slot
        } else {
            let slot = self.tail;
            self.unlink(slot);
            let evicted = std::mem::replace(&mut self.keys[slot as usize], key);
            self.slots.remove(&evicted);
            slot
        };
        self.slots.insert(key, slot);
        self.push_front(slot);
        slot
    }

    /// What each slot holds (`None` for slots never filled), for the tests.
    pub(crate) fn entries(&self) -> Vec<Option<TileKey>> {
        let mut entries: Vec<Option<TileKey>> = self.keys.iter().copied().map(Some).collect();
        entries.resize(self.capacity as usize, None);
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xxh64(data: &[u8], seed: u64) -> u64 {
        xxh64_pair(data, [seed, seed])[0]
    }

    #[test]
    fn xxh64_matches_the_published_vectors() {
        assert_eq!(xxh64(b"", 0), 0xef46_db37_51d8_e999);
        assert_eq!(xxh64(b"", 1), 0xd5af_ba13_36a3_be4b);
        assert_eq!(xxh64(b"a", 0), 0xd24e_c4f1_a98c_6e5b);
        assert_eq!(xxh64(b"as", 0), 0x1c33_0fb2_d66b_e179);
        assert_eq!(xxh64(b"asd", 0), 0x631c_37ce_72a9_7393);
        assert_eq!(xxh64(b"asdf", 0), 0x4158_72f5_99ce_a71e);
        assert_eq!(xxh64(b"abc", 0), 0x44bc_2cf5_ad77_0999);
        assert_eq!(xxh64(b"Call me Ishmael.", 0), 0x6d04_390f_c9d6_1a90);
        // 39 and 46 bytes: the 32-byte stripes, then 8-, 4- and 1-byte tails.
        assert_eq!(xxh64(b"Nobody inspects the spammish repetition", 0), 0xfbce_a83c_8a37_8bf1);
        assert_eq!(xxh64(b"Some years ago--never mind how long precisely-", 0), 0x8f26_f2b9_86af_dc52);
    }

    #[test]
    fn the_two_hashes_are_the_two_seeded_hashes() {
        let data: Vec<u8> = (0..16_411u32).map(|i| (i * 31 % 251) as u8).collect();
        for len in [0, 1, 7, 31, 32, 33, 100, 16_384, 16_411] {
            let [a, b] = xxh64_pair(&data[..len], TileKey::SEEDS);
            assert_eq!(a, xxh64(&data[..len], TileKey::SEEDS[0]));
            assert_eq!(b, xxh64(&data[..len], TileKey::SEEDS[1]));
            assert_ne!(a, b);
        }
    }

    #[test]
    fn keys_tell_sizes_and_contents_apart() {
        let pixels = vec![7u8; 64 * 32 * 4];
        assert_ne!(TileKey::of(64, 32, &pixels), TileKey::of(32, 64, &pixels));
        let mut other = pixels.clone();
        other[4000] ^= 1;
        assert_ne!(TileKey::of(64, 32, &pixels).hash, TileKey::of(64, 32, &other).hash);
        assert_eq!(TileKey::of(64, 32, &pixels), TileKey::of(64, 32, &pixels.clone()));
    }

    fn key(n: u64) -> TileKey {
        TileKey { width: 64, height: 64, hash: [n, !n] }
    }

    #[test]
    fn slots_fill_in_order_then_the_least_recently_used_is_reused() {
        let mut cache = TileCache::new(3);
        assert_eq!([cache.store(key(1)), cache.store(key(2)), cache.store(key(3))], [0, 1, 2]);
        assert_eq!(cache.hit(&key(1)), Some(0));
        // Key 2 is now the least recently used.
        assert_eq!(cache.store(key(4)), 1);
        assert_eq!(cache.hit(&key(2)), None);
        assert_eq!(cache.entries(), vec![Some(key(1)), Some(key(4)), Some(key(3))]);
        assert_eq!(cache.store(key(5)), 2);
        assert_eq!(cache.store(key(6)), 0);
        assert_eq!(cache.entries(), vec![Some(key(6)), Some(key(4)), Some(key(5))]);
        assert_eq!(TileCache::new(4).entries(), vec![None; 4]);
    }

    #[test]
    fn content_seen_before_is_remembered_for_a_bounded_while() {
        let mut cache = TileCache::new(2);
        assert!(!cache.seen_before(key(1)));
        assert!(cache.seen_before(key(1)));
        assert!(!cache.seen_before(key(2)));
        // Two generations of two keys: key 1 survives one turnover, not two.
        assert!(!cache.seen_before(key(3)));
        assert!(cache.seen_before(key(1)));
        assert!(!cache.seen_before(key(4)));
        assert!(!cache.seen_before(key(5)));
        assert!(!cache.seen_before(key(6)));
        assert!(!cache.seen_before(key(1)));
        assert!(cache.seen.iter().map(HashSet::len).sum::<usize>() <= 4);
    }

    #[test]
    fn a_one_slot_cache_works() {
        let mut cache = TileCache::new(1);
        assert_eq!(cache.store(key(1)), 0);
        assert_eq!(cache.hit(&key(1)), Some(0));
        assert_eq!(cache.store(key(2)), 0);
        assert_eq!(cache.hit(&key(1)), None);
        assert_eq!(cache.hit(&key(2)), Some(0));
    }

    #[test]
    fn the_lru_order_matches_a_naive_model() {
        // A naive model: a list of (key, slot) from least to most recently used.
        let mut cache = TileCache::new(5);
        let mut model: Vec<(u64, u32)> = Vec::new();
        let mut state = 0x1234_5678_u64;
        for _ in 0..5000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let k = state % 9;
            match cache.hit(&key(k)) {
                Some(slot) => {
                    let at = model.iter().position(|&(mk, _)| mk == k).expect("the model has it");
                    assert_eq!(model[at].1, slot);
                    let entry = model.remove(at);
                    model.push(entry);
                }
                None => {
                    assert!(model.iter().all(|&(mk, _)| mk != k));
                    let slot = cache.store(key(k));
                    let expected = if model.len() < 5 { model.len() as u32 } else { model.remove(0).1 };
                    assert_eq!(slot, expected);
                    model.push((k, slot));
                }
            }
        }
    }
}
