// People in a call (issue #19): the participant list with everyone's states, raised hands in the
// order they went up (on the tiles and in the list, on every page, and for someone who joins
// later), join and leave toasts, the shortcuts for hand and list, the layouts (a pinned tile, a
// shared screen and speaker view on the stage, full screen), and the microphone level meter with
// the "you are muted" hint. Four people in one room through the real UI, in Debian's headless
// Chromium against the real octo. Tests run in order and share the call.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { handPlaces, peopleRows, describeRow } from '../../client-web/src/people.js';
import { levelOf, peakLevel, talking } from '../../client-web/src/meter.js';
import { shortcutFor } from '../../client-web/src/shortcuts.js';
import { paginate, stageTile } from '../../client-web/src/layout.js';
import { connectionVerdict } from '../../client-web/src/quality.js';
import path from 'node:path';
import { ARTIFACTS, CHROMIUM_ARGS, person, closeEveryone, joinThroughUi, joinFromLobby, leaveCall, tileOf, until, sleep, flow, liveTracks } from './lib.mjs';

const room = `people-${Date.now()}`;
const DESK = { viewport: { width: 1280, height: 800 } };
// Ann's Chromium has three fake cameras (and, as every fake setup, three microphones and speakers).
// Chromium gives its fake cameras pixel formats in turn — I420, Y16, MJPEG — and a Y16 (depth)
// camera's frames are never encoded: the test switches to the third, `fake_device_2`.
const THREE_CAMERAS = CHROMIUM_ARGS.map((a) => (a === '--use-fake-device-for-media-stream' ? `${a}=device-count=3` : a));
let everyone, ann, bob, cy, dee;

// ---- the pure parts, without a page ----------------------------------------------------------------

test('hands are placed in the order they went up, and the list puts them first', () => {
  const places = handPlaces(new Map([['c', 30], ['a', 10], ['b', 10]]));
  assert.deepEqual([...places], [['a', 1], ['b', 2], ['c', 3]], 'ties broken by peer id');
  const rows = peopleRows(
    [
      { peerId: 'z', name: 'zoe', self: false, mic: 'on', cam: 'on', presenting: false },
      { peerId: 'self', name: 'Me', self: true, mic: 'off', cam: 'on', presenting: false },
      { peerId: 'b', name: 'Bea', self: false, mic: 'on', cam: 'off', presenting: true },
      { peerId: 'c', name: 'Cal', self: false, mic: 'on', cam: 'on', presenting: false },
      { peerId: 'a', name: 'al', self: false, mic: 'on', cam: 'on', presenting: false },
    ],
    new Map([['c', 1], ['z', 2]]),
  );
  assert.deepEqual(rows.map((r) => r.peerId), ['c', 'z', 'self', 'a', 'b']);
  assert.equal(describeRow(rows[1]), 'zoe, hand raised, 2nd, microphone on, camera on');
  assert.equal(describeRow(rows[4]), 'Bea, presenting, microphone on, camera off');
  assert.equal(describeRow(rows[2]), 'Me (you), muted, camera on');
});

test('the level meter reads a short loud stretch and ignores silence', () => {
  const silence = new Float32Array(4800);
  assert.equal(levelOf(silence), 0);
  const beep = new Float32Array(4800);
  for (let i = 4000; i < 4480; i++) beep[i] = Math.sin(i / 3) * 0.5; // 10 ms at -9 dBFS
  assert.ok(levelOf(beep) < 0.7, 'averaged over the tick the beep is diluted');
  assert.ok(peakLevel(beep, 4800, 480) > 0.8, `its loudest 10 ms are not: ${peakLevel(beep, 4800, 480)}`);
  assert.equal(talking([0.9, 0, 0, 0, 0, 0, 0, 0, 0, 0]), false, 'one click is not talking');
  assert.equal(talking([0.9, 0, 0, 0, 0, 0.8, 0, 0, 0, 0]), true);
});

test('Ctrl+Alt+H is the hand and Ctrl+Alt+P the list (⌘⌥ on a Mac)', () => {
  const key = (code, mods) => ({ code, ctrlKey: false, metaKey: false, altKey: false, shiftKey: false, repeat: false, ...mods });
  assert.equal(shortcutFor(key('KeyH', { ctrlKey: true, altKey: true }), false), 'hand');
  assert.equal(shortcutFor(key('KeyP', { metaKey: true, altKey: true }), true), 'people');
  assert.equal(shortcutFor(key('KeyH', { ctrlKey: true }), false), null, 'Ctrl+H stays the browser\'s');
});

test('the stage goes to the pin, else the newest screen of someone else, else in speaker view the speaker', () => {
  const keys = ['self/camera', 'a/camera', 'b/camera', 'b/screen', 'self/screen'];
  assert.equal(stageTile(keys), 'b/screen');
  assert.equal(stageTile(keys, { pinned: 'a/camera' }), 'a/camera');
  assert.equal(stageTile(keys, { pinned: 'gone/camera' }), 'b/screen');
  const cams = ['self/camera', 'a/camera', 'b/camera', 'self/screen'];
  assert.equal(stageTile(cams), null, 'our own screen is no reason for a stage');
  assert.equal(stageTile(cams, { speakerView: true, speaker: 'b' }), 'b/camera');
  assert.equal(stageTile(cams, { speakerView: true, speaker: 'self' }), 'a/camera', 'never ourselves');
  assert.equal(stageTile(['self/camera'], { speakerView: true }), null, 'alone: the grid');
});

test('pages keep the speaker and ourselves on the first one, the rest in grid order', () => {
  const keys = ['a', 'b', 'self', 'c', 'd', 'e'];
  assert.deepEqual(paginate(keys, { pageSize: 10 }), { pages: 1, page: 0, shown: keys });
  assert.deepEqual(paginate(keys, { pageSize: 2, keep: ['d', 'self'] }), { pages: 3, page: 0, shown: ['self', 'd'] });
  assert.deepEqual(paginate(keys, { pageSize: 2, page: 1, keep: ['d', 'self'] }).shown, ['a', 'b']);
  assert.deepEqual(paginate(keys, { pageSize: 4, page: 9, keep: ['e'] }), { pages: 2, page: 1, shown: ['c', 'd'] });
});

test('the bars: three on a clean path, fewer with loss or a low server score, none without media', () => {
  const clean = { expected: 2, flowing: 2, packets: 500, lost: 0, jitter: 0.005, bytes: 250000, seconds: 2, score: 10, rtt: 0.004 };
  const v = connectionVerdict(clean);
  assert.deepEqual([v.conn, v.bars], ['good', 3]);
  assert.equal(v.text, 'Connection: good — loss 0.0 %, 1000 kbit/s, RTT 4 ms, server score 10/10');
  assert.equal(connectionVerdict({ ...clean, lost: 15 }).bars, 2, '3 % loss');
  assert.deepEqual([connectionVerdict({ ...clean, lost: 50 }).conn, connectionVerdict({ ...clean, lost: 50 }).bars], ['poor', 1]);
  assert.equal(connectionVerdict({ ...clean, score: 4 }).bars, 1);
  assert.deepEqual([connectionVerdict({ ...clean, flowing: 0 }).conn, connectionVerdict({ ...clean, flowing: 0 }).bars], ['lost', 0]);
  assert.ok(!connectionVerdict({ ...clean, score: null, rtt: null }).text.includes('score'));
});

// ---- four people ---------------------------------------------------------------------------------

/** `p`'s participant list as shown. */
const list = (p) => p.page.evaluate(() => window.octo.people());

/** Waits until `check(list)` holds on `p`'s list; fails with the list it last saw. */
async function listShows(p, what, check, ms = 15000) {
  let last;
  const ok = await until(ms, async () => check((last = await list(p))));
  assert.ok(ok, `${p.label}'s list never showed ${what}: ${JSON.stringify(last)}`);
}

/** Saves what `p` shows as `name`.png in the artifacts (copied to docs/ for the README). */
const snap = (p, name) => (ARTIFACTS ? p.page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) }) : null);

/** The toasts `p` shows now. */
const toasts = (p) => p.page.$$eval('#toasts .toast', (els) => els.map((e) => e.textContent));

before(async () => {
  everyone = [ann, bob, cy, dee] = await Promise.all(
    ['ann', 'bob', 'cy', 'dee'].map((n) => person(n, n === 'ann' ? { ...DESK, args: THREE_CAMERAS } : DESK)),
  );
  for (const p of everyone) p.peerId = await joinThroughUi(p, room, p.label[0].toUpperCase() + p.label.slice(1));
});
after(closeEveryone);

test('the list names all four on every page, you first, with their microphone and camera', async () => {
  for (const p of everyone) {
    await listShows(p, 'all four', (l) => l.length === 4);
    const l = await list(p);
    assert.equal(l[0].peerId, 'self', `${p.label}: you first without hands`);
    assert.equal(l[0].name, `${p.label[0].toUpperCase()}${p.label.slice(1)} (you)`);
    assert.deepEqual(l.slice(1).map((r) => r.name), ['Ann', 'Bob', 'Cy', 'Dee'].filter((n) => n.toLowerCase() !== p.label));
    assert.equal(await p.page.textContent('#people-count'), '4');
  }
  // The list opens from its button and from Ctrl+Alt+P, and closes from either.
  assert.equal(await ann.page.isHidden('#people'), true);
  await ann.page.click('#people-btn');
  assert.equal(await ann.page.isVisible('#people'), true);
  await ann.page.keyboard.press('Control+Alt+KeyP');
  assert.equal(await ann.page.isHidden('#people'), true);
  await ann.page.keyboard.press('Control+Alt+KeyP');
  assert.equal(await ann.page.getAttribute('#people-btn', 'aria-expanded'), 'true');
  // Bob mutes with Ctrl+D: every other list and tile says so.
  await bob.page.keyboard.press('Control+KeyD');
  // (A row says "on" once its stream is consumed: the list can name someone before that.)
  for (const p of [ann, cy, dee]) {
    await listShows(p, 'Bob muted and the others on', (l) =>
      l.find((r) => r.peerId === bob.peerId)?.mic === 'off' && l.filter((r) => r.peerId !== bob.peerId).every((r) => r.mic === 'on' && r.cam === 'on'));
    assert.equal((await tileOf(p, bob.peerId)).mic, 'off');
  }
  await bob.page.keyboard.press('Control+KeyD');
  await listShows(ann, 'Bob unmuted', (l) => l.find((r) => r.peerId === bob.peerId)?.mic === 'on');
});

test('raised hands show on every tile and list in the order they went up, and lowering reorders them', async () => {
  await cy.page.click('#hand-btn');
  // Ann raises hers once Cy's is up at the server (her page shows it): the order is then certain.
  await listShows(ann, "Cy's hand", (l) => l.some((r) => r.peerId === cy.peerId && r.hand === 1));
  await ann.page.keyboard.press('Control+Alt+KeyH');
  assert.equal(await ann.page.getAttribute('#hand-btn', 'aria-pressed'), 'true');
  assert.equal(await ann.page.textContent('#hand-btn'), 'Lower hand');
  const idOf = (p, of) => (p === of ? 'self' : of.peerId);
  for (const p of everyone) {
    await listShows(p, 'Cy 1, Ann 2 at the top', (l) => l[0].peerId === idOf(p, cy) && l[0].hand === 1 && l[1].peerId === idOf(p, ann) && l[1].hand === 2);
    assert.deepEqual((await list(p)).slice(2).map((r) => r.hand), [null, null]);
    const shown = await p.page.evaluate(() => window.octo.tiles().filter((t) => t.kind === 'camera').map((t) => [t.peerId, t.hand]));
    assert.deepEqual(Object.fromEntries(shown), { [idOf(p, ann)]: 2, [idOf(p, bob)]: null, [idOf(p, cy)]: 1, [idOf(p, dee)]: null }, p.label);
  }
  // Dee leaves and comes back: her page learns both hands from the room, in order.
  await leaveCall(dee);
  for (const p of [ann, bob, cy]) await until(5000, async () => (await toasts(p)).includes('Dee left'));
  assert.ok((await toasts(bob)).includes('Dee left'), `Bob saw ${JSON.stringify(await toasts(bob))}`);
  dee.peerId = await joinFromLobby(dee);
  await listShows(dee, 'both hands after rejoining', (l) => l.length === 4 && l[0].peerId === cy.peerId && l[0].hand === 1 && l[1].peerId === ann.peerId && l[1].hand === 2);
  assert.equal(await dee.page.getAttribute('#hand-btn', 'aria-pressed'), 'false', 'a hand is down after a leave');
  assert.ok(await until(5000, async () => (await toasts(bob)).includes('Dee joined')), 'Bob was not told Dee joined');
  assert.deepEqual(await toasts(dee), [], 'the people already there are not announced to the one joining');
  await sleep(4000); // the toasts go by themselves, and the picture is the list
  await snap(ann, 'people-hands');
  // Cy lowers hers: Ann is first everywhere.
  await cy.page.click('#hand-btn');
  for (const p of everyone) {
    await listShows(p, 'Ann alone with a hand', (l) => l[0].peerId === idOf(p, ann) && l[0].hand === 1 && l.filter((r) => r.hand !== null).length === 1);
    assert.equal((await tileOf(p, idOf(p, cy))).hand, null);
  }
  await ann.page.click('#hand-btn');
  for (const p of everyone) await listShows(p, 'no hands', (l) => l.every((r) => r.hand === null));
});

/** `p`'s camera and screen tiles as shown, by key (`peerId/kind`). */
async function shownTiles(p) {
  const all = await p.page.evaluate(() => window.octo.tiles());
  return Object.fromEntries(all.map((t) => [`${t.peerId}/${t.kind}`, t]));
}
const isStage = (p) => p.page.evaluate(() => document.getElementById('grid').classList.contains('stage'));

/** Asserts `p` shows `key` on the stage: the only main tile, well over twice as wide as any other. */
async function assertOnStage(p, key) {
  // One snapshot for every check: in speaker view the stage follows whoever speaks, so a second
  // look may already show the next speaker there.
  let t;
  const ok = await until(5000, async () => (t = await shownTiles(p))[key]?.main);
  assert.ok(ok, `${p.label}: ${key} is not on the stage: ${JSON.stringify(t)}`);
  assert.ok(await isStage(p));
  assertStageIn(p, t, key);
}

/** Asserts that the snapshot `t` of `p`'s tiles has `key` alone on the stage, well over twice as
 * wide as any other tile. */
function assertStageIn(p, t, key) {
  const others = Object.entries(t).filter(([k]) => k !== key);
  assert.ok(others.every(([, o]) => !o.main), `${p.label}: two tiles on the stage: ${JSON.stringify(t)}`);
  for (const [k, o] of others) assert.ok(t[key].box.width > 2 * o.box.width, `${p.label}: ${key} ${t[key].box.width} px wide, ${k} ${o.box.width} px`);
}

/** Asserts `p` shows the grid: no stage, every tile as wide as the others. */
async function assertGrid(p) {
  const ok = await until(5000, async () => !(await isStage(p)));
  assert.ok(ok, `${p.label} still shows a stage`);
  const widths = Object.values(await shownTiles(p)).map((t) => Math.round(t.box.width));
  assert.ok(Math.max(...widths) - Math.min(...widths) <= 1, `${p.label}: grid tiles of widths ${widths}`);
}

test('a pinned tile takes the stage on that page only, and unpinning brings the grid back', async () => {
  const key = `${bob.peerId}/camera`;
  await ann.page.click(`.tile.camera[data-peer-id="${bob.peerId}"] .pin`);
  await assertOnStage(ann, key);
  assert.equal((await shownTiles(ann))[key].pinned, true);
  assert.equal(await ann.page.getAttribute(`.tile.camera[data-peer-id="${bob.peerId}"] .pin`, 'aria-label'), 'Pin Bob');
  for (const p of [bob, cy, dee]) assert.equal(await isStage(p), false, `${p.label} shows a stage`);
  // The strip and the stage stay inside the grid, nothing off screen.
  const grid = await ann.page.evaluate(() => (({ x, y, width, height }) => ({ x, y, width, height }))(document.getElementById('grid').getBoundingClientRect()));
  for (const t of Object.values(await shownTiles(ann))) {
    assert.ok(t.box.x >= grid.x - 1 && t.box.y >= grid.y - 1 && t.box.x + t.box.width <= grid.x + grid.width + 1 && t.box.y + t.box.height <= grid.y + grid.height + 1, `${JSON.stringify(t.box)} outside ${JSON.stringify(grid)}`);
  }
  await ann.page.click(`.tile.camera[data-peer-id="${bob.peerId}"] .pin`);
  await assertGrid(ann);
});

test('a shared screen takes the stage at the others, a pin overrides it, and the grid is back when it stops', async () => {
  await cy.page.click('#screen-btn');
  const screen = `${cy.peerId}/screen`;
  for (const p of [ann, bob, dee]) await assertOnStage(p, screen);
  assert.equal((await shownTiles(bob))[screen].label, 'Cy — screen');
  await sleep(1500); // a few frames of the shared screen, for the picture
  await snap(bob, 'screen-share-stage');
  // The presenter's own page keeps the grid (its own screen large would be a mirror of a mirror).
  await assertGrid(cy);
  assert.equal((await list(ann)).find((r) => r.peerId === cy.peerId)?.presenting, true, 'Cy is not listed as presenting');
  await ann.page.click(`.tile.camera[data-peer-id="${dee.peerId}"] .pin`);
  await assertOnStage(ann, `${dee.peerId}/camera`);
  await ann.page.click(`.tile.camera[data-peer-id="${dee.peerId}"] .pin`);
  await assertOnStage(ann, screen);
  await cy.page.click('#screen-btn');
  for (const p of [ann, bob, dee]) await assertGrid(p);
});

test('speaker view puts another person on the stage; a double click fills the screen with a tile', async () => {
  await bob.page.click('#layout-btn');
  assert.equal(await bob.page.getAttribute('#layout-btn', 'aria-pressed'), 'true');
  // The stage follows whoever speaks: what it shows is read from one snapshot.
  let shown;
  const ok = await until(5000, async () => Object.entries((shown = await shownTiles(bob))).find(([, t]) => t.main));
  assert.ok(ok, 'speaker view shows nobody on the stage');
  const [key] = ok;
  assert.ok(key.endsWith('/camera') && !key.startsWith('self/'), `speaker view shows ${key}`);
  assert.ok(await isStage(bob));
  assertStageIn(bob, shown, key);
  await bob.page.click('#layout-btn');
  await assertGrid(bob);
  await bob.page.dblclick(`.tile.camera[data-peer-id="${ann.peerId}"]`);
  assert.ok(await until(3000, () => bob.page.evaluate((id) => document.fullscreenElement?.dataset.peerId === id, ann.peerId)), 'no full screen');
  await bob.page.dblclick(`.tile.camera[data-peer-id="${ann.peerId}"]`);
  assert.ok(await until(3000, () => bob.page.evaluate(() => document.fullscreenElement === null)), 'full screen stays');
});

test('switching camera, microphone and speaker mid-call keeps the producers, and the others keep decoding', async () => {
  const sent = () =>
    ann.page.evaluate(() =>
      Object.fromEntries([...window.octo.call.producers].map(([source, p]) => [source, { id: p.id, device: p.track?.getSettings().deviceId }])),
    );
  const before = await sent();
  await ann.page.click('#devices-btn');
  const options = (sel) => ann.page.$$eval(`${sel} option`, (os) => os.map((o) => o.value));
  assert.ok(await until(5000, async () => (await options('#call-camera')).length === 3), `cameras: ${await options('#call-camera')}`);
  const camera = await ann.page.$eval('#call-camera', (s) => [...s.options].find((o) => o.text === 'fake_device_2')?.value);
  assert.ok(camera && camera !== before.webcam.device, `no third camera to switch to (sending ${before.webcam.device})`);
  await ann.page.selectOption('#call-camera', camera);
  const mic = (await options('#call-mic')).find((v) => v !== before.mic.device && v !== 'default');
  await ann.page.selectOption('#call-mic', mic);
  assert.ok(await until(8000, async () => (await sent()).webcam.device === camera && (await sent()).mic.device === mic), `sending ${JSON.stringify(await sent())}`);
  const after = await sent();
  assert.equal(after.webcam.id, before.webcam.id, 'the camera switch made a new producer');
  assert.equal(after.mic.id, before.mic.id, 'the microphone switch made a new producer');
  // The others keep decoding Ann, on the consumers they had.
  for (const p of [bob, cy]) {
    const frames = await until(8000, async () => (await flow(p, ann.peerId, 'video', 1000)) > 0, 0);
    const out = await ann.page.evaluate(async () => [...(await window.octo.call.producers.get('webcam').getStats()).values()].filter((r) => r.type === 'outbound-rtp').map((r) => ({ rid: r.rid, f: r.framesEncoded, b: r.bytesSent, w: r.frameWidth, lim: r.qualityLimitationReason, active: r.active })));
    assert.ok(frames, `${p.label} decodes no frame of Ann after the switch`);
    assert.ok((await flow(p, ann.peerId, 'audio', 1000)) > 0, `${p.label} gets no audio of Ann after the switch`);
  }
  // The devices switched away from are released (one camera and one microphone live).
  assert.deepEqual((await liveTracks(ann.page)).sort(), ['audio', 'video'], 'an old track is still live');
  // The speaker: every <audio> plays on the chosen output.
  const speaker = (await options('#call-speaker')).find((v) => v !== 'default');
  await ann.page.selectOption('#call-speaker', speaker);
  const sinks = await until(3000, async () => {
    const all = await ann.page.$$eval('#grid audio', (as) => as.filter((a) => a.srcObject).map((a) => a.sinkId));
    return all.length === 3 && all.every((s) => s === speaker) && all;
  });
  assert.ok(sinks, `the audio does not play on the chosen speaker: ${await ann.page.$$eval('#grid audio', (as) => JSON.stringify(as.map((a) => [!!a.srcObject, a.sinkId])))}`);
  // Noise suppression off: the microphone is captured again without it, on the same producer.
  await ann.page.uncheck('#noise-suppression');
  const ns = await until(5000, () => ann.page.evaluate(() => window.octo.call.producers.get('mic').track.getSettings().noiseSuppression === false));
  assert.ok(ns, `noise suppression is still on: ${await ann.page.evaluate(() => JSON.stringify(window.octo.call.producers.get('mic').track.getSettings()))}`);
  assert.equal((await sent()).mic.id, before.mic.id);
  await ann.page.click('#devices-close');
});

test('every remote tile shows network bars with the figures behind them', async () => {
  const ok = await until(10000, async () => {
    const remote = Object.values(await shownTiles(ann)).filter((t) => t.kind === 'camera' && t.peerId !== 'self');
    return remote.length === 3 && remote.every((t) => t.bars >= 2 && /kbit\/s/.test(t.connText) && /RTT \d+ ms/.test(t.connText)) && remote;
  });
  assert.ok(ok, `bars: ${JSON.stringify(Object.values(await shownTiles(ann)).map((t) => [t.label, t.bars, t.connText]))}`);
  console.log(`Ann's bars: ${ok.map((t) => `${t.label} ${t.bars} (${t.connText})`).join('; ')}`);
});

test('beyond a page of tiles, a pager shows the rest; tiles off the page are paused at the server', async () => {
  await bob.page.evaluate(() => {
    localStorage.setItem('octo.pageSize', '2');
    window.octo.relayout();
  });
  try {
    assert.equal(await bob.page.isVisible('#pager'), true);
    assert.equal(await bob.page.textContent('#page-label'), '1 / 2');
    const shown = async () => Object.entries(await shownTiles(bob)).filter(([, t]) => t.box.width > 0).map(([k]) => k);
    const first = await shown();
    assert.equal(first.length, 2, `page 1 shows ${first}`);
    assert.ok(first.includes('self/camera'), 'we are not on the first page');
    // The two off the page: their video consumers are paused (`hidden`) at the server. The first
    // page follows the active speaker (held 2 s), so the check is made on one consistent moment.
    const offPaused = await until(8000, async () => {
      const t = await shownTiles(bob);
      const video = (await bob.page.evaluate(() => window.octo.stats())).filter((c) => c.kind === 'video');
      const off = [ann, cy, dee].map((p) => p.peerId).filter((id) => t[`${id}/camera`].box.width === 0);
      return off.length === 2 && off.every((id) => video.find((c) => c.peerId === id)?.hidden === true) && off;
    });
    assert.ok(offPaused, `consumers off the page not paused: ${JSON.stringify(await bob.page.evaluate(() => window.octo.stats()))}`);
    await bob.page.click('#page-next');
    assert.equal(await bob.page.textContent('#page-label'), '2 / 2');
    const second = await shown();
    assert.equal(second.length, 2, `page 2 shows ${second}`);
    assert.ok(!second.includes('self/camera'), 'we are on page 2 too');
    assert.equal(await bob.page.isDisabled('#page-next'), true);
  } finally {
    await bob.page.evaluate(() => {
      localStorage.removeItem('octo.pageSize');
      window.octo.relayout();
    });
  }
  assert.equal(await bob.page.isHidden('#pager'), true);
  await assertGrid(bob);
});

test('the own tile can be hidden and unmirrored, and the choice is kept', async () => {
  await cy.page.click('#devices-btn');
  await cy.page.uncheck('#show-self');
  assert.ok(await until(3000, async () => (await shownTiles(cy))['self/camera'].box.width === 0), 'the own tile still shows');
  assert.equal(Object.values(await shownTiles(cy)).filter((t) => t.box.width > 0).length, 3);
  await cy.page.check('#show-self');
  await cy.page.uncheck('#mirror-self');
  const transform = () => cy.page.$eval('.tile.self.camera video', (v) => getComputedStyle(v).transform);
  assert.equal(await transform(), 'none');
  assert.equal(await cy.page.evaluate(() => localStorage.getItem('octo.mirrorSelf')), 'false');
  await cy.page.check('#mirror-self');
  assert.notEqual(await transform(), 'none');
  await cy.page.click('#devices-close');
});

test('the microphone meter moves with the fake tone, stays still when muted, and the hint says so', async () => {
  const levels = (p, ms) =>
    p.page.evaluate(async (ms) => {
      const own = document.querySelector('.tile.self .level');
      const seen = [];
      const end = performance.now() + ms;
      while (performance.now() < end) {
        seen.push(Number(own.dataset.level));
        await new Promise((r) => setTimeout(r, 50));
      }
      return seen;
    }, ms);
  const live = await levels(ann, 3000);
  const loud = live.filter((l) => l > 0.2).length;
  console.log(`Ann's meter, unmuted: max ${Math.max(...live)}, ${loud} of ${live.length} samples above 0.2`);
  assert.ok(Math.max(...live) > 0.3, `the meter does not move: ${live}`);
  assert.ok(live.some((l) => l < 0.1), `the meter does not fall between beeps: ${live}`);
  await ann.page.click('#mic-btn');
  await sleep(300);
  const muted = await levels(ann, 3000);
  assert.ok(muted.every((l) => l === 0), `muted, the meter moves: ${muted}`);
  const hint = await until(5000, () => ann.page.isVisible('#muted-hint'));
  assert.ok(hint, 'no "you are muted" hint while the fake microphone beeps');
  assert.match(await ann.page.textContent('#muted-hint'), /You are muted — unmute \(Ctrl\+D\)/);
  await ann.page.click('#mic-btn');
  assert.ok(await until(3000, async () => !(await ann.page.isVisible('#muted-hint'))), 'the hint stays after unmuting');
  // The lobby's meter is the same one: Dee's, back in the lobby, moves too.
  await leaveCall(dee);
  await dee.page.click('#preview-btn');
  const lobby = await until(5000, async () => Number(await dee.page.getAttribute('#lobby-level', 'data-level')) > 0.3, 50);
  assert.ok(lobby, 'the lobby meter does not move');
  await snap(dee, 'lobby');
});
