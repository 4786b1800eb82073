//! What the kernel accounts for a worker process: CPU time and resident memory from /proc, and the
//! CPU utilisation over the last sampling interval that room placement weighs.

use std::time::Instant;

/// CPU seconds (user + system) and resident bytes of a process, from /proc.
pub fn process_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command name: state is field 3, utime 14, stime 15 (1-based in proc(5)).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let pages: u64 =
        std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: as above.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    Some(((utime + stime) as f64 / ticks, pages * page_size))
}

/// Turns one worker slot's cumulative CPU time into utilisation between consecutive samples.
#[derive(Debug, Default)]
pub struct CpuMeter {
    /// The process and its CPU seconds at the previous sample.
    last: Option<(u32, f64, Instant)>,
    utilisation: Option<f64>,
}

impl CpuMeter {
    /// Samples the slot's current process (`None`: the slot is down) from /proc.
    pub fn sample(&mut self, pid: Option<u32>, now: Instant) {
        let cpu_seconds = pid.and_then(process_usage).map(|(cpu, _)| cpu);
        self.record(pid.zip(cpu_seconds), now);
    }

    /// Records `(pid, cumulative CPU seconds)` at `now`. A new process (respawned worker) or a
    /// missing reading starts over: there is no interval to measure yet.
    pub fn record(&mut self, reading: Option<(u32, f64)>, now: Instant) {
        self.utilisation = match (self.last, reading) {
            (Some((last_pid, last_cpu, at)), Some((pid, cpu))) if last_pid == pid => {
                let wall = now.saturating_duration_since(at).as_secs_f64();
                if wall > 0.0 { Some(((cpu - last_cpu) / wall).max(0.0)) } else { self.utilisation }
            }
            _ => None,
        };
        self.last = reading.map(|(pid, cpu)| (pid, cpu, now));
    }

    /// The share of one core used between the last two samples of the same process.
    pub fn utilisation(&self) -> Option<f64> {
        self.utilisation
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn utilisation_is_cpu_time_over_wall_time_of_one_process() {
        let t0 = Instant::now();
        let mut m = CpuMeter::default();
        m.record(Some((7, 10.0)), t0);
        assert_eq!(m.utilisation(), None, "one sample is no interval");
        m.record(Some((7, 10.5)), t0 + Duration::from_secs(1));
        assert_eq!(m.utilisation(), Some(0.5));
        m.record(Some((7, 12.5)), t0 + Duration::from_secs(3));
        assert_eq!(m.utilisation(), Some(1.0));
        // A respawned worker (new pid) starts over, as does a slot that is down.
        m.record(Some((8, 0.1)), t0 + Duration::from_secs(4));
        assert_eq!(m.utilisation(), None);
        m.record(Some((8, 0.3)), t0 + Duration::from_secs(5));
        assert!((m.utilisation().unwrap() - 0.2).abs() < 1e-9);
        m.record(None, t0 + Duration::from_secs(6));
        assert_eq!(m.utilisation(), None);
        // Two samples at the same instant keep the last value instead of dividing by zero.
        let t1 = t0 + Duration::from_secs(7);
        m.record(Some((9, 1.0)), t1);
        m.record(Some((9, 2.0)), t1 + Duration::from_secs(1));
        m.record(Some((9, 2.0)), t1 + Duration::from_secs(1));
        assert_eq!(m.utilisation(), Some(1.0));
    }

    #[test]
    fn this_process_can_be_measured() {
        let (cpu, rss) = process_usage(std::process::id()).expect("/proc/self");
        assert!(cpu >= 0.0 && rss > 0);
        assert_eq!(process_usage(u32::MAX), None);
    }
}
