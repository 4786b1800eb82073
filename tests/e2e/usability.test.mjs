// What a new user meets (issue #20), in Debian's headless Chromium against the real octo: a phone in
// portrait, leaving (camera off), mute kept across leave and rejoin, joining muted or with the camera
// off, room names that cannot work, an empty room, and the same person twice. Tests run in order and
// share the people.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  URL, PHONE, person, closeEveryone, joinThroughUi, joinFromLobby, leaveCall, tiles, tileOf, flow, until, waitMediaFrom, liveTracks,
} from './lib.mjs';

const room = `use-${Date.now()}`;
let ann, bob;

before(async () => {
  [ann, bob] = await Promise.all([person('ann', { viewport: PHONE }), person('bob')]);
});
after(closeEveryone);

/**
 * The controls of `page` that are shown, each with whether its box lies inside the viewport and
 * whether a click at its centre lands on it (nothing covers it).
 */
function controlsReach(page, selector) {
  return page.evaluate((selector) => {
    const vw = window.innerWidth;
    const vh = window.innerHeight;
    return [...document.querySelectorAll(selector)]
      .filter((el) => el.offsetParent !== null)
      .map((el) => {
        const r = el.getBoundingClientRect();
        const inside = r.left >= 0 && r.top >= 0 && r.right <= vw && r.bottom <= vh && r.width > 0 && r.height > 0;
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return { id: el.id || el.textContent, inside, onTop: !!hit && (hit === el || el.contains(hit)), box: [r.left, r.top, r.right, r.bottom].map(Math.round) };
      });
  }, selector);
}

/** Asserts every shown control under `selector` is inside the viewport and clickable there. */
async function assertReachable(p, selector, atLeast) {
  const reach = await controlsReach(p.page, selector);
  assert.ok(reach.length >= atLeast, `${p.label}: only ${reach.length} controls under ${selector}`);
  const bad = reach.filter((c) => !c.inside || !c.onTop);
  assert.deepEqual(bad, [], `${p.label} at ${JSON.stringify(p.page.viewportSize())}: controls out of reach`);
  return reach;
}

test('on a phone in portrait every control is on screen and clickable, the chat input usable, the tiles 16:9', async () => {
  await joinThroughUi(ann, room, 'Ann');
  await joinThroughUi(bob, room, 'Bob');
  await waitMediaFrom(ann, bob.peerId, 15000);
  // Mute, camera, screen, six reactions, chat, leave.
  const reach = await assertReachable(ann, '#controls button', 11);
  assert.ok(reach.some((c) => c.id === 'mic-btn') && reach.some((c) => c.id === 'leave-btn'), JSON.stringify(reach));
  // Playwright's own actionability check (visible, stable, receives the click) agrees.
  for (const id of ['mic-btn', 'cam-btn', 'screen-btn', 'chat-btn', 'leave-btn']) await ann.page.click(`#${id}`, { trial: true, timeout: 3000 });
  // And Mute really is clickable there.
  await ann.page.click('#mic-btn');
  assert.equal(await ann.page.textContent('#mic-btn'), 'Unmute');
  await ann.page.click('#mic-btn');
  assert.equal(await ann.page.textContent('#mic-btn'), 'Mute');

  // Tiles keep the camera's 16:9 (no tall strips) and lie inside the screen's width.
  const boxes = await ann.page.$$eval('.tile', (els) => els.map((e) => e.getBoundingClientRect().toJSON()));
  assert.equal(boxes.length, 2);
  for (const b of boxes) {
    assert.ok(Math.abs(b.width / b.height - 16 / 9) < 0.1, `a tile is ${b.width}×${b.height}`);
    assert.ok(b.left >= 0 && b.right <= PHONE.width && b.width >= 0.8 * PHONE.width, `a tile is at ${JSON.stringify(b)}`);
  }

  // The chat panel: the input gets a usable width, and its buttons are reachable.
  await ann.page.click('#chat-btn');
  const input = await ann.page.$eval('#chat-input', (e) => e.getBoundingClientRect().width);
  assert.ok(input >= 180, `the chat input is ${input} px wide`);
  await assertReachable(ann, '#chat button, #chat input:not([type=file])', 4);
  await ann.page.fill('#chat-input', 'from a phone');
  await ann.page.click('#chat-send');
  assert.equal(await until(5000, async () => (await bob.page.textContent('#chat-log')).includes('from a phone')), true);
  await ann.page.click('#chat-close');
  await assertReachable(ann, '#controls button', 11);
  assert.ok(await ann.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'the call scrolls sideways');
});

test('after Leave no camera, microphone or screen track is live, and Join turns them on again', async () => {
  await bob.page.click('#screen-btn');
  await until(10000, async () => (await tiles(bob)).some((t) => t.kind === 'screen'));
  assert.ok((await liveTracks(bob.page)).length >= 3, `tracks before leaving: ${await liveTracks(bob.page)}`);
  await leaveCall(bob);
  assert.deepEqual(await liveTracks(bob.page), [], 'a local track is still live after Leave');
  assert.equal(await bob.page.evaluate(() => document.getElementById('preview').srcObject), null);
  assert.match(await bob.page.textContent('#preview-note'), /off/);

  // Join again from the lobby: camera and microphone come back and reach Ann.
  await joinFromLobby(bob);
  await waitMediaFrom(ann, bob.peerId, 15000);
});

test('mute survives a leave and a rejoin: the lobby shows it, the others see it and hear nothing', async () => {
  await ann.page.click('#mic-btn');
  await leaveCall(ann);
  assert.equal(await ann.page.getAttribute('#lobby-mic', 'aria-pressed'), 'true');
  assert.equal(await ann.page.textContent('#lobby-mic'), 'Microphone off');
  // The phone's lobby may scroll down, never sideways.
  const lobbyFits = await ann.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth &&
    [...document.querySelectorAll('#lobby button, #lobby input, #lobby select')].every((e) => {
      const r = e.getBoundingClientRect();
      return e.offsetParent === null || (r.left >= 0 && r.right <= window.innerWidth);
    }));
  assert.equal(lobbyFits, true, 'the phone\'s lobby is wider than the screen');
  await joinFromLobby(ann);
  assert.equal(await ann.page.textContent('#mic-btn'), 'Unmute');
  assert.equal(await until(10000, async () => (await tileOf(bob, ann.peerId))?.mic === 'off'), true, 'Bob shows Ann unmuted');
  assert.ok(await until(15000, async () => (await flow(bob, ann.peerId, 'video', 500)) > 0), 'Bob gets no video from Ann');
  assert.equal(await flow(bob, ann.peerId, 'audio', 1500), 0, 'Bob hears Ann, who rejoined muted');
  // Unmuting works on the rejoined call (the track is not dead).
  await ann.page.click('#mic-btn');
  assert.equal(await until(5000, async () => (await tileOf(bob, ann.peerId))?.mic === 'on'), true);
  assert.ok(await until(8000, async () => (await flow(bob, ann.peerId, 'audio', 500)) > 0), 'Ann\'s audio did not come back');
});

test('joining with the camera off from the lobby: the others see the avatar and get no video until it is started', async () => {
  await leaveCall(bob);
  await bob.page.click('#lobby-cam');
  assert.equal(await bob.page.textContent('#lobby-cam'), 'Camera off');
  await joinFromLobby(bob);
  assert.equal(await bob.page.textContent('#cam-btn'), 'Start camera');
  assert.equal(await until(10000, async () => (await tileOf(ann, bob.peerId))?.cam === 'off'), true, 'Ann shows Bob\'s camera on');
  assert.ok(await until(15000, async () => (await flow(ann, bob.peerId, 'audio', 500)) > 0), 'Ann gets no audio from Bob');
  assert.equal(await flow(ann, bob.peerId, 'video', 1500), 0, 'Ann decodes video of Bob, who joined with the camera off');
  await bob.page.click('#cam-btn');
  assert.equal(await until(5000, async () => (await tileOf(ann, bob.peerId))?.cam === 'on'), true);
  assert.ok(await until(10000, async () => (await flow(ann, bob.peerId, 'video', 500)) > 0), 'Bob\'s video did not start');
});

/** Clicks Join in `p`'s lobby and returns the lobby's error once there is one. */
async function joinError(p) {
  await p.page.click('#join');
  const text = await until(5000, () => p.page.textContent('#lobby-error'));
  assert.equal(await p.page.isVisible('#lobby'), true, `${p.label} left the lobby`);
  return text;
}

test('room names that cannot work get a plain-language message, never silence or the server\'s wording', async () => {
  await leaveCall(bob);
  // Only spaces.
  await bob.page.fill('#room', '     ');
  assert.match(await joinError(bob), /Type the name of a room/);
  // A link with a room name longer than the server allows: said on opening the link, and on Join.
  await bob.page.goto(`${URL}/?room=${'x'.repeat(200)}`);
  assert.match(await until(5000, () => bob.page.textContent('#lobby-error')), /too long/);
  await bob.page.fill('#name', 'Bob');
  const long = await joinError(bob);
  assert.match(long, /too long/);
  assert.doesNotMatch(long, /roomId|bytes|bad_request|refused/);
  // 100 letters the field accepts, but 200 bytes of UTF-8: too long for the server all the same.
  await bob.page.fill('#room', 'é'.repeat(100));
  assert.match(await joinError(bob), /too long/);
  // A name of only spaces.
  await bob.page.fill('#room', room);
  await bob.page.fill('#name', '   ');
  assert.match(await joinError(bob), /Type your name/);
  assert.equal(await bob.page.evaluate(() => window.octo.peerId()), null, 'Bob joined with a bad name');
});

test('a mistyped link opens an empty room and says so: you are the first one here', async () => {
  await joinThroughUi(bob, `${room}-typo`, 'Bob');
  const notice = await until(5000, async () => (await bob.page.isVisible('#notice')) && bob.page.textContent('#notice'));
  assert.match(notice, /You are the first one here/);
  assert.match(notice, new RegExp(`${room}-typo`));
});

test('the same person twice (a second tab, same name) is told so, and the others see two different labels', async () => {
  // Bob opens a second tab of the same browser and joins the same room under the same name.
  const bob2 = { label: 'bob-tab2', page: await bob.context.newPage(), peerId: null };
  await joinThroughUi(bob2, `${room}-typo`, 'Bob');
  for (const p of [bob, bob2]) {
    const notice = await until(8000, async () => {
      const t = (await p.page.isVisible('#notice')) && (await p.page.textContent('#notice'));
      return t && /already in this call/.test(t) ? t : null;
    });
    assert.match(notice ?? '', /Someone named “Bob” is already in this call.*another tab or device/, `${p.label} is not told`);
  }
  // Ann (a phone) comes to that room: two Bobs, told apart; she is not told anything about herself.
  await leaveCall(ann);
  await joinThroughUi(ann, `${room}-typo`, 'Ann');
  const labels = await until(8000, async () => {
    const bobs = (await tiles(ann)).filter((t) => t.kind === 'camera' && t.name === 'Bob');
    return bobs.length === 2 ? bobs.map((t) => t.label).sort() : null;
  });
  assert.deepEqual(labels, ['Bob', 'Bob (2)']);
  const shown = await ann.page.$$eval('.tile .name', (els) => els.map((e) => e.textContent));
  assert.equal(new Set(shown).size, shown.length, `two tiles look the same: ${shown}`);
  assert.equal(await ann.page.isVisible('#notice'), false, 'Ann gets a notice meant for Bob');
  await assertReachable(ann, '#controls button', 11);
  // When one tab leaves, the other is no longer warned.
  await leaveCall(bob2);
  assert.equal(await until(8000, async () => !(await bob.page.isVisible('#notice'))), true, 'Bob is still warned');
});
