//! The controller's logs (stderr, text or JSON lines) and their filter, which SIGHUP re-reads from
//! the config file and hands on to every worker.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::Signal;
use tracing::{info, warn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

use crate::config::{self, LogFormat};
use crate::worker_pool::WorkerPool;

pub type FilterHandle = reload::Handle<EnvFilter, Registry>;

/// Installs the process's subscriber; fails on a filter that does not parse.
pub fn init(filter: &str, format: LogFormat) -> Result<FilterHandle, tracing_subscriber::filter::ParseError> {
    let (filter, handle) = reload::Layer::new(EnvFilter::try_new(filter)?);
    let json = format == LogFormat::Json;
    let text_layer = (!json).then(|| fmt::layer().with_writer(std::io::stderr).with_ansi(false));
    let json_layer = json.then(|| fmt::layer().json().with_writer(std::io::stderr));
    tracing_subscriber::registry().with(filter).with(text_layer).with(json_layer).init();
    Ok(handle)
}

/// On each SIGHUP: the `log` key of the config file becomes the filter of the controller and of
/// every worker (respawned ones included). A filter that does not parse changes nothing.
pub async fn reload_on_sighup(
    mut sighup: Signal,
    config_path: Option<PathBuf>,
    handle: FilterHandle,
    pool: Arc<WorkerPool>,
) {
    while sighup.recv().await.is_some() {
        let Some(path) = &config_path else {
            info!("SIGHUP: no config file to reload");
            continue;
        };
        let log =
            config::file_environment(path).map(|vars| vars.into_iter().find(|(k, _)| k == "OCTO_LOG").map(|(_, v)| v));
        let log = match log {
            Ok(Some(log)) => log,
            Ok(None) => {
                info!("SIGHUP: {} sets no log filter; kept the old one", path.display());
                continue;
            }
            Err(e) => {
                warn!("SIGHUP: {e}");
                continue;
            }
        };
        match EnvFilter::try_new(&log)
            .map_err(|e| e.to_string())
            .and_then(|f| handle.reload(f).map_err(|e| e.to_string()))
        {
            Ok(()) => info!("SIGHUP: log filter now {log}"),
            Err(e) => {
                warn!("SIGHUP: log filter {log:?} is invalid ({e}); kept the old one");
                continue;
            }
        }
        // Parsed above already: the pool only refuses what the controller refused.
        for (index, result) in pool.set_log_filter(&log).await.unwrap_or_default() {
            if let Err(e) = result {
                warn!(worker = index, "SIGHUP: worker kept its old log filter: {e}");
            }
        }
    }
}
