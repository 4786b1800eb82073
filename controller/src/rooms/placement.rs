//! Where a new room's router goes: the least-loaded live worker.
//!
//! The rule, in order (the first difference decides):
//! 1. Only live workers (answering requests) are candidates.
//! 2. A worker whose CPU utilisation over the last sample is at least [`HOT_CPU`] of one core is
//!    avoided while any other live worker is below it: it is already near saturation, and a single
//!    worker thread cannot borrow another core.
//! 3. Fewest media streams: producers + consumers of the rooms it hosts. Each is a per-packet cost
//!    (a producer's packet is decrypted and recorded once, then each consumer copies, rewrites and
//!    encrypts it), and unlike CPU the counts move the moment a room changes, so a burst of joins
//!    does not pile onto the worker whose last CPU sample happened to be low.
//! 4. Lower CPU utilisation, in steps of [`CPU_STEP`]: streams differ in bitrate (an audio consumer
//!    costs far less than a 1080p one), and CPU tells those apart; the steps keep sampling noise
//!    between two idle workers from outweighing the next rule.
//! 5. Fewest routers: rooms that have no media yet still spread out.
//! 6. Lowest index, so the choice is deterministic.

/// What placement knows of one worker slot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerLoad {
    pub index: usize,
    pub alive: bool,
    pub routers: usize,
    pub producers: usize,
    pub consumers: usize,
    /// The share of one core the worker process used over the last sampling interval (1.0 = one
    /// core busy); `None` before the first sample of this process.
    pub cpu: Option<f64>,
}

/// At or above this share of one core a worker is avoided while another is below it.
pub const HOT_CPU: f64 = 0.8;

/// CPU utilisation is compared in steps of this size (10% of a core).
pub const CPU_STEP: f64 = 0.1;

impl WorkerLoad {
    fn is_hot(&self) -> bool {
        self.cpu.is_some_and(|c| c >= HOT_CPU)
    }

    fn streams(&self) -> usize {
        self.producers.saturating_add(self.consumers)
    }

    fn cpu_step(&self) -> u64 {
        // No sample yet counts as idle: a freshly (re)started worker has nothing on it.
        let cpu = self.cpu.filter(|c| c.is_finite() && *c > 0.0).unwrap_or(0.0);
        (cpu / CPU_STEP).floor() as u64
    }
}

/// The index of the worker a new room should go to, or `None` if no worker is live.
pub fn choose_worker(loads: &[WorkerLoad]) -> Option<usize> {
    let live = || loads.iter().filter(|w| w.alive);
    let any_cool = live().any(|w| !w.is_hot());
    live()
        .filter(|w| !any_cool || !w.is_hot())
        .min_by_key(|w| (w.streams(), w.cpu_step(), w.routers, w.index))
        .map(|w| w.index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(index: usize, routers: usize, producers: usize, consumers: usize, cpu: f64) -> WorkerLoad {
        WorkerLoad { index, alive: true, routers, producers, consumers, cpu: Some(cpu) }
    }

    #[test]
    fn no_live_worker_no_choice() {
        assert_eq!(choose_worker(&[]), None);
        let dead = WorkerLoad { alive: false, ..worker(0, 0, 0, 0, 0.0) };
        assert_eq!(choose_worker(&[dead]), None);
    }

    #[test]
    fn equal_workers_go_by_index() {
        let loads = [worker(0, 1, 2, 3, 0.2), worker(1, 1, 2, 3, 0.2), worker(2, 1, 2, 3, 0.2)];
        assert_eq!(choose_worker(&loads), Some(0));
        assert_eq!(choose_worker(&loads[1..]), Some(1));
    }

    #[test]
    fn a_dead_worker_is_skipped_however_idle() {
        let loads = [
            WorkerLoad { alive: false, ..worker(0, 0, 0, 0, 0.0) },
            worker(1, 4, 10, 40, 0.5),
            worker(2, 3, 10, 50, 0.5),
        ];
        assert_eq!(choose_worker(&loads), Some(1));
    }

    #[test]
    fn stream_counts_dominate_router_counts() {
        // One big room against five empty ones: the empty rooms cost nothing per packet.
        let loads = [worker(0, 1, 10, 90, 0.3), worker(1, 5, 0, 0, 0.3)];
        assert_eq!(choose_worker(&loads), Some(1));
        // Producers count as streams too.
        let loads = [worker(0, 1, 3, 0, 0.0), worker(1, 1, 0, 2, 0.0)];
        assert_eq!(choose_worker(&loads), Some(1));
    }

    #[test]
    fn a_cpu_hot_worker_is_avoided_while_another_is_cool() {
        // Fewer streams, but its streams are expensive (high bitrate): its core is nearly full.
        let loads = [worker(0, 1, 2, 10, 0.95), worker(1, 3, 20, 200, 0.4)];
        assert_eq!(choose_worker(&loads), Some(1));
        // Exactly at the threshold counts as hot.
        let loads = [worker(0, 0, 0, 0, HOT_CPU), worker(1, 0, 5, 5, 0.1)];
        assert_eq!(choose_worker(&loads), Some(1));
        // Every worker hot: the usual rule among them.
        let loads = [worker(0, 1, 50, 500, 0.99), worker(1, 1, 10, 100, 0.9)];
        assert_eq!(choose_worker(&loads), Some(1));
        // A hot but dead worker does not make the live ones "all hot".
        let loads = [WorkerLoad { alive: false, ..worker(0, 0, 0, 0, 0.1) }, worker(1, 0, 9, 9, 0.9)];
        assert_eq!(choose_worker(&loads), Some(1));
    }

    #[test]
    fn cpu_breaks_ties_between_equal_stream_counts_in_whole_steps() {
        let loads = [worker(0, 0, 1, 4, 0.55), worker(1, 3, 1, 4, 0.12)];
        assert_eq!(choose_worker(&loads), Some(1));
        // Within one step (sampling noise of idle workers) the router count decides.
        let loads = [worker(0, 2, 0, 0, 0.01), worker(1, 1, 0, 0, 0.04)];
        assert_eq!(choose_worker(&loads), Some(1));
    }

    #[test]
    fn a_worker_without_a_cpu_sample_counts_as_idle() {
        let fresh = WorkerLoad { cpu: None, ..worker(1, 0, 0, 0, 0.0) };
        assert_eq!(choose_worker(&[worker(0, 0, 0, 0, 0.35), fresh.clone()]), Some(1));
        // Garbage samples do not panic or win: NaN and negative count as idle, infinity as hot.
        let nan = WorkerLoad { cpu: Some(f64::NAN), ..worker(0, 1, 0, 0, 0.0) };
        assert_eq!(choose_worker(&[nan, fresh.clone()]), Some(1));
        let inf = WorkerLoad { cpu: Some(f64::INFINITY), ..worker(0, 0, 0, 0, 0.0) };
        assert_eq!(choose_worker(&[inf, WorkerLoad { routers: 9, ..fresh }]), Some(1));
    }
}
