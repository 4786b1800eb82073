// Emoji reactions: a button per emoji in the controls; a reaction floats up over the sender's camera
// tile for a moment on every page, the sender's own included (the channel does not echo, so the
// sender shows its own at once).
import { REACTIONS, encodeReaction } from './wire.js';

const FLOAT_MS = 3000;
/** More at once on one tile are dropped: a flood must not grow the page without bound. */
const MAX_PER_TILE = 12;

/** `tileOf(peerId)` is the camera tile of that peer (`'self'` for our own), or undefined. */
export function setupReactions(call, tileOf, onError) {
  const bar = document.getElementById('reactions');
  for (const emoji of REACTIONS) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'reaction-btn';
    b.textContent = emoji;
    b.title = `React with ${emoji}`;
    b.dataset.emoji = emoji;
    b.addEventListener('click', async () => {
      show('self', emoji);
      await call.sendData(encodeReaction(emoji)).catch(onError);
    });
    bar.append(b);
  }

  function show(peerId, emoji) {
    const tile = tileOf(peerId);
    if (!tile || tile.querySelectorAll('.reaction').length >= MAX_PER_TILE) return;
    const el = document.createElement('span');
    el.className = 'reaction';
    el.textContent = emoji;
    el.style.left = `${15 + Math.random() * 70}%`;
    tile.append(el);
    setTimeout(() => el.remove(), FLOAT_MS);
  }

  return { show };
}
