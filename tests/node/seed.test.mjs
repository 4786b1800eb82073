// The seed app's dialect ("scalable-zoom-clone"), driven in its client's order of calls, with the
// real socket.io-client and mediasoup-client's Device (fake handler).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Device } from 'mediasoup-client';
import { FakeHandler } from 'mediasoup-client/handlers/FakeHandler';
import * as fakeParameters from 'mediasoup-client/fakeParameters';
import { FakeMediaStreamTrack } from 'fake-mediastreamtrack';
import { URL, connect, closeAll, request, waitEvent, ok } from './lib.mjs';

after(closeAll);

const HOLD_MS = Number(process.env.OCTO_SEED_HOLD_MS ?? 100);

/**
 * One seed client, as its client.js does it: fetch capabilities, `device.load()` without awaiting,
 * `join`, then both `create-transport`s at once; transports are built on `transport-created`.
 */
async function seedClient(roomId, name) {
  const socket = await connect();
  const device = new Device({ handlerFactory: FakeHandler.createFactory(fakeParameters) });
  const res = await fetch(`${URL}/getRtpCapabilities?roomId=${encodeURIComponent(roomId)}`);
  const answeredAt = performance.now();
  assert.equal(res.status, 200);
  const rtpCapabilities = await res.json();
  const loading = device.load({ routerRtpCapabilities: rtpCapabilities });
  const created = [];
  const both = new Promise((resolve) => {
    socket.on('transport-created', (info) => {
      created.push({ info, at: performance.now() });
      if (created.length === 2) resolve();
    });
  });
  const joinAck = request(socket, 'join', { roomId, peerName: name });
  socket.emit('create-transport', { roomId, direction: 'send' });
  socket.emit('create-transport', { roomId, direction: 'recv' });
  assert.deepEqual(await joinAck, { success: true, peerId: socket.id });
  await both;
  await loading;
  const client = { socket, device, roomId, answeredAt, created };
  for (const { info } of created) {
    assert.ok(info.id && info.iceParameters && info.iceCandidates && info.dtlsParameters);
    const transport = info.direction === 'send' ? device.createSendTransport(info) : device.createRecvTransport(info);
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      socket.emit('connect-transport', { roomId, transportId: transport.id, dtlsParameters }, (r) =>
        r.error ? errback(new Error(r.error)) : callback());
    });
    if (info.direction === 'send') {
      transport.on('produce', ({ kind, rtpParameters }, callback, errback) => {
        socket.emit('produce', { roomId, kind, rtpParameters }, (r) =>
          r && r.id ? callback({ id: r.id }) : errback(new Error(JSON.stringify(r))));
      });
      client.send = transport;
    } else {
      client.recv = transport;
    }
  }
  return client;
}

test('the seed client flow: join, transports after the hold, produce, existing producers, consume, leave', { timeout: 30000 }, async () => {
  const roomId = `seed-${Date.now()}`;
  const a = await seedClient(roomId, 'Ann');
  for (const { at } of a.created) {
    // The hold counts from the later of the server's answer and the arrival of `join`, which the
    // client sends after it got the answer: so at least the hold after the client had it.
    const held = at - a.answeredAt;
    assert.ok(held >= HOLD_MS, `transport-created came ${held.toFixed(1)} ms after the capabilities (hold ${HOLD_MS})`);
    assert.ok(held < HOLD_MS + 1500, `transport-created held too long: ${held.toFixed(1)} ms`);
  }
  assert.deepEqual(a.created.map((c) => c.info.direction).sort(), ['recv', 'send']);

  const video = await a.send.produce({ track: new FakeMediaStreamTrack({ kind: 'video' }) });
  const audio = await a.send.produce({ track: new FakeMediaStreamTrack({ kind: 'audio' }) });

  const joinedSeen = waitEvent(a.socket, 'peer-joined');
  const b = await seedClient(roomId, 'Bob');
  assert.deepEqual(await joinedSeen, { peerId: b.socket.id, peerName: 'Bob' });

  const existing = await request(b.socket, 'request-existing-producers', { roomId });
  assert.deepEqual(
    existing.params.map((p) => p.producerId).sort(),
    [video.id, audio.id].sort(),
  );
  for (const p of existing.params) assert.deepEqual([p.peerId, p.peerName], [a.socket.id, 'Ann']);

  for (const p of existing.params) {
    const r = await request(b.socket, 'consume', { roomId, producerId: p.producerId, rtpCapabilities: b.device.rtpCapabilities });
    assert.ok(r.params, JSON.stringify(r));
    assert.deepEqual(Object.keys(r.params).sort(), ['id', 'kind', 'producerId', 'rtpParameters']);
    const consumer = await b.recv.consume(r.params);
    assert.equal(consumer.producerId, p.producerId);
  }

  // New producers are announced as new-producer.
  const announced = waitEvent(a.socket, 'new-producer');
  const bVideo = await b.send.produce({ track: new FakeMediaStreamTrack({ kind: 'video' }) });
  assert.deepEqual(await announced, { producerId: bVideo.id, peerId: b.socket.id, peerName: 'Bob' });

  // Errors in the seed shapes.
  const bad = await request(b.socket, 'consume', { roomId, producerId: '00000000-0000-0000-0000-000000000001', rtpCapabilities: b.device.rtpCapabilities });
  assert.equal(bad.params, null);
  assert.equal(bad.code, 'not_found');
  assert.equal(typeof bad.error, 'string');
  const wrongRoom = await request(b.socket, 'request-existing-producers', { roomId: 'elsewhere' });
  assert.deepEqual([wrongRoom.code, wrongRoom.params], ['forbidden', []]);
  const foreign = await request(b.socket, 'connect-transport', {
    roomId, transportId: a.send.id, dtlsParameters: { role: 'client', fingerprints: [] },
  });
  assert.equal(foreign.code, 'forbidden');

  // leave-room and disconnect both send peer-left.
  const left = waitEvent(a.socket, 'peer-left');
  b.socket.emit('leave-room', { roomId });
  assert.deepEqual(await left, { peerId: b.socket.id });
  const c = await seedClient(roomId, 'Cy');
  const cId = c.socket.id; // socket.io-client forgets its id on close
  const cLeft = waitEvent(a.socket, 'peer-left');
  c.socket.close();
  assert.deepEqual(await cLeft, { peerId: cId });
});

test('a seed-dialect client that never fetched the capabilities is not held', { timeout: 10000 }, async () => {
  const roomId = `seed-nofetch-${Date.now()}`;
  const socket = await connect();
  await request(socket, 'join', { roomId, peerName: 'direct' });
  const t0 = performance.now();
  const created = waitEvent(socket, 'transport-created');
  socket.emit('create-transport', { roomId, direction: 'recv' });
  await created;
  assert.ok(performance.now() - t0 < HOLD_MS, 'held without a capabilities fetch');
});

test('create-transport before join fails with the seed error event', { timeout: 10000 }, async () => {
  const socket = await connect();
  const failed = waitEvent(socket, 'error');
  socket.emit('create-transport', { roomId: 'nowhere', direction: 'send' });
  const e = await failed;
  assert.deepEqual([e.message, e.code], ['transport-failed', 'not_joined']);
});

test('seed and main dialect peers share a room', { timeout: 10000 }, async () => {
  const roomId = `mixed-${Date.now()}`;
  const seed = await seedClient(roomId, 'Seed');
  const main = await connect();
  const seen = waitEvent(seed.socket, 'peer-joined');
  const joined = await ok(main, 'joinRoom', { roomId, displayName: 'Main' });
  assert.deepEqual(joined.peers, [{ peerId: seed.socket.id, displayName: 'Seed', handRaisedAt: null }]);
  assert.deepEqual(await seen, { peerId: main.id, peerName: 'Main' });
  const announced = waitEvent(main, 'newProducer');
  const p = await seed.send.produce({ track: new FakeMediaStreamTrack({ kind: 'audio' }) });
  assert.deepEqual(await announced, { producerId: p.id, peerId: seed.socket.id, kind: 'audio', appData: { peerId: seed.socket.id } });
});

test('getRtpCapabilities without a room id is a 400', async () => {
  const res = await fetch(`${URL}/getRtpCapabilities`);
  assert.equal(res.status, 400);
  assert.equal((await res.json()).code, 'bad_request');
});
