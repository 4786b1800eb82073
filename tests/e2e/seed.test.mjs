// The seed app's client order of calls (seed-page/client.js: `device.load()` not awaited, `join` and
// both `create-transport`s at once) with the real mediasoup-client in headless Chromium, against the
// real octo serving the page with `--web-root`. Started by tests/tests/web_e2e.rs, once per octo
// configuration:
// - OCTO_SEED_HOLD_MS: the `--seed-transport-hold-ms` octo runs with;
// - OCTO_SEED_SLOW_LOAD_MS: when set, the page's first `createOffer` (the one inside `device.load()`)
//   is late by that much, a slow machine made certain.
// With a hold, two pages call each other; with no hold (0) and a slow load, the page throws
// `not loaded` and never calls: the failure the hold exists to prevent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { URL, person, closeEveryone, until } from './lib.mjs';
import { buildSeedPage } from './seed-page/build.mjs';

const WEB_ROOT = process.env.OCTO_SEED_WEB_ROOT;
const HOLD_MS = Number(process.env.OCTO_SEED_HOLD_MS);
const SLOW_LOAD_MS = Number(process.env.OCTO_SEED_SLOW_LOAD_MS ?? 0);
if (!WEB_ROOT || Number.isNaN(HOLD_MS)) throw new Error('OCTO_SEED_WEB_ROOT and OCTO_SEED_HOLD_MS must be set (by web_e2e.rs)');

const room = `seed-e2e-${Date.now()}`;

// octo serves WEB_ROOT from disk on each request, so building after it started is fine.
before(() => buildSeedPage(WEB_ROOT));
after(closeEveryone);

/** A browser with the seed page open in `room` as `name`. */
async function seedPage(label, name) {
  const p = await person(label);
  if (SLOW_LOAD_MS > 0) {
    await p.page.addInitScript((ms) => {
      const createOffer = RTCPeerConnection.prototype.createOffer;
      let first = true;
      RTCPeerConnection.prototype.createOffer = async function late(...args) {
        if (first) {
          first = false;
          await new Promise((r) => setTimeout(r, ms));
        }
        return createOffer.apply(this, args);
      };
    }, SLOW_LOAD_MS);
  }
  await p.page.goto(`${URL}/?room=${encodeURIComponent(room)}&name=${encodeURIComponent(name)}`);
  return p;
}

const seed = (p) => p.page.evaluate(() => ({
  errors: window.seed.errors, events: window.seed.events, peerId: window.seed.peerId(), loaded: window.seed.loaded(),
  transports: window.seed.transports(),
}));
const received = (p) => p.page.evaluate(() => window.seed.received());

/** Index in `events` of the first one starting with `what` (after the timestamp); -1 if none. */
const at = (events, what) => events.findIndex((e) => e.slice(e.indexOf(' ') + 1).startsWith(what));

/** Waits until `p` has produced both its tracks; throws with the page's errors and events. */
async function waitProduced(p, ms) {
  const ok = await until(ms, async () => {
    const s = await seed(p);
    return s.errors.length > 0 || at(s.events, 'produced audio') >= 0;
  });
  const s = await seed(p);
  assert.ok(ok && s.errors.length === 0, `${p.label} did not start its call: ${JSON.stringify(s)}`);
}

/** Whether `p` decodes video (frames counted twice, growing, and a picture size) and gets audio from `peerId`. */
async function mediaFrom(p, peerId) {
  const pick = (r, kind) => r.find((x) => x.peerId === peerId && x.kind === kind);
  const before = await received(p);
  await new Promise((r) => setTimeout(r, 400));
  const now = await received(p);
  const [v0, v1, a0, a1] = [pick(before, 'video'), pick(now, 'video'), pick(before, 'audio'), pick(now, 'audio')];
  return Boolean(v0 && v1 && a0 && a1 && v1.framesDecoded > v0.framesDecoded && v1.videoWidth > 0
    && a1.packetsReceived > a0.packetsReceived);
}

if (HOLD_MS > 0) {
  assert.ok(SLOW_LOAD_MS < HOLD_MS, 'a load slower than the hold would fail by design');

  test(`two seed pages call through octo (hold ${HOLD_MS} ms, load slowed by ${SLOW_LOAD_MS} ms): media both ways within 10 s, then peer-left`, async () => {
    const ann = await seedPage('ann', 'Ann');
    await waitProduced(ann, 10000);
    const bob = await seedPage('bob', 'Bob');
    const bobJoined = Date.now();
    await waitProduced(bob, 10000);
    const [a, b] = [await seed(ann), await seed(bob)];

    // Each page's device had loaded before its transports arrived: the hold did its job.
    for (const [name, s] of [['Ann', a], ['Bob', b]]) {
      const loaded = at(s.events, 'loaded');
      assert.ok(loaded >= 0 && loaded < at(s.events, 'transport-created'), `transports before the load: ${s.events}`);
      const ms = (what) => parseInt(s.events[at(s.events, what)], 10) - parseInt(s.events[at(s.events, 'capabilities')], 10);
      console.log(`${name}: capabilities → loaded ${ms('loaded')} ms, → transport-created ${ms('transport-created')} ms`);
    }
    assert.ok(at(a.events, `peer-joined ${b.peerId} Bob`) >= 0, `Ann did not see Bob join: ${a.events}`);
    // Bob consumed Ann's producers from request-existing-producers, Ann Bob's from new-producer.
    assert.ok(at(b.events, 'existing producers 2') >= 0, b.events.join('\n'));
    assert.ok(at(a.events, 'new-producer') >= 0, a.events.join('\n'));

    const both = await until(10000, async () => (await mediaFrom(ann, b.peerId)) && (await mediaFrom(bob, a.peerId)), 0);
    assert.ok(both, `no media both ways within 10 s: Ann ${JSON.stringify(await received(ann))}, Bob ${JSON.stringify(await received(bob))}`);
    console.log(`media both ways ${Date.now() - bobJoined} ms after Bob opened the page`);

    await bob.page.evaluate(() => window.seed.leave());
    const gone = await until(5000, async () => at((await seed(ann)).events, `peer-left ${b.peerId}`) >= 0);
    assert.ok(gone, `Ann got no peer-left for Bob: ${(await seed(ann)).events.join('\n')}`);
    assert.deepEqual(await received(ann), []);
    for (const p of [ann, bob]) assert.deepEqual((await seed(p)).errors, [], p.label);
  });
} else {
  assert.ok(SLOW_LOAD_MS > 0, 'with no hold, only a load made slow fails for certain');

  test(`with no hold and a load slowed by ${SLOW_LOAD_MS} ms the seed page throws "not loaded" and never calls`, async () => {
    const ann = await seedPage('ann', 'Ann');
    const failed = await until(10000, async () => (await seed(ann)).errors.length > 0);
    assert.ok(failed, `no error: ${JSON.stringify(await seed(ann))}`);
    // Let the load finish: the call stays dead, as the seed app's would.
    assert.ok(await until(SLOW_LOAD_MS + 5000, async () => (await seed(ann)).loaded), 'the load never finished');
    const s = await seed(ann);
    assert.match(s.errors[0], /not loaded/);
    assert.ok(at(s.events, 'transport-created') < at(s.events, 'loaded'), s.events.join('\n'));
    assert.deepEqual(s.transports, { send: null, recv: null });
    assert.equal(at(s.events, 'produced'), -1);
  });
}
