// A room on two workers: octo is started with `--workers 2 --room-spill-consumers 1`, so once the
// first two people consume each other on the room's worker, the third person's receiving transport
// goes to a router of the same room on the other worker, and everything the third person receives
// comes across a pipe between the two workers. Nothing in the page or the protocol differs: the
// three see and hear each other and chat as in any call.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { person, closeEveryone, joinThroughUi, say, shows, until, waitMediaFrom } from './lib.mjs';

const METRICS = process.env.OCTO_METRICS_URL;
if (!METRICS) throw new Error('OCTO_METRICS_URL is not set: this test is started by tests/tests/web_e2e.rs');

const room = `spill-${Date.now()}`;
let ann, bob, cy;

before(async () => {
  [ann, bob, cy] = await Promise.all([person('ann'), person('bob'), person('cy')]);
});
after(closeEveryone);

/** `name{worker="i"}` from Octo's Prometheus text, by worker. */
async function byWorker(name) {
  const text = await (await fetch(`${METRICS}/metrics`)).text();
  const values = {};
  for (const line of text.split('\n')) {
    const m = line.match(new RegExp(`^${name}\\{worker="(\\d+)"\\} (\\S+)$`));
    if (m) values[m[1]] = Number(m[2]);
  }
  return values;
}

test('two people on the room worker, a third spilled onto the other, all see, hear and chat', async () => {
  await joinThroughUi(ann, room, 'Ann');
  await joinThroughUi(bob, room, 'Bob');
  await waitMediaFrom(ann, bob.peerId, 20000);
  await waitMediaFrom(bob, ann.peerId, 20000);
  const before = await byWorker('octo_pipe_producers');
  assert.deepEqual(Object.values(before).filter((n) => n > 0), [], 'no pipes while the room fits its worker');

  await joinThroughUi(cy, room, 'Cy');
  for (const [p, from] of [[cy, ann], [cy, bob], [ann, cy], [bob, cy]]) await waitMediaFrom(p, from.peerId, 20000);

  // Cy's copies of Ann's and Bob's audio and video came over a pipe to the other worker: four piped
  // producers there, four pipe consumers on the room's worker.
  const piped = await until(10000, async () => {
    const [producers, consumers] = [await byWorker('octo_pipe_producers'), await byWorker('octo_pipe_consumers')];
    const spilled = Object.keys(producers).find((w) => producers[w] >= 4);
    return spilled && Object.entries(consumers).some(([w, n]) => w !== spilled && n >= 4) ? { producers, consumers } : null;
  });
  assert.ok(piped, `pipes: ${JSON.stringify({ producers: await byWorker('octo_pipe_producers'), consumers: await byWorker('octo_pipe_consumers') })}`);
  console.log(`piped producers by worker ${JSON.stringify(piped.producers)}, pipe consumers ${JSON.stringify(piped.consumers)}`);

  // Chat over DataChannels crosses the pipe both ways.
  await say(ann, 'hello from the room worker');
  await Promise.all([shows(bob, 'hello from the room worker'), shows(cy, 'hello from the room worker')]);
  await say(cy, 'hello from the other worker');
  await Promise.all([shows(ann, 'hello from the other worker'), shows(bob, 'hello from the other worker')]);
});
