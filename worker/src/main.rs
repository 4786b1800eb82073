//! `octo-worker`: started by `octo`, one per core, with its controller channel on fd 3.

use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

use anyhow::{Context, bail};
use nix::fcntl::{FcntlArg, fcntl};
use octo_worker::io::MediaConfig;
use octo_worker::logging::Logging;

/// The fd the controller puts the channel on, as mediasoup's workers receive theirs.
const DEFAULT_CHANNEL_FD: RawFd = 3;

const USAGE: &str = "octo-worker [--channel-fd N] [--rtc-listen IP:PORT]... [--rtc-announced-address HOST]
            [--rtc-tcp] [--pace-video] [--gather-frames-us N] [--log-filter FILTER]
Started by `octo`; speaks octo-ipc frames on fd N (default 3) and receives WebRTC media on the
--rtc-listen UDP addresses (default 127.0.0.1:0; port 0 picks a free port) and, with --rtc-tcp, over
ICE-TCP on the same addresses and ports (another port where the TCP one is taken). With
--gather-frames-us the fan-out waits up to N µs for a video frame's last packet. Logs with the filter
--log-filter or OCTO_LOG (default info), as text or as JSON lines if OCTO_LOG_FORMAT=json.";

struct Args {
    channel_fd: RawFd,
    media: MediaConfig,
    log_filter: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = std::env::args().skip(1);
    let mut channel_fd = DEFAULT_CHANNEL_FD;
    let mut media = MediaConfig::default();
    let mut log_filter = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--channel-fd" => channel_fd = value("--channel-fd")?.parse().context("--channel-fd")?,
            "--rtc-listen" => media.listen.push(value("--rtc-listen")?.parse().context("--rtc-listen")?),
            "--rtc-announced-address" => media.announced_address = Some(value("--rtc-announced-address")?),
            "--rtc-tcp" => media.tcp = true,
            "--pace-video" => media.pace_video = true,
            "--gather-frames-us" => {
                let us: u64 = value("--gather-frames-us")?.parse().context("--gather-frames-us")?;
                media.gather_frames = std::time::Duration::from_micros(us);
            }
            "--log-filter" => log_filter = Some(value("--log-filter")?),
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
    Ok(Args { channel_fd, media, log_filter })
}

fn main() -> ExitCode {
    let args = parse_args();
    let logging = Logging::init(args.as_ref().ok().and_then(|a| a.log_filter.as_deref()));
    let _span = tracing::info_span!("worker", pid = std::process::id()).entered();

    match args.and_then(|args| start(args, &logging)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn start(args: Args, logging: &Logging) -> anyhow::Result<()> {
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
    octo_worker::io::run(stream, &args.media, &|filter| logging.set_filter(filter))?;
    Ok(())
}
