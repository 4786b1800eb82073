// Which layout the call shows: the grid, or one tile large on the stage with the rest in a strip.
// The stage goes to, in this order: the tile the person pinned; the newest screen share (a
// presentation is what everyone wants to see, its presenter stays in the strip); in speaker view,
// the active speaker (else the first other person). With none of these, the grid. Pure: tested
// without a page.

/**
 * The key (`peerId/kind`) of the tile on the stage, or null for the grid. `keys`: every tile's key
 * in grid order (screen tiles `…/screen`, our own `self/…`); `speaker`: the active speaker's peer
 * id as tiles name it (`self` for us) or null.
 */
export function stageTile(keys, { pinned = null, speakerView = false, speaker = null } = {}) {
  if (pinned && keys.includes(pinned)) return pinned;
  // Our own screen is not put on our stage: a mirror of a mirror, and we know what we share.
  const screens = keys.filter((k) => k.endsWith('/screen') && !k.startsWith('self/'));
  if (screens.length) return screens.at(-1);
  if (!speakerView) return null;
  const cameras = keys.filter((k) => k.endsWith('/camera'));
  const others = cameras.filter((k) => !k.startsWith('self/'));
  // Our own voice does not put us on our own stage: the last other speaker stays.
  if (speaker && speaker !== 'self' && cameras.includes(`${speaker}/camera`)) return `${speaker}/camera`;
  return others[0] ?? null;
}

/**
 * The grid's column count and tile width (px) that give the largest 16:9 tiles for `n` tiles in a
 * `width` × `height` box with `gap` between them, in at most `maxCols` columns.
 */
export function bestGrid(n, width, height, gap, maxCols = n) {
  let best = { cols: Math.min(Math.ceil(Math.sqrt(n)), maxCols), w: 0 };
  for (let cols = 1; cols <= Math.min(n, maxCols); cols++) {
    const rows = Math.ceil(n / cols);
    const w = Math.min((width - gap * (cols - 1)) / cols, ((height - gap * (rows - 1)) / rows) * (16 / 9));
    if (w > best.w) best = { cols, w };
  }
  return best;
}

/**
 * Splits `keys` (grid order) into pages of `pageSize`: the first page holds the tiles in `keep`
 * (the active speaker, ourselves) and fills up in grid order; the others follow in grid order.
 * Returns the page count, the page shown (clamped) and its keys in grid order.
 */
export function paginate(keys, { pageSize, page = 0, keep = [] }) {
  if (keys.length <= pageSize) return { pages: 1, page: 0, shown: keys };
  const first = keys.filter((k) => keep.includes(k)).slice(0, pageSize);
  const rest = keys.filter((k) => !first.includes(k));
  const fill = pageSize - first.length;
  const pages = [[...first, ...rest.slice(0, fill)]];
  for (let i = fill; i < rest.length; i += pageSize) pages.push(rest.slice(i, i + pageSize));
  const shownPage = Math.min(Math.max(page, 0), pages.length - 1);
  const on = new Set(pages[shownPage]);
  return { pages: pages.length, page: shownPage, shown: keys.filter((k) => on.has(k)) };
}
