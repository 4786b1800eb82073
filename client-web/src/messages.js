// Words a person understands for every failure the app can meet.

/** A getUserMedia / getDisplayMedia failure. */
export function mediaErrorMessage(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera and microphone are blocked for this site. Allow them in your browser (the camera icon in the address bar) and reload — or join without them.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera or microphone was found. Plug one in and reload — or join without them.';
    case 'NotReadableError':
    case 'AbortError':
      return 'Your camera or microphone is busy (another app may be using it). Close that app and reload.';
    default:
      return `Camera and microphone are not available (${err?.message ?? err}). You can still join and watch.`;
  }
}

/** A failure to join or stay in a call (a CallError code from the server or from the Call). */
export function callErrorMessage(err, roomId) {
  switch (err?.code) {
    case 'server_unreachable':
      return 'Cannot reach the Octo server. Check your connection, or that the server is running, and try again.';
    case 'room_full':
      return `The room “${roomId}” is full. Try again later or pick another room.`;
    case 'unauthorized':
      return invitationMessage(err.message ?? '', roomId);
    case 'unsupported_version':
      return 'This page is out of date: the server was updated since it was loaded. Reload the page (Ctrl+Shift+R, or ⌘+Shift+R on a Mac) and join again.';
    case 'unavailable':
      // The same code while the server drains for a shutdown (PROTOCOL.md); its message says so.
      if (/shutting down/i.test(err.message ?? '')) return 'The server is shutting down for maintenance and takes no new calls. Try again in a minute.';
      return 'The server has no media capacity right now. Try again in a moment.';
    case 'already_joined':
      return 'This tab is already in a call.';
    case 'bad_request':
      return `The server refused the request: ${err.message}`;
    case 'rate_limited':
      return 'Too many requests; wait a moment and try again.';
    case 'timeout':
      return 'The server did not answer in time. Check your connection and try again.';
    default:
      return `Something went wrong: ${err?.message ?? err}`;
  }
}

/** An `unauthorized` refusal in words: the server's message says which (PROTOCOL.md, Access). */
function invitationMessage(why, roomId) {
  if (/requires a token/.test(why)) return `The room “${roomId}” needs an invitation link. Ask whoever invited you for it, and open it.`;
  if (/expired/.test(why)) return 'Your invitation link has expired. Ask whoever invited you for a new one.';
  if (/another room/.test(why)) return `Your invitation link is for another room, not “${roomId}”. Open the link as you got it, or ask for one to this room.`;
  return `Your invitation link is not valid (${why}). Check that you copied all of it, or ask for a new one.`;
}

// PROTOCOL.md's limits on `joinRoom`, checked before asking: bytes of UTF-8, no control characters.
const MAX_ROOM_BYTES = 128;
const MAX_NAME_BYTES = 100;
const utf8Length = (s) => new TextEncoder().encode(s).length;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** What is wrong with a room name (already trimmed), in words; null if nothing. */
export function roomProblem(room) {
  if (!room) return 'Type the name of a room. Anyone who types the same name (or opens your link) joins you.';
  if (utf8Length(room) > MAX_ROOM_BYTES) {
    return `That room name is too long: at most ${MAX_ROOM_BYTES} letters (fewer with accents or emoji). Pick a shorter one, or check the link you were sent.`;
  }
  if (CONTROL.test(room)) return 'A room name cannot contain line breaks or tabs. Check the link you were sent.';
  return null;
}

/** What is wrong with a display name (already trimmed), in words; null if nothing. */
export function nameProblem(name) {
  if (!name) return 'Type your name, so the others know who you are.';
  if (utf8Length(name) > MAX_NAME_BYTES) return `That name is too long: at most ${MAX_NAME_BYTES} letters (fewer with accents or emoji).`;
  if (CONTROL.test(name)) return 'A name cannot contain line breaks or tabs.';
  return null;
}
