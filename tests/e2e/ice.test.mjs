// ICE restart in real Chromium over a real broken path. Nia's browser runs in a network namespace of
// its own; Bea's does not. Mid-call every UDP datagram of Nia's namespace is dropped (nftables, both
// ways), and every TCP packet but signaling's (ICE-TCP could carry media otherwise); her transports go `disconnected`, the client restarts
// their ICE (new credentials from the server, `restartIce`), and once the path is back both see the
// other's video again — as the same peers, without leaving the room.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { CHROMIUM_ARGS, URL, banner, closeEveryone, flow, joinThroughUi, person, sleep, udpBlocker, until, waitMediaFrom } from './lib.mjs';

const NS_CHROMIUM = process.env.OCTO_NS_CHROMIUM;
const NS = process.env.OCTO_NS;
if (!NS_CHROMIUM || !NS) throw new Error('started by tests/tests/web_e2e.rs with a network namespace');

const room = `ice-${Date.now()}`;
// Octo listens on the veth address (reachable from the namespace), not a secure origin the way
// loopback is: camera and microphone need it treated as one.
const args = [...CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${URL}`];
const bea = await person('bea', { args, cameraHeight: 180 });
const nia = await person('nia', { args, cameraHeight: 180, executablePath: NS_CHROMIUM });

const udp = udpBlocker(NS, 'octo_ice_test');
after(async () => {
  udp.mend();
  await closeEveryone();
});

/** Nia's transports' states as they change, and her ICE restarts, recorded in her page. */
const niaLog = () =>
  nia.page.evaluate(() => ({ states: window.__iceLog, restarts: window.octo.call.iceRestarts, peerId: window.octo.call.peerId }));

test('both join and see each other', async () => {
  await joinThroughUi(bea, room, 'Bea');
  await joinThroughUi(nia, room, 'Nia');
  await waitMediaFrom(bea, nia.peerId, 30000);
  await waitMediaFrom(nia, bea.peerId, 30000);
  await nia.page.evaluate(() => {
    const started = Date.now();
    window.__iceLog = [];
    window.octo.call.on('transportState', ({ direction, state }) => window.__iceLog.push(`${Date.now() - started}ms ${direction} ${state}`));
    window.octo.call.on('iceRestarted', ({ direction, why }) => window.__iceLog.push(`${Date.now() - started}ms ${direction} restarted (${why})`));
  });
});

// Chromium notices a dead path after ~5 s without packets (`disconnected`); an outage shorter than
// that heals by itself, with nothing to restart. This one lasts 5 s past that moment, so the client's
// restart (after 1 s of `disconnected`) happens while the path is still broken, and the call comes
// back on the new ICE credentials once it mends.
test('UDP dropped until 5 s past the disconnect: ICE restarts, both get video again, still in the room', async () => {
  const before = await niaLog();
  udp.blockMedia();
  const broken = Date.now();
  await sleep(2500);
  assert.equal(await flow(nia, bea.peerId, 'video', 1000), 0, 'video still reaches Nia: the path is not broken');
  const noticed = await until(20000, async () => (await niaLog()).states.some((s) => / (disconnected|failed)$/.test(s)), 200);
  assert.ok(noticed, `Nia's transports never noticed the break: ${JSON.stringify(await niaLog())}`);
  const noticedAfter = Date.now() - broken;
  await sleep(5000);
  const during = await banner(nia);
  udp.mend();
  const mended = Date.now();
  const back = await until(20000, async () => (await flow(nia, bea.peerId, 'video', 700)) > 0 && (await flow(bea, nia.peerId, 'video', 700)) > 0, 0);
  const log = await niaLog();
  console.log(`broken ${mended - broken} ms (noticed after ${noticedAfter} ms); video back both ways ${Date.now() - mended} ms after mending; Nia's transports: ${log.states.join(', ')}; banner while broken: "${during.text}"`);
  assert.ok(back, `video did not come back both ways within 20 s: ${JSON.stringify(log)}`);
  assert.ok(log.restarts > before.restarts, `no ICE restart happened: ${JSON.stringify(log)}`);
  assert.equal(log.peerId, before.peerId, 'Nia left and rejoined instead of restarting ICE');
  assert.equal(during.kind, 'warn', `what Nia was told while broken: ${JSON.stringify(during)}`);
  // And the audio, too, both ways.
  assert.ok((await flow(nia, bea.peerId, 'audio', 1000)) > 0, 'no audio from Bea after the restart');
  assert.ok((await flow(bea, nia.peerId, 'audio', 1000)) > 0, 'no audio from Nia after the restart');
});
