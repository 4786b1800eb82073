// A graceful shutdown under a call, in Debian's headless Chromium: `octo` gets SIGTERM while two
// pages (and two raw Socket.IO clients, one of each dialect) are in a room. It drains: the people are
// told, the call goes on, late joiners are told why they cannot join, and once everyone has left it
// exits (tests/tests/web_e2e.rs checks the exit status). Started with the octo's pid (OCTO_PID) and
// its `--drain-timeout-ms` (OCTO_DRAIN_MS).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { URL, person, closeEveryone, joinThroughUi, leaveCall, flow, until, waitMediaFrom, banner, processRuns } from './lib.mjs';

const PID = Number(process.env.OCTO_PID);
const DRAIN_MS = Number(process.env.OCTO_DRAIN_MS);
if (!PID || !DRAIN_MS) throw new Error('OCTO_PID and OCTO_DRAIN_MS are set by tests/tests/web_e2e.rs');

const room = `drain-${Date.now()}`;
let ann, bob;

before(async () => {
  [ann, bob] = await Promise.all([person('ann'), person('bob')]);
});
after(closeEveryone);

/** A raw Socket.IO client in `room`, recording `serverDraining`; `seed` speaks the seed app's dialect. */
async function rawClient(seed) {
  const s = io(URL, { forceNew: true, reconnection: false, transports: ['websocket'] });
  await new Promise((r, j) => { s.once('connect', r); s.once('connect_error', j); });
  const heard = [];
  s.on('serverDraining', (m) => heard.push(m));
  const ack = seed
    ? await s.timeout(5000).emitWithAck('join', { roomId: room, peerName: 'Seed' })
    : await s.timeout(5000).emitWithAck('joinRoom', { roomId: room, displayName: 'Raw' });
  assert.ok(seed ? ack.success : ack.data?.peerId, JSON.stringify(ack));
  return { s, heard };
}

test('a graceful shutdown (SIGTERM) tells everyone in the call; the server stops once they have left', async () => {
  await joinThroughUi(ann, room, 'Ann');
  await joinThroughUi(bob, room, 'Bob');
  await waitMediaFrom(ann, bob.peerId, 15000);
  const [main, seed] = await Promise.all([rawClient(false), rawClient(true)]);
  const sent = Date.now();
  process.kill(PID, 'SIGTERM');
  for (const p of [ann, bob]) {
    const b = await until(10000, async () => {
      const x = await banner(p);
      return /shutting down/.test(x.text) ? x : null;
    });
    assert.ok(b, `${p.label} is not told that the server shuts down: ${JSON.stringify(await banner(p))}`);
    assert.equal(b.kind, 'warn');
    assert.match(b.text, /this call ends in (about 1 minutes|\d+ s)/);
  }
  // Each socket's writer runs on its own: the pages' banners can show before the raw client's
  // packet is read on this busy machine, so give it the time delivery takes.
  await until(5000, () => main.heard.length > 0);
  assert.equal(main.heard.length, 1, `the raw client heard ${JSON.stringify(main.heard)}`);
  const { remainingMs, deadline } = main.heard[0];
  assert.ok(remainingMs > 0 && remainingMs <= DRAIN_MS, `remainingMs ${remainingMs}`);
  assert.ok(Math.abs(deadline - (sent + DRAIN_MS)) < 10000, `deadline ${deadline} is not about ${sent + DRAIN_MS}`);
  // The seed dialect has no such event: its client is not sent one.
  assert.deepEqual(seed.heard, []);
  // The call goes on meanwhile.
  assert.ok(await until(5000, async () => (await flow(ann, bob.peerId, 'video', 500)) > 0), 'the call stopped during the drain');
  // New joins are refused with words that say why.
  const late = await person('late');
  await late.page.goto(`${URL}/?room=${room}`);
  await late.page.fill('#name', 'Late');
  await late.page.click('#join');
  assert.match(await until(10000, () => late.page.textContent('#lobby-error')), /shutting down for maintenance/);

  // Everyone leaves: the drain ends well before its deadline (the Rust test checks the exit status).
  for (const p of [ann, bob]) await leaveCall(p);
  main.s.close();
  seed.s.close();
  assert.equal(await until(15000, () => !processRuns(PID)), true, 'octo still runs with the call empty');
});
