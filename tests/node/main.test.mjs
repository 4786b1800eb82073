// Octo's own dialect with the real socket.io-client (and mediasoup-client's Device with its fake
// handler) against the real octo binary.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Device } from 'mediasoup-client';
import { FakeHandler } from 'mediasoup-client/handlers/FakeHandler';
import * as fakeParameters from 'mediasoup-client/fakeParameters';
import { FakeMediaStreamTrack } from 'fake-mediastreamtrack';
import {
  URL, connect, closeAll, ok, request, waitEvent, record, sleep, vp8Parameters, opusParameters,
  deviceCapabilities, clientDtls,
} from './lib.mjs';

after(closeAll);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function assertNoNulls(value, path = '$') {
  if (value === null) assert.fail(`null at ${path}`);
  if (typeof value === 'object') for (const [k, v] of Object.entries(value)) assertNoNulls(v, `${path}.${k}`);
}

test('two peers join, produce, consume, pause, close and leave', { timeout: 30000 }, async () => {
  const room = `main-${Date.now()}`;
  const a = await connect();
  const b = await connect({ transports: ['websocket'] });

  const joinA = await ok(a, 'joinRoom', { roomId: room, displayName: 'Ann' });
  assert.equal(joinA.peerId, a.id);
  assert.deepEqual(joinA.peers, []);
  assert.deepEqual(joinA.producers, []);
  assertNoNulls(joinA.rtpCapabilities);
  assert.ok(joinA.rtpCapabilities.codecs.some((c) => c.mimeType === 'video/VP8'));
  assert.ok(joinA.rtpCapabilities.codecs.some((c) => c.mimeType === 'audio/opus'));

  const bJoined = waitEvent(a, 'peerJoined');
  const joinB = await ok(b, 'joinRoom', { roomId: room, displayName: 'Bob' });
  assert.deepEqual(joinB.peers, [{ peerId: a.id, displayName: 'Ann', handRaisedAt: null }]);
  assert.deepEqual(await bJoined, { peerId: b.id, displayName: 'Bob' });

  // Hands: the raiser gets the server's time, the other peer the same; lowering is heard too.
  const raised = waitEvent(a, 'peerHand');
  const { raisedAt } = await ok(b, 'raiseHand', {});
  assert.ok(Number.isInteger(raisedAt) && Math.abs(raisedAt - Date.now()) < 60000, `raisedAt ${raisedAt}`);
  assert.deepEqual(await raised, { peerId: b.id, raisedAt });
  const lowered = waitEvent(a, 'peerHand');
  assert.deepEqual(await ok(b, 'lowerHand', {}), { raisedAt: null });
  assert.deepEqual(await lowered, { peerId: b.id, raisedAt: null });

  // Transports: mediasoup's shape, no nulls.
  const sendA = await ok(a, 'createWebRtcTransport', { direction: 'send' });
  assert.match(sendA.id, UUID);
  assertNoNulls(sendA);
  assert.ok(sendA.iceParameters.usernameFragment && sendA.iceParameters.password);
  assert.equal(sendA.iceParameters.iceLite, true);
  assert.ok(sendA.iceCandidates.length > 0);
  for (const c of sendA.iceCandidates) {
    assert.ok(['udp', 'tcp'].includes(c.protocol), c.protocol);
    assert.equal(c.type, 'host');
    assert.ok(c.port > 0 && c.ip && c.address);
  }
  // UDP first; ICE-TCP (on by default) on the same ports, passive, ranked below every UDP candidate.
  const udp = sendA.iceCandidates.filter((c) => c.protocol === 'udp');
  const tcp = sendA.iceCandidates.filter((c) => c.protocol === 'tcp');
  assert.ok(udp.length > 0 && tcp.length === udp.length, JSON.stringify(sendA.iceCandidates));
  assert.deepEqual(sendA.iceCandidates.slice(0, udp.length), udp);
  for (const c of tcp) {
    assert.equal(c.tcpType, 'passive');
    assert.ok(udp.some((u) => u.port === c.port && u.ip === c.ip), `${c.ip}:${c.port} is no UDP socket's`);
    assert.ok(udp.every((u) => u.priority > c.priority));
  }
  for (const c of udp) assert.equal(c.tcpType, undefined);
  assert.ok(sendA.dtlsParameters.fingerprints.some((f) => f.algorithm === 'sha-256'));
  assert.equal(sendA.sctpParameters, undefined);
  const recvB = await ok(b, 'createWebRtcTransport', { direction: 'recv' });
  assert.deepEqual(await ok(a, 'connectWebRtcTransport', { transportId: sendA.id, dtlsParameters: clientDtls }), {});

  // Produce: the other peer is told, with the appData untouched.
  const appData = { source: 'webcam', nested: { n: null, list: [1, null] } };
  const newVideo = waitEvent(b, 'newProducer', (p) => p.kind === 'video');
  const video = await ok(a, 'produce', { transportId: sendA.id, kind: 'video', rtpParameters: vp8Parameters(), appData });
  assert.match(video.id, UUID);
  assert.deepEqual(await newVideo, { producerId: video.id, peerId: a.id, kind: 'video', appData });
  const newAudio = waitEvent(b, 'newProducer', (p) => p.kind === 'audio');
  const audio = await ok(a, 'produce', { transportId: sendA.id, kind: 'audio', rtpParameters: opusParameters() });
  assert.deepEqual((await newAudio).appData, {});

  // Consume: starts paused, mediasoup's consumer shape.
  const caps = deviceCapabilities(joinB.rtpCapabilities);
  const consumer = await ok(b, 'consume', { transportId: recvB.id, producerId: video.id, rtpCapabilities: caps });
  assertNoNulls(consumer);
  assert.match(consumer.id, UUID);
  assert.equal(consumer.producerId, video.id);
  assert.equal(consumer.kind, 'video');
  assert.equal(consumer.type, 'simple');
  assert.equal(consumer.producerPaused, false);
  assert.equal(consumer.rtpParameters.codecs[0].mimeType, 'video/VP8');
  assert.ok(consumer.rtpParameters.encodings[0].ssrc > 0);
  assert.ok(consumer.rtpParameters.mid !== undefined);
  assert.deepEqual(await ok(b, 'resumeConsumer', { consumerId: consumer.id }), {});
  const audioConsumer = await ok(b, 'consume', { transportId: recvB.id, producerId: audio.id, rtpCapabilities: caps });
  assert.equal(audioConsumer.kind, 'audio');

  // Pause / resume the producer: the consumer's owner hears it both ways.
  const paused = waitEvent(b, 'consumerPaused', (p) => p.consumerId === consumer.id);
  const producerPaused = waitEvent(b, 'producerPaused');
  await ok(a, 'pauseProducer', { producerId: video.id });
  assert.deepEqual(await paused, { consumerId: consumer.id, producerId: video.id });
  assert.deepEqual(await producerPaused, { producerId: video.id, peerId: a.id });
  const resumed = waitEvent(b, 'consumerResumed', (p) => p.consumerId === consumer.id);
  await ok(a, 'resumeProducer', { producerId: video.id });
  await resumed;
  await ok(b, 'pauseConsumer', { consumerId: consumer.id });

  // Stats and ICE restart on one's own objects.
  const tstats = await ok(a, 'getStats', { id: sendA.id });
  assert.equal(tstats[0].transportId, sendA.id);
  assertNoNulls(tstats);
  assert.ok(Array.isArray(await ok(a, 'getStats', { id: video.id })));
  assert.ok(Array.isArray(await ok(b, 'getStats', { id: consumer.id })));
  const ice = await ok(a, 'restartIce', { transportId: sendA.id });
  assert.ok(ice.iceParameters.usernameFragment);
  assert.notEqual(ice.iceParameters.usernameFragment, sendA.iceParameters.usernameFragment);

  // Closing a producer closes its consumers.
  const consumerClosed = waitEvent(b, 'consumerClosed', (p) => p.consumerId === consumer.id);
  const producerClosed = waitEvent(b, 'producerClosed', (p) => p.producerId === video.id);
  await ok(a, 'closeProducer', { producerId: video.id });
  assert.deepEqual(await consumerClosed, { consumerId: consumer.id, producerId: video.id });
  assert.deepEqual(await producerClosed, { producerId: video.id, peerId: a.id });

  // A late joiner learns of the remaining producer.
  const c = await connect();
  const joinC = await ok(c, 'joinRoom', { roomId: room, displayName: 'Cy' });
  assert.deepEqual(joinC.peers.map((p) => p.displayName), ['Ann', 'Bob']);
  assert.deepEqual(joinC.producers, [{ producerId: audio.id, peerId: a.id, kind: 'audio', appData: {} }]);

  // Leaving closes everything the peer owned and tells the others.
  const audioClosed = waitEvent(b, 'consumerClosed', (p) => p.consumerId === audioConsumer.id);
  const audioGone = waitEvent(c, 'producerClosed', (p) => p.producerId === audio.id);
  const aLeft = waitEvent(c, 'peerLeft', (p) => p.peerId === a.id);
  assert.deepEqual(await ok(a, 'leaveRoom', {}), {});
  await Promise.all([audioClosed, audioGone, aLeft]);

  // A disconnect is a leave.
  const bId = b.id; // socket.io-client forgets its id on close
  const bLeft = waitEvent(c, 'peerLeft', (p) => p.peerId === bId);
  b.close();
  await bLeft;

  // The peer that left can join again.
  const again = await ok(a, 'joinRoom', { roomId: room, displayName: 'Ann' });
  assert.deepEqual(again.peers.map((p) => p.displayName), ['Cy']);
});

test('an empty room closes its router after the grace period', { timeout: 20000 }, async () => {
  const routers = async () => (await (await fetch(`${URL}/workers`)).json()).reduce((n, w) => n + w.routers, 0);
  const before = await routers();
  const s = await connect();
  await ok(s, 'joinRoom', { roomId: `grace-${Date.now()}`, displayName: 'x' });
  assert.equal(await routers(), before + 1);
  await ok(s, 'leaveRoom', {});
  const grace = Number(process.env.OCTO_EMPTY_ROOM_GRACE_MS ?? 300);
  await sleep(grace + 500);
  assert.equal(await routers(), before);
});

test('rooms spread over workers by router count', { timeout: 20000 }, async () => {
  const workers = async () => (await (await fetch(`${URL}/workers`)).json()).map((w) => w.routers);
  const base = await workers();
  if (base.length < 2) return;
  const s1 = await connect();
  const s2 = await connect();
  await ok(s1, 'joinRoom', { roomId: `spread-a-${Date.now()}` });
  await ok(s2, 'joinRoom', { roomId: `spread-b-${Date.now()}` });
  const now = await workers();
  const added = now.map((n, i) => n - base[i]);
  assert.equal(added.reduce((x, y) => x + y, 0), 2);
  assert.ok(Math.max(...now) - Math.min(...now) <= 1, `unbalanced: ${now}`);
});

test("mediasoup-client's Device loads Octo's capabilities and runs send and receive transports", { timeout: 30000 }, async () => {
  const room = `device-${Date.now()}`;
  const handlerFactory = FakeHandler.createFactory(fakeParameters);
  const pub = await connect();
  const sub = await connect();
  const joinPub = await ok(pub, 'joinRoom', { roomId: room, displayName: 'pub' });
  const joinSub = await ok(sub, 'joinRoom', { roomId: room, displayName: 'sub' });

  const sender = new Device({ handlerFactory });
  await sender.load({ routerRtpCapabilities: joinPub.rtpCapabilities });
  assert.ok(sender.loaded);
  assert.ok(sender.canProduce('audio') && sender.canProduce('video'));

  const sendParams = await ok(pub, 'createWebRtcTransport', { direction: 'send' });
  const sendTransport = sender.createSendTransport(sendParams);
  sendTransport.on('connect', ({ dtlsParameters }, callback, errback) => {
    request(pub, 'connectWebRtcTransport', { transportId: sendTransport.id, dtlsParameters })
      .then((ack) => (ack.error ? errback(new Error(ack.error.code)) : callback()), errback);
  });
  sendTransport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
    request(pub, 'produce', { transportId: sendTransport.id, kind, rtpParameters, appData })
      .then((ack) => (ack.error ? errback(new Error(`${ack.error.code}: ${ack.error.message}`)) : callback({ id: ack.data.id })), errback);
  });
  const announced = waitEvent(sub, 'newProducer', (p) => p.kind === 'video');
  const track = new FakeMediaStreamTrack({ kind: 'video' });
  const producer = await sendTransport.produce({ track, appData: { cam: true } });
  assert.equal((await announced).producerId, producer.id);

  const receiver = new Device({ handlerFactory });
  await receiver.load({ routerRtpCapabilities: joinSub.rtpCapabilities });
  const recvParams = await ok(sub, 'createWebRtcTransport', { direction: 'recv' });
  const recvTransport = receiver.createRecvTransport(recvParams);
  recvTransport.on('connect', ({ dtlsParameters }, callback, errback) => {
    request(sub, 'connectWebRtcTransport', { transportId: recvTransport.id, dtlsParameters })
      .then((ack) => (ack.error ? errback(new Error(ack.error.code)) : callback()), errback);
  });
  const params = await ok(sub, 'consume', {
    transportId: recvTransport.id, producerId: producer.id, rtpCapabilities: receiver.rtpCapabilities,
  });
  const consumer = await recvTransport.consume(params);
  assert.equal(consumer.kind, 'video');
  assert.equal(consumer.producerId, producer.id);
  await ok(sub, 'resumeConsumer', { consumerId: consumer.id });
});
