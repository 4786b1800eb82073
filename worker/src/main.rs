//! `octo-worker`: started by `octo`, one per core, with its controller channel on fd 3.

use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use anyhow::{Context, bail};
use nix::fcntl::{FcntlArg, fcntl};
use octo_worker::io::MediaConfig;
use tracing_subscriber::EnvFilter;

/// The fd the controller puts the channel on, as mediasoup's workers receive theirs.
const DEFAULT_CHANNEL_FD: RawFd = 3;

const USAGE: &str = "octo-worker [--channel-fd N] [--rtc-listen IP:PORT]... [--rtc-announced-address HOST]
Started by `octo`; speaks octo-ipc frames on fd N (default 3) and receives WebRTC media on the
--rtc-listen UDP addresses (default 127.0.0.1:0; port 0 picks a free port).";

struct Args {
    channel_fd: RawFd,
    media: MediaConfig,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = std::env::args().skip(1);
    let mut channel_fd = DEFAULT_CHANNEL_FD;
    let mut media = MediaConfig::default();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--channel-fd" => channel_fd = value("--channel-fd")?.parse().context("--channel-fd")?,
            "--rtc-listen" => media.listen.push(value("--rtc-listen")?.parse().context("--rtc-listen")?),
            "--rtc-announced-address" => media.announced_address = Some(value("--rtc-announced-address")?),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if media.listen.is_empty() {
        media.listen.push(SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    Ok(Args { channel_fd, media })
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
    let args = parse_args()?;
    let fd = args.channel_fd;
    if fd < 0 {
        bail!("--channel-fd must not be negative");
    }
    // SAFETY: only used to ask the kernel whether the number is an open descriptor.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_GETFD)
        .with_context(|| format!("fd {fd} is not open: octo-worker is started by `octo`, not by hand"))?;
    // SAFETY: the fd is open and nothing else in this process owns it.
    let stream = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    octo_worker::io::run(stream, &args.media)?;
    Ok(())
}
