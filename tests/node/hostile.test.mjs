// Hostile signaling: each abuse answered with its documented code, and the server keeps serving.
// octo runs with --max-payload 16384 --requests-per-second 20 --request-burst 40 --max-peers-per-room 3.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  connect, closeAll, ok, request, errorCode, sleep, vp8Parameters, opusParameters, deviceCapabilities, clientDtls,
} from './lib.mjs';

after(closeAll);

const NOBODY = '00000000-0000-4000-8000-000000000000';

/** Two joined peers; A has a send transport with a video producer, B a recv transport consuming it. */
async function twoPeers(room) {
  const a = await connect({ transports: ['websocket'] });
  const b = await connect({ transports: ['websocket'] });
  const ja = await ok(a, 'joinRoom', { roomId: room, displayName: 'A' });
  await ok(b, 'joinRoom', { roomId: room, displayName: 'B' });
  const sendA = await ok(a, 'createWebRtcTransport', { direction: 'send' });
  const recvA = await ok(a, 'createWebRtcTransport', { direction: 'recv' });
  const sendB = await ok(b, 'createWebRtcTransport', { direction: 'send' });
  const recvB = await ok(b, 'createWebRtcTransport', { direction: 'recv' });
  const video = await ok(a, 'produce', { transportId: sendA.id, kind: 'video', rtpParameters: vp8Parameters() });
  const caps = deviceCapabilities(ja.rtpCapabilities);
  const consumer = await ok(b, 'consume', { transportId: recvB.id, producerId: video.id, rtpCapabilities: caps });
  return { a, b, sendA, recvA, sendB, recvB, video, consumer, caps };
}

test('unknown events are answered unknown_event', async () => {
  const s = await connect();
  assert.equal(await errorCode(s, 'dropTables', {}), 'unknown_event');
  assert.equal(await errorCode(s, '', {}), 'unknown_event');
  s.emit('noAckWanted', { x: 1 }); // no ack asked: nothing to answer, nothing breaks
  assert.equal(await errorCode(s, 'createWebRtcTransport', { direction: 'send' }), 'not_joined');
});

test('missing or wrongly typed fields are bad_request', async () => {
  const s = await connect();
  for (const payload of [undefined, null, 42, 'room', [], {}, { roomId: 5 }, { roomId: '' }, { roomId: 'x'.repeat(200) },
    { roomId: 'r', displayName: 7 }, { roomId: 'r', displayName: 'a\u0000b' }]) {
    assert.equal(await errorCode(s, 'joinRoom', payload), 'bad_request', JSON.stringify(payload));
  }
  await ok(s, 'joinRoom', { roomId: `typed-${Date.now()}` });
  assert.equal(await errorCode(s, 'createWebRtcTransport', { direction: 'sideways' }), 'bad_request');
  assert.equal(await errorCode(s, 'createWebRtcTransport', {}), 'bad_request');
  const t = await ok(s, 'createWebRtcTransport', { direction: 'send' });
  assert.equal(await errorCode(s, 'connectWebRtcTransport', { transportId: 'not-an-id', dtlsParameters: clientDtls }), 'bad_request');
  assert.equal(await errorCode(s, 'connectWebRtcTransport', { transportId: t.id, dtlsParameters: { role: 'boss' } }), 'bad_request');
  for (const rtpParameters of ['x', { codecs: 'no' }, { codecs: [{ mimeType: 'video/VP8', payloadType: 300, clockRate: 90000 }] }]) {
    assert.equal(await errorCode(s, 'produce', { transportId: t.id, kind: 'video', rtpParameters }), 'bad_request');
  }
  assert.equal(await errorCode(s, 'produce', { transportId: t.id, kind: 'smell', rtpParameters: vp8Parameters() }), 'bad_request');
  assert.equal(await errorCode(s, 'produce', { transportId: t.id, kind: 'video', rtpParameters: vp8Parameters(), appData: [1] }), 'bad_request');
  // Well-formed but refused by the worker's ORTC checks: an unsupported codec.
  const foo = vp8Parameters(7000);
  foo.codecs = [{ mimeType: 'video/FOO', payloadType: 100, clockRate: 90000, parameters: {}, rtcpFeedback: [] }];
  assert.equal(await errorCode(s, 'produce', { transportId: t.id, kind: 'video', rtpParameters: foo }), 'bad_request');
  assert.equal(await errorCode(s, 'getStats', { id: 17 }), 'bad_request');
});

test('a huge payload is payload_too_large and the socket keeps working', async () => {
  const s = await connect();
  assert.equal(await errorCode(s, 'joinRoom', { roomId: 'r', displayName: 'x'.repeat(100_000) }), 'payload_too_large');
  assert.equal(await errorCode(s, 'produce', { blob: 'y'.repeat(20_000) }), 'payload_too_large');
  await ok(s, 'joinRoom', { roomId: `huge-${Date.now()}`, displayName: 'fine' });
});

test("another peer's objects are forbidden, unknown ones not_found", { timeout: 20000 }, async () => {
  const { a, b, sendA, recvA, video, consumer, caps } = await twoPeers(`forbid-${Date.now()}`);
  assert.equal(await errorCode(b, 'connectWebRtcTransport', { transportId: sendA.id, dtlsParameters: clientDtls }), 'forbidden');
  assert.equal(await errorCode(b, 'produce', { transportId: sendA.id, kind: 'audio', rtpParameters: opusParameters() }), 'forbidden');
  assert.equal(await errorCode(b, 'consume', { transportId: recvA.id, producerId: video.id, rtpCapabilities: caps }), 'forbidden');
  assert.equal(await errorCode(b, 'pauseProducer', { producerId: video.id }), 'forbidden');
  assert.equal(await errorCode(b, 'closeProducer', { producerId: video.id }), 'forbidden');
  assert.equal(await errorCode(b, 'restartIce', { transportId: sendA.id }), 'forbidden');
  assert.equal(await errorCode(b, 'getStats', { id: sendA.id }), 'forbidden');
  assert.equal(await errorCode(a, 'resumeConsumer', { consumerId: consumer.id }), 'forbidden');
  assert.equal(await errorCode(a, 'getStats', { id: consumer.id }), 'forbidden');
  assert.equal(await errorCode(b, 'pauseProducer', { producerId: NOBODY }), 'not_found');
  assert.equal(await errorCode(b, 'getStats', { id: NOBODY }), 'not_found');
  assert.equal(await errorCode(b, 'connectWebRtcTransport', { transportId: NOBODY, dtlsParameters: clientDtls }), 'not_found');
  // The owner still can.
  await ok(a, 'pauseProducer', { producerId: video.id });
  await ok(b, 'resumeConsumer', { consumerId: consumer.id });
});

test('direction, capabilities and state are checked', { timeout: 20000 }, async () => {
  const { a, b, sendA, recvA, sendB, video, caps } = await twoPeers(`dir-${Date.now()}`);
  assert.equal(await errorCode(a, 'produce', { transportId: recvA.id, kind: 'audio', rtpParameters: opusParameters() }), 'wrong_direction');
  assert.equal(await errorCode(b, 'consume', { transportId: sendB.id, producerId: video.id, rtpCapabilities: caps }), 'wrong_direction');
  const recvB2 = await ok(b, 'createWebRtcTransport', { direction: 'recv' });
  const audioOnly = { codecs: caps.codecs.filter((c) => c.kind === 'audio'), headerExtensions: caps.headerExtensions };
  assert.equal(await errorCode(b, 'consume', { transportId: recvB2.id, producerId: video.id, rtpCapabilities: audioOnly }), 'cannot_consume');
  assert.equal(await errorCode(b, 'consume', { transportId: recvB2.id, producerId: video.id, rtpCapabilities: {} }), 'cannot_consume');
  await ok(a, 'connectWebRtcTransport', { transportId: sendA.id, dtlsParameters: clientDtls });
  assert.equal(await errorCode(a, 'connectWebRtcTransport', { transportId: sendA.id, dtlsParameters: clientDtls }), 'invalid_state');
  assert.equal(await errorCode(a, 'joinRoom', { roomId: 'another' }), 'already_joined');
  assert.equal(await errorCode(a, 'produceData', { transportId: sendA.id }), 'bad_request');
  // sendA was created without sctpCapabilities: it has no SCTP association to carry data.
  const noSctp = await errorCode(a, 'produceData', { transportId: sendA.id, sctpStreamParameters: { streamId: 1, ordered: true } });
  assert.ok(['invalid_state', 'bad_request'].includes(noSctp), noSctp);
  assert.equal(await errorCode(b, 'consumeData', { transportId: recvB2.id, dataProducerId: '00000000-0000-0000-0000-000000000001' }), 'not_found');
});

test('actions before joining are not_joined', async () => {
  const s = await connect();
  const cases = [
    ['createWebRtcTransport', { direction: 'send' }],
    ['connectWebRtcTransport', { transportId: NOBODY, dtlsParameters: clientDtls }],
    ['produce', { transportId: NOBODY, kind: 'video', rtpParameters: vp8Parameters() }],
    ['consume', { transportId: NOBODY, producerId: NOBODY, rtpCapabilities: {} }],
    ['resumeConsumer', { consumerId: NOBODY }],
    ['pauseProducer', { producerId: NOBODY }],
    ['restartIce', { transportId: NOBODY }],
    ['getStats', { id: NOBODY }],
    ['raiseHand', {}],
    ['lowerHand', {}],
    ['leaveRoom', {}],
  ];
  for (const [event, payload] of cases) assert.equal(await errorCode(s, event, payload), 'not_joined', event);
});

test('a full room is room_full', { timeout: 10000 }, async () => {
  const room = `full-${Date.now()}`;
  for (let i = 0; i < 3; i++) await ok(await connect(), 'joinRoom', { roomId: room });
  const late = await connect();
  assert.equal(await errorCode(late, 'joinRoom', { roomId: room }), 'room_full');
});

// Every request is answered, limited or not, over both transports: a long-polling client only
// drains its acks between polls, so the whole burst's answers wait in the server's send buffer.
for (const transport of ['websocket', 'polling']) {
  test(`a flood is rate_limited while other sockets are served (${transport})`, { timeout: 20000 }, async () => {
    const flood = await connect({ transports: [transport] });
    const calm = await connect({ transports: [transport] });
    const acks = await Promise.all(Array.from({ length: 200 }, () => request(flood, 'getStats', { id: NOBODY }, 10000)));
    const codes = acks.map((a) => a.error.code);
    const limited = codes.filter((c) => c === 'rate_limited').length;
    assert.ok(limited >= 100, `only ${limited} of 200 rate limited`);
    assert.ok(codes.filter((c) => c === 'not_joined').length >= 30, 'the burst should have been served');
    await ok(calm, 'joinRoom', { roomId: `calm-${transport}-${Date.now()}` });
    await sleep(300);
    assert.equal(await errorCode(flood, 'getStats', { id: NOBODY }), 'not_joined');
  });
}

test('a payload beyond the transport limit ends only that connection', { timeout: 20000 }, async () => {
  for (const transports of [['websocket'], ['polling']]) {
    const s = await connect({ transports });
    const gone = new Promise((resolve) => s.once('disconnect', resolve));
    s.emit('joinRoom', { roomId: 'r', displayName: 'z'.repeat(2_000_000) });
    await gone;
    await ok(await connect(), 'joinRoom', { roomId: `after-big-${transports[0]}-${Date.now()}` });
  }
});
