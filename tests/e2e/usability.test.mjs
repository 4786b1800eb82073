// What a new user meets (issue #20), in Debian's headless Chromium against the real octo: a phone in
// portrait, leaving (camera off), mute kept across leave and rejoin, joining with the camera off.
// (Names and notices: names.test.mjs.) Tests run in order and share the people.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  PHONE, person, closeEveryone, joinThroughUi, joinFromLobby, leaveCall, tiles, tileOf, flow, until, waitMediaFrom, liveTracks,
  assertReachable,
  assertTouchable,
} from './lib.mjs';

const room = `use-${Date.now()}`;
let ann, bob;

before(async () => {
  [ann, bob] = await Promise.all([person('ann', { viewport: PHONE }), person('bob')]);
});
after(closeEveryone);

test('on a phone in portrait every control is on screen and clickable, the chat input usable, the tiles 16:9', async () => {
  await joinThroughUi(ann, room, 'Ann');
  await joinThroughUi(bob, room, 'Bob');
  await waitMediaFrom(ann, bob.peerId, 15000);
  // What one uses all the time: mute, camera, hand, people, chat, more, leave — in two rows.
  const reach = await assertReachable(ann, '#controls button', 7);
  const ids = reach.map((c) => c.id);
  for (const id of ['mic-btn', 'cam-btn', 'hand-btn', 'people-btn', 'chat-btn', 'more-btn', 'leave-btn']) assert.ok(ids.includes(id), `${id} is not shown: ${ids}`);
  assert.equal(new Set(reach.map((c) => c.box[1])).size, 2, `the controls take ${new Set(reach.map((c) => c.box[1])).size} rows`);
  // Playwright's own actionability check (visible, stable, receives the click) agrees.
  for (const id of ['mic-btn', 'cam-btn', 'chat-btn', 'more-btn', 'leave-btn']) await ann.page.click(`#${id}`, { trial: true, timeout: 3000 });
  // Big enough for a thumb and none over another.
  let controls = await assertTouchable(ann, '#controls button');
  // In the lower half of the screen, where a thumb reaches.
  assert.ok(controls.every((b) => b.y > PHONE.height / 2), `controls at ${controls.map((b) => Math.round(b.y))}`);
  // "More" opens the rest (screen, speaker view, devices, six reactions), all in reach and touchable,
  // and one of them used closes it again.
  await ann.page.click('#more-btn');
  assert.equal(await ann.page.getAttribute('#more-btn', 'aria-expanded'), 'true');
  const all = await assertReachable(ann, '#controls button', 16);
  for (const id of ['screen-btn', 'layout-btn', 'devices-btn']) assert.ok(all.some((c) => c.id === id), `${id} is not under More`);
  controls = await assertTouchable(ann, '#controls button');
  assert.ok(controls.every((b) => b.y > PHONE.height / 2), `controls under More at ${controls.map((b) => Math.round(b.y))}`);
  await ann.page.click('.reaction-btn');
  assert.equal(await ann.page.isHidden('#screen-btn'), true, 'More stayed open after a reaction');
  assert.equal(await ann.page.getAttribute('#more-btn', 'aria-expanded'), 'false');
  assert.equal(await ann.page.$$eval('video', (vs) => vs.filter((v) => !v.playsInline).length), 0, 'a video without playsinline');
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
  await assertReachable(ann, '#controls button', 7);
  assert.ok(await ann.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'the call scrolls sideways');
});

test('keyboard shortcuts: Ctrl+D mutes and unmutes, Ctrl+E turns the camera off and on, Ctrl+Alt+C opens and closes the chat', async () => {
  assert.equal(await bob.page.getAttribute('#mic-btn', 'aria-keyshortcuts'), 'Ctrl+D');
  assert.equal(await bob.page.getAttribute('#cam-btn', 'title'), 'Camera (Ctrl+E)');
  const seenByAnn = (what, value) => until(5000, async () => (await tileOf(ann, bob.peerId))?.[what] === value);
  await bob.page.keyboard.press('Control+d');
  assert.equal(await bob.page.textContent('#mic-btn'), 'Unmute');
  assert.equal(await seenByAnn('mic', 'off'), true, 'Ann does not see Bob muted');
  await bob.page.keyboard.press('Control+d');
  assert.equal(await bob.page.textContent('#mic-btn'), 'Mute');
  assert.equal(await seenByAnn('mic', 'on'), true, 'Ann does not see Bob unmuted');
  await bob.page.keyboard.press('Control+e');
  assert.equal(await bob.page.textContent('#cam-btn'), 'Start camera');
  assert.equal(await seenByAnn('cam', 'off'), true, "Ann still sees Bob's camera on");
  await bob.page.keyboard.press('Control+e');
  assert.equal(await seenByAnn('cam', 'on'), true, "Ann does not see Bob's camera back");
  await bob.page.keyboard.press('Control+Alt+c');
  assert.equal(await bob.page.isVisible('#chat'), true, 'the chat did not open');
  // Typing in the chat, the shortcuts still work (as in Meet), and the text is untouched.
  await bob.page.fill('#chat-input', 'typing');
  await bob.page.focus('#chat-input');
  await bob.page.keyboard.press('Control+d');
  assert.equal(await bob.page.textContent('#mic-btn'), 'Unmute');
  assert.equal(await bob.page.inputValue('#chat-input'), 'typing');
  await bob.page.keyboard.press('Control+d');
  await bob.page.keyboard.press('Control+Alt+c');
  assert.equal(await bob.page.isVisible('#chat'), false, 'the chat did not close');
  // Plain D and E do nothing.
  await bob.page.keyboard.press('d');
  assert.equal(await bob.page.textContent('#mic-btn'), 'Mute');
});

test('Tab walks the controls left to right, each named, with the focus plainly visible', async () => {
  // What is shown, in the order a person reads it: rows top to bottom, left to right within a row.
  const expected = await bob.page.$$eval('#controls button', (els) =>
    els.filter((e) => e.offsetParent !== null)
      .map((e) => ({ id: e.id || e.dataset.emoji, r: e.getBoundingClientRect() }))
      .sort((a, b) => Math.round(a.r.top - b.r.top) || a.r.left - b.r.left)
      .map((e) => e.id));
  assert.ok(expected.length >= 15, `only ${expected.length} controls on a desktop page`);
  // Onto Mute by the keyboard (a focus the keyboard moved is the one that must show).
  await bob.page.focus('#mic-btn');
  await bob.page.keyboard.press('Shift+Tab');
  await bob.page.keyboard.press('Tab');
  const walked = [];
  for (let i = 0; i < expected.length; i++) {
    const f = await bob.page.evaluate(() => {
      const e = document.activeElement;
      const style = getComputedStyle(e);
      const name = e.getAttribute('aria-label') ?? e.getAttribute('title') ?? e.textContent.trim();
      return { id: e.id || e.dataset.emoji, name, outline: [style.outlineStyle, parseFloat(style.outlineWidth), style.outlineColor] };
    });
    walked.push(f.id);
    assert.ok(f.name, `${f.id} has no name for a screen reader`);
    const [style, width, color] = f.outline;
    assert.ok(style === 'solid' && width >= 2 && !/rgba\(.*, 0\)/.test(color), `the focus on ${f.id} does not show: ${f.outline}`);
    await bob.page.keyboard.press('Tab');
  }
  assert.deepEqual(walked, expected);
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
