// Invitation links: an octo started with `--auth-secret` (tests/tests/web_e2e.rs, which hands the
// secret over as OCTO_AUTH_SECRET) lets in only pages whose `?token=` is a JWT signed with it for
// that room (PROTOCOL.md, Access). A person without one, with an expired one or one for another
// room is told so in words, and stays in the lobby; a good one joins under the token's name.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { URL, person, closeEveryone, joinFromLobby, until } from './lib.mjs';

const SECRET = process.env.OCTO_AUTH_SECRET;
assert.ok(SECRET, 'OCTO_AUTH_SECRET: the secret octo was started with');

after(closeEveryone);

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
/** An HS256 JWT with `claims`, signed with `secret`. */
function token(claims, secret = SECRET) {
  const unsigned = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

/** Opens the lobby of `room` with `tok` (none if null), types `name` and presses Join. */
async function tryJoin(p, room, tok, name) {
  await p.page.goto(`${URL}/?room=${encodeURIComponent(room)}${tok ? `&token=${encodeURIComponent(tok)}` : ''}`);
  await p.page.fill('#name', name);
  await p.page.click('#join');
}

/** The lobby's error once shown; asserts that the person is still in the lobby. */
async function refusal(p) {
  const text = await until(10000, () => p.page.textContent('#lobby-error'));
  assert.equal(await p.page.isVisible('#lobby'), true, `${p.label} left the lobby`);
  assert.equal(await p.page.isVisible('#call'), false, `${p.label} is in the call`);
  return text;
}

test('without an invitation link a person is told to ask for one', async () => {
  const p = await person('uninvited');
  await tryJoin(p, `closed-${Date.now()}`, null, 'Uninvited');
  assert.match(await refusal(p), /needs an invitation link.*ask/i);
});

test('an expired link, a link for another room and a forged one are each told apart', async () => {
  const room = `closed-${Date.now()}`;
  const p = await person('refused');
  await tryJoin(p, room, token({ room, exp: Math.floor(Date.now() / 1000) - 3600 }), 'Late');
  assert.match(await refusal(p), /invitation link has expired.*new one/i);
  await tryJoin(p, room, token({ room: 'elsewhere', exp: inAnHour() }), 'Lost');
  assert.match(await refusal(p), /invitation link is for another room/i);
  await tryJoin(p, room, token({ room, exp: inAnHour() }, 'not-the-secret'), 'Forger');
  assert.match(await refusal(p), /invitation link is not valid/i);
});

test('a good link lets the person in, under the name the link gives', async () => {
  const room = `closed-${Date.now()}`;
  const [ann, bob] = await Promise.all([person('ann'), person('bob')]);
  await tryJoin(ann, room, token({ room, exp: inAnHour(), name: 'Ann from the invitation' }), 'Typed name');
  await ann.page.waitForFunction(() => window.octo.peerId() !== null, null, { timeout: 15000 });
  await bob.page.goto(`${URL}/?room=${room}&token=${token({ room, exp: inAnHour() })}`);
  await bob.page.fill('#name', 'Bob');
  await joinFromLobby(bob);
  const names = await until(15000, async () => {
    const l = await bob.page.evaluate(() => window.octo.people());
    return l.length === 2 ? l.map((r) => r.name) : null;
  });
  assert.ok(names?.includes('Ann from the invitation'), `Bob's list: ${JSON.stringify(names)}`);
});
