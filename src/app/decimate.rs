//! Min/max decimation of long signals for drawing: a pyramid of per-block extrema lets any visible
//! range be reduced to one (min, max) pair per pixel column in time proportional to the pixels.

/// Per-block minima and maxima at block sizes 2^(k+1), k = 0, 1, ...
#[derive(Clone, Debug, Default)]
pub struct MinMaxPyramid {
    samples: Vec<f32>,
    levels: Vec<Vec<(f32, f32)>>,
}

impl MinMaxPyramid {
    pub fn new(samples: Vec<f32>) -> Self {
        let mut levels: Vec<Vec<(f32, f32)>> = Vec::new();
        let mut current: Vec<(f32, f32)> = samples
            .chunks(2)
            .map(|c| {
                c.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                })
            })
            .collect();
        while current.len() > 1 {
            let next = current
                .chunks(2)
                .map(|c| {
                    c.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |a, b| {
                        (a.0.min(b.0), a.1.max(b.1))
                    })
                })
                .collect();
            levels.push(std::mem::replace(&mut current, next));
        }
        levels.push(current);
        Self { samples, levels }
    }

    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    /// (min, max) of `samples[start..end]`, using the coarsest blocks that fit.
    pub fn range_min_max(&self, start: usize, end: usize) -> (f32, f32) {
        let end = end.min(self.samples.len());
        let mut acc = (f32::INFINITY, f32::NEG_INFINITY);
        let mut i = start;
        while i < end {
            // Largest aligned block starting at i that ends within `end`.
            let mut level = None;
            for (k, _) in self.levels.iter().enumerate() {
                let size = 2usize << k;
                if i.is_multiple_of(size) && i + size <= end {
                    level = Some(k);
                } else {
                    break;
                }
            }
            match level {
                Some(k) => {
                    let size = 2usize << k;
                    let (lo, hi) = self.levels[k][i / size];
                    acc = (acc.0.min(lo), acc.1.max(hi));
                    i += size;
                }
                None => {
                    let v = self.samples[i];
                    acc = (acc.0.min(v), acc.1.max(v));
                    i += 1;
                }
            }
        }
        acc
    }

    /// One `(time_s, min, max)` per column for the time range `[t0, t1]` split into `columns`
    /// columns, at `rate` samples per second. Columns outside the signal are omitted. When a
    /// column holds fewer than two samples the samples themselves are returned instead.
    pub fn columns(&self, rate: f64, t0: f64, t1: f64, columns: usize) -> Vec<(f64, f32, f32)> {
        let n = self.samples.len();
        if n == 0 || t1 <= t0 || columns == 0 {
            return Vec::new();
        }
        let first = ((t0 * rate).floor().max(0.0) as usize).min(n);
        let last = ((t1 * rate).ceil().max(0.0) as usize + 1).min(n);
        if last <= first {
            return Vec::new();
        }
        let per_column = (last - first) as f64 / columns as f64;
        if per_column <= 2.0 {
            return (first..last)
                .map(|i| (i as f64 / rate, self.samples[i], self.samples[i]))
                .collect();
        }
        (0..columns)
            .filter_map(|c| {
                let a = first + (c as f64 * per_column) as usize;
                let b = (first + ((c + 1) as f64 * per_column) as usize).min(last);
                (b > a).then(|| {
                    let (lo, hi) = self.range_min_max(a, b);
                    (((a + b) as f64 / 2.0) / rate, lo, hi)
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_extrema_match_a_linear_scan() {
        let x: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1013) as f32 - 500.0).collect();
        let p = MinMaxPyramid::new(x.clone());
        for (a, b) in [
            (0, 1000),
            (3, 4),
            (5, 517),
            (511, 999),
            (1, 2),
            (0, 1),
            (998, 1000),
        ] {
            let lo = x[a..b].iter().copied().fold(f32::INFINITY, f32::min);
            let hi = x[a..b].iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(p.range_min_max(a, b), (lo, hi), "{a}..{b}");
        }
    }

    #[test]
    fn columns_cover_the_visible_range_with_one_pair_each() {
        let x: Vec<f32> = (0..10_000).map(|i| (i as f32 * 0.01).sin()).collect();
        let p = MinMaxPyramid::new(x);
        let cols = p.columns(1000.0, 2.0, 6.0, 400);
        assert_eq!(cols.len(), 400);
        assert!(cols[0].0 >= 2.0 && cols[399].0 <= 6.0);
        assert!(
            cols.iter()
                .all(|&(_, lo, hi)| lo <= hi && (-1.0..=1.0).contains(&lo))
        );
        // Zoomed in to fewer samples than columns: the samples themselves.
        assert_eq!(p.columns(1000.0, 1.0, 1.01, 400).len(), 11);
        assert!(p.columns(1000.0, 20.0, 30.0, 400).is_empty());
    }
}
