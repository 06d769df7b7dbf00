//! A few recent results, keyed by a fingerprint of what they were computed from.
//!
//! Inference recomputes the same values on every call (the app re-analyses, live mode runs
//! every hop) from parameters that only change while training; keeping the last few avoids that.

use std::sync::{Arc, Mutex};

/// How many FIR blocks' kernels and kernel spectra inference keeps: the two blocks of each
/// member of an ensemble of up to twelve (the bundled heart ensemble has ten). Members take
/// turns on every analysis (and every live hop), so a memo smaller than all of their blocks
/// would drop each one just before it is needed again. At most about 17 MB per block (M13's
/// second block at 16 kHz: spectra kept in two layouts); the bundled heart members' blocks at
/// 1 kHz are far smaller (the ten-member analysis peaks at about 200 MB resident in all).
pub const BLOCKS_REMEMBERED: usize = 24;

/// Up to `capacity` values, the oldest dropped first.
pub struct Memo<V> {
    entries: Mutex<Vec<(u64, Arc<V>)>>,
    capacity: usize,
}

impl<V> Memo<V> {
    pub const fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
            capacity,
        }
    }

    /// The value stored under `key`, or `make()` stored and returned. `make` runs without the
    /// lock held, so two threads may both compute a missing value; both get a correct one.
    pub fn get_or_insert_with(&self, key: u64, make: impl FnOnce() -> V) -> Arc<V> {
        let lock = || self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, hit)) = lock().iter().find(|(k, _)| *k == key) {
            return hit.clone();
        }
        let value = Arc::new(make());
        let mut entries = lock();
        if entries.len() >= self.capacity.max(1) {
            entries.remove(0);
        }
        entries.push((key, value.clone()));
        value
    }
}

/// FNV-1a over 32-bit words, continuing from `seed` (start from [`FINGERPRINT_SEED`]).
pub fn fingerprint(seed: u64, words: impl IntoIterator<Item = u32>) -> u64 {
    words
        .into_iter()
        .fold(seed, |h, w| (h ^ u64::from(w)).wrapping_mul(0x100000001b3))
}

pub const FINGERPRINT_SEED: u64 = 0xcbf29ce484222325;

/// [`fingerprint`] of the bits of `values` and their count, hashed in four interleaved lanes:
/// one lane's chain of multiplies is latency-bound, and the kernels of a block are 520 k values.
pub fn fingerprint_values(seed: u64, values: &[f32]) -> u64 {
    let mut lanes = [0u64, 1, 2, 3].map(|i| seed ^ i);
    let chunks = values.chunks_exact(4);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane = (*lane ^ u64::from(v.to_bits())).wrapping_mul(0x100000001b3);
        }
    }
    let lane_words = lanes.into_iter().flat_map(|l| [l as u32, (l >> 32) as u32]);
    let tail = rest.iter().map(|v| v.to_bits());
    fingerprint(seed, lane_words.chain(tail).chain([values.len() as u32]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memo_returns_the_stored_value_and_drops_the_oldest() {
        let memo = Memo::new(2);
        let calls = std::cell::Cell::new(0);
        let get = |key: u64| {
            *memo.get_or_insert_with(key, || {
                calls.set(calls.get() + 1);
                key * 10
            })
        };
        assert_eq!((get(1), get(2), get(1)), (10, 20, 10));
        get(3); // evicts 1
        assert_eq!(get(1), 10);
        assert_eq!(calls.get(), 4);
    }

    #[test]
    fn fingerprint_depends_on_every_word_and_their_order() {
        let a = fingerprint(FINGERPRINT_SEED, [1, 2, 3]);
        assert_ne!(a, fingerprint(FINGERPRINT_SEED, [1, 2, 4]));
        assert_ne!(a, fingerprint(FINGERPRINT_SEED, [2, 1, 3]));
        assert_eq!(a, fingerprint(FINGERPRINT_SEED, [1, 2, 3]));

        let values: Vec<f32> = (0..11).map(|i| i as f32).collect();
        let b = fingerprint_values(FINGERPRINT_SEED, &values);
        for i in 0..values.len() {
            let mut changed = values.clone();
            changed[i] += 0.5;
            assert_ne!(b, fingerprint_values(FINGERPRINT_SEED, &changed), "value {i}");
        }
        assert_ne!(b, fingerprint_values(FINGERPRINT_SEED, &values[..10]));
    }
}
