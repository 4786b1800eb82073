// A call over a lossy path, in real Chromium: Lia's browser runs in a network namespace that drops
// 5 % of UDP datagrams at random each way (nftables `numgen`), Bea's does not. Over 20 s both keep
// decoding each other's video. Losses on Lia's downlink are NACKed by her browser and retransmitted
// by Octo from its buffer (RTX); losses on her uplink are NACKed by Octo towards her browser, so Bea,
// behind a clean link, should see next to none. The figures are printed.
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { CHROMIUM_ARGS, URL, closeEveryone, joinThroughUi, person, sleep, udpBlocker, videoFrom, waitMediaFrom } from './lib.mjs';

const NS_CHROMIUM = process.env.OCTO_NS_CHROMIUM;
const NS = process.env.OCTO_NS;
if (!NS_CHROMIUM || !NS) throw new Error('started by tests/tests/web_e2e.rs with a network namespace');

const LOSS_PERCENT = 5;
const WINDOW_MS = 20000;
const args = [...CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${URL}`];
const bea = await person('bea', { args, cameraHeight: 360 });
const lia = await person('lia', { args, cameraHeight: 360, executablePath: NS_CHROMIUM });
const udp = udpBlocker(NS, 'octo_loss_test');
after(async () => {
  udp.mend();
  await closeEveryone();
});

test('both join and see each other', async () => {
  const room = `loss-${Date.now()}`;
  await joinThroughUi(bea, room, 'Bea');
  await joinThroughUi(lia, room, 'Lia');
  await waitMediaFrom(bea, lia.peerId, 30000);
  await waitMediaFrom(lia, bea.peerId, 30000);
});

test(`${LOSS_PERCENT} % loss each way: video keeps decoding, losses are repaired`, async () => {
  udp.block(LOSS_PERCENT);
  const [liaBefore, beaBefore] = [await videoFrom(lia, bea), await videoFrom(bea, lia)];
  await sleep(WINDOW_MS);
  const [liaAfter, beaAfter] = [await videoFrom(lia, bea), await videoFrom(bea, lia)];
  udp.mend();
  const delta = (a, b, k) => b[k] - a[k];
  const figures = (who, a, b) => {
    const received = delta(a, b, 'packetsReceived');
    const lost = delta(a, b, 'packetsLost');
    return {
      who,
      fps: +(delta(a, b, 'framesDecoded') / (WINDOW_MS / 1000)).toFixed(1),
      freezes: delta(a, b, 'freezeCount'),
      nacks: delta(a, b, 'nackCount'),
      plis: delta(a, b, 'pliCount'),
      rtx: delta(a, b, 'retransmittedPacketsReceived'),
      packets: received,
      // The receiver's RFC 3550 loss on the media stream (Chromium does not count packets repaired
      // by RTX as received there, so on a lossy link this is the link's loss).
      lostPercent: +((100 * lost) / Math.max(1, received + lost)).toFixed(2),
    };
  };
  const liaGot = figures('Lia gets Bea (loss on her downlink)', liaBefore, liaAfter);
  const beaGot = figures('Bea gets Lia (loss on her uplink)', beaBefore, beaAfter);
  console.log(JSON.stringify(liaGot));
  console.log(JSON.stringify(beaGot));
  for (const f of [liaGot, beaGot]) assert.ok(f.fps >= 10, `video nearly stopped: ${JSON.stringify(f)}`);
  // Octo answers Lia's NACKs from its buffer: she asks, and retransmissions come back.
  assert.ok(liaGot.nacks > 0, `Lia never NACKed through ${LOSS_PERCENT} % loss: ${JSON.stringify(liaGot)}`);
  assert.ok(liaGot.rtx > 0, `no retransmission reached Lia: ${JSON.stringify(liaGot)}`);
  // Lia's uplink losses were repaired before Octo forwarded her video: Bea saw (almost) none.
  assert.ok(beaGot.lostPercent < LOSS_PERCENT / 2, `Lia's uplink loss reached Bea: ${JSON.stringify(beaGot)}`);
});
