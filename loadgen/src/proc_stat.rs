//! CPU time and memory from the kernel's own accounting: `/proc/<pid>/stat` for the worker
//! processes, `CLOCK_THREAD_CPUTIME_ID` for the load generator's own threads.

use std::time::Duration;

/// utime + stime of a process, its resident set size, and how often it was preempted.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessSample {
    pub cpu: Duration,
    pub rss_bytes: u64,
    /// `nonvoluntary_ctxt_switches` of its main thread: times the scheduler took the CPU away
    /// while it still wanted it (on a shared machine, other processes' load).
    pub preemptions: u64,
}

/// Reads `/proc/<pid>/stat` and `status`; `None` once the process is gone.
pub fn process(pid: u32) -> Option<ProcessSample> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut sample = parse_stat(&text)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    sample.preemptions = status
        .lines()
        .find_map(|l| l.strip_prefix("nonvoluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Some(sample)
}

/// How many file descriptors the process has open (entries of `/proc/<pid>/fd`); `None` once it
/// is gone or unreadable.
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// The 1-minute load average: how many threads wanted the machine's CPUs.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// `RcvbufErrors` of the `Udp:` lines of `/proc/net/snmp`: datagrams the kernel dropped because
/// their socket's buffer was full (0 if unreadable).
pub fn udp_rcvbuf_errors() -> u64 {
    std::fs::read_to_string("/proc/net/snmp").ok().and_then(|t| parse_udp_rcvbuf_errors(&t)).unwrap_or(0)
}

fn parse_udp_rcvbuf_errors(text: &str) -> Option<u64> {
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let at = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

fn parse_stat(text: &str) -> Option<ProcessSample> {
    // The command name (field 2) may contain spaces: count fields after its closing parenthesis.
    let after = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14, 15 (utime, stime) and 24 (rss pages), numbered from 1 with field 3 at index 0.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let rss_pages: u64 = fields.get(21)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let cpu_ticks = utime + stime;
    Some(ProcessSample {
        cpu: Duration::from_nanos(cpu_ticks * 1_000_000_000 / ticks),
        rss_bytes: rss_pages * page,
        preemptions: 0,
    })
}

/// CPU time the calling thread has used.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {

    #[test]
    fn udp_rcvbuf_errors_are_read_by_name() {
        let snmp = "Tcp: RtoAlgorithm RtoMin\nTcp: 1 200\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 10 2 7 30 5 0\nUdpLite: InDatagrams\nUdpLite: 0\n";
        assert_eq!(parse_udp_rcvbuf_errors(snmp), Some(5));
        assert_eq!(parse_udp_rcvbuf_errors("Udp: InDatagrams\nUdp: x\n"), None);
        assert_eq!(parse_udp_rcvbuf_errors(""), None);
    }

    use super::*;

    #[test]
    fn parses_a_name_with_spaces() {
        let line = "42 (octo worker) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000000 300 \
                    18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        assert_eq!(s.cpu, Duration::from_nanos(300 * 1_000_000_000 / ticks));
        assert_eq!(s.rss_bytes, 300 * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64);
    }

    #[test]
    fn own_process_and_thread() {
        let me = process(std::process::id()).unwrap();
        assert!(me.rss_bytes > 0);
        // Other tests open files on other threads meanwhile: only stdin, stdout and stderr are sure.
        assert!(open_fds(std::process::id()).unwrap() >= 3);
        assert_eq!(open_fds(u32::MAX), None);
        let start = thread_cpu();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        assert!(thread_cpu() > start);
    }
}
