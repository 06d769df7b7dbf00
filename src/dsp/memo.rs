//! A few recent results, keyed by a fingerprint of what they were computed from.
//!
//! Inference recomputes the same values on every call (the app re-analyses, live mode runs
//! every hop) from parameters that only change while training; keeping the last few avoids that.

use std::sync::{Arc, Mutex};

/// Bytes of kernel spectra inference keeps (see `fftconv`). Members of an ensemble take turns
/// on every analysis (and every live hop), so a memo smaller than all of their blocks would
/// drop each one just before it is needed again. M13's second block at 16 kHz takes about
/// 17 MB (spectra kept in two layouts), so this holds some thirty such blocks; the bundled heart
/// members' blocks at 1 kHz are far smaller (the ten-member analysis peaks at about 200 MB
/// resident in all). A bound in bytes rather than blocks keeps an ensemble of many small
/// members from thrashing and one of large members from growing without limit.
pub const SPECTRA_BUDGET_BYTES: usize = 512 << 20;

/// Bytes of FIR kernels (`[H, C, K]` values) inference keeps: 1 MB for M13's second block.
pub const KERNELS_BUDGET_BYTES: usize = 64 << 20;

/// What a remembered value occupies, for [`Memo`]'s budget.
pub trait Footprint {
    fn bytes(&self) -> usize;
}

impl Footprint for Vec<f32> {
    fn bytes(&self) -> usize {
        std::mem::size_of_val(self.as_slice())
    }
}

/// Values up to a budget in bytes, the least recently used dropped first. A value's size is
/// read again whenever another value is stored, so values that grow after they are stored
/// (layouts built on first use) are counted as they are then. The newest value is always
/// kept, even one larger than the budget.
pub struct Memo<V> {
    entries: Mutex<Vec<(u64, Arc<V>)>>,
    budget: usize,
}

impl<V: Footprint> Memo<V> {
    pub const fn new(budget_bytes: usize) -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
            budget: budget_bytes,
        }
    }

    /// The value stored under `key`, or `make()` stored and returned. `make` runs without the
    /// lock held, so two threads may both compute a missing value; both get a correct one.
    pub fn get_or_insert_with(&self, key: u64, make: impl FnOnce() -> V) -> Arc<V> {
        let lock = || self.entries.lock().unwrap_or_else(|e| e.into_inner());
        {
            let mut entries = lock();
            if let Some(i) = entries.iter().position(|(k, _)| *k == key) {
                let hit = entries.remove(i);
                let value = hit.1.clone();
                entries.push(hit);
                return value;
            }
        }
        let value = Arc::new(make());
        let mut entries = lock();
        // Sizes read once: another thread may be building a layout of a stored value meanwhile.
        let mut sizes: Vec<usize> = entries.iter().map(|(_, v)| v.bytes()).collect();
        let mut total: usize = sizes.iter().sum();
        let need = value.bytes();
        while !entries.is_empty() && total + need > self.budget {
            entries.remove(0);
            total -= sizes.remove(0);
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
    fn memo_keeps_values_within_its_budget_dropping_the_least_recently_used() {
        // Room for 40 bytes: ten f32 values.
        let memo = Memo::new(40);
        let calls = std::cell::Cell::new(0);
        let get = |key: u64, len: usize| {
            memo.get_or_insert_with(key, || {
                calls.set(calls.get() + 1);
                vec![key as f32; len]
            })[0] as u64
        };
        assert_eq!((get(1, 4), get(2, 4), get(1, 4)), (1, 2, 1));
        assert_eq!(calls.get(), 2);
        // 16 + 16 + 16 > 40: the least recently used (2, since 1 was just read) goes.
        get(3, 4);
        assert_eq!(calls.get(), 3);
        get(1, 4);
        assert_eq!(calls.get(), 3, "1 was kept");
        get(2, 4);
        assert_eq!(calls.get(), 4, "2 was dropped");
        // A value larger than the budget is still kept, alone.
        get(9, 20);
        get(9, 20);
        assert_eq!(calls.get(), 5);
        get(1, 4);
        assert_eq!(calls.get(), 6, "everything else made room for it");
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
