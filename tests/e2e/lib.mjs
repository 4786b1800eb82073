// Helpers for the end-to-end tests: Debian's headless Chromium (fake camera and microphone) driven
// by playwright-core, one browser per person with a fresh profile, and the app's `window.octo` hook.
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

export const URL = process.env.OCTO_URL;
if (!URL) throw new Error('OCTO_URL is not set: these tests are started by tests/tests/web_e2e.rs');
export const CHROMIUM = process.env.OCTO_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = process.env.OCTO_ARTIFACTS;

export const CHROMIUM_ARGS = [
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--autoplay-policy=no-user-gesture-required',
];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const people = new Set();

/** A phone in portrait (the size of an iPhone 12–15), for the layout tests. */
export const PHONE = { width: 390, height: 844 };

/**
 * One person: their own Chromium with a fresh profile, one page. Every camera, microphone and
 * screen track the app's pages get is recorded in `window.__octoTracks` (see `liveTracks`), so a test
 * can tell whether any is still on without trusting the app to report its own.
 */
export async function person(
  label,
  { args = CHROMIUM_ARGS, viewport = { width: 1024, height: 640 }, cameraHeight = 360, executablePath = CHROMIUM } = {},
) {
  const dir = await mkdtemp(path.join(tmpdir(), `octo-e2e-${label}-`));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath,
    headless: true,
    args,
    viewport,
    timeout: 30000,
  });
  // The app captures 720p; most tests do not need it, and several pages encoding 720p simulcast at
  // once would load a two-core runner for nothing.
  await context.addInitScript((h) => {
    try {
      localStorage.setItem('octo.cameraHeight', String(h));
    } catch {
      // about:blank has no storage
    }
  }, cameraHeight);
  await context.addInitScript(() => {
    const seen = (window.__octoTracks = []);
    const md = navigator.mediaDevices;
    for (const fn of ['getUserMedia', 'getDisplayMedia']) {
      const original = md?.[fn]?.bind(md);
      if (!original) continue;
      md[fn] = async (constraints) => {
        const stream = await original(constraints);
        seen.push(...stream.getTracks());
        return stream;
      };
    }
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => console.log(`[${label}] page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') console.log(`[${label}] console.${m.type()}: ${m.text()}`);
  });
  const p = { label, dir, context, page, peerId: null };
  people.add(p);
  return p;
}

/** Closes a person's browser (and removes their profile). */
export async function close(p) {
  people.delete(p);
  await p.context.close().catch(() => {});
  await rm(p.dir, { recursive: true, force: true }).catch(() => {});
}

export async function closeEveryone() {
  await Promise.all([...people].map(close));
}

/** Opens the shareable link (of the Octo at `url`), types the name and clicks Join: the real lobby.
 * Resolves with the peer id. */
export async function joinThroughUi(p, room, name, url = URL) {
  await p.page.goto(`${url}/?room=${encodeURIComponent(room)}`);
  const roomField = await p.page.inputValue('#room');
  if (roomField !== room) throw new Error(`${p.label}: the link did not fill the room field (${roomField})`);
  await p.page.fill('#name', name);
  // The preview shows the fake camera before we join, as a person would see it.
  await p.page.waitForFunction(() => document.getElementById('preview').srcObject?.getVideoTracks().length === 1);
  return joinFromLobby(p);
}

/** `window.octo.stats()`: one entry per consumer. */
export const stats = (p) => p.page.evaluate(() => window.octo.stats());
/** `window.octo.tiles()`: the grid as shown. */
export const tiles = (p) => p.page.evaluate(() => window.octo.tiles());

/** Sums a counter over `p`'s consumers of `peerId`'s `kind` stream. */
export async function counter(p, peerId, kind, field) {
  const s = await stats(p);
  const mine = s.filter((c) => c.peerId === peerId && c.kind === kind && c.source !== 'screen');
  return mine.length ? mine.reduce((n, c) => n + c[field], 0) : null;
}

const FIELD = { video: 'framesDecoded', audio: 'packetsReceived' };

/** How much `p` received of `peerId`'s `kind` over `ms` (frames decoded for video, packets for audio). */
export async function flow(p, peerId, kind, ms = 1000) {
  const before = await counter(p, peerId, kind, FIELD[kind]);
  await sleep(ms);
  const after = await counter(p, peerId, kind, FIELD[kind]);
  return before === null || after === null ? 0 : after - before;
}

/** Polls `check` until it returns a truthy value or `ms` pass; returns the last value. */
export async function until(ms, check, every = 250) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await check();
    if (last || Date.now() > deadline) return last;
    await sleep(every);
  }
}

/** Waits until `p` decodes `peerId`'s video and receives its audio; throws with what it saw. */
export async function waitMediaFrom(p, peerId, ms) {
  const ok = await until(ms, async () => (await flow(p, peerId, 'video', 500)) > 0 && (await flow(p, peerId, 'audio', 300)) > 0, 0);
  if (!ok) throw new Error(`${p.label} gets no media from ${peerId} within ${ms} ms: ${JSON.stringify(await stats(p))}`);
}

/** The tile of `peerId`'s camera as `p` shows it (undefined if none). */
export async function tileOf(p, peerId) {
  return (await tiles(p)).find((t) => t.peerId === peerId && t.kind === 'camera');
}

/** The kinds of the local tracks `page` ever got that are not ended (`readyState !== 'ended'`). */
export function liveTracks(page) {
  return page.evaluate(() => window.__octoTracks.filter((t) => t.readyState !== 'ended').map((t) => t.kind));
}

/** The status banner under the room name: its text and kind (`ok`, `warn`, `error`, `info`). */
export function banner(p) {
  return p.page.evaluate(() => {
    const b = document.getElementById('banner');
    return { text: b.hidden ? '' : b.textContent, kind: b.dataset.kind ?? null };
  });
}

/** Clicks Leave and waits for the lobby. */
export async function leaveCall(p) {
  await p.page.click('#leave-btn');
  await p.page.waitForSelector('#lobby', { state: 'visible' });
}

/** Clicks Join in the lobby as it is (room, name and switches already set); resolves with the peer id. */
export async function joinFromLobby(p) {
  await p.page.click('#join');
  await p.page.waitForFunction(() => window.octo.peerId() !== null, null, { timeout: 10000 });
  p.peerId = await p.page.evaluate(() => window.octo.peerId());
  return p.peerId;
}

/** Whether `pid` runs: a zombie does not (the test binary that started it reaps it only at the end). */
export function processRuns(pid) {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop().split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * The controls of `page` that are shown, each with whether its box lies inside the viewport and
 * whether a click at its centre lands on it (nothing covers it).
 */
function controlsReach(page, selector) {
  return page.evaluate((selector) => {
    const vw = window.innerWidth;
    const vh = window.innerHeight;
    return [...document.querySelectorAll(selector)]
      .filter((el) => el.offsetParent !== null)
      .map((el) => {
        const r = el.getBoundingClientRect();
        const inside = r.left >= 0 && r.top >= 0 && r.right <= vw && r.bottom <= vh && r.width > 0 && r.height > 0;
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return { id: el.id || el.textContent, inside, onTop: !!hit && (hit === el || el.contains(hit)), box: [r.left, r.top, r.right, r.bottom].map(Math.round) };
      });
  }, selector);
}

/** Asserts every shown control under `selector` is inside the viewport and clickable there. */
export async function assertReachable(p, selector, atLeast) {
  const reach = await controlsReach(p.page, selector);
  assert.ok(reach.length >= atLeast, `${p.label}: only ${reach.length} controls under ${selector}`);
  const bad = reach.filter((c) => !c.inside || !c.onTop);
  assert.deepEqual(bad, [], `${p.label} at ${JSON.stringify(p.page.viewportSize())}: controls out of reach`);
  return reach;
}

/** Asserts that the visible elements under `selector` on `p` are each at least 44 × 44 px (Apple's
 * and Google's guideline for a thumb) and that none lies over another; returns their boxes. */
export async function assertTouchable(p, selector) {
  const boxes = await p.page.$$eval(selector, (els) =>
    els.filter((e) => e.offsetParent !== null).map((e) => ({ id: e.id || e.textContent, ...e.getBoundingClientRect().toJSON() })));
  for (const [i, a] of boxes.entries()) {
    assert.ok(a.width >= 44 && a.height >= 44, `${p.label}: ${a.id} is ${a.width}×${a.height}: too small to touch`);
    for (const b of boxes.slice(i + 1)) {
      const apart = a.x + a.width <= b.x + 1 || b.x + b.width <= a.x + 1 || a.y + a.height <= b.y + 1 || b.y + b.height <= a.y + 1;
      assert.ok(apart, `${p.label}: ${a.id} and ${b.id} overlap`);
    }
  }
  return boxes;
}

/** Says `text` in the chat panel (opening it if needed) and presses Enter. */
export async function say(p, text) {
  if (await p.page.isHidden('#chat')) await p.page.click('#chat-btn');
  await p.page.fill('#chat-input', text);
  await p.page.press('#chat-input', 'Enter');
}

/** Resolves once `p`'s chat log shows a line reading `text`. */
export const shows = (p, text) =>
  p.page.waitForFunction(
    (t) => [...document.querySelectorAll('#chat-log .msg .text')].some((e) => e.textContent === t),
    text,
    { polling: 100, timeout: 20000 },
  );

/** Drops UDP datagrams in and out of network namespace `ns` (nftables table `table`) while TCP
 * goes on: signaling stays up, media over UDP does not (ICE-TCP may take over). `block(percent)`
 * drops that share of them at random (each way), all by default; `blockMedia` blocks ICE-TCP too.
 * `mend` is safe to call when nothing is blocked. */
export function udpBlocker(ns, table) {
  const nft = (...a) => execFileSync('ip', ['netns', 'exec', ns, 'nft', ...a], { stdio: 'pipe' });
  return {
    block(percent = 100) {
      const share = percent >= 100 ? [] : ['numgen', 'random', 'mod', '100', '<', String(percent)];
      nft('add', 'table', 'inet', table);
      nft('add', 'chain', 'inet', table, 'in', '{ type filter hook input priority 0; }');
      nft('add', 'chain', 'inet', table, 'out', '{ type filter hook output priority 0; }');
      nft('add', 'rule', 'inet', table, 'in', 'meta', 'l4proto', 'udp', ...share, 'drop');
      nft('add', 'rule', 'inet', table, 'out', 'meta', 'l4proto', 'udp', ...share, 'drop');
    },
    /** All of the media's ways: UDP, and TCP but for connections to the web server (signaling) and
     * to `alsoAllowed` ports (a TURN server's): Octo's ICE-TCP is out of reach as well. */
    blockMedia(...alsoAllowed) {
      this.block();
      const ports = [new globalThis.URL(URL).port, ...alsoAllowed.map(String)];
      nft('add', 'rule', 'inet', table, 'out', 'tcp', 'dport', '!=', `{ ${ports.join(', ')} }`, 'drop');
    },
    mend() {
      try {
        nft('delete', 'table', 'inet', table);
      } catch {
        // nothing blocked, or the namespace is gone
      }
    },
  };
}

/** Shapes what the host sends out of veth end `dev` (a namespace's downlink) with `tc … tbf`:
 * `shape(rate, burst, latency)`, e.g. `shape('400kbit', '10kb', '200ms')`; `unshape` is safe to
 * call when nothing is shaped. */
export function linkShaper(dev) {
  const tc = (...a) => execFileSync('tc', a, { stdio: 'pipe' });
  return {
    shape(rate, burst, latency) {
      tc('qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', rate, 'burst', burst, 'latency', latency);
    },
    unshape() {
      try {
        tc('qdisc', 'del', 'dev', dev, 'root');
      } catch {
        // nothing was shaped
      }
    },
  };
}

/** `p`'s receive stats of `from`'s camera (not a screen share). */
export async function videoFrom(p, from) {
  return (await stats(p)).find((c) => c.peerId === from.peerId && c.kind === 'video' && c.source !== 'screen');
}

/** The candidate types and protocols of each of `p`'s transports' selected pairs (`relayProtocol`:
 * how a relay candidate reaches its TURN server). */
export const selectedPairs = (p) =>
  p.page.evaluate(async () => {
    const out = [];
    for (const t of [window.octo.call.sendTransport, window.octo.call.recvTransport]) {
      const report = await t.getStats();
      const byId = new Map([...report.values()].map((s) => [s.id, s]));
      const transport = [...report.values()].find((s) => s.type === 'transport' && s.selectedCandidatePairId);
      const pair = transport ? byId.get(transport.selectedCandidatePairId) : [...report.values()].find((s) => s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded');
      const local = pair && byId.get(pair.localCandidateId);
      const remote = pair && byId.get(pair.remoteCandidateId);
      out.push({
        direction: t.direction,
        local: local?.candidateType,
        localProtocol: local?.protocol,
        tcpType: local?.tcpType,
        relayProtocol: local?.relayProtocol,
        remote: remote?.candidateType,
        remoteProtocol: remote?.protocol,
      });
    }
    return out;
  });
