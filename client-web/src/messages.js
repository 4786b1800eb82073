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
      return `You need a valid invitation link to join “${roomId}” (${err.message}).`;
    case 'unavailable':
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
