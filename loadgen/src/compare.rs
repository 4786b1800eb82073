//! `octo-loadgen compare`: the same scenario at the same level against Octo and then Janus, in one
//! invocation, each server on the same CPUs with as many threads of media as it has cores there
//! (Octo's workers, Janus's event loops), egress counted the same way for both (at the
//! subscribers), and one table of both.

use serde::Serialize;

use crate::figures::StepFigures;
use crate::report::Report;
use crate::scenario::{self, Kind, Options, Target};

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub scenario: Kind,
    pub level: usize,
    pub octo: Option<StepFigures>,
    pub janus: Option<StepFigures>,
    /// Video viewers one core carries at this load, Octo ÷ Janus (from CPU per viewer).
    pub viewers_per_core_ratio: Option<f64>,
    /// Janus's configuration as the load generator wrote it.
    pub janus_config: String,
}

/// Runs `kind` at `level` on Octo, then on Janus (`janus` is `Target::Janus`), and prints both.
pub fn run(kind: Kind, level: usize, options: &Options, janus: Target) -> anyhow::Result<Comparison> {
    anyhow::ensure!(matches!(janus, Target::Janus { .. }), "compare needs a Janus target");
    // Checked before the Octo half runs: the Janus half would refuse it only then.
    anyhow::ensure!(
        options.subscriber_transport == octo_ipc::Protocol::Udp,
        "compare runs UDP subscribers on both servers (no --tcp)"
    );
    let mut octo_options = options.clone();
    octo_options.target = Target::Octo;
    octo_options.egress_at_subscribers = true;
    octo_options.json = None;
    println!("== Octo ==");
    let octo = scenario::run(kind, level, None, &octo_options)?;
    let mut janus_options = options.clone();
    janus_options.target = janus;
    janus_options.egress_at_subscribers = true;
    janus_options.json = None;
    println!("== Janus ==");
    let janus_report = scenario::run(kind, level, None, &janus_options)?;
    let last = |r: &Report| r.steps.last().cloned();
    let (o, j) = (last(&octo), last(&janus_report));
    let ratio = match (&o, &j) {
        (Some(o), Some(j)) => match (o.video_consumers_per_worker_core, j.video_consumers_per_worker_core) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        },
        _ => None,
    };
    let comparison = Comparison {
        scenario: kind,
        level,
        octo: o,
        janus: j,
        viewers_per_core_ratio: ratio,
        janus_config: janus_report.server_config.clone().unwrap_or_default(),
    };
    print(&comparison);
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_string_pretty(&comparison)?)?;
    }
    Ok(comparison)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

pub fn print(c: &Comparison) {
    println!();
    println!("{:?} at level {}: the same load on both servers, egress counted at the subscribers", c.scenario, c.level);
    println!(
        "{:<7} {:>10} {:>9} {:>10} {:>13} {:>8} {:>8} {:>8} {:>12}",
        "server", "egress/s", "CPU %", "µs/pkt", "viewers/core", "loss %", "p50 ms", "p99 ms", "first pkt ms"
    );
    for (name, f) in [("octo", &c.octo), ("janus", &c.janus)] {
        let Some(f) = f else {
            println!("{name:<7} (no figures)");
            continue;
        };
        println!(
            "{:<7} {:>10.0} {:>9.1} {:>10} {:>13} {:>8.2} {:>8} {:>8} {:>12}",
            name,
            f.egress_packets_per_s,
            f.worker_cpu_percent.iter().sum::<f64>(),
            opt(f.worker_cpu_us_per_packet, 2),
            opt(f.video_consumers_per_worker_core, 0),
            f.loss_percent,
            opt(f.latency_p50_ms, 2),
            opt(f.latency_p99_ms, 2),
            opt(f.first_packet_p50_ms, 0),
        );
    }
    println!("viewers per core, Octo ÷ Janus: {}", opt(c.viewers_per_core_ratio, 2));
    println!("Janus's configuration (janus.jcfg, then janus.transport.websockets.jcfg):");
    for line in c.janus_config.lines().filter(|l| !l.trim().is_empty()) {
        println!("  {line}");
    }
}
