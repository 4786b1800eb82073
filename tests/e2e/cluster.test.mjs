// Two Octo nodes sharing one Redis (a cluster, issue #15): Ann opens node A's link, Bob node B's,
// for the same room. Each node holds its own person's media; what the other sees comes through a
// pipe between the two nodes' workers. They see and hear each other and chat; Cy, who joins later
// through node B, finds what was said before in the chat (the room's history, kept in Redis).
// Then node A is killed: Ann's page moves to node B (the cluster told it where, `/servers`) and
// rejoins the room there, and the call goes on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { URL, person, closeEveryone, joinThroughUi, say, shows, until, waitMediaFrom } from './lib.mjs';

const URL_B = process.env.OCTO_URL_B;
const PID_A = Number(process.env.OCTO_PID_A);
if (!URL_B || !PID_A) throw new Error('OCTO_URL_B and OCTO_PID_A are set by tests/tests/web_e2e.rs');

const room = `cluster-${Date.now()}`;
let ann, bob, cy;

before(async () => {
  [ann, bob, cy] = await Promise.all([person('ann'), person('bob'), person('cy')]);
});
after(closeEveryone);

test('two people on two nodes see, hear and chat; a later joiner gets the chat history', async () => {
  assert.notEqual(URL, URL_B, 'the two pages must use two different nodes');
  await joinThroughUi(ann, room, 'Ann', URL);
  await joinThroughUi(bob, room, 'Bob', URL_B);
  // Video decoded and audio received both ways, across the nodes.
  await waitMediaFrom(ann, bob.peerId, 25000);
  await waitMediaFrom(bob, ann.peerId, 25000);
  const names = await ann.page.evaluate(() => window.octo.tiles().map((t) => t.label));
  assert.ok(names.includes('Bob'), `Ann's tiles: ${names}`);

  // Chat over DataChannels, piped between the nodes both ways.
  await say(ann, 'hello from node A');
  await shows(bob, 'hello from node A');
  await say(bob, 'hello from node B');
  await shows(ann, 'hello from node B');

  // Cy comes later, through node B: the chat panel has both lines, marked as from before.
  const history = await until(10000, async () => {
    await joinThroughUi(cy, room, 'Cy', URL_B);
    const lines = await cy.page.evaluate(() => window.octo.chatLines());
    if (lines.length >= 2) return lines;
    // The lines are kept as they pass through the node of whoever said them: a join that came
    // first may not have them yet. Leave and come back.
    await cy.page.click('#leave-btn');
    return null;
  }, 0);
  assert.ok(history, 'Cy never got the chat history');
  assert.deepEqual(
    history.map((l) => [l.from, l.text, l.earlier]),
    [['Ann', 'hello from node A', true], ['Bob', 'hello from node B', true]],
  );
  await waitMediaFrom(cy, ann.peerId, 25000);
  await waitMediaFrom(ann, cy.peerId, 25000);
});

test('when its node dies, a page moves to a live node of the cluster and the call goes on', async () => {
  const before = await ann.page.evaluate(() => window.octo.peerId());
  process.kill(PID_A, 'SIGKILL');
  const moved = await until(30000, () =>
    ann.page.evaluate((old) => {
      const id = window.octo.peerId();
      return id && id !== old ? { id, uri: window.octo.socket().io.uri } : null;
    }, before),
  );
  assert.ok(moved, "Ann's page did not rejoin after her node died");
  assert.ok(moved.uri.startsWith(URL_B), `Ann reconnected to ${moved.uri}, not node B (${URL_B})`);
  ann.peerId = moved.id;
  // Everyone is on node B now: the call is whole again.
  await waitMediaFrom(ann, bob.peerId, 25000);
  await waitMediaFrom(bob, ann.peerId, 25000);
  await waitMediaFrom(cy, ann.peerId, 25000);
});
