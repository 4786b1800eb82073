// What travels on the chat DataChannel (README.md, "DataChannel messages"): JSON text messages for
// chat lines, reactions and file announcements, and binary messages for file contents. Everything
// received is checked here: a peer's page is not trusted to send what ours would.

/** The reactions a page offers and accepts; anything else received is ignored. */
export const REACTIONS = ['👍', '❤️', '😂', '🎉', '👏', '😮'];
/** Longest chat line, in UTF-16 code units (what the input allows). */
export const MAX_TEXT = 2000;
const MAX_FILE_NAME = 200;

export const encodeChat = (text) => JSON.stringify({ type: 'chat', text });
export const encodeReaction = (emoji) => JSON.stringify({ type: 'reaction', emoji });
/** Announces that the next binary message on the channel is this file's contents. */
export const encodeFile = ({ name, size }) => JSON.stringify({ type: 'file', name, size });

/**
 * One received message as `{type: 'chat', text}`, `{type: 'reaction', emoji}`,
 * `{type: 'file', name, size}`, `{type: 'binary', bytes}` (an ArrayBuffer), or null for
 * anything malformed or unknown.
 */
export function decode(data) {
  if (data instanceof ArrayBuffer) return { type: 'binary', bytes: data };
  if (typeof data !== 'string') return null;
  let m;
  try {
    m = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof m !== 'object' || m === null) return null;
  switch (m.type) {
    case 'chat':
      return typeof m.text === 'string' && m.text.trim() && m.text.length <= MAX_TEXT ? { type: 'chat', text: m.text } : null;
    case 'reaction':
      return REACTIONS.includes(m.emoji) ? { type: 'reaction', emoji: m.emoji } : null;
    case 'file':
      if (!Number.isSafeInteger(m.size) || m.size < 0) return null;
      // No media type: a received file is only ever downloaded, never shown in our origin.
      return { type: 'file', name: typeof m.name === 'string' && m.name ? m.name.slice(0, MAX_FILE_NAME) : 'file', size: m.size };
    default:
      return null;
  }
}
