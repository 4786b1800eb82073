// TURN in real Chromium, through a real coturn. Tia's browser runs in a network namespace that drops
// every UDP datagram in and out and every TCP connection but two (nftables) from before she joins:
// Octo's media port is out of reach by UDP and by ICE-TCP, its HTTP port and coturn's TCP port are not. Octo hands her a TURN URL (`?transport=tcp`) with a
// credential minted for her from the shared secret; her browser allocates a relay over TCP, coturn
// relays to Octo over UDP, and she and Bea (not in a namespace) see and hear each other.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { CHROMIUM_ARGS, URL, closeEveryone, joinThroughUi, person, selectedPairs, waitMediaFrom, udpBlocker } from './lib.mjs';

const NS_CHROMIUM = process.env.OCTO_NS_CHROMIUM;
const NS = process.env.OCTO_NS;
if (!NS_CHROMIUM || !NS || !process.env.OCTO_TURN_PORT) throw new Error('started by tests/tests/web_e2e.rs with a network namespace and coturn');

const room = `turn-${Date.now()}`;
// Octo listens on the veth address, not a secure origin the way loopback is.
const args = [...CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${URL}`];

const udp = udpBlocker(NS, 'octo_turn_test');
udp.blockMedia(process.env.OCTO_TURN_PORT);

const bea = await person('bea', { args, cameraHeight: 180 });
const tia = await person('tia', { args, cameraHeight: 180, executablePath: NS_CHROMIUM });
after(async () => {
  await closeEveryone();
  udp.mend();
});

test('without UDP, Tia joins through TURN over TCP and both see and hear each other', async () => {
  await joinThroughUi(bea, room, 'Bea');
  await joinThroughUi(tia, room, 'Tia');
  const servers = await tia.page.evaluate(() => window.octo.call.iceServers);
  assert.equal(servers.length, 1, JSON.stringify(servers));
  assert.match(servers[0].urls[0], /^turn:.*\?transport=tcp$/);
  assert.match(servers[0].username, /^\d+:/, 'a TURN REST API username (expiry:peer)');
  await waitMediaFrom(tia, bea.peerId, 40000);
  await waitMediaFrom(bea, tia.peerId, 40000);
  const pairs = await selectedPairs(tia);
  console.log(`Tia's selected pairs: ${JSON.stringify(pairs)}`);
  for (const p of pairs) {
    assert.equal(p.local, 'relay', `Tia's ${p.direction} transport is not relayed: ${JSON.stringify(pairs)}`);
    assert.equal(p.relayProtocol, 'tcp', `Tia reached coturn by ${p.relayProtocol}: ${JSON.stringify(pairs)}`);
  }
  // Bea, with UDP, is not relayed: the TURN server is there for who needs it.
  const beas = await selectedPairs(bea);
  assert.ok(beas.every((p) => p.local !== 'relay'), `Bea is relayed: ${JSON.stringify(beas)}`);
});
