//! `concurrent_viewers` (`spec/metrics.md`): playback sessions open — from
//! their first to their last event, both included — at a moment; over an
//! interval, the maximum.
//!
//! A session spanning `[s, e]` is a change of `+1` at `s` and `-1` at
//! `e + 1`. The count at `t` is the sum of the changes at or before `t`.
//! Stores keep, per bucket of time, the sum of its changes (`delta`) and the
//! highest running sum inside it counted from the bucket's start (`peak`):
//! buckets then combine without their sessions ([`combine`]).

use playhead_model::Millis;

/// A change of the open count at a time.
pub type Change = (Millis, i64);

/// The changes of session spans `(first event, last event)`, sorted by
/// time, one entry per time.
pub fn changes(spans: impl IntoIterator<Item = (Millis, Millis)>) -> Vec<Change> {
    let mut out: Vec<Change> = spans
        .into_iter()
        .flat_map(|(s, e)| [(s, 1), (e.saturating_add(1), -1)])
        .collect();
    merge_changes(&mut out);
    out
}

/// Sort changes by time and add up those at the same time.
pub fn merge_changes(changes: &mut Vec<Change>) {
    changes.sort_unstable_by_key(|c| c.0);
    changes.dedup_by(|later, kept| {
        if later.0 == kept.0 {
            kept.1 += later.1;
            true
        } else {
            false
        }
    });
}

/// `(delta, peak)` of the sorted changes inside `[start, end)`: their sum,
/// and the highest running sum at any moment of the bucket, counted from 0
/// just before `start` (0 itself when nothing changes at `start`).
pub fn bucket_peak(changes: &[Change], start: Millis, end: Millis) -> (i64, i64) {
    let inside = changes.iter().filter(|(t, _)| *t >= start && *t < end);
    let mut running = 0;
    let mut peak = None;
    for &(t, d) in inside {
        if peak.is_none() && t > start {
            peak = Some(0);
        }
        running += d;
        peak = Some(peak.map_or(running, |p: i64| p.max(running)));
    }
    (running, peak.unwrap_or(0))
}

/// `(delta, peak)` of consecutive buckets `(start, delta, peak)`, sorted, of
/// one span, covering `[start, end)`; a bucket without a row has neither
/// changes nor a peak above its start.
pub fn combine(
    rows: impl IntoIterator<Item = (Millis, i64, i64)>,
    start: Millis,
    span: Millis,
    end: Millis,
) -> (i64, i64) {
    let mut running = 0;
    let mut peak: Option<i64> = None;
    let mut next = start;
    for (bucket, delta, bucket_peak) in rows {
        if bucket > next {
            // Buckets without a row: the count stays as it is.
            peak = Some(peak.map_or(running, |p| p.max(running)));
        }
        let here = running + bucket_peak;
        peak = Some(peak.map_or(here, |p| p.max(here)));
        running += delta;
        next = bucket + span;
    }
    if next < end {
        peak = Some(peak.map_or(running, |p| p.max(running)));
    }
    (running, peak.unwrap_or(0))
}

/// The maximum open count in each bucket `[b, b + interval)` from `start`,
/// counting only moments in `[from, to)`, from every session's span (the
/// spans must include every session open at some moment of the range).
pub fn sweep(
    spans: &[(Millis, Millis)],
    from: Millis,
    start: Millis,
    to: Millis,
    interval: Millis,
) -> Vec<u64> {
    let changes = changes(spans.iter().copied());
    // The count just before `from`, then each bucket's peak on top of it.
    let mut i = changes.partition_point(|c| c.0 < from);
    let mut running: i64 = changes[..i].iter().map(|c| c.1).sum();
    let mut out = Vec::new();
    let mut b = start;
    while b < to {
        let (a, z) = (b.max(from), b.saturating_add(interval).min(to));
        let j = changes.partition_point(|c| c.0 < z);
        let (delta, peak) = bucket_peak(&changes[i..j], a, z);
        out.push((running + peak).max(0) as u64);
        running += delta;
        i = j;
        b = b.saturating_add(interval);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_is_the_max_per_bucket() {
        // a: 0..=15, b: 5..=25, c: 30..=30
        let spans = [(0, 15), (5, 25), (30, 30)];
        assert_eq!(sweep(&spans, 0, 0, 40, 10), vec![2, 2, 1, 1]);
        assert_eq!(sweep(&spans, 0, 0, 40, 40), vec![2]);
        // A session open before the range counts.
        assert_eq!(sweep(&[(-100, 5)], 0, 0, 10, 10), vec![1]);
        assert_eq!(sweep(&[], 0, 0, 10, 5), vec![0, 0]);
        // Only moments from `from` on: a ended before it.
        assert_eq!(sweep(&spans, 16, 10, 40, 10), vec![1, 1, 1]);
    }

    #[test]
    fn bucket_peaks() {
        let c = changes([(0, 15), (5, 25), (30, 30)]);
        assert_eq!(
            c,
            vec![(0, 1), (5, 1), (16, -1), (26, -1), (30, 1), (31, -1)]
        );
        assert_eq!(bucket_peak(&c, 0, 10), (2, 2));
        assert_eq!(bucket_peak(&c, 10, 20), (-1, 0));
        // Nothing before the change at the start: the peak is below 0.
        assert_eq!(bucket_peak(&c, 16, 20), (-1, -1));
        assert_eq!(bucket_peak(&c, 20, 40), (-1, 0));
        assert_eq!(bucket_peak(&c, 40, 50), (0, 0));
    }

    #[test]
    fn combined_buckets_give_the_peak_of_their_union() {
        let c = changes([(0, 15), (5, 25), (30, 30), (41, 47), (44, 58)]);
        for (start, span, n) in [(0, 10, 6), (0, 5, 12), (10, 10, 5)] {
            let rows: Vec<(Millis, i64, i64)> = (0..n)
                .map(|k| start + k * span)
                .map(|b| {
                    let (d, p) = bucket_peak(&c, b, b + span);
                    (b, d, p)
                })
                .filter(|&(_, d, p)| (d, p) != (0, 0))
                .collect();
            let end = start + n * span;
            assert_eq!(
                combine(rows, start, span, end),
                bucket_peak(&c, start, end),
                "{start}+{n}×{span}"
            );
        }
    }
}
