// A remote tile's network quality, from what its consumers received over the last sample (the
// browser's getStats) and the server's consumer score: `conn` (`good`, `poor`, `lost`: the tile's
// colour, kept as it was) and `bars` (0–3, as a phone shows signal), with the figures behind them
// for the tile's tooltip. Pure: tested without a page.

/**
 * `p`: `{expected, flowing, packets, lost, jitter, bytes, seconds, score, rtt}` — streams that
 * should deliver and those that did, packets received and lost, the worst jitter (s), bytes and the
 * sample's length (s), the lowest server score of the peer's consumers (0–10, or null before one
 * came) and the receive transport's round-trip time (s, or null).
 */
export function connectionVerdict(p) {
  const total = p.packets + p.lost;
  const loss = total > 0 ? p.lost / total : 0;
  const score = p.score ?? 10;
  let bars;
  if (p.expected > 0 && p.flowing === 0) bars = 0;
  else if (loss < 0.02 && score >= 8 && p.jitter < 0.03 && (p.rtt ?? 0) < 0.3) bars = 3;
  else if (loss < 0.05 && score >= 5 && p.jitter <= 0.1) bars = 2;
  else bars = 1;
  const conn = bars === 0 ? 'lost' : loss > 0.05 || p.jitter > 0.1 ? 'poor' : 'good';
  const words = ['no media', 'poor', 'fair', 'good'][bars];
  const kbps = p.seconds > 0 ? Math.round((p.bytes * 8) / p.seconds / 1000) : 0;
  const figures = [`loss ${(loss * 100).toFixed(1)} %`, `${kbps} kbit/s`];
  if (p.rtt != null) figures.push(`RTT ${Math.round(p.rtt * 1000)} ms`);
  if (p.score != null) figures.push(`server score ${p.score}/10`);
  return { conn, bars, text: `Connection: ${words} — ${figures.join(', ')}` };
}
