// Adaptive stream: each remote video tile tells the server what it needs. The tile's rendered width
// picks the simulcast layer (call.fitConsumer), and a tile with nothing on screen (scrolled away,
// hidden, or the page in the background) has its consumer paused at the server, so 49 tiles are not
// 49 downloads at 720p. Changes are settled for a moment before they are sent: a window being
// resized or a grid relayout must not become a burst of requests and keyframes.

const SETTLE_MS = 300;

export function setupAdaptiveStream(call) {
  const watched = new Map(); // video element → { consumerId, visible, timer }

  const fit = (video) => {
    const w = watched.get(video);
    if (!w) return;
    clearTimeout(w.timer);
    w.timer = setTimeout(() => {
      const width = Math.round(video.getBoundingClientRect().width * (window.devicePixelRatio || 1));
      const visible = w.visible && document.visibilityState === 'visible' && width > 0;
      call.fitConsumer(w.consumerId, { width, visible }).catch(() => {});
    }, SETTLE_MS);
  };

  const sizes = new ResizeObserver((entries) => entries.forEach((e) => fit(e.target)));
  const seen = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const w = watched.get(e.target);
      if (!w) continue;
      w.visible = e.isIntersecting;
      fit(e.target);
    }
  });
  document.addEventListener('visibilitychange', () => watched.forEach((_, video) => fit(video)));

  return {
    /** `video` now shows consumer `consumerId` (replacing whatever it showed before). */
    watch(video, consumerId) {
      const old = watched.get(video);
      if (old) clearTimeout(old.timer);
      watched.set(video, { consumerId, visible: true, timer: null });
      sizes.observe(video);
      seen.observe(video);
      fit(video);
    },
    /** The tile is gone. */
    unwatch(video) {
      if (!video) return;
      const w = watched.get(video);
      if (w) clearTimeout(w.timer);
      watched.delete(video);
      sizes.unobserve(video);
      seen.unobserve(video);
    },
  };
}
