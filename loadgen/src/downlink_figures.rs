//! Per-subscriber downlink figures of a window: what each subscriber received (media,
//! retransmissions, the estimator's padding probes) against its simulated bottleneck's cap, and
//! which simulcast layer it was given and when — from the worker's `consumerLayersChanged` events
//! and, independently, from the media itself (a keyframe's resolution, the VP8 temporal ids).
//!
//! The worker's estimate is not visible from outside; what the estimator got right shows in the
//! layer it chose and in received ÷ cap (near 1 at most: more than the cap cannot pass the link).

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::media::{DownlinkSnapshot, Snapshot};
use crate::session::{Peer, SIMULCAST_RESOLUTIONS, Session};
use crate::signaling::LayerChange;

#[derive(Debug, Clone, Serialize)]
pub struct SubscriberFigures {
    pub peer: usize,
    pub cap_kbps: Option<u64>,
    /// Bit/s on the wire (SRTP) over the window, in kbit/s: the consumers' primary streams.
    pub media_kbps: f64,
    pub rtx_kbps: f64,
    /// Padding-only RTX: the estimator's probes.
    pub padding_kbps: f64,
    /// Everything: media + RTX + padding.
    pub total_kbps: f64,
    pub media_to_cap: Option<f64>,
    pub total_to_cap: Option<f64>,
    /// Share of the datagrams offered to the bottleneck that its queue dropped.
    pub link_drop_percent: Option<f64>,
    pub twcc_feedback_per_s: f64,
    /// The video consumer's layers as last reported by `consumerLayersChanged`.
    pub final_spatial: Option<u8>,
    pub final_temporal: Option<u8>,
    /// Seconds from `resumeConsumer` to the first report, to the first change after it, and to
    /// the last change; how many reports there were.
    pub first_report_s: Option<f64>,
    pub first_change_s: Option<f64>,
    pub last_change_s: Option<f64>,
    pub layer_reports: usize,
    /// Every report, "spatial.temporal@seconds" from the resume.
    pub layer_history: String,
    /// Share of the window the reports say each spatial layer (lowest first) was forwarded; the
    /// rest of the window nothing was (or nothing was reported yet).
    pub spatial_share: [f64; 3],
    /// From the media, for capped subscribers (they decrypt every packet): the encoding of the last
    /// keyframe (by its resolution) and the highest VP8 temporal id in the window. Others decrypt
    /// a sample, which seldom holds a keyframe, so they report none.
    pub media_spatial: Option<u8>,
    pub media_temporal_max: Option<u8>,
}

/// Subscribers listed one by one at most; beyond, the capped ones and the first uncapped one.
const LISTED: usize = 20;

#[derive(Debug, Clone, Default, Serialize)]
pub struct DownlinkReport {
    pub subscribers: Vec<SubscriberFigures>,
    /// Uncapped subscribers by the spatial layer last reported ("none": no report).
    pub uncapped_by_final_spatial: BTreeMap<String, usize>,
}

/// The figures between snapshots `a` and `b` for every subscriber in `session`.
pub fn window(a: &Snapshot, b: &Snapshot, session: &Session) -> DownlinkReport {
    let mut all: Vec<SubscriberFigures> = b
        .downlinks
        .iter()
        .filter_map(|end| {
            let (peer, p) = session.peers.iter().enumerate().find(|(_, p)| p.recv_key() == Some(end.key))?;
            let start = a.downlinks.iter().find(|d| d.key == end.key);
            Some(subscriber(peer, p, start, end, (a.at, b.at)))
        })
        .collect();
    let mut report = DownlinkReport::default();
    for s in all.iter().filter(|s| s.cap_kbps.is_none()) {
        let layer = s.final_spatial.map_or("none".to_owned(), |l| l.to_string());
        *report.uncapped_by_final_spatial.entry(layer).or_default() += 1;
    }
    if all.len() > LISTED {
        let first_uncapped = all.iter().position(|s| s.cap_kbps.is_none());
        let mut i = 0;
        all.retain(|s| {
            i += 1;
            s.cap_kbps.is_some() || Some(i - 1) == first_uncapped
        });
    }
    report.subscribers = all;
    report
}

fn subscriber(
    peer: usize,
    p: &Peer,
    start: Option<&DownlinkSnapshot>,
    end: &DownlinkSnapshot,
    (from, to): (Instant, Instant),
) -> SubscriberFigures {
    let wall = to.duration_since(from).as_secs_f64().max(1e-6);
    let (c0, c1) = (start.map(|s| s.counters).unwrap_or_default(), end.counters);
    let kbps = |bytes: u64| bytes as f64 * 8.0 / wall / 1000.0;
    let media_kbps = kbps(c1.media_bytes - c0.media_bytes);
    let rtx_kbps = kbps(c1.rtx_bytes - c0.rtx_bytes);
    let padding_kbps = kbps(c1.padding_bytes - c0.padding_bytes);
    let total_kbps = media_kbps + rtx_kbps + padding_kbps;
    let link = end.link.map(|(_, l1)| {
        let l0 = start.and_then(|s| s.link).map(|(_, l)| l).unwrap_or_default();
        let dropped = l1.dropped - l0.dropped;
        let offered = dropped + (l1.delivered - l0.delivered);
        dropped as f64 * 100.0 / offered.max(1) as f64
    });
    let cap = p.cap_kbps.map(|c| c as f64);
    let video = p.consumer_ids.iter().find(|(_, kind, _)| *kind == crate::media::send_stream::Kind::Video);
    let changes: Vec<&LayerChange> = match video {
        Some((id, ..)) => p.layer_changes().iter().filter(|c| &c.consumer_id == id).collect(),
        None => Vec::new(),
    };
    let resumed = video.map_or_else(Instant::now, |(_, _, at)| *at);
    let since = |c: &LayerChange| c.at.saturating_duration_since(resumed).as_secs_f64();
    let layer = |l: Option<u8>| l.map_or("-".to_owned(), |l| l.to_string());
    let temporal = c1.temporal_packets;
    let temporal0 = c0.temporal_packets;
    SubscriberFigures {
        peer,
        cap_kbps: p.cap_kbps,
        media_kbps,
        rtx_kbps,
        padding_kbps,
        total_kbps,
        media_to_cap: cap.map(|c| media_kbps / c),
        total_to_cap: cap.map(|c| total_kbps / c),
        link_drop_percent: link,
        twcc_feedback_per_s: (c1.feedback_sent - c0.feedback_sent) as f64 / wall,
        final_spatial: changes.last().and_then(|c| c.spatial),
        final_temporal: changes.last().and_then(|c| c.temporal),
        first_report_s: changes.first().map(|c| since(c)),
        first_change_s: changes.get(1).map(|c| since(c)),
        last_change_s: changes.get(1..).and_then(<[_]>::last).map(|c| since(c)),
        layer_reports: changes.len(),
        spatial_share: spatial_share(&changes, from, to),
        layer_history: changes
            .iter()
            .map(|c| format!("{}.{}@{:.2}s", layer(c.spatial), layer(c.temporal), since(c)))
            .collect::<Vec<_>>()
            .join(" "),
        media_spatial: c1
            .keyframe_resolution
            .filter(|_| p.cap_kbps.is_some())
            .and_then(|r| SIMULCAST_RESOLUTIONS.iter().position(|s| *s == r))
            .map(|i| i as u8),
        media_temporal_max: (0..3u8)
            .rev()
            .find(|&t| temporal[usize::from(t)] > temporal0[usize::from(t)])
            .filter(|_| p.cap_kbps.is_some()),
    }
}

/// How much of `from..to` each spatial layer was reported forwarded, from the reports in time order.
fn spatial_share(changes: &[&LayerChange], from: Instant, to: Instant) -> [f64; 3] {
    let wall = to.duration_since(from).as_secs_f64().max(1e-6);
    let mut share = [0.0; 3];
    for (i, c) in changes.iter().enumerate() {
        let start = c.at.max(from);
        let end = changes.get(i + 1).map_or(to, |next| next.at.min(to));
        if let Some(s) = c.spatial.and_then(|s| share.get_mut(usize::from(s)))
            && end > start
        {
            *s += end.duration_since(start).as_secs_f64() / wall;
        }
    }
    share
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// The subscribers' lines under a step's row.
pub fn print(report: &DownlinkReport) {
    if report.subscribers.iter().all(|s| s.cap_kbps.is_none() && s.layer_reports == 0) {
        return;
    }
    println!(
        "  peer  cap kbit/s  media kbit/s  +rtx  +padding  total÷cap  link drop %  layers (events)  share on 0/1/2  media layer  first/first change/last change s  history"
    );
    for s in &report.subscribers {
        println!(
            "  {:>4}  {:>10}  {:>12.0}  {:>4.0}  {:>8.0}  {:>9}  {:>11}  {:>15}  {:>14}  {:>11}  {:>32}  {}",
            s.peer,
            s.cap_kbps.map_or("-".into(), |c| c.to_string()),
            s.media_kbps,
            s.rtx_kbps,
            s.padding_kbps,
            opt(s.total_to_cap, 2),
            opt(s.link_drop_percent, 2),
            format!(
                "{}.{}",
                s.final_spatial.map_or("-".into(), |l| l.to_string()),
                s.final_temporal.map_or("-".into(), |l| l.to_string())
            ),
            format!("{:.2}/{:.2}/{:.2}", s.spatial_share[0], s.spatial_share[1], s.spatial_share[2]),
            format!(
                "{}.{}",
                s.media_spatial.map_or("-".into(), |l| l.to_string()),
                s.media_temporal_max.map_or("-".into(), |l| l.to_string())
            ),
            format!("{}/{}/{}", opt(s.first_report_s, 2), opt(s.first_change_s, 2), opt(s.last_change_s, 2)),
            s.layer_history,
        );
    }
    if !report.uncapped_by_final_spatial.is_empty() {
        let by: Vec<String> = report.uncapped_by_final_spatial.iter().map(|(l, n)| format!("{n} on {l}")).collect();
        println!("  uncapped subscribers by final spatial layer: {}", by.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn shares_count_only_the_window() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let change = |ms, spatial| LayerChange { consumer_id: "c".into(), spatial, temporal: Some(2), at: at(ms) };
        let changes = [change(0, Some(2)), change(1_500, Some(0)), change(2_000, None), change(2_500, Some(1))];
        let refs: Vec<&LayerChange> = changes.iter().collect();
        let share = spatial_share(&refs, at(1_000), at(3_000));
        assert_eq!(share, [0.25, 0.25, 0.25]);
    }
}
