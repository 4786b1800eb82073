// When nothing gets through: Uma's browser runs in a network namespace that drops every UDP datagram
// and every TCP connection but to the web server (nftables), and this Octo has no TURN server to offer. Her camera's transport never connects; within
// a few seconds of the browser's attempt she is told, in red, that media cannot get through, which
// direction, and the likely cause (UDP blocked, no TURN relay) — instead of a black tile and silence.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { CHROMIUM_ARGS, URL, banner, closeEveryone, joinThroughUi, person, until, udpBlocker } from './lib.mjs';

const NS_CHROMIUM = process.env.OCTO_NS_CHROMIUM;
const NS = process.env.OCTO_NS;
if (!NS_CHROMIUM || !NS) throw new Error('started by tests/tests/web_e2e.rs with a network namespace');

const udp = udpBlocker(NS, 'octo_blocked_test');
udp.blockMedia();

const args = [...CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${URL}`];
const uma = await person('uma', { args, cameraHeight: 180, executablePath: NS_CHROMIUM });
after(async () => {
  await closeEveryone();
  udp.mend();
});

test('a page without UDP and without TURN is told media cannot get through, and why', async () => {
  await joinThroughUi(uma, `blocked-${Date.now()}`, 'Uma');
  const started = Date.now();
  const told = await until(30000, async () => {
    const b = await banner(uma);
    return b.text.startsWith('Media cannot get through') ? b : null;
  });
  assert.ok(told, `Uma was not told: ${JSON.stringify(await banner(uma))}`);
  console.log(`told after ${Date.now() - started} ms: "${told.text}"`);
  assert.equal(told.kind, 'error');
  assert.match(told.text, /sending/, 'the direction that failed');
  assert.match(told.text, /UDP and TCP/, 'the server offered ICE-TCP: both are blocked');
  assert.match(told.text, /no TURN relay/);
  const state = await uma.page.evaluate(() => window.octo.call.sendTransport.connectionState);
  assert.notEqual(state, 'connected', 'the banner is wrong: the transport connected');
});
