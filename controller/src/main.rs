//! `octo`: the controller daemon. Spawns one worker per core and serves HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use octo_controller::config::{self, Args};
use octo_controller::http;
use octo_controller::rooms::{Rooms, RoomsConfig};
use octo_controller::signaling::{Limits, Signaling, SignalingConfig};
use octo_controller::worker_pool::{MediaListen, PoolConfig, WorkerPool};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, reload};

/// How long open HTTP requests may finish after SIGTERM before they are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

fn main() -> anyhow::Result<()> {
    // Configuration first, while this is the only thread: the file layer works through the
    // environment (file < environment < flags), which is only safe to write single-threaded.
    let args = match config::load()? {
        config::Loaded::Run(args) => *args,
        config::Loaded::Checked(text) => {
            print!("{text}");
            return Ok(());
        }
    };
    // The workers inherit the environment: give them the same filter.
    // SAFETY: still the only thread.
    unsafe { std::env::set_var("OCTO_LOG", &args.log) };
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (filter, filter_handle) = reload::Layer::new(EnvFilter::try_new(&args.log).context("--log")?);
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false))
        .init();
    // SIGHUP re-reads the log filter from the config file (and never stops octo, whose default
    // action for SIGHUP would be to die).
    let mut sighup = signal(SignalKind::hangup())?;
    let config_path = args.config.clone();
    tokio::spawn(async move {
        while sighup.recv().await.is_some() {
            let Some(path) = &config_path else {
                info!("SIGHUP: no config file to reload");
                continue;
            };
            let log = config::file_environment(path)
                .map(|vars| vars.into_iter().find(|(k, _)| k == "OCTO_LOG").map(|(_, v)| v));
            match log {
                Ok(Some(log)) => {
                    let applied = EnvFilter::try_new(&log).ok().is_some_and(|f| filter_handle.reload(f).is_ok());
                    if applied {
                        info!("SIGHUP: log filter now {log}");
                    } else {
                        tracing::warn!("SIGHUP: log filter {log:?} is invalid; kept the old one");
                    }
                }
                Ok(None) => info!("SIGHUP: {} sets no log filter; kept the old one", path.display()),
                Err(e) => tracing::warn!("SIGHUP: {e}"),
            }
        }
    });

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
    if !(args.requests_per_second > 0.0 && args.request_burst >= 1.0) {
        anyhow::bail!("--requests-per-second must be positive and --request-burst at least 1");
    }
    let rooms_config = RoomsConfig {
        max_peers_per_room: args.max_peers_per_room,
        empty_room_grace: Duration::from_millis(args.empty_room_grace_ms),
        ..RoomsConfig::default()
    };
    let signaling_config = SignalingConfig {
        limits: Limits {
            max_payload_bytes: args.max_payload,
            requests_per_second: args.requests_per_second,
            request_burst: args.request_burst,
            ..Limits::default()
        },
        auth_secret: args.auth_secret.filter(|s| !s.is_empty()),
        seed_transport_hold: Duration::from_millis(args.seed_transport_hold_ms),
    };
    let pool = Arc::new(WorkerPool::start(config).await?);
    let rooms = Rooms::new(pool.clone(), rooms_config);
    let signaling = Signaling::new(rooms.clone(), signaling_config);
    if !args.metrics_listen.is_empty() {
        let addr: SocketAddr = args.metrics_listen.parse().context("--metrics-listen")?;
        let metrics_listener =
            tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding metrics {addr}"))?;
        info!("metrics on http://{}/metrics", metrics_listener.local_addr()?);
        let app = octo_controller::metrics::router(octo_controller::metrics::MetricsState {
            pool: pool.clone(),
            rooms: rooms.clone(),
            signaling: signaling.clone(),
        });
        tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics_listener, app).await {
                tracing::error!("metrics endpoint failed: {e}");
            }
        });
    }
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    info!(workers, "listening on http://{}", listener.local_addr()?);

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let app = http::router(pool.clone(), signaling, args.web_root);
    let mut server = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            })
            .await
    });
    // Workers answer and the listener accepts: tell systemd (Type=notify) we are ready.
    let notifier = octo_controller::systemd::Notifier::from_env().context("NOTIFY_SOCKET")?;
    if let Some(n) = &notifier {
        n.notify(&format!("READY=1\nSTATUS=serving with {workers} workers\nMAINPID={}", std::process::id()))
            .context("sd_notify READY")?;
        if let Some(every) = octo_controller::systemd::watchdog_interval() {
            let pinger = octo_controller::systemd::Notifier::from_env()?.expect("NOTIFY_SOCKET is set");
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    // Only a controller whose workers answer is alive in the sense that matters.
                    if pool.live_count() > 0 {
                        let _ = pinger.notify("WATCHDOG=1");
                    }
                }
            });
        }
    }
    tokio::select! {
        _ = sigterm.recv() => info!("SIGTERM: shutting down"),
        _ = sigint.recv() => info!("SIGINT: shutting down"),
        result = &mut server => {
            result.context("HTTP server task")?.context("HTTP server")?;
        }
    }
    if let Some(n) = &notifier {
        let _ = n.notify("STOPPING=1");
    }
    // Drain: refuse new joins, let the rooms in progress finish until the deadline; a second
    // signal ends it at once.
    rooms.start_draining();
    let drain = Duration::from_millis(args.drain_timeout_ms);
    let deadline = tokio::time::Instant::now() + drain;
    while rooms.peer_total() > 0 && tokio::time::Instant::now() < deadline {
        info!(peers = rooms.peer_total(), "draining: waiting for rooms to finish");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    stop_tx.send_replace(true);
    // Long polls and WebSockets would hold a graceful shutdown open indefinitely: give in-flight
    // requests a moment, then close what is left.
    if !server.is_finished() && tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await.is_err() {
        info!("closing connections still open after {SHUTDOWN_GRACE:?}");
        server.abort();
    }
    pool.close().await;
    info!("stopped");
    Ok(())
}
