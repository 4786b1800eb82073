// The page: the lobby (room, name, preview, device pickers, shareable link) and the call (grid of
// tiles, controls, banners). All signaling and media work is in call.js; the chat panel is chat.js,
// reactions reactions.js, and what their DataChannel carries wire.js.
import { Call } from './call.js';
import { setupChat } from './chat.js';
import { callErrorMessage, mediaErrorMessage } from './messages.js';
import { setupReactions } from './reactions.js';
import { decode } from './wire.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const call = new Call(location.origin);

const ui = {
  lobby: $('lobby'), form: $('join-form'), room: $('room'), name: $('name'), camera: $('camera'), mic: $('mic'),
  preview: $('preview'), previewNote: $('preview-note'), shareLink: $('share-link'), copy: $('copy'),
  join: $('join'), lobbyError: $('lobby-error'), callView: $('call'), grid: $('grid'), banner: $('banner'),
  roomTitle: $('room-title'), micBtn: $('mic-btn'), camBtn: $('cam-btn'), screenBtn: $('screen-btn'),
  leaveBtn: $('leave-btn'),
};

// Local media: the preview stream doubles as what we publish.
let localStream = null;
let screenTrack = null;
const state = { mic: true, cam: true };

// ---- lobby ---------------------------------------------------------------------------------------

ui.room.value = params.get('room') ?? localStorage.getItem('octo.room') ?? '';
ui.name.value = localStorage.getItem('octo.name') ?? '';

function updateShareLink() {
  const room = ui.room.value.trim();
  const url = new URL(location.pathname, location.origin);
  if (room) url.searchParams.set('room', room);
  ui.shareLink.textContent = url.href;
  ui.shareLink.href = url.href;
}
ui.room.addEventListener('input', updateShareLink);
updateShareLink();
ui.copy.addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(ui.shareLink.href);
    ui.copy.textContent = 'Copied';
  } catch {
    ui.copy.textContent = 'Select and copy the link';
  }
  setTimeout(() => (ui.copy.textContent = 'Copy link'), 2000);
});

function stopStream(stream) {
  for (const t of stream?.getTracks() ?? []) t.stop();
}

async function startPreview() {
  const audio = ui.mic.value ? { deviceId: { exact: ui.mic.value } } : true;
  const video = ui.camera.value
    ? { deviceId: { exact: ui.camera.value }, width: { ideal: 640 }, height: { ideal: 360 } }
    : { width: { ideal: 640 }, height: { ideal: 360 } };
  stopStream(localStream);
  localStream = null;
  ui.previewNote.textContent = '';
  try {
    localStream = await navigator.mediaDevices.getUserMedia({ audio, video });
  } catch (err) {
    // One of the two may still work (a machine without a camera): try each alone.
    const tracks = [];
    for (const c of [{ audio }, { video }]) {
      try {
        tracks.push(...(await navigator.mediaDevices.getUserMedia(c)).getTracks());
      } catch {
        // reported below
      }
    }
    if (tracks.length) localStream = new MediaStream(tracks);
    if (!tracks.length || err.name === 'NotAllowedError') ui.previewNote.textContent = mediaErrorMessage(err);
  }
  ui.preview.srcObject = localStream;
  await fillDevicePickers();
}

async function fillDevicePickers() {
  let devices = [];
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    return;
  }
  const current = {
    videoinput: localStream?.getVideoTracks()[0]?.getSettings().deviceId,
    audioinput: localStream?.getAudioTracks()[0]?.getSettings().deviceId,
  };
  for (const [select, kind] of [[ui.camera, 'videoinput'], [ui.mic, 'audioinput']]) {
    const list = devices.filter((d) => d.kind === kind && d.deviceId);
    select.replaceChildren(
      ...list.map((d, i) => new Option(d.label || `${kind === 'videoinput' ? 'Camera' : 'Microphone'} ${i + 1}`, d.deviceId)),
    );
    if (current[kind]) select.value = current[kind];
    select.disabled = list.length === 0;
  }
}
ui.camera.addEventListener('change', () => (previewReady = startPreview()));
ui.mic.addEventListener('change', () => (previewReady = startPreview()));

ui.form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const roomId = ui.room.value.trim();
  const displayName = ui.name.value.trim();
  if (!roomId || !displayName) return;
  localStorage.setItem('octo.room', roomId);
  localStorage.setItem('octo.name', displayName);
  history.replaceState(null, '', `?room=${encodeURIComponent(roomId)}`);
  ui.join.disabled = true;
  ui.lobbyError.textContent = '';
  await previewReady;
  const tracks = new Map();
  const mic = localStream?.getAudioTracks()[0];
  const cam = localStream?.getVideoTracks()[0];
  if (mic) tracks.set('mic', mic);
  if (cam) tracks.set('webcam', cam);
  state.mic = !!mic;
  state.cam = !!cam;
  enterCallView(roomId, displayName);
  try {
    await call.join({ roomId, displayName, token: params.get('token') ?? undefined, tracks });
  } catch (err) {
    await call.leave();
    leaveCallView();
    ui.lobbyError.textContent = callErrorMessage(err, roomId);
  } finally {
    ui.join.disabled = false;
  }
});

// ---- call view -----------------------------------------------------------------------------------

const tiles = new Map(); // `${peerId}/${kind of tile}` → tile element

function enterCallView(roomId, displayName) {
  ui.lobby.hidden = true;
  ui.callView.hidden = false;
  ui.roomTitle.textContent = roomId;
  document.title = `${roomId} · Octo`;
  const own = tile('self', 'camera', `${displayName} (you)`);
  own.classList.add('self');
  own.querySelector('video').srcObject = localStream;
  updateControls();
}

function leaveCallView() {
  chat.clear();
  for (const t of tiles.values()) t.remove();
  tiles.clear();
  showBanner('');
  ui.callView.hidden = true;
  ui.lobby.hidden = false;
  document.title = 'Octo';
  if (screenTrack) screenTrack.stop();
  screenTrack = null;
}

/** The tile of a peer's camera (`camera`) or screen (`screen`), created on first use. */
function tile(peerId, kind, name) {
  const key = `${peerId}/${kind}`;
  let el = tiles.get(key);
  if (el) return el;
  el = document.createElement('div');
  el.className = `tile ${kind}`;
  el.dataset.peerId = peerId;
  el.dataset.kind = kind;
  el.dataset.mic = 'off';
  el.dataset.cam = 'off';
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = true; // audio plays through the tile's <audio>
  const avatar = document.createElement('div');
  avatar.className = 'avatar';
  const label = document.createElement('div');
  label.className = 'label';
  const conn = document.createElement('span');
  conn.className = 'conn';
  conn.title = 'Connection';
  const nameEl = document.createElement('span');
  nameEl.className = 'name';
  const micOff = document.createElement('span');
  micOff.className = 'mic-off';
  micOff.textContent = 'muted';
  micOff.title = 'Microphone off';
  label.append(conn, nameEl, micOff);
  el.append(video, avatar, label);
  if (kind === 'camera') {
    const audio = document.createElement('audio');
    audio.autoplay = true;
    el.append(audio);
  }
  setTileName(el, name ?? (kind === 'screen' ? 'Screen' : ''));
  tiles.set(key, el);
  ui.grid.append(el);
  layoutGrid();
  return el;
}

function setTileName(el, name) {
  const shown = el.dataset.kind === 'screen' ? `${name} — screen` : name;
  el.querySelector('.name').textContent = shown;
  el.querySelector('.avatar').textContent = (name || '?').trim().charAt(0).toUpperCase();
  el.dataset.name = name;
}

function removeTile(peerId, kind) {
  const key = `${peerId}/${kind}`;
  tiles.get(key)?.remove();
  tiles.delete(key);
  layoutGrid();
}

/** An adaptive grid: as square as the tile count allows. */
function layoutGrid() {
  const n = Math.max(tiles.size, 1);
  const cols = Math.ceil(Math.sqrt(n));
  ui.grid.style.setProperty('--cols', String(cols));
  ui.grid.style.setProperty('--rows', String(Math.ceil(n / cols)));
}

function showBanner(text, kind = 'info') {
  ui.banner.textContent = text;
  ui.banner.dataset.kind = kind;
  ui.banner.hidden = !text;
}

function updateControls() {
  const own = tiles.get('self/camera');
  if (own) {
    own.dataset.mic = state.mic ? 'on' : 'off';
    own.dataset.cam = state.cam ? 'on' : 'off';
  }
  const hasMic = !!localStream?.getAudioTracks().length;
  const hasCam = !!localStream?.getVideoTracks().length;
  ui.micBtn.disabled = !hasMic;
  ui.camBtn.disabled = !hasCam;
  ui.micBtn.textContent = state.mic ? 'Mute' : 'Unmute';
  ui.micBtn.setAttribute('aria-pressed', String(!state.mic));
  ui.camBtn.textContent = state.cam ? 'Stop camera' : 'Start camera';
  ui.camBtn.setAttribute('aria-pressed', String(!state.cam));
  ui.screenBtn.textContent = screenTrack ? 'Stop sharing' : 'Share screen';
  ui.screenBtn.disabled = !navigator.mediaDevices?.getDisplayMedia;
}

ui.micBtn.addEventListener('click', async () => {
  state.mic = !state.mic;
  updateControls();
  await call.setPaused('mic', !state.mic).catch(reportWarning);
});

ui.camBtn.addEventListener('click', async () => {
  state.cam = !state.cam;
  updateControls();
  await call.setPaused('webcam', !state.cam).catch(reportWarning);
});

ui.screenBtn.addEventListener('click', async () => {
  if (screenTrack) return stopScreen();
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch (err) {
    if (err.name !== 'NotAllowedError') showBanner(`Screen sharing failed: ${err.message}`, 'error');
    return;
  }
  screenTrack = stream.getVideoTracks()[0];
  screenTrack.addEventListener('ended', stopScreen);
  const own = tile('self', 'screen', ui.name.value.trim() || 'You');
  own.dataset.cam = 'on';
  own.querySelector('video').srcObject = new MediaStream([screenTrack]);
  updateControls();
  await call.startScreen(screenTrack).catch(reportWarning);
});

async function stopScreen() {
  screenTrack?.stop();
  screenTrack = null;
  removeTile('self', 'screen');
  updateControls();
  await call.stopScreen().catch(reportWarning);
}

ui.leaveBtn.addEventListener('click', async () => {
  if (screenTrack) await stopScreen();
  await call.leave();
  leaveCallView();
});

function reportWarning(err) {
  console.warn(err);
  showBanner(callErrorMessage(err, ui.room.value), 'error');
  setTimeout(() => showBanner(''), 5000);
}

// ---- call events ---------------------------------------------------------------------------------

call.on('peerJoined', ({ peerId, displayName }) => {
  setTileName(tile(peerId, 'camera', displayName), displayName);
});

call.on('peerLeft', ({ peerId }) => {
  removeTile(peerId, 'camera');
  removeTile(peerId, 'screen');
});

call.on('track', ({ peerId, source, kind, track, paused }) => {
  const name = call.peers.get(peerId) ?? '';
  const el = tile(peerId, source === 'screen' ? 'screen' : 'camera', name);
  if (kind === 'audio') {
    const audio = el.querySelector('audio');
    audio.srcObject = new MediaStream([track]);
    audio.play().catch(() => showBanner('Click anywhere to hear the others.', 'info'));
    el.dataset.mic = paused ? 'off' : 'on';
  } else {
    el.querySelector('video').srcObject = new MediaStream([track]);
    el.dataset.cam = paused ? 'off' : 'on';
  }
});

call.on('remotePaused', ({ peerId, source, kind, paused }) => {
  const el = tiles.get(`${peerId}/${source === 'screen' ? 'screen' : 'camera'}`);
  if (el) el.dataset[kind === 'audio' ? 'mic' : 'cam'] = paused ? 'off' : 'on';
});

call.on('trackEnded', ({ peerId, source, kind }) => {
  if (source === 'screen') return removeTile(peerId, 'screen');
  const el = tiles.get(`${peerId}/camera`);
  if (el) el.dataset[kind === 'audio' ? 'mic' : 'cam'] = 'off';
});

call.on('activeSpeaker', ({ peerId }) => {
  // Highlight the named peer's camera tile (our own tile is keyed 'self').
  for (const el of tiles.values()) el.classList.toggle('speaking', peerId !== null && el.dataset.peerId === (peerId === call.peerId ? 'self' : peerId) && el.dataset.kind === 'camera');
});

// Chat and reactions: DataChannel messages from the others, sender named by signaling.
const chat = setupChat(call);
const reactions = setupReactions(call, (peerId) => tiles.get(`${peerId}/camera`), reportWarning);
call.on('data', ({ peerId, data }) => {
  const msg = decode(data);
  if (msg?.type === 'reaction') reactions.show(peerId, msg.emoji);
  else if (msg) chat.receive(peerId, msg);
});

call.on('connection', (s) => {
  if (s === 'down') showBanner('Connection to the server lost — reconnecting…', 'error');
  else if (!ui.callView.hidden && !call.rejoining) showBanner('');
});
call.on('rejoining', (why) =>
  showBanner(why === 'worker_died' ? 'The media server for this room restarted — rejoining…' : 'Reconnected — rejoining the call…', 'error'),
);
call.on('rejoined', () => {
  showBanner('Back in the call.', 'info');
  setTimeout(() => showBanner(''), 3000);
});
call.on('transportState', ({ direction, state: s }) => {
  if (s === 'failed') showBanner(`Media connection (${direction}) failed — check your network or firewall.`, 'error');
});
call.on('warning', (e) => console.warn('octo:', e));

document.addEventListener('click', () => {
  for (const a of document.querySelectorAll('audio')) if (a.paused && a.srcObject) a.play().catch(() => {});
});

// ---- connection indicators -----------------------------------------------------------------------

// Every 2 s: a peer's tile is `good` while its unpaused streams deliver bytes with little loss,
// `poor` with loss or jitter, `lost` when nothing arrives although something should.
const lastBytes = new Map();
setInterval(async () => {
  if (ui.callView.hidden) return;
  const byPeer = new Map();
  for (const s of await call.consumerStats()) {
    const prev = lastBytes.get(s.consumerId) ?? { bytes: 0, packets: 0, lost: 0 };
    lastBytes.set(s.consumerId, { bytes: s.bytesReceived, packets: s.packetsReceived, lost: s.packetsLost });
    const p = byPeer.get(s.peerId) ?? { expected: 0, flowing: 0, packets: 0, lost: 0, jitter: 0 };
    if (!s.paused) {
      p.expected++;
      if (s.bytesReceived > prev.bytes) p.flowing++;
    }
    p.packets += s.packetsReceived - prev.packets;
    p.lost += Math.max(0, s.packetsLost - prev.lost);
    p.jitter = Math.max(p.jitter, s.jitter);
    byPeer.set(s.peerId, p);
  }
  for (const [peerId, p] of byPeer) {
    const el = tiles.get(`${peerId}/camera`);
    if (!el) continue;
    const lossy = p.lost > 0.05 * (p.packets + p.lost) || p.jitter > 0.1;
    el.dataset.conn = p.expected > 0 && p.flowing === 0 ? 'lost' : lossy ? 'poor' : 'good';
  }
}, 2000);

// ---- debug hook for tests and curious people -----------------------------------------------------

window.octo = {
  call,
  /** Per-consumer receive stats: `{peerId, source, kind, paused, packetsReceived, framesDecoded, …}`. */
  stats: () => call.consumerStats(),
  /** The recv transport's full RTCPeerConnection stats report, as an array. */
  async transportStats() {
    return call.recvTransport ? [...(await call.recvTransport.getStats()).values()] : [];
  },
  /** The grid as the person sees it. */
  tiles: () =>
    [...ui.grid.querySelectorAll('.tile')].map((el) => ({
      peerId: el.dataset.peerId, kind: el.dataset.kind, name: el.dataset.name, mic: el.dataset.mic,
      cam: el.dataset.cam, conn: el.dataset.conn ?? null, speaking: el.classList.contains('speaking'),
    })),
  /** Files received over the chat channel: `{peerId, name, size, sha256}` (hex). */
  files: () => chat.files(),
  peerId: () => call.peerId,
  socket: () => call.socket,
};

let previewReady = Promise.resolve();
if (navigator.mediaDevices?.getUserMedia) previewReady = startPreview();
else ui.previewNote.textContent = 'This browser cannot use a camera here (a secure origin — https or localhost — is required).';
