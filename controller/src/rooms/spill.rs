//! Which worker receives for a peer: the room's main worker while it has room, otherwise another.
//!
//! A room's publishers stay on its main router (every producer is there, so nothing is piped to
//! publish). What grows with a room is its consumers — each costs a copy, a rewrite and an
//! encryption per packet — so a peer's *receiving* side may go to another worker, which then gets
//! piped copies of the producers that peer consumes. The rule, for a peer's first recv transport:
//!
//! 1. The main worker while the room's consumers on it are below [`SpillLimits::consumers`] and its
//!    CPU below [`SpillLimits::cpu`] (or always, with `consumers == 0`: spilling is off).
//! 2. Otherwise a worker already hosting a router of this room that is under both thresholds — its
//!    piped copies are already there — the one with fewest of the room's consumers first.
//! 3. Otherwise a new router of the room on the least-loaded other live worker under the CPU
//!    threshold ([`placement::choose_worker`] among those).
//! 4. If every candidate is over, the least-loaded live worker anyway (a peer is never refused for
//!    load; the limits say where to go, not whether).

use super::placement::{self, WorkerLoad};

/// When a room's main worker stops taking receiving peers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpillLimits {
    /// The room's consumers on one router at which it counts as full; 0 never spills.
    pub consumers: usize,
    /// The share of one core at which a worker counts as full.
    pub cpu: f64,
}

impl Default for SpillLimits {
    fn default() -> Self {
        Self { consumers: 500, cpu: 0.7 }
    }
}

/// One router of the room: the worker it is on and the room's consumers there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomRouter {
    pub worker: usize,
    pub consumers: usize,
}

/// The worker a peer's recv transports go to, or `None` if no worker is live. `routers` lists the
/// room's routers (the main one included; a worker missing from it has none of this room), `loads`
/// every worker slot.
pub fn choose_recv_worker(
    main: usize,
    routers: &[RoomRouter],
    loads: &[WorkerLoad],
    limits: SpillLimits,
) -> Option<usize> {
    let load = |w: usize| loads.iter().find(|l| l.index == w);
    let alive = |w: usize| load(w).is_some_and(|l| l.alive);
    let cool = |w: usize| load(w).is_some_and(|l| l.cpu.is_none_or(|c| c.is_nan() || c < limits.cpu));
    let room_consumers = |w: usize| routers.iter().find(|r| r.worker == w).map_or(0, |r| r.consumers);
    let under = |w: usize| alive(w) && cool(w) && room_consumers(w) < limits.consumers;

    if alive(main) && (limits.consumers == 0 || under(main)) {
        return Some(main);
    }
    if let Some(r) =
        routers.iter().filter(|r| r.worker != main && under(r.worker)).min_by_key(|r| (r.consumers, r.worker))
    {
        return Some(r.worker);
    }
    let hosts = |w: usize| w == main || routers.iter().any(|r| r.worker == w);
    let fresh: Vec<WorkerLoad> = loads.iter().filter(|l| !hosts(l.index) && cool(l.index)).cloned().collect();
    placement::choose_worker(&fresh).or_else(|| placement::choose_worker(loads))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(index: usize, streams: usize, cpu: f64) -> WorkerLoad {
        WorkerLoad { index, alive: true, routers: 1, producers: 0, consumers: streams, cpu: Some(cpu) }
    }

    fn dead(index: usize) -> WorkerLoad {
        WorkerLoad { alive: false, ..worker(index, 0, 0.0) }
    }

    fn router(worker: usize, consumers: usize) -> RoomRouter {
        RoomRouter { worker, consumers }
    }

    const LIMITS: SpillLimits = SpillLimits { consumers: 10, cpu: 0.7 };

    /// (what, main, the room's routers, loads, limits, expected worker)
    type Case = (&'static str, usize, Vec<RoomRouter>, Vec<WorkerLoad>, SpillLimits, Option<usize>);

    #[test]
    fn the_rule_on_a_table_of_cases() {
        let cases: Vec<Case> = vec![
            (
                "a small room stays on main",
                0,
                vec![router(0, 3)],
                vec![worker(0, 50, 0.2), worker(1, 0, 0.0)],
                LIMITS,
                Some(0),
            ),
            (
                "main one below the consumer limit",
                1,
                vec![router(1, 9)],
                vec![worker(0, 0, 0.0), worker(1, 9, 0.3)],
                LIMITS,
                Some(1),
            ),
            (
                "main at the consumer limit: a new router on the least-loaded other worker",
                0,
                vec![router(0, 10)],
                vec![worker(0, 12, 0.3), worker(1, 40, 0.1), worker(2, 5, 0.1)],
                LIMITS,
                Some(2),
            ),
            (
                "main at the CPU limit (exactly) spills although it has few consumers",
                0,
                vec![router(0, 1)],
                vec![worker(0, 2, 0.7), worker(1, 0, 0.0)],
                LIMITS,
                Some(1),
            ),
            (
                "main without a CPU sample counts as cool",
                0,
                vec![router(0, 1)],
                vec![WorkerLoad { cpu: None, ..worker(0, 2, 0.0) }, worker(1, 0, 0.0)],
                LIMITS,
                Some(0),
            ),
            (
                "spilling off: main however loaded",
                0,
                vec![router(0, 900)],
                vec![worker(0, 900, 0.99), worker(1, 0, 0.0)],
                SpillLimits { consumers: 0, cpu: 0.7 },
                Some(0),
            ),
            (
                "an existing router of the room under both limits beats an idle new worker",
                0,
                vec![router(0, 10), router(2, 4)],
                vec![worker(0, 12, 0.2), worker(1, 0, 0.0), worker(2, 30, 0.4)],
                LIMITS,
                Some(2),
            ),
            (
                "among existing routers, fewest of the room's consumers",
                0,
                vec![router(0, 10), router(1, 8), router(2, 3), router(3, 3)],
                vec![worker(0, 12, 0.2), worker(1, 8, 0.2), worker(2, 90, 0.6), worker(3, 3, 0.1)],
                LIMITS,
                Some(2),
            ),
            (
                "an existing router over the CPU limit is passed over for a new one",
                0,
                vec![router(0, 10), router(1, 2)],
                vec![worker(0, 12, 0.2), worker(1, 2, 0.8), worker(2, 50, 0.5)],
                LIMITS,
                Some(2),
            ),
            (
                "an existing router over the consumer limit is passed over for a new one",
                0,
                vec![router(0, 10), router(1, 10)],
                vec![worker(0, 12, 0.2), worker(1, 10, 0.2), worker(2, 50, 0.5)],
                LIMITS,
                Some(2),
            ),
            (
                "a new router goes to a worker under the CPU limit even with more streams",
                0,
                vec![router(0, 10)],
                vec![worker(0, 12, 0.2), worker(1, 1, 0.75), worker(2, 60, 0.3)],
                LIMITS,
                Some(2),
            ),
            (
                "everything over: the least-loaded live worker anyway (here an existing router)",
                0,
                vec![router(0, 10), router(1, 12)],
                vec![worker(0, 30, 0.5), worker(1, 12, 0.5)],
                LIMITS,
                Some(1),
            ),
            (
                "everything over: main itself when it is the least loaded",
                0,
                vec![router(0, 10)],
                vec![worker(0, 10, 0.9), worker(1, 60, 0.95)],
                LIMITS,
                Some(0),
            ),
            (
                "one worker: main whatever the load",
                0,
                vec![router(0, 999)],
                vec![worker(0, 999, 0.99)],
                LIMITS,
                Some(0),
            ),
            (
                "dead workers are never chosen, with routers or without",
                0,
                vec![router(0, 10), router(1, 0)],
                vec![worker(0, 12, 0.2), dead(1), dead(2), worker(3, 40, 0.6)],
                LIMITS,
                Some(3),
            ),
            (
                "main dead: another worker (the room is failing, but nothing dead is named)",
                0,
                vec![router(0, 0)],
                vec![dead(0), worker(1, 0, 0.0)],
                LIMITS,
                Some(1),
            ),
            ("nothing alive: no choice", 0, vec![router(0, 0)], vec![dead(0), dead(1)], LIMITS, None),
        ];
        for (what, main, routers, loads, limits, want) in cases {
            assert_eq!(choose_recv_worker(main, &routers, &loads, limits), want, "{what}");
        }
    }

    #[test]
    fn garbage_cpu_samples_count_as_placement_counts_them() {
        // NaN counts as idle (as in placement): it does not make a worker full.
        let nan = WorkerLoad { cpu: Some(f64::NAN), ..worker(0, 1, 0.0) };
        assert_eq!(choose_recv_worker(0, &[router(0, 1)], &[nan, worker(1, 0, 0.0)], LIMITS), Some(0));
        // Infinity is full.
        let inf = WorkerLoad { cpu: Some(f64::INFINITY), ..worker(0, 1, 0.0) };
        assert_eq!(choose_recv_worker(0, &[router(0, 1)], &[inf, worker(1, 0, 0.0)], LIMITS), Some(1));
    }
}
