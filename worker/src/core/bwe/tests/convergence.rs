//! Closed-loop convergence in virtual time. Each test prints its figures (`--nocapture`).

use std::time::Duration;

use super::harness::Harness;
use super::link::Link;

const BASE_DELAY: Duration = Duration::from_millis(25);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// From 300 kbit/s, a sender limited only by the estimate (media up to 5 Mbit/s) on a bottleneck:
/// the estimate's mean over the last 5 of 20 s must be within ±10 % of the bottleneck.
fn converges(bottleneck: u64) {
    let mut h = Harness::new(300_000, Link::new(bottleneck, BASE_DELAY));
    h.run_for(secs(20));
    let (estimate, acked) = h.mean(secs(15), secs(20));
    let (lo, hi) = h.range(secs(15), secs(20));
    let stats = h.bwe.stats();
    println!(
        "bottleneck {bottleneck}: mean estimate {:.0} ({:.1} %), acked {:.0} ({:.1} %), range {lo}..{hi}, \
         probes {}/{} , link drops {}",
        estimate,
        100.0 * estimate / bottleneck as f64,
        acked,
        100.0 * acked / bottleneck as f64,
        stats.probes_succeeded,
        stats.probes_sent,
        h.link.dropped,
    );
    let ratio = estimate / bottleneck as f64;
    assert!((0.9..=1.1).contains(&ratio), "estimate {estimate:.0} vs bottleneck {bottleneck}");
    assert!(acked / bottleneck as f64 > 0.8, "the link is used: acked {acked:.0}");
    assert!(hi as f64 <= 1.3 * bottleneck as f64, "no wild overshoot: {hi}");
}

#[test]
fn bwe_converges_on_300_kbps() {
    converges(300_000);
}

#[test]
fn bwe_converges_on_1_mbps() {
    converges(1_000_000);
}

#[test]
fn bwe_converges_on_3_mbps() {
    converges(3_000_000);
}

#[test]
fn bwe_follows_a_cut_and_recovers() {
    let mut h = Harness::new(300_000, Link::new(3_000_000, BASE_DELAY));
    h.run_for(secs(20));
    let before = h.bwe.estimate_bps();
    h.link.set_rate(300_000);
    let drop = h.run_until(secs(5), |h| h.bwe.estimate_bps() < 450_000);
    h.run_for(secs(10) - drop.unwrap_or_default());
    let during = h.mean(h.elapsed() - secs(5), h.elapsed()).0;
    h.link.set_rate(3_000_000);
    let recover = h.run_until(secs(30), |h| h.bwe.estimate_bps() > 2_000_000);
    println!(
        "cut 3M -> 300k: before {before}, below 450k after {drop:?}, mean over the cut's last 5 s {during:.0}, \
         above 2M {recover:?} after the link came back; probes {}/{}",
        h.bwe.stats().probes_succeeded,
        h.bwe.stats().probes_sent
    );
    assert!(before > 2_500_000, "converged before the cut: {before}");
    assert!(drop.is_some_and(|d| d <= secs(1)), "dropped below 450k in {drop:?}");
    assert!(during < 350_000.0 && during > 200_000.0, "followed the cut: {during:.0}");
    assert!(recover.is_some_and(|d| d <= secs(15)), "recovered above 2M in {recover:?}");
}

#[test]
fn bwe_holds_up_under_random_loss() {
    let mut h = Harness::new(300_000, Link::new(1_000_000, BASE_DELAY).with_loss(0.05, 42));
    h.run_for(secs(30));
    let (estimate, acked) = h.mean(secs(10), secs(30));
    let (lo, hi) = h.range(secs(10), secs(30));
    let stats = h.bwe.stats();
    println!(
        "1M with 5 % loss: mean estimate {estimate:.0}, acked {acked:.0}, range {lo}..{hi}, last loss fraction {:.3}",
        stats.loss_fraction
    );
    assert!(lo >= 500_000, "never collapses below half the link: {lo}");
    assert!(estimate <= 1_150_000.0, "not far above the link: {estimate:.0}");
}

/// Not a check: prints the estimator's state every 100 ms for tuning, e.g.
/// `BWE_RATE=1000000 BWE_LOSS=0.05 cargo test -p octo-worker --lib bwe_trace -- --ignored --nocapture`.
#[test]
#[ignore]
fn bwe_trace() {
    let rate: u64 = std::env::var("BWE_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000_000);
    let loss: f64 = std::env::var("BWE_LOSS").ok().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let mut h = Harness::new(300_000, Link::new(rate, BASE_DELAY).with_loss(loss, 42));
    for _ in 0..200 {
        h.run_for(Duration::from_millis(100));
        let s = h.bwe.stats();
        println!(
            "{:>6.1} est {:>8} delay {:>8} loss {:>8} acked {:>8?} lf {:.3} {:?} {:?} rtt {:?} probes {}/{} drops {}",
            h.elapsed().as_secs_f64(),
            s.estimate_bps,
            s.delay_based_bps,
            s.loss_based_bps,
            s.acked_bps,
            s.loss_fraction,
            s.usage,
            s.state,
            s.rtt,
            s.probes_succeeded,
            s.probes_sent,
            h.link.dropped
        );
    }
}
