// A live microphone level: the lobby's meter and the one on our own tile, and the "you are muted"
// hint when someone talks while muted. One AnalyserNode on the microphone track, read ten times a
// second (not every frame: a bar does not need 60 Hz, and a background tab's timers slow anyway);
// each read covers everything since the one before.

const INTERVAL_MS = 100;
/** Below this (dBFS) the bar is empty; at 0 dBFS it is full. */
const FLOOR_DB = -60;
/** The level of a tick is its loudest 10 ms: a plosive or a short beep shows, however brief. */
const WINDOW_S = 0.01;
/** Talking (for the muted hint): at least SPEAKING_TICKS of the last second's ticks this loud. */
export const SPEAKING_LEVEL = 0.45;
export const SPEAKING_TICKS = 2;
const TICKS_PER_SECOND = 1000 / INTERVAL_MS;

/** 0…1 from samples (-1…1): their RMS on a dB scale from FLOOR_DB to 0. */
export function levelOf(samples) {
  let sum = 0;
  for (const s of samples) sum += s * s;
  const rms = Math.sqrt(sum / Math.max(samples.length, 1));
  if (rms <= 0) return 0;
  const db = 20 * Math.log10(rms);
  return Math.min(1, Math.max(0, (db - FLOOR_DB) / -FLOOR_DB));
}

/** The loudest `window`-sample stretch among the last `span` samples of `samples`. */
export function peakLevel(samples, span, window) {
  let peak = 0;
  const start = Math.max(0, samples.length - span);
  for (let i = start; i + window <= samples.length; i += window) peak = Math.max(peak, levelOf(samples.subarray(i, i + window)));
  return peak;
}

/** Whether the last second's levels (newest last) sound like someone talking. */
export function talking(levels) {
  return levels.slice(-TICKS_PER_SECOND).filter((l) => l >= SPEAKING_LEVEL).length >= SPEAKING_TICKS;
}

/**
 * Measures `track` until `stop()`; calls `onLevel(level, speaking)` every tick. Returns null where
 * the browser has no Web Audio.
 */
export function measureLevel(track, onLevel) {
  const Ctx = globalThis.AudioContext ?? globalThis.webkitAudioContext;
  if (!Ctx || !track) return null;
  const ctx = new Ctx();
  // A page without a user gesture yet starts its context suspended: the first click resumes it.
  const resume = () => ctx.resume().catch(() => {});
  document.addEventListener('click', resume, { once: true });
  // A clone: muting pauses the producer, which disables the track it sends (silence), and the
  // muted hint needs to hear the microphone all the same.
  const heard = track.clone();
  const source = ctx.createMediaStreamSource(new MediaStream([heard]));
  const analyser = ctx.createAnalyser();
  // The buffer must hold a whole tick (100 ms is 4,800 samples at 48 kHz), so nothing between two
  // reads goes unseen.
  analyser.fftSize = 8192;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const span = Math.min(samples.length, Math.ceil((ctx.sampleRate * INTERVAL_MS) / 1000));
  const window = Math.max(1, Math.round(ctx.sampleRate * WINDOW_S));
  const recent = [];
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    const level = heard.readyState === 'live' ? peakLevel(samples, span, window) : 0;
    recent.push(level);
    if (recent.length > TICKS_PER_SECOND) recent.shift();
    onLevel(level, talking(recent));
  }, INTERVAL_MS);
  return {
    stop() {
      clearInterval(timer);
      document.removeEventListener('click', resume);
      source.disconnect();
      heard.stop();
      ctx.close().catch(() => {});
    },
  };
}

/** Shows `level` on a meter element (`--level` for the bar, `data-level` for tests and styles). */
export function showLevel(el, level) {
  const shown = Math.round(level * 100) / 100;
  el.style.setProperty('--level', String(shown));
  el.dataset.level = String(shown);
  el.setAttribute('aria-valuenow', String(Math.round(shown * 100)));
}
