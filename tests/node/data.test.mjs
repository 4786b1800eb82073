// DataChannel signaling: produceData / consumeData, newDataProducer / dataProducerClosed, with the
// real socket.io-client against the real octo binary.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, closeAll, ok, errorCode, waitEvent } from './lib.mjs';

after(closeAll);

const sctpCapabilities = { numStreams: { OS: 1024, MIS: 1024 } };

test('a data producer is announced, consumed and closed with its peer', { timeout: 20000 }, async () => {
  const room = `data-${Date.now()}`;
  const a = await connect();
  const b = await connect();
  await ok(a, 'joinRoom', { roomId: room, displayName: 'Ann' });
  await ok(b, 'joinRoom', { roomId: room, displayName: 'Bob' });

  const sendA = await ok(a, 'createWebRtcTransport', { direction: 'send', sctpCapabilities });
  assert.deepEqual(sendA.sctpParameters, { port: 5000, OS: 1024, MIS: 1024, maxMessageSize: 262144 });

  const announced = waitEvent(b, 'newDataProducer');
  const produced = await ok(a, 'produceData', {
    transportId: sendA.id,
    sctpStreamParameters: { streamId: 0, ordered: true },
    label: 'chat',
    protocol: 'octo-chat',
    appData: { kind: 'chat' },
  });
  const event = await announced;
  assert.deepEqual(event, {
    dataProducerId: produced.id, peerId: a.id, label: 'chat', protocol: 'octo-chat', appData: { kind: 'chat' },
  });

  // A late joiner learns of it from joinRoom.
  const c = await connect();
  const joinC = await ok(c, 'joinRoom', { roomId: room, displayName: 'Cat' });
  assert.equal(joinC.dataProducers.length, 1);
  assert.equal(joinC.dataProducers[0].dataProducerId, produced.id);

  const recvB = await ok(b, 'createWebRtcTransport', { direction: 'recv', sctpCapabilities });
  const consumed = await ok(b, 'consumeData', { transportId: recvB.id, dataProducerId: produced.id });
  assert.equal(consumed.dataProducerId, produced.id);
  assert.equal(consumed.label, 'chat');
  assert.equal(consumed.protocol, 'octo-chat');
  assert.equal(typeof consumed.sctpStreamParameters.streamId, 'number');
  assert.equal(consumed.sctpStreamParameters.ordered, true);

  // Only the owner's send transport may carry its data producer; a recv transport may not.
  assert.equal(
    await errorCode(b, 'produceData', { transportId: recvB.id, sctpStreamParameters: { streamId: 2, ordered: true } }),
    'wrong_direction',
  );
  // Consuming needs a recv transport of one's own.
  assert.equal(await errorCode(c, 'consumeData', { transportId: recvB.id, dataProducerId: produced.id }), 'forbidden');

  const closed = waitEvent(b, 'dataProducerClosed');
  await ok(a, 'leaveRoom', {});
  assert.deepEqual(await closed, { dataProducerId: produced.id, peerId: a.id });
});
