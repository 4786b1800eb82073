// A stand-in for the seed app's browser client ("scalable-zoom-clone"), written for Octo's tests. It
// makes that client's calls in that client's order, with the real mediasoup-client on the browser's
// real RTCPeerConnection, quirk included: `device.load()` is not awaited, and `join` and both
// `create-transport`s go out at once, so a `transport-created` that beats the load throws
// `not loaded` from `createSendTransport` and the call never starts. That is what Octo's
// `transport-created` hold is for (PROTOCOL.md, "The seed app's protocol").
//
// Opened as `/?room=R&name=N`, it joins at once. The test reads `window.seed`; nothing in it changes
// the order of calls.
import { Device } from 'mediasoup-client';
import { io } from 'socket.io-client';

const query = new URLSearchParams(location.search);
const roomId = query.get('room');
const peerName = query.get('name');

// Uncaught errors, as the seed client leaves them (its handlers catch nothing).
const errors = [];
addEventListener('error', (e) => errors.push(e.message));
addEventListener('unhandledrejection', (e) => errors.push(`unhandled rejection: ${e.reason?.message ?? e.reason}`));

// What happened, in order, with milliseconds since the page started: the test's diagnostics.
const events = [];
const log = (what) => events.push(`${Math.round(performance.now())} ${what}`);

/** producerId → {peerId, peerName, kind, consumer, element} of what this page receives. */
const remote = new Map();
/** Producers announced before the recv transport existed: consumed once it does. */
const waiting = [];

const socket = io();
const device = new Device();
let local = null;
let sendTransport = null;
let recvTransport = null;

socket.on('peer-joined', ({ peerId, peerName }) => log(`peer-joined ${peerId} ${peerName}`));
socket.on('peer-left', ({ peerId }) => {
  log(`peer-left ${peerId}`);
  for (const [producerId, r] of remote) {
    if (r.peerId !== peerId) continue;
    r.consumer.close();
    r.element.remove();
    remote.delete(producerId);
  }
});
socket.on('error', (e) => log(`error event ${JSON.stringify(e)}`));

socket.on('transport-created', (info) => {
  log(`transport-created ${info.direction}`);
  if (info.direction === 'send') {
    sendTransport = device.createSendTransport(info); // throws `not loaded` if the load is unfinished
    onConnect(sendTransport);
    sendTransport.on('produce', ({ kind, rtpParameters }, callback, errback) => {
      socket.emit('produce', { roomId, kind, rtpParameters }, (r) =>
        r?.id ? callback({ id: r.id }) : errback(new Error(`produce: ${r?.error}`)));
    });
    produceLocal();
  } else {
    recvTransport = device.createRecvTransport(info);
    onConnect(recvTransport);
    socket.emit('request-existing-producers', { roomId }, ({ params }) => {
      log(`existing producers ${params.length}`);
      for (const p of [...params, ...waiting.splice(0)]) consume(p);
    });
  }
});

socket.on('new-producer', (p) => {
  log(`new-producer ${p.producerId} of ${p.peerId}`);
  if (recvTransport) consume(p);
  else waiting.push(p);
});

function onConnect(transport) {
  transport.on('connect', ({ dtlsParameters }, callback, errback) => {
    socket.emit('connect-transport', { roomId, transportId: transport.id, dtlsParameters }, (r) =>
      r?.success ? callback() : errback(new Error(`connect-transport: ${r?.error}`)));
  });
  transport.on('connectionstatechange', (state) => log(`${transport.direction} transport ${state}`));
}

async function produceLocal() {
  for (const track of [local.getVideoTracks()[0], local.getAudioTracks()[0]]) {
    const producer = await sendTransport.produce({ track });
    log(`produced ${producer.kind} ${producer.id}`);
  }
}

/** `consume`, then the track on a media element; the server resumes the consumer by itself. */
async function consume({ producerId, peerId, peerName }) {
  if (remote.has(producerId)) return;
  const rtpCapabilities = device.rtpCapabilities;
  const answer = await new Promise((resolve) => socket.emit('consume', { roomId, producerId, rtpCapabilities }, resolve));
  if (!answer.params) throw new Error(`consume ${producerId}: ${answer.error}`);
  const consumer = await recvTransport.consume(answer.params);
  const element = document.createElement(consumer.kind);
  element.autoplay = true;
  element.playsInline = true;
  element.dataset.peerId = peerId;
  element.srcObject = new MediaStream([consumer.track]);
  document.getElementById('remote').append(element);
  remote.set(producerId, { peerId, peerName, kind: consumer.kind, consumer, element });
  log(`consuming ${consumer.kind} of ${peerId}`);
}

async function start() {
  local = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
  document.getElementById('local').srcObject = local;
  const res = await fetch(`/getRtpCapabilities?roomId=${encodeURIComponent(roomId)}`);
  const routerRtpCapabilities = await res.json();
  log('capabilities');
  // The quirk: not awaited. (The `then` only logs; it does not hold anything back.)
  device.load({ routerRtpCapabilities }).then(() => log('loaded'));
  socket.emit('join', { roomId, peerName });
  socket.emit('create-transport', { roomId, direction: 'send' });
  socket.emit('create-transport', { roomId, direction: 'recv' });
}

function leave() {
  socket.emit('leave-room', { roomId });
  for (const r of remote.values()) r.element.remove();
  remote.clear();
  sendTransport?.close();
  recvTransport?.close();
  for (const t of local.getTracks()) t.stop();
  log('left');
}

/** Per received stream: frames decoded (video) and packets received, from the receiver's stats. */
async function received() {
  const out = [];
  for (const [producerId, r] of remote) {
    let framesDecoded = 0;
    let packetsReceived = 0;
    for (const s of (await r.consumer.getStats()).values()) {
      if (s.type !== 'inbound-rtp') continue;
      framesDecoded += s.framesDecoded ?? 0;
      packetsReceived += s.packetsReceived ?? 0;
    }
    const videoWidth = r.kind === 'video' ? r.element.videoWidth : 0;
    out.push({ producerId, peerId: r.peerId, peerName: r.peerName, kind: r.kind, framesDecoded, packetsReceived, videoWidth });
  }
  return out;
}

window.seed = {
  errors,
  events,
  peerId: () => socket.id ?? null,
  loaded: () => device.loaded,
  transports: () => ({ send: sendTransport?.connectionState ?? null, recv: recvTransport?.connectionState ?? null }),
  received,
  leave,
};

start().catch((e) => errors.push(`start: ${e.message}`));
