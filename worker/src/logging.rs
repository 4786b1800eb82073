//! The worker's logs: the filter and format its controller uses (`OCTO_LOG`, `OCTO_LOG_FORMAT`,
//! inherited; `--log-filter` once a SIGHUP changed the filter), on stderr, which the worker shares with the controller. The filter
//! can be replaced while running (`WorkerRequest::SetLogFilter`, sent on the controller's SIGHUP).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

pub struct Logging {
    filter: reload::Handle<EnvFilter, Registry>,
}

impl Logging {
    /// Installs the process's subscriber with `filter`, or else `OCTO_LOG`'s. A filter that does
    /// not parse falls back to `info` (and says so) rather than leaving the worker mute.
    pub fn init(filter: Option<&str>) -> Logging {
        let wanted =
            filter.map(str::to_owned).or_else(|| std::env::var("OCTO_LOG").ok()).unwrap_or_else(|| "info".into());
        let (filter, rejected) = match EnvFilter::try_new(&wanted) {
            Ok(f) => (f, None),
            Err(e) => (EnvFilter::new("info"), Some(e)),
        };
        let (filter, handle) = reload::Layer::new(filter);
        let json = std::env::var("OCTO_LOG_FORMAT").is_ok_and(|f| f == "json");
        let text_layer = (!json).then(|| fmt::layer().with_writer(std::io::stderr).with_ansi(false));
        let json_layer = json.then(|| fmt::layer().json().with_writer(std::io::stderr));
        tracing_subscriber::registry().with(filter).with(text_layer).with(json_layer).init();
        if let Some(e) = rejected {
            tracing::warn!("OCTO_LOG {wanted:?} is not a valid filter ({e}); logging at info");
        }
        Logging { filter: handle }
    }

    /// Replaces the filter; a string that does not parse leaves the old one and says why.
    pub fn set_filter(&self, filter: &str) -> Result<(), String> {
        let parsed = EnvFilter::try_new(filter).map_err(|e| format!("log filter {filter:?} is invalid: {e}"))?;
        self.filter.reload(parsed).map_err(|e| format!("log filter not applied: {e}"))?;
        tracing::info!("log filter now {filter}");
        Ok(())
    }
}
