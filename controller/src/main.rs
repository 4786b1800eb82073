//! `octo`: the controller daemon. Spawns one worker per core and serves HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use octo_controller::http;
use octo_controller::worker_pool::{MediaListen, PoolConfig, WorkerPool};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "octo",
    version,
    about = "Octo: a WebRTC SFU. Serves the web client and signaling; one media worker per core."
)]
struct Args {
    /// HTTP listen address (web client, signaling, health).
    #[arg(long, env = "OCTO_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Number of worker processes [default: the CPUs this process may use].
    #[arg(long, env = "OCTO_WORKERS")]
    workers: Option<usize>,
    /// Pin worker i to the i-th CPU of this process's affinity mask.
    #[arg(long, env = "OCTO_PIN_WORKERS")]
    pin_workers: bool,
    /// Path of the octo-worker binary [default: next to this binary].
    #[arg(long, env = "OCTO_WORKER_BIN")]
    worker_bin: Option<PathBuf>,
    /// IP addresses workers receive WebRTC media on (repeat the flag for several; IPv6 ones are
    /// skipped where the host has no IPv6).
    #[arg(long = "rtc-listen-ip", env = "OCTO_RTC_LISTEN_IPS", value_delimiter = ',', default_values = ["127.0.0.1", "::1"])]
    rtc_listen_ips: Vec<std::net::IpAddr>,
    /// First UDP port for media: worker i uses this + i. 0 picks free ports.
    #[arg(long, env = "OCTO_RTC_PORT", default_value_t = 0)]
    rtc_port: u16,
    /// Address announced in ICE candidates instead of the listen IP (the public IP behind NAT).
    #[arg(long, env = "OCTO_RTC_ANNOUNCED_ADDRESS")]
    rtc_announced_address: Option<String>,
    /// Log filter, in tracing's EnvFilter syntax (also read by the workers).
    #[arg(long, env = "OCTO_LOG", default_value = "info")]
    log: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&args.log).context("--log")?)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    // The workers inherit the environment: give them the same filter.
    // SAFETY: no other thread reads or writes the environment yet.
    unsafe { std::env::set_var("OCTO_LOG", &args.log) };

    let workers = match args.workers {
        Some(0) => anyhow::bail!("--workers must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let worker_bin = match args.worker_bin {
        Some(p) => p,
        None => std::env::current_exe().context("locating octo")?.with_file_name("octo-worker"),
    };
    let mut config = PoolConfig::new(workers, worker_bin);
    config.pin_workers = args.pin_workers;
    config.media = MediaListen {
        ips: args.rtc_listen_ips,
        port_base: args.rtc_port,
        announced_address: args.rtc_announced_address,
    };

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let pool = Arc::new(WorkerPool::start(config).await?);
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    info!(workers, "listening on http://{}", listener.local_addr()?);

    let stop = async move {
        tokio::select! {
            _ = sigterm.recv() => info!("SIGTERM: shutting down"),
            _ = sigint.recv() => info!("SIGINT: shutting down"),
        }
    };
    axum::serve(listener, http::router(pool.clone())).with_graceful_shutdown(stop).await?;
    pool.close().await;
    info!("stopped");
    Ok(())
}
