// Helpers shared by the signaling tests: a Socket.IO connection to the octo under test, requests
// with acks and a deadline, waiting for server events, and realistic mediasoup-shaped parameters.
import { io } from 'socket.io-client';
import { createHmac } from 'node:crypto';

export const URL = process.env.OCTO_URL;
if (!URL) throw new Error('OCTO_URL is not set: these tests are started by tests/tests/signaling.rs');

const sockets = new Set();

/** A connected socket. `opts` go to socket.io-client (default: its normal polling → websocket upgrade). */
export async function connect(opts = {}) {
  const socket = io(URL, { forceNew: true, reconnection: false, timeout: 5000, ...opts });
  sockets.add(socket);
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return socket;
}

/** Closes every socket this process opened (call in `after`). */
export function closeAll() {
  for (const s of sockets) s.close();
  sockets.clear();
}

/** Emits `event` with `data` and resolves with the ack (rejects after `ms`). */
export function request(socket, event, data, ms = 5000) {
  return socket.timeout(ms).emitWithAck(event, data);
}

/** The ack's `data`, or throws with the ack's error code. */
export async function ok(socket, event, data) {
  const ack = await request(socket, event, data);
  if (!ack || ack.error) throw new Error(`${event} failed: ${JSON.stringify(ack)}`);
  return ack.data;
}

/** The error code of an ack that must fail. */
export async function errorCode(socket, event, data) {
  const ack = await request(socket, event, data);
  if (!ack || !ack.error) throw new Error(`${event} should have failed: ${JSON.stringify(ack)}`);
  return ack.error.code;
}

/** Resolves with the next `event` whose payload satisfies `pred` (rejects after `ms`). */
export function waitEvent(socket, event, pred = () => true, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, on);
      reject(new Error(`no ${event} within ${ms} ms`));
    }, ms);
    function on(payload) {
      if (!pred(payload)) return;
      clearTimeout(timer);
      socket.off(event, on);
      resolve(payload);
    }
    socket.on(event, on);
  });
}

/** Collects every `event` the socket receives from now on. */
export function record(socket, event) {
  const seen = [];
  socket.on(event, (p) => seen.push(p));
  return seen;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** An HS256 JWT, signed as any issuer would. */
export function jwt(claims, secret) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/** What Chrome sends through mediasoup-client for a VP8 webcam track. */
export function vp8Parameters(ssrc = 1111) {
  return {
    mid: '0',
    codecs: [
      {
        mimeType: 'video/VP8', payloadType: 96, clockRate: 90000, parameters: {},
        rtcpFeedback: [
          { type: 'goog-remb', parameter: '' }, { type: 'transport-cc', parameter: '' },
          { type: 'ccm', parameter: 'fir' }, { type: 'nack', parameter: '' }, { type: 'nack', parameter: 'pli' },
        ],
      },
      { mimeType: 'video/rtx', payloadType: 97, clockRate: 90000, parameters: { apt: 96 }, rtcpFeedback: [] },
    ],
    headerExtensions: [
      { uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', id: 4, encrypt: false, parameters: {} },
      { uri: 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time', id: 2, encrypt: false, parameters: {} },
      { uri: 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01', id: 3, encrypt: false, parameters: {} },
    ],
    encodings: [{ ssrc, rtx: { ssrc: ssrc + 1 }, dtx: false }],
    rtcp: { cname: 'chrome-cname', reducedSize: true },
  };
}

/** What Chrome sends through mediasoup-client for a microphone track. */
export function opusParameters(ssrc = 3333) {
  return {
    mid: '1',
    codecs: [{
      mimeType: 'audio/opus', payloadType: 111, clockRate: 48000, channels: 2,
      parameters: { minptime: 10, useinbandfec: 1 }, rtcpFeedback: [{ type: 'transport-cc', parameter: '' }],
    }],
    headerExtensions: [
      { uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', id: 4 },
      { uri: 'urn:ietf:params:rtp-hdrext:ssrc-audio-level', id: 1 },
    ],
    encodings: [{ ssrc, dtx: false }],
    rtcp: { cname: 'chrome-cname', reducedSize: true },
  };
}

/** A receiving device's capabilities as mediasoup-client derives them from the router's. */
export function deviceCapabilities(routerCaps) {
  const caps = structuredClone(routerCaps);
  for (const c of caps.codecs) for (const fb of c.rtcpFeedback ?? []) fb.parameter ??= '';
  return caps;
}

/** Client DTLS parameters as a browser offers them. */
export const clientDtls = {
  role: 'client',
  fingerprints: [{ algorithm: 'sha-256', value: Array(32).fill('AB').join(':') }],
};
