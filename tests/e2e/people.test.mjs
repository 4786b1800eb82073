// People in a call (issue #19): the participant list with everyone's states, raised hands in the
// order they went up (on the tiles and in the list, on every page, and for someone who joins
// later), join and leave toasts, the shortcuts for hand and list, and the microphone level meter
// with the "you are muted" hint. Four people in one room through the real UI, in Debian's headless
// Chromium against the real octo. Tests run in order and share the call.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { handPlaces, peopleRows, describeRow } from '../../client-web/src/people.js';
import { levelOf, peakLevel, talking } from '../../client-web/src/meter.js';
import { shortcutFor } from '../../client-web/src/shortcuts.js';
import { person, closeEveryone, joinThroughUi, joinFromLobby, leaveCall, tileOf, until, sleep } from './lib.mjs';

const room = `people-${Date.now()}`;
const DESK = { viewport: { width: 1280, height: 800 } };
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

// ---- four people ---------------------------------------------------------------------------------

/** `p`'s participant list as shown. */
const list = (p) => p.page.evaluate(() => window.octo.people());

/** Waits until `check(list)` holds on `p`'s list; fails with the list it last saw. */
async function listShows(p, what, check, ms = 15000) {
  let last;
  const ok = await until(ms, async () => check((last = await list(p))));
  assert.ok(ok, `${p.label}'s list never showed ${what}: ${JSON.stringify(last)}`);
}

/** The toasts `p` shows now. */
const toasts = (p) => p.page.$$eval('#toasts .toast', (els) => els.map((e) => e.textContent));

before(async () => {
  everyone = [ann, bob, cy, dee] = await Promise.all(['ann', 'bob', 'cy', 'dee'].map((n) => person(n, DESK)));
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
  for (const p of [ann, cy, dee]) {
    await listShows(p, 'Bob muted', (l) => l.find((r) => r.peerId === bob.peerId)?.mic === 'off');
    assert.equal((await tileOf(p, bob.peerId)).mic, 'off');
    assert.ok((await list(p)).filter((r) => r.peerId !== bob.peerId).every((r) => r.mic === 'on' && r.cam === 'on'));
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
  // Cy lowers hers: Ann is first everywhere.
  await cy.page.click('#hand-btn');
  for (const p of everyone) {
    await listShows(p, 'Ann alone with a hand', (l) => l[0].peerId === idOf(p, ann) && l[0].hand === 1 && l.filter((r) => r.hand !== null).length === 1);
    assert.equal((await tileOf(p, idOf(p, cy))).hand, null);
  }
  await ann.page.click('#hand-btn');
  for (const p of everyone) await listShows(p, 'no hands', (l) => l.every((r) => r.hand === null));
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
});
