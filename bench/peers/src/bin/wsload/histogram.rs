//! Latency histogram: exact below 256 ns, then 128 buckets per power of
//! two (under 1% error), a few KiB whatever the run's length.

const EXACT: u64 = 256;
const SUB: u64 = 128;
/// Buckets up to 2^40 ns (18 minutes), far beyond any wait wsload allows.
const BUCKETS: usize = (EXACT + SUB * 33) as usize;

pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Histogram {
    pub fn new() -> Self {
        Histogram { counts: vec![0; BUCKETS], total: 0 }
    }

    pub fn record(&mut self, ns: u64) {
        self.counts[index(ns).min(BUCKETS - 1)] += 1;
        self.total += 1;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value (ns) at quantile `q` (0..=1), or 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let want = ((self.total as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return value(i);
            }
        }
        0
    }
}

fn index(ns: u64) -> usize {
    if ns < EXACT {
        return ns as usize;
    }
    // ns >= 256: keep its top 8 bits (128..=255) and count the shift.
    let shift = 63 - u64::from(ns.leading_zeros()) - 7;
    (EXACT + (shift - 1) * SUB + ((ns >> shift) - SUB)) as usize
}

/// The lower bound of bucket `i`.
fn value(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT {
        return i;
    }
    let shift = (i - EXACT) / SUB + 1;
    ((i - EXACT) % SUB + SUB) << shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_within_one_percent() {
        for ns in [0, 1, 255, 256, 257, 1000, 123_456, 9_876_543_210] {
            let v = value(index(ns));
            assert!(v <= ns && ns - v <= ns / 100 + 1, "{ns} -> {v}");
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        for ns in 1..=100 {
            h.record(ns);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
    }
}
