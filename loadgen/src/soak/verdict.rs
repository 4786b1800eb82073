//! The soak's verdicts: pure functions of its samples, so their thresholds are unit-tested.

use serde::Serialize;

/// Under steady churn a process's memory must level off: its last steady sample may be at most
/// this factor, plus [`RSS_SLACK`], above its first (allocator caches and the first rooms'
/// high-water mark grow a little; a leak grows with every room).
pub const RSS_GROWTH: f64 = 1.2;
pub const RSS_SLACK: u64 = 8 << 20;
/// Fewer steady samples than this say nothing about a trend.
pub const MIN_STEADY_SAMPLES: usize = 3;
/// Descriptors a process may hold above its baseline once every room is closed (a metrics scrape
/// or a log pipe in flight).
pub const FD_SLACK: u64 = 4;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Judgement {
    Pass,
    Fail(String),
    /// Too little data to judge (a short run); not a failure.
    NotJudged(String),
}

impl Judgement {
    pub fn failed(&self) -> bool {
        matches!(self, Judgement::Fail(_))
    }
}

impl std::fmt::Display for Judgement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Judgement::Pass => write!(f, "PASS"),
            Judgement::Fail(why) => write!(f, "FAIL: {why}"),
            Judgement::NotJudged(why) => write!(f, "not judged: {why}"),
        }
    }
}

/// Whether `steady` (one process's RSS at each sample while rooms churned, in order) levels off.
pub fn rss(steady: &[u64]) -> Judgement {
    let (Some(&first), Some(&last)) = (steady.first(), steady.last()) else {
        return Judgement::NotJudged("no samples".into());
    };
    if steady.len() < MIN_STEADY_SAMPLES {
        return Judgement::NotJudged(format!("{} samples, {MIN_STEADY_SAMPLES} needed", steady.len()));
    }
    let limit = (first as f64 * RSS_GROWTH) as u64 + RSS_SLACK;
    if last > limit {
        return Judgement::Fail(format!("grew from {} to {} MiB (limit {} MiB)", mib(first), mib(last), mib(limit)));
    }
    Judgement::Pass
}

/// Whether a process's descriptors came back to its baseline once every room closed.
pub fn fds(baseline: u64, after: u64) -> Judgement {
    if after > baseline + FD_SLACK {
        return Judgement::Fail(format!("{after} open after the rooms closed, {baseline} before any opened"));
    }
    Judgement::Pass
}

/// Whether every object gauge is back to zero: `(name, value)` each.
pub fn released(objects: &[(&str, u64)]) -> Judgement {
    let left: Vec<String> = objects.iter().filter(|(_, n)| *n > 0).map(|(name, n)| format!("{name} {n}")).collect();
    if left.is_empty() { Judgement::Pass } else { Judgement::Fail(format!("left behind: {}", left.join(", "))) }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / f64::from(1 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn memory_that_levels_off_passes_and_memory_that_climbs_fails() {
        assert_eq!(rss(&[40 * MB, 44 * MB, 45 * MB, 45 * MB]), Judgement::Pass);
        // 20 % + 8 MiB above 40 MiB is 56 MiB.
        assert_eq!(rss(&[40 * MB, 50 * MB, 56 * MB]), Judgement::Pass);
        assert!(rss(&[40 * MB, 50 * MB, 57 * MB]).failed());
        // A dip and a climb: only the last sample against the first counts.
        assert!(rss(&[40 * MB, 30 * MB, 60 * MB]).failed());
    }

    #[test]
    fn too_few_samples_are_not_judged() {
        assert!(matches!(rss(&[]), Judgement::NotJudged(_)));
        assert!(matches!(rss(&[10 * MB, 100 * MB]), Judgement::NotJudged(_)));
    }

    #[test]
    fn descriptors_must_come_back() {
        assert_eq!(fds(20, 20), Judgement::Pass);
        assert_eq!(fds(20, 20 + FD_SLACK), Judgement::Pass);
        assert_eq!(fds(20, 3), Judgement::Pass);
        assert!(fds(20, 21 + FD_SLACK).failed());
    }

    #[test]
    fn every_object_must_be_released() {
        assert_eq!(released(&[("rooms", 0), ("consumers", 0)]), Judgement::Pass);
        assert_eq!(
            released(&[("rooms", 0), ("consumers", 2), ("data_producers", 1)]),
            Judgement::Fail("left behind: consumers 2, data_producers 1".into())
        );
    }
}
