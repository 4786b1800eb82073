// What a new user meets (issue #20), part two, in Debian's headless Chromium against the real octo:
// room and display names that cannot work, a mistyped link (an empty room), and the same person
// twice. Tests run in order and share the people.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { URL, PHONE, person, closeEveryone, joinThroughUi, leaveCall, tiles, until, assertReachable } from './lib.mjs';

const room = `names-${Date.now()}`;
let ann, bob;

before(async () => {
  [ann, bob] = await Promise.all([person('ann', { viewport: PHONE }), person('bob')]);
  await bob.page.goto(`${URL}/`);
});
after(closeEveryone);

/** Clicks Join in `p`'s lobby and returns the lobby's error once there is one. */
async function joinError(p) {
  await p.page.click('#join');
  const text = await until(5000, () => p.page.textContent('#lobby-error'));
  assert.equal(await p.page.isVisible('#lobby'), true, `${p.label} left the lobby`);
  return text;
}

test('room names that cannot work get a plain-language message, never silence or the server\'s wording', async () => {
  // Only spaces.
  await bob.page.fill('#room', '     ');
  await bob.page.fill('#name', 'Bob');
  assert.match(await joinError(bob), /Type the name of a room/);
  // A link with a room name longer than the server allows: said on opening the link, and on Join.
  await bob.page.goto(`${URL}/?room=${'x'.repeat(200)}`);
  assert.match(await until(5000, () => bob.page.textContent('#lobby-error')), /too long/);
  await bob.page.fill('#name', 'Bob');
  const long = await joinError(bob);
  assert.match(long, /too long/);
  assert.doesNotMatch(long, /roomId|bytes|bad_request|refused/);
  // 100 letters the field accepts, but 200 bytes of UTF-8: too long for the server all the same.
  await bob.page.fill('#room', 'é'.repeat(100));
  assert.match(await joinError(bob), /too long/);
  // A link whose room name has a control character (a tab: the field keeps it, the server refuses it).
  await bob.page.goto(`${URL}/?room=team%09standup`);
  assert.match(await until(5000, () => bob.page.textContent('#lobby-error')), /cannot contain line breaks or tabs/);
  assert.match(await joinError(bob), /cannot contain line breaks or tabs/);
  // A name of only spaces.
  await bob.page.fill('#room', room);
  await bob.page.fill('#name', '   ');
  assert.match(await joinError(bob), /Type your name/);
  assert.equal(await bob.page.evaluate(() => window.octo.peerId()), null, 'Bob joined with a bad name');
});

test('a mistyped link opens an empty room and says so: you are the first one here', async () => {
  await joinThroughUi(bob, `${room}-typo`, 'Bob');
  const notice = await until(5000, async () => (await bob.page.isVisible('#notice')) && bob.page.textContent('#notice'));
  assert.match(notice, /You are the first one here/);
  assert.match(notice, new RegExp(`${room}-typo`));
});

test('the same person twice (a second tab, same name) is told so, and the others see two different labels', async () => {
  // Bob opens a second tab of the same browser and joins the same room under the same name.
  const bob2 = { label: 'bob-tab2', page: await bob.context.newPage(), peerId: null };
  await joinThroughUi(bob2, `${room}-typo`, 'Bob');
  for (const p of [bob, bob2]) {
    const notice = await until(8000, async () => {
      const t = (await p.page.isVisible('#notice')) && (await p.page.textContent('#notice'));
      return t && /already in this call/.test(t) ? t : null;
    });
    assert.match(notice ?? '', /Someone named “Bob” is already in this call.*another tab or device/, `${p.label} is not told`);
  }
  // Ann (a phone) comes to that room: two Bobs, told apart; she is not told anything about herself.
  await joinThroughUi(ann, `${room}-typo`, 'Ann');
  const labels = await until(8000, async () => {
    const bobs = (await tiles(ann)).filter((t) => t.kind === 'camera' && t.name === 'Bob');
    return bobs.length === 2 ? bobs.map((t) => t.label).sort() : null;
  });
  assert.deepEqual(labels, ['Bob', 'Bob (2)']);
  const shown = await ann.page.$$eval('.tile .name', (els) => els.map((e) => e.textContent));
  assert.equal(new Set(shown).size, shown.length, `two tiles look the same: ${shown}`);
  assert.equal(await ann.page.isVisible('#notice'), false, 'Ann gets a notice meant for Bob');
  await assertReachable(ann, '#controls button', 7);
  // When one tab leaves, the other is no longer warned.
  await leaveCall(bob2);
  assert.equal(await until(8000, async () => !(await bob.page.isVisible('#notice'))), true, 'Bob is still warned');
});
