// Room access by token: octo runs with --auth-secret from OCTO_TEST_SECRET.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { URL, connect, closeAll, ok, request, errorCode, jwt } from './lib.mjs';

after(closeAll);

const SECRET = process.env.OCTO_TEST_SECRET;
const now = () => Math.floor(Date.now() / 1000);

test('joinRoom needs a valid token naming the room', async () => {
  const s = await connect();
  const room = `auth-${Date.now()}`;
  const rejected = async (token, why) => {
    const ack = await request(s, 'joinRoom', { roomId: room, displayName: 'x', token });
    assert.equal(ack.error?.code, 'unauthorized', `${why}: ${JSON.stringify(ack)}`);
    return ack.error.message;
  };
  await rejected(undefined, 'no token');
  await rejected('not.a.jwt', 'garbage');
  await rejected(jwt({ room }, 'wrong secret'), 'bad signature');
  assert.equal(await rejected(jwt({ room, exp: now() - 3600 }, SECRET), 'expired'), 'token expired');
  await rejected(jwt({ room: 'other' }, SECRET), 'other room');
  const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ room })).toString('base64url')}.`;
  await rejected(none, 'alg none');

  const joined = await ok(s, 'joinRoom', { roomId: room, displayName: 'ignored', token: jwt({ room, name: 'Token Name', exp: now() + 600 }, SECRET) });
  assert.ok(joined.peerId);
  const t = await connect();
  const second = await ok(t, 'joinRoom', { roomId: room, displayName: 'Own Name', token: jwt({ room }, SECRET) });
  assert.deepEqual(second.peers, [{ peerId: s.id, displayName: 'Token Name', handRaisedAt: null }]);
});

test('the seed dialect needs the token too', async () => {
  const room = `auth-seed-${Date.now()}`;
  const res = await fetch(`${URL}/getRtpCapabilities?roomId=${room}`);
  assert.equal(res.status, 401);
  assert.equal((await res.json()).code, 'unauthorized');
  const token = jwt({ room }, SECRET);
  assert.equal((await fetch(`${URL}/getRtpCapabilities?roomId=${room}&token=${token}`)).status, 200);
  const s = await connect();
  const ack = await request(s, 'join', { roomId: room, peerName: 'x' });
  assert.equal(ack.code, 'unauthorized');
  assert.equal((await request(s, 'join', { roomId: room, peerName: 'x', token })).success, true);
  assert.equal(await errorCode(await connect(), 'joinRoom', { roomId: room }), 'unauthorized');
});
