//! The active speaker of a router: the audio producer whose packets carry the loudest
//! ssrc-audio-level (RFC 6464) over a short window. A silent window keeps the last speaker, so the
//! highlight does not flicker between sentences.

use std::time::{Duration, Instant};

use octo_ipc::ProducerId;

use super::id_map::IdMap;

/// How often the loudest producer is chosen.
pub const WINDOW: Duration = Duration::from_millis(500);
/// Levels are -dBov (0 loudest, 127 silence); quieter than this counts as silence.
const THRESHOLD_DBOV: u8 = 70;
/// Voiced packets a producer needs in a window to be chosen: one, so that short sounds (and
/// Chromium's fake device, which beeps) count; the average over the window ranks them.
const MIN_PACKETS: u32 = 1;

#[derive(Debug, Default, Clone, Copy)]
struct Window {
    loudness: u64,
    packets: u32,
}

#[derive(Debug, Default)]
pub struct ActiveSpeakerObserver {
    windows: IdMap<ProducerId, Window>,
    current: Option<ProducerId>,
    next_check: Option<Instant>,
}

impl ActiveSpeakerObserver {
    /// One audio packet's level (dBov, 0–127) from `producer`.
    pub fn record(&mut self, now: Instant, producer: ProducerId, level: u8) {
        self.next_check.get_or_insert(now + WINDOW);
        if level > THRESHOLD_DBOV {
            return;
        }
        if let Some(w) = self.windows.get_mut(&producer) {
            w.loudness += u64::from(127 - level);
            w.packets += 1;
        } else {
            self.windows.insert(producer, Window { loudness: u64::from(127 - level), packets: 1 });
        }
    }

    /// A producer that closed or paused stops counting (and stops being the speaker).
    pub fn remove(&mut self, producer: ProducerId) {
        self.windows.remove(&producer);
        if self.current == Some(producer) {
            self.current = None;
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_check
    }

    /// At the end of a window: the new speaker, if it changed.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<ProducerId> {
        if self.next_check.is_none_or(|t| now < t) {
            return None;
        }
        let loudest = self
            .windows
            .iter()
            .filter(|(_, w)| w.packets >= MIN_PACKETS)
            .max_by_key(|(id, w)| (w.loudness / u64::from(w.packets), **id))
            .map(|(id, _)| *id);
        // Windows are reused (not freed) so a steady room allocates nothing here.
        for w in self.windows.values_mut() {
            *w = Window::default();
        }
        self.next_check = Some(now + WINDOW);
        match loudest {
            Some(id) if self.current != Some(id) => {
                self.current = Some(id);
                Some(id)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loudest_voiced_producer_wins_and_silence_keeps_it() {
        let mut o = ActiveSpeakerObserver::default();
        let t0 = Instant::now();
        let (a, b) = (ProducerId(1), ProducerId(2));
        for i in 0..25 {
            o.record(t0 + Duration::from_millis(i * 20), a, 30);
            o.record(t0 + Duration::from_millis(i * 20), b, 50);
        }
        assert_eq!(o.handle_timeout(t0 + WINDOW), Some(a));
        // Silence (level 127) and a few quiet packets: nobody new.
        for i in 0..25 {
            o.record(t0 + WINDOW + Duration::from_millis(i * 20), b, 127);
        }
        assert_eq!(o.handle_timeout(t0 + WINDOW * 2), None);
        // B speaks alone.
        for i in 0..25 {
            o.record(t0 + WINDOW * 2 + Duration::from_millis(i * 20), b, 40);
        }
        assert_eq!(o.handle_timeout(t0 + WINDOW * 3), Some(b));
        assert_eq!(o.handle_timeout(t0 + WINDOW * 4), None, "unchanged is not reported again");
        o.remove(b);
        for _ in 0..3 {
            o.record(t0 + WINDOW * 4, a, 60);
        }
        assert_eq!(o.handle_timeout(t0 + WINDOW * 5), Some(a));
    }
}
