// ICE-TCP in real Chromium. Tom's browser runs in a network namespace that drops every UDP datagram
// in and out (nftables) from before he joins, and Octo offers no TURN server: the only way left to
// its media is the passive TCP candidate each worker offers beside its UDP one. His browser connects
// to it (RFC 6544 active candidate, RFC 4571 framing), and he and Bea (on UDP, not in a namespace)
// see and hear each other.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { CHROMIUM_ARGS, URL, closeEveryone, joinThroughUi, person, selectedPairs, waitMediaFrom, udpBlocker } from './lib.mjs';

const NS_CHROMIUM = process.env.OCTO_NS_CHROMIUM;
const NS = process.env.OCTO_NS;
if (!NS_CHROMIUM || !NS) throw new Error('started by tests/tests/web_e2e.rs with a network namespace');

const room = `tcp-${Date.now()}`;
// Octo listens on the veth address, not a secure origin the way loopback is.
const args = [...CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${URL}`];

const udp = udpBlocker(NS, 'octo_tcp_test');
udp.block();

const bea = await person('bea', { args, cameraHeight: 180 });
const tom = await person('tom', { args, cameraHeight: 180, executablePath: NS_CHROMIUM });
after(async () => {
  await closeEveryone();
  udp.mend();
});

test('without UDP and without TURN, Tom joins over ICE-TCP and both see and hear each other', async () => {
  await joinThroughUi(bea, room, 'Bea');
  await joinThroughUi(tom, room, 'Tom');
  assert.deepEqual(await tom.page.evaluate(() => window.octo.call.iceServers), [], 'this Octo offers no TURN');
  const started = Date.now();
  await waitMediaFrom(tom, bea.peerId, 30000);
  await waitMediaFrom(bea, tom.peerId, 30000);
  console.log(`media both ways over ICE-TCP ${Date.now() - started} ms after Tom joined`);
  const pairs = await selectedPairs(tom);
  console.log(`Tom's selected pairs: ${JSON.stringify(pairs)}`);
  for (const p of pairs) {
    assert.equal(p.remoteProtocol, 'tcp', `Tom's ${p.direction} transport is not on TCP: ${JSON.stringify(pairs)}`);
    assert.equal(p.remote, 'host', `Tom's ${p.direction} transport reached Octo another way: ${JSON.stringify(pairs)}`);
    assert.equal(p.localProtocol, 'tcp');
  }
  // Bea, with UDP, stays on UDP: TCP candidates rank below.
  const beas = await selectedPairs(bea);
  assert.ok(beas.every((p) => p.remoteProtocol === 'udp'), `Bea is on TCP: ${JSON.stringify(beas)}`);
});
