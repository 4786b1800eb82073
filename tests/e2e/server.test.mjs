// The server going away under a call, in Debian's headless Chromium: the `octo` process killed
// (SIGKILL: no goodbye) and started again on the same address. Started by tests/tests/web_e2e.rs
// with the first octo's pid and the binary (OCTO_PID, OCTO_BIN); this script starts the second octo
// itself. (The graceful shutdown is drain.test.mjs.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { URL, person, closeEveryone, joinThroughUi, tiles, tileOf, flow, until, waitMediaFrom, banner, sleep, processRuns } from './lib.mjs';

const FIRST_PID = Number(process.env.OCTO_PID);
const BIN = process.env.OCTO_BIN;
if (!FIRST_PID || !BIN) throw new Error('OCTO_PID and OCTO_BIN are set by tests/tests/web_e2e.rs');
const ADDR = new globalThis.URL(URL).host;

const room = `srv-${Date.now()}`;
let ann, bob;
/** The octo this script started after killing the first. */
let second = null;

before(async () => {
  [ann, bob] = await Promise.all([person('ann'), person('bob')]);
});
after(async () => {
  await closeEveryone();
  if (second && second.exitCode === null) second.kill('SIGKILL');
});
// Never leave an octo behind, whatever ends this process.
process.on('exit', () => second?.exitCode === null && second.kill('SIGKILL'));

/** Starts `octo` on the first one's address; resolves once it listens. */
function startSecond() {
  const child = spawn(BIN, ['--listen', ADDR, '--metrics-listen', '127.0.0.1:0', '--workers', '1'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`the second octo did not listen within 20 s:\n${log}`)), 20000);
    child.stderr.on('data', (chunk) => {
      log += chunk;
      process.stderr.write(`[octo 2] ${chunk}`);
      if (log.includes('listening on')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code) => reject(new Error(`the second octo exited (${code}):\n${log}`)));
  });
}

/** How much `p`'s frozen picture of `peerId` varies (0 for a blank or black canvas; null without one). */
function frozenDetail(p, peerId) {
  return p.page.evaluate((peerId) => {
    const c = document.querySelector(`.tile[data-peer-id="${peerId}"][data-kind="camera"] canvas.frozen`);
    if (!c || !c.width) return null;
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let sum = 0;
    let sq = 0;
    let n = 0;
    for (let i = 0; i < px.length; i += 4 * 97) {
      const y = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
      sum += y;
      sq += y * y;
      n++;
    }
    return Math.sqrt(sq / n - (sum / n) ** 2);
  }, peerId);
}

test('the server killed: the other tile stays, frozen and marked reconnecting, then comes back; mute is kept', async () => {
  await joinThroughUi(ann, room, 'Ann');
  await joinThroughUi(bob, room, 'Bob');
  await Promise.all([waitMediaFrom(ann, bob.peerId, 15000), waitMediaFrom(bob, ann.peerId, 15000)]);
  // Ann mutes before the drop; the automatic rejoin must keep it.
  await ann.page.click('#mic-btn');
  assert.equal(await until(5000, async () => (await tileOf(bob, ann.peerId))?.mic === 'off'), true);
  // Mark each page's tile of the other: the same element must be there after the drop, not a new one.
  for (const [p, other] of [[ann, bob], [bob, ann]]) {
    await p.page.$eval(`.tile[data-peer-id="${other.peerId}"]`, (el) => (el.dataset.testMark = 'before-the-drop'));
  }

  // Every banner shown from now on, with its colour: "Back in the call" lasts 3 s, which a poll of a
  // page on a loaded machine could miss.
  for (const p of [ann, bob]) {
    await p.page.evaluate(() => {
      const b = document.getElementById('banner');
      window.__banners = [];
      new MutationObserver(() => {
        if (!b.hidden) window.__banners.push({ text: b.textContent, kind: b.dataset.kind, bg: getComputedStyle(b).backgroundColor });
      }).observe(b, { attributes: true, childList: true, characterData: true, subtree: true });
    });
  }
  process.kill(FIRST_PID, 'SIGKILL');
  assert.equal(await until(5000, () => !processRuns(FIRST_PID)), true, 'the first octo did not die');
  for (const [p, other] of [[ann, bob], [bob, ann]]) {
    const t = await until(10000, async () => {
      const x = await tileOf(p, other.peerId);
      return x?.state === 'reconnecting' && x.frozen ? x : null;
    });
    assert.ok(t, `${p.label} does not keep ${other.label}'s tile frozen and reconnecting: ${JSON.stringify(await tiles(p))}`);
    assert.equal(t.name, other.label === 'ann' ? 'Ann' : 'Bob');
    const detail = await frozenDetail(p, other.peerId);
    assert.ok(detail > 2, `${p.label}'s frozen picture of ${other.label} is blank (luma spread ${detail})`);
    const shown = await p.page.$eval(`.tile[data-peer-id="${other.peerId}"] .reconnecting`, (e) => [getComputedStyle(e).display, e.textContent]);
    assert.deepEqual(shown, ['block', 'Reconnecting…']);
    const b = await banner(p);
    assert.match(b.text, /lost|reconnect/i);
    assert.equal(b.kind, 'warn');
  }
  // While the server is down (3 s) nothing vanishes.
  await sleep(3000);
  for (const p of [ann, bob]) {
    const t = await tiles(p);
    assert.equal(t.length, 2, `${p.label}: ${JSON.stringify(t)}`);
    assert.equal(t.filter((x) => x.state === 'reconnecting').length, 1);
  }

  second = await startSecond();
  const restarted = Date.now();
  // Both rejoin by themselves (new sockets, so new peer ids); "Back in the call" is good news, green.
  const good = await Promise.all([ann, bob].map((p) => until(20000, () =>
    p.page.evaluate(() => window.__banners.filter((b) => /Back in the call/.test(b.text)).pop() ?? null))));
  for (const g of good) {
    assert.ok(g, 'no "Back in the call"');
    assert.equal(g.kind, 'ok');
    const [r, gr] = g.bg.match(/\d+/g).map(Number);
    assert.ok(gr > r, `"Back in the call" is not shown in green: ${g.bg}`);
  }
  for (const p of [ann, bob]) {
    await p.page.waitForFunction(() => window.octo.peerId() !== null, null, { timeout: 15000 });
    p.peerId = await p.page.evaluate(() => window.octo.peerId());
  }
  for (const [p, other] of [[ann, bob], [bob, ann]]) {
    const back = await until(20000, async () => {
      const t = await tileOf(p, other.peerId);
      return t?.state === 'live' ? t : null;
    });
    assert.ok(back, `${p.label} has no live tile of ${other.label}: ${JSON.stringify(await tiles(p))}`);
    const mark = await p.page.$eval(`.tile[data-peer-id="${other.peerId}"]`, (el) => el.dataset.testMark ?? null);
    assert.equal(mark, 'before-the-drop', `${p.label}'s tile of ${other.label} was replaced, not kept`);
    assert.equal((await tiles(p)).length, 2, `${p.label}: ${JSON.stringify(await tiles(p))}`);
  }
  assert.ok(await until(20000, async () => (await flow(ann, bob.peerId, 'video', 500)) > 0 && (await flow(ann, bob.peerId, 'audio', 300)) > 0),
    'Ann gets no media from Bob after the restart');
  assert.ok(await until(20000, async () => (await flow(bob, ann.peerId, 'video', 500)) > 0), 'Bob gets no video from Ann after the restart');
  assert.equal((await tileOf(ann, bob.peerId)).frozen, false, 'Ann still shows a frozen Bob');
  console.log(`call back ${Date.now() - restarted} ms after the server restarted`);

  // Ann is still muted: her button, her tile at Bob, and no sound.
  assert.equal(await ann.page.textContent('#mic-btn'), 'Unmute');
  assert.equal(await until(5000, async () => (await tileOf(bob, ann.peerId))?.mic === 'off'), true, 'Bob shows Ann unmuted after the rejoin');
  assert.equal(await flow(bob, ann.peerId, 'audio', 1500), 0, 'Bob hears Ann, who was muted before the drop');
  await ann.page.click('#mic-btn');
  assert.ok(await until(8000, async () => (await flow(bob, ann.peerId, 'audio', 500)) > 0), 'Ann\'s unmuted audio does not reach Bob');
});
