// A call over a link with half the bandwidth the video wants, in real Chromium: Lia's browser runs in
// a network namespace whose downlink from Octo is shaped with `tc … tbf` to half of what she received
// of Bea's 720p camera unshaped (its top simulcast layer, and audio). Octo's downlink estimator moves
// Lia to a layer that fits, its pacer and retransmission budget keep what it sends within the
// estimate, and her picture of Bea keeps decoding. The figures are printed.
//
// Bea's camera is 720p: at 360p her stream is ~160 kbit/s, and half of it is less than audio and
// the lowest layer at its lowest frame rate need on the wire (~87 kbit/s with IP, UDP and Ethernet
// headers), which no forwarding choice can fit (RELIABILITY.md, Chaos).
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { CHROMIUM_ARGS, URL, closeEveryone, joinThroughUi, linkShaper, person, sleep, stats, videoFrom, waitMediaFrom } from './lib.mjs';

const NS_CHROMIUM = process.env.OCTO_NS_CHROMIUM;
const SHAPE_DEV = process.env.OCTO_SHAPE_DEV;
if (!NS_CHROMIUM || !SHAPE_DEV) throw new Error('started by tests/tests/web_e2e.rs with a network namespace');

const WINDOW_MS = 20000;
const args = [...CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${URL}`];
const bea = await person('bea', { args, cameraHeight: 720 });
// Large enough that Lia's tile of Bea asks for the top layer: only the link can keep her off it.
const lia = await person('lia', { args, cameraHeight: 180, executablePath: NS_CHROMIUM, viewport: { width: 1920, height: 1080 } });
const link = linkShaper(SHAPE_DEV);
after(async () => {
  link.unshape();
  await closeEveryone();
});

test('both join and see each other', async () => {
  const room = `shaped-${Date.now()}`;
  await joinThroughUi(bea, room, 'Bea');
  await joinThroughUi(lia, room, 'Lia');
  await waitMediaFrom(lia, bea.peerId, 30000);
  await waitMediaFrom(bea, lia.peerId, 30000);
});

test('a downlink at half the stream\'s rate: the layer steps down and the video keeps decoding', async () => {
  // The stream's rate as Lia gets it unshaped (her big tile asks for the top layer Bea sends).
  // Audio shares the link: the stream is Bea's video and audio together.
  // Bea's encoder ramps up to 720p over seconds: measure once Lia gets the top layer.
  const topBy = Date.now() + 30000;
  while ((await videoFrom(lia, bea))?.spatialLayer !== 2) {
    assert.ok(Date.now() < topBy, `Lia never got Bea's top layer unshaped: ${JSON.stringify(await videoFrom(lia, bea))}`);
    await sleep(500);
  }
  await sleep(1000);
  const bytesFromBea = async () => (await stats(lia)).filter((c) => c.peerId === bea.peerId).reduce((n, c) => n + c.bytesReceived, 0);
  const a = await bytesFromBea();
  await sleep(4000);
  const b = await videoFrom(lia, bea);
  const unshapedKbps = (((await bytesFromBea()) - a) * 8) / 4 / 1000;
  const unshapedLayer = b.spatialLayer;
  const RATE_KBIT = Math.max(30, Math.round(unshapedKbps / 2));
  // A 100 ms queue at the shaped rate, then drop-tail (what a congested home router does).
  link.shape(`${RATE_KBIT}kbit`, '4kb', '100ms');
  const before = await videoFrom(lia, bea);
  const layers = [];
  for (let t = 0; t < WINDOW_MS; t += 2000) {
    await sleep(2000);
    layers.push((await videoFrom(lia, bea)).spatialLayer);
  }
  const after_ = await videoFrom(lia, bea);
  // What Octo sent towards Lia meanwhile, as its own stats say (the transport's and each consumer's).
  const server = await lia.page.evaluate(async () => {
    const call = window.octo.call;
    const t = await call.request('getStats', { id: call.recvTransport.id });
    const consumers = [];
    for (const [id] of call.consumers) consumers.push(...(await call.request('getStats', { id })));
    return { transport: t, consumers };
  });
  link.unshape();
  const seconds = WINDOW_MS / 1000;
  const figures = {
    fps: +((after_.framesDecoded - before.framesDecoded) / seconds).toFixed(1),
    kbps: Math.round(((after_.bytesReceived - before.bytesReceived) * 8) / seconds / 1000),
    freezes: after_.freezeCount - before.freezeCount,
    nacks: after_.nackCount - before.nackCount,
    plis: after_.pliCount - before.pliCount,
    layers: layers.join(','),
    unshaped: `${Math.round(unshapedKbps)} kbit/s on layer ${unshapedLayer}`,
    frame: `${after_.frameWidth}×${after_.frameHeight}`,
  };
  console.log(`Lia behind ${RATE_KBIT} kbit/s: ${JSON.stringify(figures)}`);
  console.log(`Octo's view: ${JSON.stringify(server)}`);
  assert.ok(figures.fps >= 5, `Lia's video of Bea nearly stopped: ${JSON.stringify(figures)}`);
  assert.ok(figures.kbps <= RATE_KBIT, `more than the link carries arrived: ${JSON.stringify(figures)}`);
  // Mostly below the unshaped layer: a probe through the shaper's 4 kB burst can lift her up for a
  // sample before the loss brings her back (see RELIABILITY.md).
  const lower = layers.filter((l) => l !== null && l < unshapedLayer).length;
  assert.ok(lower >= 7, `Lia was not kept below layer ${unshapedLayer}: ${JSON.stringify(figures)}`);
});
