//! Replay protection that never forgets a nonce while its request could
//! still be accepted.
//!
//! A signed request is accepted only while its own timestamp is within
//! ±15 minutes of the server's clock, so a `(access key, nonce)` pair must
//! be remembered until its request's timestamp leaves that window — not
//! for a fixed time after it was seen. Pairs are kept in 64 shards chosen
//! by a keyed hash of the pair (no global lock; each shard's table grows
//! on its own, so no resize stalls every request), as 64-bit keyed
//! digests (a collision refuses a request, never accepts one): one hash
//! lookup per request, and an index by the request's timestamp second so
//! that pairs whose second left the window are dropped in order.
//!
//! Memory is bounded: when a shard holds its share of the capacity, its
//! oldest second is dropped and the accepted window is narrowed to start
//! after that second ([`ReplayGuard::floor`]): a request older than the
//! oldest remembered nonce is refused as expired, so nothing that was
//! forgotten can be replayed. Each narrowing is logged and counted. (At
//! one million pairs and 65,000 requests a second the window accepts the
//! last ~15 seconds; with per-minute buckets, as before, a full shard
//! dropped the current minute and refused every request until the next.)

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// How far a request's timestamp may be from the server's clock.
pub const WINDOW_SECS: i64 = 15 * 60;
const SHARDS: usize = 64;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The pair was seen while its request could still be accepted.
    Used,
    /// The request is older than the oldest nonce still remembered (the
    /// window was narrowed to bound memory).
    Expired,
}

#[derive(Default)]
struct Shard {
    /// Digests remembered (already keyed hashes: no hashing again).
    seen: HashSet<u64, std::hash::BuildHasherDefault<Identity>>,
    /// Second of the request's timestamp → digests (for dropping in order).
    by_second: BTreeMap<i64, Vec<u64>>,
}

/// The identity hash for digests that are already keyed hashes.
#[derive(Default)]
struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

impl Shard {
    fn drop_second(&mut self) -> Option<i64> {
        let (second, digests) = self.by_second.pop_first()?;
        for d in digests {
            self.seen.remove(&d);
        }
        Some(second)
    }
}

/// The replay guard (see the module docs).
pub struct ReplayGuard {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    hasher: std::collections::hash_map::RandomState,
    /// Requests with a timestamp before this (Unix seconds) are refused.
    floor: AtomicI64,
    narrowed: AtomicU64,
}

impl std::fmt::Debug for ReplayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayGuard")
            .field("per_shard", &self.per_shard)
            .field("floor", &self.floor.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ReplayGuard {
    /// A guard remembering at most about `capacity` pairs.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: (capacity / SHARDS).max(1),
            hasher: std::collections::hash_map::RandomState::new(),
            floor: AtomicI64::new(i64::MIN),
            narrowed: AtomicU64::new(0),
        }
    }

    fn digest(&self, access_key_id: &str, nonce: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(access_key_id.as_bytes());
        h.write_u8(0);
        h.write(nonce.as_bytes());
        h.finish()
    }

    /// The earliest request timestamp accepted because of the bound (Unix
    /// seconds; `i64::MIN` while nothing was dropped early).
    pub fn floor(&self) -> i64 {
        self.floor.load(Ordering::Relaxed)
    }

    /// How many times the window was narrowed.
    pub fn narrowed(&self) -> u64 {
        self.narrowed.load(Ordering::Relaxed)
    }

    /// Records the pair of a request stamped `request_time` (already
    /// checked to be within the window of `now`, Unix seconds).
    ///
    /// # Errors
    ///
    /// [`Refusal::Used`] for a pair seen before, [`Refusal::Expired`] for a
    /// request older than what is remembered.
    pub fn record(
        &self,
        access_key_id: &str,
        nonce: &str,
        request_time: i64,
        now: i64,
    ) -> Result<(), Refusal> {
        if request_time < self.floor() {
            return Err(Refusal::Expired);
        }
        let d = self.digest(access_key_id, nonce);
        let mut shard = self.shards[(d as usize) % SHARDS]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Seconds out of the window can go.
        let oldest_useful = now - WINDOW_SECS;
        while shard
            .by_second
            .first_key_value()
            .is_some_and(|(&sec, _)| sec < oldest_useful)
        {
            shard.drop_second();
        }
        if shard.seen.contains(&d) {
            return Err(Refusal::Used);
        }
        while shard.seen.len() >= self.per_shard {
            let Some(sec) = shard.drop_second() else {
                break;
            };
            // Nothing stamped in second `sec` or before may be accepted now.
            let new_floor = sec + 1;
            let old = self.floor.fetch_max(new_floor, Ordering::Relaxed);
            if new_floor > old {
                self.narrowed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    accepted_from = new_floor,
                    "the replay cache is full: requests stamped before this are refused as expired"
                );
            }
        }
        if request_time < self.floor() {
            return Err(Refusal::Expired);
        }
        shard.seen.insert(d);
        shard.by_second.entry(request_time).or_default().push(d);
        Ok(())
    }

    /// Pairs remembered.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .seen
                    .len()
            })
            .sum()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_refused_twice_while_their_request_is_acceptable() {
        let g = ReplayGuard::new(1_000_000);
        let t = 1_800_000_000;
        assert_eq!(g.record("ak", "n1", t, t), Ok(()));
        assert_eq!(g.record("ak", "n1", t, t + 10), Err(Refusal::Used));
        assert_eq!(g.record("other", "n1", t, t + 10), Ok(()));
        // Still refused at the last second its request is acceptable.
        assert_eq!(g.record("ak", "n1", t, t + WINDOW_SECS), Err(Refusal::Used));
        // A request stamped late in the window is remembered until its own
        // stamp leaves it, not 30 minutes after it was first seen.
        let late = t + WINDOW_SECS;
        assert_eq!(g.record("ak", "n2", late, t), Ok(()));
        assert_eq!(
            g.record("ak", "n2", late, late + WINDOW_SECS - 1),
            Err(Refusal::Used)
        );
    }

    #[test]
    fn a_flood_from_one_key_narrows_the_window_instead_of_forgetting_another_keys_nonces() {
        let g = ReplayGuard::new(SHARDS * 10);
        let t0 = 1_800_000_000;
        // Key A's captured requests, stamped over the first minutes.
        let captured: Vec<(String, i64)> = (0..50).map(|i| (format!("a-{i}"), t0 + i)).collect();
        for (n, t) in &captured {
            assert_eq!(g.record("AKA", n, *t, *t), Ok(()));
        }
        // Key B floods far past the capacity, its requests stamped later.
        let mut refused = 0;
        for i in 0..(SHARDS * 200) {
            let t = t0 + 120 + (i as i64 % 600);
            if g.record("AKB", &format!("b-{i}"), t, t0 + 720).is_err() {
                refused += 1;
            }
        }
        assert!(g.narrowed() > 0);
        assert!(g.len() <= SHARDS * 10);
        // Every captured request of key A is still refused on replay.
        for (n, t) in &captured {
            assert!(g.record("AKA", n, *t, t0 + 720).is_err(), "{n} replayed");
        }
        assert!(refused < SHARDS * 200);
    }

    /// Under a steady load past the capacity the accepted window narrows
    /// a second at a time: requests stamped now keep being accepted (with
    /// per-minute buckets a full shard dropped the current minute and
    /// refused every request until the next one).
    #[test]
    fn a_steady_load_past_the_capacity_keeps_accepting_current_requests() {
        let g = ReplayGuard::new(64 * 10);
        let t0 = 1_800_000_000;
        let mut n = 0;
        for sec in 0..120 {
            let now = t0 + sec;
            for _ in 0..50 {
                n += 1;
                assert_eq!(
                    g.record("ak", &format!("n{n}"), now, now),
                    Ok(()),
                    "second {sec}"
                );
            }
        }
        assert!(g.narrowed() > 0);
        assert!(g.len() <= 64 * 10);
        // What was dropped stays refused: a request stamped at the start.
        assert_eq!(g.record("ak", "n1", t0, t0 + 120), Err(Refusal::Expired));
    }
}
