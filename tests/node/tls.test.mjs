// Signaling over TLS with the real socket.io-client: long polling over HTTPS, the upgrade to WSS,
// and WSS alone, against an octo serving a test certificate (OCTO_CA is that certificate).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { URL, connect, closeAll, ok } from './lib.mjs';

after(closeAll);

const ca = readFileSync(process.env.OCTO_CA, 'utf8');
assert.ok(URL.startsWith('https://'), `OCTO_URL ${URL} is not https`);

test('joinRoom over HTTPS long polling', { timeout: 20000 }, async () => {
  const socket = await connect({ ca, transports: ['polling'] });
  const joined = await ok(socket, 'joinRoom', { roomId: `https-${Date.now()}`, displayName: 'Tia' });
  assert.equal(joined.peerId, socket.id);
  assert.ok(joined.rtpCapabilities.codecs.length > 0);
  assert.equal(socket.io.engine.transport.name, 'polling');
});

test('the usual polling start upgrades to WSS', { timeout: 20000 }, async () => {
  const socket = await connect({ ca });
  // The upgrade may already be done by the time `connect` fires.
  if (socket.io.engine.transport.name !== 'websocket') {
    await new Promise((resolve) => socket.io.engine.once('upgrade', resolve));
  }
  assert.equal(socket.io.engine.transport.name, 'websocket');
  await ok(socket, 'joinRoom', { roomId: `upgrade-${Date.now()}`, displayName: 'Uma' });
  const transport = await ok(socket, 'createWebRtcTransport', { direction: 'send' });
  assert.ok(transport.iceCandidates.length > 0);
});

test('joinRoom over WSS alone', { timeout: 20000 }, async () => {
  const socket = await connect({ ca, transports: ['websocket'] });
  const joined = await ok(socket, 'joinRoom', { roomId: `wss-${Date.now()}`, displayName: 'Wes' });
  assert.equal(joined.peerId, socket.id);
});

test('a client that does not trust the certificate cannot connect', { timeout: 20000 }, async () => {
  for (const transports of [['polling'], ['websocket']]) {
    await assert.rejects(connect({ transports }), `connected over ${transports} without trusting the certificate`);
  }
});
