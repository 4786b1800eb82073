// A room whose worker dies: its peers get roomError, and a rejoin lands on a live worker.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { URL, connect, closeAll, ok, errorCode, waitEvent, sleep } from './lib.mjs';

after(closeAll);

const workers = async () => (await fetch(`${URL}/workers`)).json();

test('worker death closes the room; peers are told and can rejoin', { timeout: 30000 }, async () => {
  const room = `death-${Date.now()}`;
  const a = await connect();
  const b = await connect();
  await ok(a, 'joinRoom', { roomId: room, displayName: 'A' });
  await ok(b, 'joinRoom', { roomId: room, displayName: 'B' });
  await ok(a, 'createWebRtcTransport', { direction: 'send' });
  const host = (await workers()).find((w) => w.routers > 0);
  assert.ok(host, 'no worker hosts the room');

  const errA = waitEvent(a, 'roomError');
  const errB = waitEvent(b, 'roomError');
  process.kill(host.pid, 'SIGKILL');
  for (const e of await Promise.all([errA, errB])) assert.equal(e.code, 'worker_died');

  assert.equal(await errorCode(a, 'createWebRtcTransport', { direction: 'send' }), 'room_closed');
  // Rejoin: a new router on a live worker (the other one, or the respawned one).
  let rejoined;
  for (let i = 0; i < 50 && !rejoined; i++) {
    const ack = await a.timeout(5000).emitWithAck('joinRoom', { roomId: room, displayName: 'A' });
    if (ack.data) rejoined = ack.data;
    else await sleep(100);
  }
  assert.ok(rejoined, 'could not rejoin');
  assert.deepEqual(rejoined.peers, []);
  const t = await ok(a, 'createWebRtcTransport', { direction: 'send' });
  assert.ok(t.id);
  const after = await workers();
  const hosting = after.filter((w) => w.routers > 0);
  assert.equal(hosting.length, 1);
  assert.ok(hosting[0].alive);
  assert.notEqual(hosting[0].pid, host.pid);
  await ok(b, 'joinRoom', { roomId: room, displayName: 'B' });
});
