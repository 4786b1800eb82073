// What a person is told when joining fails. Run against an octo started with
// `--max-peers-per-room 1` (tests/tests/web_e2e.rs).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { URL, CHROMIUM_ARGS, person, closeEveryone, joinThroughUi, until } from './lib.mjs';
import { mediaErrorMessage, callErrorMessage } from '../../client-web/src/messages.js';

after(closeEveryone);

const lobbyError = (p) => until(10000, () => p.page.textContent('#lobby-error'));

test('a full room is explained and the person stays in the lobby', async () => {
  const room = `full-${Date.now()}`;
  const [first, second] = await Promise.all([person('first'), person('second')]);
  await joinThroughUi(first, room, 'First');
  await second.page.goto(`${URL}/?room=${room}`);
  await second.page.fill('#name', 'Second');
  await second.page.click('#join');
  assert.match(await lobbyError(second), /is full/);
  assert.equal(await second.page.isVisible('#lobby'), true);
  assert.equal(await second.page.isVisible('#call'), false);
});

test('a page out of date for the server is told to reload, and stays in the lobby', async () => {
  const p = await person('stale');
  await p.page.goto(`${URL}/?room=stale-${Date.now()}`);
  // As if this page were cached from an older Octo: it speaks another version of the protocol.
  await p.page.evaluate(() => localStorage.setItem('octo.protocol', '99'));
  await p.page.fill('#name', 'Stale');
  await p.page.click('#join');
  assert.match(await lobbyError(p), /out of date.*Reload the page/);
  assert.equal(await p.page.isVisible('#lobby'), true);
});

test('an unreachable server is explained', async () => {
  const p = await person('cut');
  await p.page.route('**/socket.io/**', (route) => route.abort('connectionrefused'));
  await p.page.goto(`${URL}/?room=cut-${Date.now()}`);
  await p.page.fill('#name', 'Cut');
  await p.page.click('#join');
  assert.match(await lobbyError(p), /Cannot reach the Octo server/);
  assert.equal(await p.page.isVisible('#lobby'), true);
});

test('a denied camera is explained, and the person can still join to watch', async () => {
  const args = CHROMIUM_ARGS.filter((a) => a !== '--use-fake-ui-for-media-stream').concat('--deny-permission-prompts');
  const p = await person('denied', { args });
  await p.page.goto(`${URL}/?room=denied-${Date.now()}`);
  const note = await until(10000, () => p.page.textContent('#preview-note'));
  assert.match(note, /blocked/);
  await p.page.fill('#name', 'Denied');
  await p.page.click('#join');
  await p.page.waitForFunction(() => window.octo.peerId() !== null, null, { timeout: 10000 });
  assert.equal(await p.page.isDisabled('#mic-btn'), true);
  assert.equal(await p.page.isDisabled('#cam-btn'), true);
});

// A camera another app holds cannot be made with Chromium's fake devices: the words for it (and for
// each refusal) are checked on the client's own function, as the page calls it with the error.
test('each camera failure and each refusal has its own words, with what to do', () => {
  const busy = mediaErrorMessage(Object.assign(new Error('Could not start video source'), { name: 'NotReadableError' }));
  assert.match(busy, /busy.*another app.*Close that app/);
  assert.match(mediaErrorMessage({ name: 'NotAllowedError' }), /blocked.*Allow them/);
  assert.match(mediaErrorMessage({ name: 'NotFoundError' }), /No camera or microphone was found/);
  const said = new Set();
  for (const [code, message] of [
    ['room_full', ''], ['unsupported_version', ''], ['unavailable', 'no live worker'], ['unavailable', 'the server is shutting down'],
    ['unauthorized', 'this server requires a token to join'], ['unauthorized', 'token expired'],
    ['unauthorized', 'token is for another room'], ['unauthorized', 'token signature is invalid'],
    ['server_unreachable', ''], ['timeout', ''], ['rate_limited', ''],
  ]) {
    const words = callErrorMessage({ code, message }, 'standup');
    assert.doesNotMatch(words, /Something went wrong/, `${code} (${message}) has no words of its own`);
    assert.ok(!said.has(words), `${code} (${message}) reads like another refusal: ${words}`);
    said.add(words);
  }
});
