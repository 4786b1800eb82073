//! `octo-worker`: started by `octo`, one per core, with its controller channel on fd 3.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use anyhow::{Context, bail};
use nix::fcntl::{FcntlArg, fcntl};
use tracing_subscriber::EnvFilter;

/// The fd the controller puts the channel on, as mediasoup's workers receive theirs.
const DEFAULT_CHANNEL_FD: RawFd = 3;

fn channel_fd() -> anyhow::Result<RawFd> {
    let mut args = std::env::args().skip(1);
    let mut fd = DEFAULT_CHANNEL_FD;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--channel-fd" => {
                fd = args.next().context("--channel-fd needs a value")?.parse().context("--channel-fd")?;
            }
            "--help" | "-h" => {
                println!(
                    "octo-worker [--channel-fd N]\nStarted by `octo`; speaks octo-ipc frames on fd N (default 3)."
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(fd)
}

fn main() -> ExitCode {
    let filter = EnvFilter::try_from_env("OCTO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).init();
    let _span = tracing::info_span!("worker", pid = std::process::id()).entered();

    match start() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn start() -> anyhow::Result<()> {
    let fd = channel_fd()?;
    if fd < 0 {
        bail!("--channel-fd must not be negative");
    }
    // SAFETY: only used to ask the kernel whether the number is an open descriptor.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_GETFD)
        .with_context(|| format!("fd {fd} is not open: octo-worker is started by `octo`, not by hand"))?;
    // SAFETY: the fd is open and nothing else in this process owns it.
    let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    octo_worker::io::run(stream)?;
    Ok(())
}
