//! Starting one `octo-worker` process with its end of a socketpair on fd 3.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};

/// The fd number the worker expects its channel on.
const CHILD_CHANNEL_FD: i32 = 3;

/// Spawns the worker binary; returns the process and the controller's end of its channel.
pub fn spawn(bin: &Path, index: usize, pin_to_cpu: Option<usize>, args: &[String]) -> io::Result<(Child, UnixStream)> {
    let (ours, theirs): (OwnedFd, OwnedFd) =
        socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).map_err(io::Error::from)?;
    let their_fd = theirs.as_raw_fd();
    let parent_pid = std::process::id() as libc::pid_t;
    // Built before fork: nothing between fork and exec may allocate.
    let cpu_set = pin_to_cpu.map(|cpu| {
        // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET only write inside it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_ZERO(&mut set);
            libc::CPU_SET(cpu, &mut set);
            set
        }
    });

    let mut cmd = Command::new(bin);
    cmd.arg("--channel-fd")
        .arg(CHILD_CHANNEL_FD.to_string())
        .args(args)
        .env("OCTO_WORKER_INDEX", index.to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // SAFETY: the closure only makes async-signal-safe system calls on data prepared above.
    unsafe {
        cmd.pre_exec(move || {
            if their_fd == CHILD_CHANNEL_FD {
                // dup2 onto itself would keep FD_CLOEXEC set.
                if libc::fcntl(their_fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(their_fd, CHILD_CHANNEL_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            // A worker must not outlive its controller, even one killed with SIGKILL.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent_pid {
                libc::_exit(1);
            }
            if let Some(set) = &cpu_set
                && libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) < 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(theirs);
    let ours = std::os::unix::net::UnixStream::from(ours);
    ours.set_nonblocking(true)?;
    Ok((child, UnixStream::from_std(ours)?))
}

/// The CPUs this process may run on, in order (respects taskset/cgroup cpusets).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills the zeroed set; CPU_ISSET only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&cpu| libc::CPU_ISSET(cpu, &set)).collect()
    }
}
