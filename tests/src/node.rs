//! Running a `node --test` script of the npm test clients against a running `octo`.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::wait_for;

/// Runs `node --test <script>` in `dir` with `env`, bounded by `timeout`, and panics with node's
/// output unless every test passed. On timeout node gets SIGTERM first, so that playwright can
/// close the browsers it launched (they live in their own process groups), then SIGKILL.
pub fn run_node_test(dir: &Path, script: &str, env: &[(&str, OsString)], timeout: Duration) {
    let started = Instant::now();
    // Node 20 applies --test-timeout to a whole file, not to each test: a file of browser tests on a
    // loaded 2-core machine needs minutes, and the caller's `timeout` bounds it anyway.
    let per_file = format!("--test-timeout={}", timeout.as_millis());
    let mut child = Command::new("node")
        .args(["--test", "--test-reporter=spec", &per_file, script])
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): install Node 20+ to run these tests"));
    // Read both pipes on threads so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = wait_for(timeout, || child.try_wait().expect("wait for node"));
    if status.is_none() {
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
        if wait_for(Duration::from_secs(5), || child.try_wait().ok().flatten()).is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    println!("--- node --test {script} ({:.1} s) ---\n{out}{err}", started.elapsed().as_secs_f64());
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("node --test {script} failed ({s}):\n{out}{err}"),
        None => panic!("node --test {script} did not finish within {timeout:?}:\n{out}{err}"),
    }
}
