// The page: the lobby (room, name, preview, device pickers, shareable link) and the call (grid of
// tiles, controls, banners). All signaling and media work is in call.js; the chat panel is chat.js,
// reactions reactions.js, and what their DataChannel carries wire.js; the participant list and raised
// hands people.js, the microphone level meter.js.
import { setupAdaptiveStream } from './adaptive.js';
import { Call } from './call.js';
import { setupChat } from './chat.js';
import { setupDevicesPanel } from './devices.js';
import { bestGrid, paginate, stageTile } from './layout.js';
import { connectionVerdict } from './quality.js';
import { measureLevel, showLevel } from './meter.js';
import { callErrorMessage, mediaErrorMessage, nameProblem, roomProblem } from './messages.js';
import { handPlaces, peopleRows, setupPeoplePanel } from './people.js';
import { setupReactions } from './reactions.js';
import { setupShortcuts, shortcutLabel } from './shortcuts.js';
import { decode } from './wire.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const call = new Call(location.origin);
// `?iceTransportPolicy=relay` sends all media through the TURN server Octo names (to test one).
if (params.get('iceTransportPolicy') === 'relay') call.iceTransportPolicy = 'relay';
// A clustered Octo names its other nodes: if this one dies mid-call, the call moves there.
fetch('/servers')
  .then((r) => (r.ok ? r.json() : null))
  .then((j) => call.setServers(j?.servers))
  .catch(() => {});

const ui = {
  lobby: $('lobby'), form: $('join-form'), room: $('room'), name: $('name'), camera: $('camera'), mic: $('mic'),
  preview: $('preview'), previewNote: $('preview-note'), shareLink: $('share-link'), copy: $('copy'),
  join: $('join'), lobbyError: $('lobby-error'), callView: $('call'), grid: $('grid'), banner: $('banner'),
  roomTitle: $('room-title'), micBtn: $('mic-btn'), camBtn: $('cam-btn'), screenBtn: $('screen-btn'),
  leaveBtn: $('leave-btn'), notice: $('notice'), lobbyMic: $('lobby-mic'), lobbyCam: $('lobby-cam'),
  previewBtn: $('preview-btn'), handBtn: $('hand-btn'), lobbyLevel: $('lobby-level'), mutedHint: $('muted-hint'),
  toasts: $('toasts'), layoutBtn: $('layout-btn'), pager: $('pager'), pageLabel: $('page-label'),
  pagePrev: $('page-prev'), pageNext: $('page-next'), showSelf: $('show-self'), mirrorSelf: $('mirror-self'),
};

// Local media: the preview stream doubles as what we publish.
let localStream = null;
let screenTrack = null;
// What the person wants: microphone and camera on or off. Set in the lobby or by the call's buttons,
// it outlives a leave and a rejoin (automatic or not): someone who muted stays muted.
// The hand is for one call: it goes down on leaving.
const state = { mic: true, cam: true, hand: false };

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

/**
 * The camera is captured at 720p (its top simulcast layer); `localStorage['octo.cameraHeight']`
 * (360, 540…) lowers it, for a slow machine.
 */
function captureSize() {
  const stored = Number(localStorage.getItem('octo.cameraHeight'));
  const height = stored >= 90 && stored <= 720 ? stored : 720;
  return { width: { ideal: Math.round((height * 16) / 9) }, height: { ideal: height } };
}

/** Whether the preview stream still has a live track (a leave stops them all). */
function previewLive() {
  return !!localStream?.getTracks().some((t) => t.readyState === 'live');
}

/** Turns camera and microphone off (the camera light too): on leaving, and before a new preview. */
function stopPreview() {
  stopMeter();
  stopStream(localStream);
  localStream = null;
  ui.preview.srcObject = null;
  ui.previewBtn.hidden = false;
}

async function startPreview() {
  ui.previewBtn.hidden = true;
  const audio = ui.mic.value ? { deviceId: { exact: ui.mic.value } } : true;
  const size = captureSize();
  const video = ui.camera.value ? { deviceId: { exact: ui.camera.value }, ...size } : size;
  stopStream(localStream);
  localStream = null;
  ui.previewNote.textContent = '';
  delete ui.previewNote.dataset.kind;
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
  startMeter(localStream?.getAudioTracks()[0]);
  updateLobbyToggles();
  await fillDevicePickers();
}

// ---- devices during the call --------------------------------------------------------------------

const devices = setupDevicesPanel({
  stream: () => localStream,
  videoSize: captureSize,
  onError: reportWarning,
  releaseMic() {
    stopMeter();
    for (const t of localStream?.getAudioTracks() ?? []) t.stop();
  },
  /** A newly captured camera or microphone replaces the one we send (on the same producer). */
  async useTrack(kind, track) {
    const old = (kind === 'video' ? localStream?.getVideoTracks() : localStream?.getAudioTracks()) ?? [];
    try {
      await call.replaceTrack(kind === 'video' ? 'webcam' : 'mic', track);
    } catch (err) {
      track.stop();
      throw err;
    }
    for (const t of old) t.stop();
    // A new stream object, so every <video> showing it picks the new track up for sure.
    localStream = new MediaStream([...(localStream?.getTracks() ?? []).filter((t) => !old.includes(t)), track]);
    ui.preview.srcObject = localStream;
    const own = tiles.get('self/camera')?.querySelector('video');
    if (own) own.srcObject = localStream;
    if (kind === 'audio') startMeter(track);
    updateControls();
    // The lobby's pickers follow, so a rejoin after Leave uses the device chosen here.
    await fillDevicePickers();
  },
});

// ---- the microphone level ------------------------------------------------------------------------

let meter = null;

/**
 * One meter on the microphone serves the lobby's bar and our own tile's. Muted, the bars stay still
 * (nothing is sent), but a voice still shows the "you are muted" hint in the call.
 */
function startMeter(track) {
  stopMeter();
  meter = measureLevel(track, (level, speaking) => {
    const shown = state.mic ? level : 0;
    showLevel(ui.lobbyLevel, shown);
    const own = tiles.get('self/camera')?.querySelector('.level');
    if (own) showLevel(own, shown);
    ui.mutedHint.hidden = !(speaking && !state.mic && !ui.callView.hidden && !ui.micBtn.disabled);
  });
}

function stopMeter() {
  meter?.stop();
  meter = null;
  showLevel(ui.lobbyLevel, 0);
  ui.mutedHint.hidden = true;
}

/** The lobby's microphone and camera switches: join muted, or with the camera off. */
function updateLobbyToggles() {
  for (const [btn, on, what] of [[ui.lobbyMic, state.mic, 'Microphone'], [ui.lobbyCam, state.cam, 'Camera']]) {
    btn.textContent = `${what} ${on ? 'on' : 'off'}`;
    btn.setAttribute('aria-pressed', String(!on));
  }
  ui.preview.classList.toggle('cam-off', !state.cam);
}
ui.lobbyMic.addEventListener('click', () => {
  state.mic = !state.mic;
  updateLobbyToggles();
});
ui.lobbyCam.addEventListener('click', () => {
  state.cam = !state.cam;
  updateLobbyToggles();
});
ui.previewBtn.addEventListener('click', () => (previewReady = startPreview()));

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
  // Said in words, never a silent no-op or the server's wording.
  const problem = roomProblem(roomId) ?? nameProblem(displayName);
  if (problem) {
    ui.lobbyError.textContent = problem;
    (roomProblem(roomId) ? ui.room : ui.name).focus();
    return;
  }
  localStorage.setItem('octo.room', roomId);
  localStorage.setItem('octo.name', displayName);
  history.replaceState(null, '', `?room=${encodeURIComponent(roomId)}`);
  ui.join.disabled = true;
  ui.lobbyError.textContent = '';
  await previewReady;
  // After a leave the camera and microphone are off: turn them on again for the call.
  if (!previewLive() && navigator.mediaDevices?.getUserMedia) await (previewReady = startPreview());
  const tracks = new Map();
  const mic = localStream?.getAudioTracks()[0];
  const cam = localStream?.getVideoTracks()[0];
  if (mic) tracks.set('mic', { track: mic, paused: !state.mic });
  if (cam) tracks.set('webcam', { track: cam, paused: !state.cam });
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
/** How long the tiles of peers we lost with the connection wait for them after we are back. */
const STALE_GRACE_MS = 15000;
let staleTimer = null;
/** The server announced its shutdown: `{until}` (our clock), shown until the call ends. */
let draining = null;
let drainTimer = null;

function enterCallView(roomId, displayName) {
  ui.lobby.hidden = true;
  ui.callView.hidden = false;
  ui.roomTitle.textContent = roomId;
  document.title = `${roomId} · Octo`;
  const own = tile('self', 'camera', `${displayName} (you)`);
  own.classList.add('self');
  const level = document.createElement('span');
  level.className = 'level';
  level.setAttribute('role', 'meter');
  level.setAttribute('aria-label', 'Your microphone level');
  showLevel(level, 0);
  own.querySelector('.label').append(level);
  own.querySelector('video').srcObject = localStream;
  updateControls();
  updateNotice();
}

function leaveCallView() {
  chat.clear();
  for (const t of tiles.values()) {
    adaptive.unwatch(t.querySelector('video'));
    t.remove();
  }
  tiles.clear();
  hands.clear();
  state.hand = false;
  view.pinned = null;
  view.speaker = null;
  view.page = 0;
  peoplePanel.setOpen(false);
  devices.setOpen(false);
  ui.toasts.replaceChildren();
  clearTimeout(staleTimer);
  clearInterval(drainTimer);
  draining = null;
  showBanner('');
  updateNotice();
  ui.callView.hidden = true;
  ui.lobby.hidden = false;
  document.title = 'Octo';
  if (screenTrack) screenTrack.stop();
  screenTrack = null;
  updateLobbyToggles();
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
  conn.setAttribute('role', 'img');
  conn.append(...[1, 2, 3].map(() => document.createElement('i')));
  const nameEl = document.createElement('span');
  nameEl.className = 'name';
  const micOff = document.createElement('span');
  micOff.className = 'mic-off';
  micOff.textContent = 'muted';
  micOff.title = 'Microphone off';
  const hand = document.createElement('span');
  hand.className = 'hand';
  hand.title = 'Hand raised';
  label.append(conn, hand, nameEl, micOff);
  const reconnecting = document.createElement('div');
  reconnecting.className = 'reconnecting';
  reconnecting.textContent = 'Reconnecting…';
  const pin = document.createElement('button');
  pin.type = 'button';
  pin.className = 'pin';
  pin.textContent = 'Pin';
  pin.addEventListener('click', (event) => {
    event.stopPropagation();
    view.pinned = view.pinned === el ? null : el;
    layoutGrid();
  });
  el.append(video, avatar, reconnecting, pin, label);
  // A double click (or tap) fills the screen with the tile, and another one comes back.
  el.addEventListener('dblclick', () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else el.requestFullscreen?.().catch(() => {});
  });
  if (kind === 'camera') {
    const audio = document.createElement('audio');
    audio.autoplay = true;
    el.append(audio);
  }
  // Named once it is in `tiles`: relabel() labels only the tiles it finds there (a screen tile,
  // named nowhere else, was left without its "— screen" label).
  tiles.set(key, el);
  setTileName(el, name ?? (kind === 'screen' ? 'Screen' : ''));
  ui.grid.append(el);
  layoutGrid();
  return el;
}

function setTileName(el, name) {
  el.querySelector('.avatar').textContent = (name || '?').trim().charAt(0).toUpperCase();
  el.dataset.name = name;
  relabel();
}

/**
 * The names shown: two people with one name (often one person in two tabs) get "(2)", "(3)" in
 * the order they are in the grid, so no two tiles look the same; a screen tile follows its owner.
 */
function relabel() {
  const seen = new Map();
  const shown = new Map(); // peerId → label
  for (const el of tiles.values()) {
    if (el.dataset.kind !== 'camera') continue;
    const name = el.dataset.name ?? '';
    const key = el.dataset.peerId === 'self' ? null : name.trim().toLowerCase();
    const n = key === null ? 1 : (seen.get(key) ?? 0) + 1;
    if (key !== null) seen.set(key, n);
    shown.set(el.dataset.peerId, n > 1 ? `${name} (${n})` : name);
  }
  for (const el of tiles.values()) {
    const owner = shown.get(el.dataset.peerId) ?? el.dataset.name ?? '';
    const text = el.dataset.kind === 'screen' ? `${owner} — screen` : owner;
    el.querySelector('.name').textContent = text;
    el.querySelector('.pin').setAttribute('aria-label', `Pin ${text}`);
  }
}

function removeTile(peerId, kind) {
  const key = `${peerId}/${kind}`;
  const video = tiles.get(key)?.querySelector('video');
  if (video) adaptive.unwatch(video);
  tiles.get(key)?.remove();
  tiles.delete(key);
  layoutGrid();
  relabel();
}

/**
 * The view: a tile the person pinned (the element: it keeps its pin when a rejoin re-keys it),
 * whether speaker view is on, and the speaker it shows (held a moment, see `showSpeaker`).
 */
const view = {
  pinned: null, speakerView: false, speaker: null, page: 0,
  // Self-view choices, kept for next time.
  hideSelf: localStorage.getItem('octo.hideSelf') === 'true',
  mirror: localStorage.getItem('octo.mirrorSelf') !== 'false',
};
/** Tiles on one page of the grid (Meet's and Zoom's largest grid is 7 × 7). */
const PAGE_SIZE = 49;
/** Tiles in the strip beside the stage; the rest are a page further. */
const STRIP_SIZE = 6;
/** A phone in portrait shows two columns of four (tiles a thumb's width or more), and three under the stage. */
const PHONE = { pageSize: 8, stripSize: 3, maxCols: 2 };
/** Phone-sized screens: the same breakpoint as style.css's phone rules (keep the two together). */
const phoneScreen = window.matchMedia('(max-width: 600px)');
/** The page size: `localStorage['octo.pageSize']` (2–49) lowers it, to try pages with a few people. */
function pageSize(stage) {
  const stored = Number(localStorage.getItem('octo.pageSize'));
  let size = Number.isInteger(stored) && stored >= 2 && stored <= PAGE_SIZE ? stored : PAGE_SIZE;
  const phone = phoneScreen.matches;
  return Math.min(size, stage ? (phone ? PHONE.stripSize : STRIP_SIZE) : phone ? PHONE.pageSize : PAGE_SIZE);
}

/**
 * The stage (one tile large, the others in a strip: see layout.js for which), or else an adaptive
 * grid of 16:9 tiles: the column count that gives the largest tiles in the space there is, so a
 * phone in portrait stacks them instead of cutting them into tall strips.
 */
function layoutGrid() {
  const pinnedKey = [...tiles].find(([, el]) => el === view.pinned)?.[0] ?? null;
  if (!pinnedKey) view.pinned = null;
  // Our own tile, hidden by choice, still shows while it is the only one.
  const hidden = view.hideSelf && tiles.size > 1 ? 'self/camera' : null;
  const keys = [...tiles.keys()].filter((k) => k !== hidden);
  const stage = stageTile(keys, { pinned: pinnedKey, speakerView: view.speakerView, speaker: view.speaker });
  ui.grid.classList.toggle('stage', stage !== null);
  ui.grid.classList.toggle('no-mirror', !view.mirror);
  // Pages: of the grid, or of the strip beside the stage. Tiles off the page are hidden, and so
  // (adaptive.js) their consumers are paused at the server.
  const speakerKey = view.speaker ? `${view.speaker}/camera` : null;
  const paged = paginate(keys.filter((k) => k !== stage), { pageSize: pageSize(stage !== null), page: view.page, keep: [speakerKey, 'self/camera'] });
  view.page = paged.page;
  const on = new Set([...paged.shown, stage]);
  ui.pager.hidden = paged.pages < 2;
  ui.pageLabel.textContent = `${paged.page + 1} / ${paged.pages}`;
  ui.pagePrev.disabled = paged.page === 0;
  ui.pageNext.disabled = paged.page === paged.pages - 1;
  for (const [key, el] of tiles) {
    el.classList.toggle('off-page', !on.has(key));
    el.classList.toggle('main', key === stage);
    const pin = el.querySelector('.pin');
    pin.setAttribute('aria-pressed', String(el === view.pinned));
    pin.textContent = el === view.pinned ? 'Unpin' : 'Pin';
  }
  if (stage !== null) {
    // At least four places in the strip, so that two people do not get two huge strip tiles.
    ui.grid.style.setProperty('--strip-n', String(Math.max(paged.shown.length, 4)));
    return;
  }
  const n = Math.max(paged.shown.length, 1);
  const style = getComputedStyle(ui.grid);
  const gap = parseFloat(style.columnGap) || 0;
  const width = ui.grid.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const height = ui.grid.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
  const best = bestGrid(n, width, height, gap, phoneScreen.matches ? PHONE.maxCols : n);
  ui.grid.style.setProperty('--cols', String(best.cols));
  ui.grid.style.setProperty('--tile-w', best.w > 0 ? `${Math.floor(best.w)}px` : '1fr');
}
new ResizeObserver(layoutGrid).observe(ui.grid);

/** One status line under the room name; `kind` is `info`, `ok` (good news), `warn` or `error`. */
function showBanner(text, kind = 'info') {
  // With the server shutting down, that notice is what stays when nothing else is to be said.
  if (!text && draining) return showDraining();
  ui.banner.textContent = text;
  ui.banner.dataset.kind = kind;
  ui.banner.hidden = !text;
}

function showDraining() {
  const left = Math.max(0, Math.round((draining.until - Date.now()) / 1000));
  const when = left >= 120 ? `in about ${Math.round(left / 60)} minutes` : left > 0 ? `in ${left} s` : 'now';
  ui.banner.textContent = `The server is shutting down for maintenance: this call ends ${when}. You will be reconnected when it is back.`;
  ui.banner.dataset.kind = 'warn';
  ui.banner.hidden = false;
}

/**
 * What the person should know about the room itself: that nobody else is here (a mistyped link
 * opens an empty room), or that someone with their name is (themselves, in another tab or device).
 */
function updateNotice() {
  const others = [...tiles.values()].filter((el) => el.dataset.peerId !== 'self' && el.dataset.kind === 'camera');
  const me = (call.displayName ?? '').trim().toLowerCase();
  let text = '';
  if (ui.callView.hidden || !call.peerId) text = '';
  else if (others.length === 0) {
    text = `You are the first one here. If you expected others, check the room name (“${call.roomId}”) — or invite them with the link: ${location.origin}/?room=${encodeURIComponent(call.roomId)}`;
  } else if (me && others.some((el) => el.dataset.state !== 'reconnecting' && (el.dataset.name ?? '').trim().toLowerCase() === me)) {
    text = `Someone named “${call.displayName}” is already in this call — if that is you in another tab or device, leave there, or you will hear yourself.`;
  }
  ui.notice.textContent = text;
  ui.notice.hidden = !text;
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
  ui.handBtn.textContent = state.hand ? 'Lower hand' : 'Raise hand';
  ui.handBtn.setAttribute('aria-pressed', String(state.hand));
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

ui.handBtn.addEventListener('click', async () => {
  state.hand = !state.hand;
  updateControls();
  try {
    await call.setHand(state.hand);
  } catch (err) {
    state.hand = !state.hand;
    updateControls();
    reportWarning(err);
  }
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
  // Leaving ends the camera and microphone (and their light); Join turns them on again.
  stopPreview();
  ui.previewNote.textContent = 'Camera and microphone are off. They turn on again when you join.';
  ui.previewNote.dataset.kind = 'info';
});

function reportWarning(err) {
  console.warn(err);
  showBanner(callErrorMessage(err, ui.room.value), 'error');
  setTimeout(() => showBanner(''), 5000);
}

// ---- losing and finding the others ---------------------------------------------------------------

/** Keeps what a tile shows now as a still picture (its track is about to end). */
function freeze(el) {
  const video = el.querySelector('video');
  el.querySelector('canvas.frozen')?.remove();
  if (el.dataset.cam !== 'on' || !video.videoWidth) return;
  const canvas = document.createElement('canvas');
  canvas.className = 'frozen';
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  video.after(canvas);
}

function unfreeze(el) {
  el.querySelector('canvas.frozen')?.remove();
}

/** The session is gone: every other tile stays, frozen and marked, until its peer is back. */
function markStale() {
  clearTimeout(staleTimer);
  for (const el of tiles.values()) {
    if (el.dataset.peerId === 'self' || el.dataset.state === 'reconnecting') continue;
    freeze(el);
    el.dataset.state = 'reconnecting';
    el.dataset.conn = 'lost';
    el.classList.remove('speaking');
  }
  updateNotice();
}

/**
 * A peer of the new session takes over the stale tiles of the one it most likely is: the same peer
 * id (the socket survived, as when a worker died), else the same name (a restarted server gives
 * everyone a new id). Whether it was one coming back.
 */
function claimStale(peerId, displayName) {
  const same = tiles.get(`${peerId}/camera`);
  if (same) {
    // The same peer id (the socket survived): its own tile is back. A screen tile stays marked
    // until its track comes back too.
    delete same.dataset.state;
    delete same.dataset.conn;
    return true;
  }
  const stale = [...tiles.values()].filter((el) => el.dataset.state === 'reconnecting' && el.dataset.kind === 'camera');
  const old = stale.find((el) => el.dataset.peerId === peerId) ?? stale.find((el) => el.dataset.name === displayName);
  if (!old) return false;
  const from = old.dataset.peerId;
  for (const kind of ['camera', 'screen']) {
    const el = tiles.get(`${from}/${kind}`);
    if (!el) continue;
    tiles.delete(`${from}/${kind}`);
    el.dataset.peerId = peerId;
    tiles.set(`${peerId}/${kind}`, el);
  }
  delete old.dataset.state;
  delete old.dataset.conn;
  return true;
}

/** After we are back: the peers that did not come back within the grace are gone. */
function dropStaleLater() {
  clearTimeout(staleTimer);
  staleTimer = setTimeout(() => {
    for (const [key, el] of [...tiles]) {
      const frozen = !!el.querySelector('canvas.frozen');
      if (el.dataset.state === 'reconnecting' || (frozen && el.dataset.kind === 'screen')) {
        adaptive.unwatch(el.querySelector('video'));
        el.remove();
        tiles.delete(key);
      } else if (frozen) {
        // Back, but without video: no still picture of how it was.
        unfreeze(el);
        el.dataset.cam = 'off';
      }
    }
    layoutGrid();
    relabel();
    updateNotice();
  }, STALE_GRACE_MS);
}

// ---- call events ---------------------------------------------------------------------------------

call.on('joined', ({ peers }) => {
  // Others are announced one by one (peerJoined); an empty room has nobody to announce.
  if (!peers.length) updateNotice();
});

// Join and leave toasts are for people arriving and going during the call, not for those already
// here when we joined, nor for ones coming back after a reconnect.
let alreadyHere = new Set();
call.on('joined', ({ peers }) => (alreadyHere = new Set(peers.map((p) => p.peerId))));

call.on('peerJoined', ({ peerId, displayName }) => {
  const back = claimStale(peerId, displayName);
  setTileName(tile(peerId, 'camera', displayName), displayName);
  if (!back && !alreadyHere.has(peerId)) toast(`${displayName || 'Someone'} joined`);
  updateNotice();
});

call.on('peerLeft', ({ peerId }) => {
  const name = tiles.get(`${peerId}/camera`)?.dataset.name;
  if (name !== undefined) toast(`${name || 'Someone'} left`);
  hands.delete(peerId);
  removeTile(peerId, 'camera');
  removeTile(peerId, 'screen');
  updateNotice();
});

call.on('sessionLost', () => {
  // The others' hands come back with their peers (the join snapshot names them); ours is raised
  // again by the call itself.
  for (const id of [...hands.keys()]) if (id !== 'self') hands.delete(id);
  markStale();
});

// ---- people and hands ----------------------------------------------------------------------------

const hands = new Map(); // peerId ('self' for ours) → when it went up (server ms)
const peoplePanel = setupPeoplePanel({
  panel: $('people'), list: $('people-list'), button: $('people-btn'), count: $('people-count'), close: $('people-close'),
});
call.on('peerHand', ({ peerId, raisedAt }) => {
  if (raisedAt === null) hands.delete(peerId);
  else hands.set(peerId, raisedAt);
  refreshPeople();
});
call.on('ownHand', ({ raisedAt }) => {
  if (raisedAt === null) hands.delete('self');
  else hands.set('self', raisedAt);
  refreshPeople();
});

/** The list and the tiles' hands, from the camera tiles (one per person) and the hands. */
function refreshPeople() {
  const cameras = [...tiles.values()].filter((el) => el.dataset.kind === 'camera');
  const here = new Set(cameras.map((el) => el.dataset.peerId));
  const places = handPlaces(new Map([...hands].filter(([id]) => here.has(id))));
  const people = cameras.map((el) => ({
    peerId: el.dataset.peerId,
    name: el.querySelector('.name').textContent.replace(/ \(you\)$/, ''),
    self: el.dataset.peerId === 'self',
    mic: el.dataset.mic,
    cam: el.dataset.cam,
    presenting: tiles.has(`${el.dataset.peerId}/screen`),
  }));
  for (const el of cameras) {
    const place = places.get(el.dataset.peerId);
    if (place === undefined) delete el.dataset.hand;
    else el.dataset.hand = String(place);
    // Written only when it changes: the grid's observer sees this write, and an unchanged one
    // rewritten would call this again without end.
    const badge = el.querySelector('.hand');
    const text = place === undefined ? '' : `✋${place}`;
    if (badge.textContent !== text) badge.textContent = text;
  }
  peoplePanel.render(peopleRows(people, places));
}

// Whatever changes a tile (a name, a mute, a tile coming or going) changes the list: one observer
// instead of a call in every place that does it; batched to one refresh per task (a task, not a
// microtask: whatever it writes in the grid can never starve the page).
let refreshQueued = false;
new MutationObserver(() => {
  if (refreshQueued) return;
  refreshQueued = true;
  setTimeout(() => {
    refreshQueued = false;
    refreshPeople();
  }, 0);
}).observe(ui.grid, { childList: true, subtree: true, attributes: true, attributeFilter: ['data-mic', 'data-cam', 'data-name', 'data-peer-id'] });

/** A short note at the top right that goes by itself (someone joined or left). */
function toast(text) {
  const el = document.createElement('div');
  el.className = 'toast';
  el.textContent = text;
  ui.toasts.append(el);
  while (ui.toasts.children.length > 4) ui.toasts.firstChild.remove();
  setTimeout(() => el.remove(), 4000);
}

const adaptive = setupAdaptiveStream(call);

call.on('track', ({ peerId, source, kind, track, paused, consumerId }) => {
  const name = call.peers.get(peerId) ?? '';
  const el = tile(peerId, source === 'screen' ? 'screen' : 'camera', name);
  delete el.dataset.state;
  if (kind === 'audio') {
    const audio = el.querySelector('audio');
    audio.srcObject = new MediaStream([track]);
    devices.applySink(audio);
    audio.play().catch(() => showBanner('Click anywhere to hear the others.', 'info'));
    el.dataset.mic = paused ? 'off' : 'on';
  } else {
    const video = el.querySelector('video');
    video.srcObject = new MediaStream([track]);
    adaptive.watch(video, consumerId);
    el.dataset.cam = paused ? 'off' : 'on';
    unfreeze(el);
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
  showSpeaker(peerId === call.peerId ? 'self' : peerId);
});

/**
 * Speaker view follows the active speaker, but a new one takes the stage only once the last has
 * had it for SPEAKER_HOLD_MS: two people talking over each other must not flip the stage (and its
 * layer requests) every half second.
 */
const SPEAKER_HOLD_MS = 2000;
let speakerSince = 0;
let speakerTimer = null;
function showSpeaker(peerId) {
  clearTimeout(speakerTimer);
  if (peerId === null || peerId === view.speaker) return;
  const wait = speakerSince + SPEAKER_HOLD_MS - performance.now();
  speakerTimer = setTimeout(() => {
    view.speaker = peerId;
    speakerSince = performance.now();
    // The stage in speaker view, and the first page in any view, follow the speaker.
    layoutGrid();
  }, Math.max(0, wait));
}

ui.pagePrev.addEventListener('click', () => {
  view.page--;
  layoutGrid();
});
ui.pageNext.addEventListener('click', () => {
  view.page++;
  layoutGrid();
});
for (const [box, key, field] of [[ui.showSelf, 'octo.hideSelf', 'hideSelf'], [ui.mirrorSelf, 'octo.mirrorSelf', 'mirror']]) {
  box.checked = field === 'hideSelf' ? !view.hideSelf : view.mirror;
  box.addEventListener('change', () => {
    view[field] = field === 'hideSelf' ? !box.checked : box.checked;
    localStorage.setItem(key, String(view[field]));
    layoutGrid();
  });
}

ui.layoutBtn.addEventListener('click', () => {
  view.speakerView = !view.speakerView;
  ui.layoutBtn.setAttribute('aria-pressed', String(view.speakerView));
  layoutGrid();
});

// A phone's "More" (style.css): opens the controls it hides; one of them used closes it again, so
// that the grid gets its rows back.
const controls = $('controls');
const moreBtn = $('more-btn');
function setMoreOpen(open) {
  controls.classList.toggle('more-open', open);
  moreBtn.setAttribute('aria-expanded', String(open));
  moreBtn.textContent = open ? 'Less' : 'More';
}
moreBtn.addEventListener('click', () => setMoreOpen(!controls.classList.contains('more-open')));
controls.addEventListener('click', (event) => {
  if (event.target.closest?.('.more button, button.more')) setMoreOpen(false);
});

// Chat and reactions: DataChannel messages from the others, sender named by signaling.
const chat = setupChat(call);
call.on('chatHistory', (lines) => chat.history(lines));
const reactions = setupReactions(call, (peerId) => tiles.get(`${peerId}/camera`), reportWarning);
const isMac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
setupShortcuts(
  document,
  { mic: ui.micBtn, cam: ui.camBtn, chat: $('chat-btn'), hand: ui.handBtn, people: $('people-btn') },
  () => !ui.callView.hidden,
  isMac,
);
ui.mutedHint.textContent = `You are muted — unmute (${shortcutLabel('mic', isMac)}) to be heard.`;
call.on('data', ({ peerId, data }) => {
  const msg = decode(data);
  if (msg?.type === 'reaction') reactions.show(peerId, msg.emoji);
  else if (msg) chat.receive(peerId, msg);
});

// Trouble we are working on is a warning (amber); good news is `ok` (green), never error red.
call.on('connection', (s) => {
  if (ui.callView.hidden) return;
  if (s === 'down') showBanner('Connection to the server lost — reconnecting…', 'warn');
  else if (!call.rejoining) showBanner('');
});
call.on('rejoining', (why) =>
  showBanner(why === 'worker_died' ? 'The media server for this room restarted — rejoining…' : 'Reconnected — rejoining the call…', 'warn'),
);
call.on('rejoined', (why) => {
  // Back after a reconnect: whichever server took us is not the one that was shutting down.
  if (why === 'reconnected' && draining) {
    draining = null;
    clearInterval(drainTimer);
  }
  showBanner('Back in the call.', 'ok');
  dropStaleLater();
  updateNotice();
  setTimeout(() => {
    if (ui.banner.textContent === 'Back in the call.') showBanner('');
  }, 3000);
});
call.on('draining', ({ remainingMs }) => {
  if (ui.callView.hidden) return;
  draining = { until: Date.now() + (remainingMs ?? 0) };
  clearInterval(drainTimer);
  // The countdown ticks only while nothing more urgent is shown.
  drainTimer = setInterval(() => {
    if (ui.banner.dataset.kind === 'warn' && ui.banner.textContent.startsWith('The server is shutting down')) showDraining();
  }, 1000);
  showDraining();
});
// Transports that never connected, by direction: what the person is told names them and the cause.
const blocked = new Set();
call.on('joined', () => blocked.clear());
const MEDIA_INTERRUPTED = 'Media connection interrupted — reconnecting…';
call.on('transportState', ({ state: s }) => {
  // While the session is being replaced its old transports failing says nothing new.
  if (!call.peerId || call.rejoining || blocked.size > 0) return;
  // A broken path is restarted (ICE restart) before anything else: amber while that runs.
  if (s === 'disconnected' || s === 'failed') showBanner(MEDIA_INTERRUPTED, 'warn');
  else if (s === 'connected' && ui.banner.textContent === MEDIA_INTERRUPTED) {
    showBanner('Media connection back.', 'ok');
    setTimeout(() => {
      if (ui.banner.textContent === 'Media connection back.') showBanner('');
    }, 3000);
  }
});
call.on('mediaBlocked', ({ direction, blocked: isBlocked, turn, tcp }) => {
  if (isBlocked) blocked.add(direction);
  else blocked.delete(direction);
  if (blocked.size === 0) {
    if (ui.banner.textContent.startsWith('Media cannot get through')) showBanner('');
    return;
  }
  const what = [...blocked].map((d) => (d === 'send' ? 'sending' : 'receiving')).join(' and ');
  showBanner(
    turn
      ? `Media cannot get through (${what}), not even through the TURN relay: this network blocks it. Try another network.`
      : `Media cannot get through (${what}): this network seems to block ${tcp ? 'UDP and TCP' : 'UDP'} to the server's media port, and the server offers no TURN relay. Try another network, or ask whoever runs it to set up TURN.`,
    'error',
  );
});
call.on('warning', (e) => {
  if (e?.code === 'ice_failed') showBanner('Media connection lost — check your network or firewall. Rejoining…', 'error');
});
call.on('warning', (e) => console.warn('octo:', e));

document.addEventListener('click', () => {
  for (const a of document.querySelectorAll('audio')) if (a.paused && a.srcObject) a.play().catch(() => {});
});

// ---- connection indicators -----------------------------------------------------------------------

// Every 2 s: a peer's tile is `good` while its unpaused streams deliver bytes with little loss,
// `poor` with loss or jitter, `lost` when nothing arrives although something should. A stream paused
// by its producer or by us (its tile is off screen) is not expected to deliver. Samples closer than a
// second apart say nothing: on a busy page two ticks can run back to back and the browser hands both
// the same cached report, which would read as "no bytes" — so such a tick keeps the previous verdict.
const lastBytes = new Map();
let sampling = false;
setInterval(async () => {
  if (ui.callView.hidden || sampling) return;
  sampling = true;
  try {
    const { consumers, rtt } = await call.receiveStats();
    sampleConnections(consumers, rtt, performance.now());
  } finally {
    sampling = false;
  }
}, 2000);

function sampleConnections(consumerStats, rtt, now) {
  const byPeer = new Map();
  for (const s of consumerStats) {
    const prev = lastBytes.get(s.consumerId);
    if (prev && now - prev.at < 1000) continue;
    lastBytes.set(s.consumerId, { at: now, bytes: s.bytesReceived, packets: s.packetsReceived, lost: s.packetsLost });
    const before = prev ?? { bytes: 0, packets: 0, lost: 0, at: now };
    const p = byPeer.get(s.peerId) ?? { expected: 0, flowing: 0, packets: 0, lost: 0, jitter: 0, bytes: 0, seconds: 0, score: null, rtt };
    p.bytes += s.bytesReceived - before.bytes;
    p.seconds = Math.max(p.seconds, (now - before.at) / 1000);
    if (s.score !== null && !s.paused && !s.hidden) p.score = Math.min(p.score ?? 10, s.score);
    if (!s.paused && !s.hidden) {
      p.expected++;
      if (s.bytesReceived > before.bytes) p.flowing++;
    }
    p.packets += s.packetsReceived - before.packets;
    p.lost += Math.max(0, s.packetsLost - before.lost);
    p.jitter = Math.max(p.jitter, s.jitter);
    byPeer.set(s.peerId, p);
  }
  for (const [peerId, p] of byPeer) {
    const el = tiles.get(`${peerId}/camera`);
    if (!el) continue;
    const v = connectionVerdict(p);
    el.dataset.conn = v.conn;
    el.dataset.bars = String(v.bars);
    const conn = el.querySelector('.conn');
    conn.title = v.text;
    conn.setAttribute('aria-label', v.text);
  }
}

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
      cam: el.dataset.cam, conn: el.dataset.conn ?? null, bars: el.dataset.bars ? Number(el.dataset.bars) : null,
      connText: el.querySelector('.conn').title, speaking: el.classList.contains('speaking'),
      label: el.querySelector('.name').textContent, state: el.dataset.state ?? 'live',
      frozen: !!el.querySelector('canvas.frozen'), hand: el.dataset.hand ? Number(el.dataset.hand) : null,
      main: el.classList.contains('main'), pinned: el === view.pinned,
      box: (({ x, y, width, height }) => ({ x, y, width, height }))(el.getBoundingClientRect()),
    })),
  /** The participant list as shown, in order: `{peerId, name, mic, cam, hand, presenting}`. */
  people: () =>
    [...document.querySelectorAll('#people-list li')].map((li) => ({
      peerId: li.dataset.peerId, name: li.querySelector('.name').textContent, mic: li.dataset.mic, cam: li.dataset.cam,
      hand: li.dataset.hand ? Number(li.dataset.hand) : null, presenting: li.dataset.presenting === 'true',
    })),
  /** Files received over the chat channel: `{peerId, name, size, sha256}` (hex). */
  files: () => chat.files(),
  /** The chat log as shown: `{peerId, from, text, earlier}` (earlier: from before joining). */
  chatLines: () => chat.lines(),
  peerId: () => call.peerId,
  socket: () => call.socket,
  /** Lays the tiles out again (after changing `localStorage['octo.pageSize']`). */
  relayout: () => layoutGrid(),
  /** The speaker the stage follows in speaker view (held a moment; `self` for us), or null. */
  speaker: () => view.speaker,
};

let previewReady = Promise.resolve();
updateLobbyToggles();
// A link naming a room that cannot exist is explained before anyone types a thing.
if (params.has('room')) ui.lobbyError.textContent = roomProblem(ui.room.value.trim()) ?? '';
if (navigator.mediaDevices?.getUserMedia) previewReady = startPreview();
else ui.previewNote.textContent = 'This browser cannot use a camera here (a secure origin — https or localhost — is required).';
