// A hung worker under a call, in real Chromium: the room's worker is SIGSTOPped (alive, answering
// nothing — as one stuck in a loop would be). The controller's heartbeat finds it within its
// timeout (2 s here), kills it and respawns the slot; the pages rejoin by themselves and media
// flows again both ways. The times are printed.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { URL, person, closeEveryone, joinThroughUi, flow, until, waitMediaFrom } from './lib.mjs';

const HANG_TIMEOUT_MS = Number(process.env.OCTO_HANG_TIMEOUT_MS);
if (!HANG_TIMEOUT_MS) throw new Error('started by tests/tests/web_e2e.rs with --worker-hang-timeout-ms');
const room = `hung-${Date.now()}`;
const [ann, bob] = await Promise.all([person('ann', { cameraHeight: 180 }), person('bob', { cameraHeight: 180 })]);
let stopped = null;
after(async () => {
  // Whatever happens, leave no stopped process behind.
  if (stopped) {
    try {
      process.kill(stopped, 'SIGKILL');
    } catch {
      // gone already: the controller killed it
    }
  }
  await closeEveryone();
});

const workers = async () => (await fetch(`${URL}/workers`)).json();
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('a SIGSTOPped worker is found hung, replaced, and the call comes back by itself', async () => {
  await joinThroughUi(ann, room, 'Ann');
  await joinThroughUi(bob, room, 'Bob');
  await Promise.all([waitMediaFrom(ann, bob.peerId, 20000), waitMediaFrom(bob, ann.peerId, 20000)]);
  const host = (await workers()).find((w) => w.routers > 0 && w.pid);
  assert.ok(host, JSON.stringify(await workers()));

  const at = Date.now();
  process.kill(host.pid, 'SIGSTOP');
  stopped = host.pid;
  const replaced = await until(HANG_TIMEOUT_MS + 8000, async () => {
    const w = (await workers())[host.index];
    return w.pid && w.pid !== host.pid && w.alive ? w : null;
  }, 100);
  assert.ok(replaced, `the hung worker was not replaced: ${JSON.stringify(await workers())}`);
  const replacedAfter = Date.now() - at;
  assert.ok(replacedAfter >= HANG_TIMEOUT_MS, `replaced after ${replacedAfter} ms, before the timeout`);
  assert.equal(replaced.hangs, host.hangs + 1, JSON.stringify(replaced));
  assert.equal(alive(host.pid), false, 'the hung process was left behind');

  const back = await until(30000, async () => (await flow(ann, bob.peerId, 'video', 500)) > 0 && (await flow(bob, ann.peerId, 'video', 500)) > 0, 0);
  const backAfter = Date.now() - at;
  console.log(`worker stopped; replaced after ${replacedAfter} ms (timeout ${HANG_TIMEOUT_MS} ms); video back both ways after ${backAfter} ms`);
  assert.ok(back, 'video did not come back both ways within 30 s of the replacement');
  assert.ok((await flow(ann, bob.peerId, 'audio', 1000)) > 0, 'no audio from Bob after the hang');
});
