// One person's presence in one room: the Socket.IO signaling (Octo's own dialect, see PROTOCOL.md),
// the mediasoup-client Device and its two transports, our producers and the consumers of everyone
// else's, and the DataChannels (our one data producer, a data consumer of each other peer's) that
// carry chat and reactions through Octo. It knows nothing about the DOM or what the data means: the
// UI listens to the events it emits.
import { io } from 'socket.io-client';
import { Device } from 'mediasoup-client';
import { IceRecovery } from './ice_recovery.js';

/** A failure with one of PROTOCOL.md's stable codes, or one of ours (`server_unreachable`, `timeout`). */
export class CallError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const REQUEST_TIMEOUT_MS = 10000;
/** The version of PROTOCOL.md's dialect this client speaks; the server refuses another one
 * (`unsupported_version`), so a page cached from before an upgrade says "reload" instead of failing
 * somewhere later. `localStorage['octo.protocol']` overrides it, to try that refusal. */
const PROTOCOL_VERSION = 1;
function protocolVersion() {
  const stored = Number(globalThis.localStorage?.getItem('octo.protocol'));
  return Number.isInteger(stored) && stored > 0 ? stored : PROTOCOL_VERSION;
}
// Failed reconnections in a row before a call moves to the next server of its cluster (~4 s).
const FAILOVER_AFTER = 3;
/** Our data producer (see README.md, "DataChannel messages"). */
export const DATA_LABEL = 'chat';
export const DATA_PROTOCOL = 'octo-chat';

export class Call {
  constructor(serverUrl) {
    this.url = serverUrl;
    // Where to go when `url` stops answering during a call (a cluster's other nodes; see
    // `setServers`), this page's own server first.
    this.servers = [serverUrl];
    this.failures = 0;
    this.socket = null;
    this.listeners = new Map();
    this.reset();
    // What we publish survives a rejoin: source ('mic' | 'webcam' | 'screen') → {track, paused}.
    this.local = new Map();
    this.wantJoined = false;
    // ICE restarts done since the page loaded (shown in stats; tests read it).
    this.iceRestarts = 0;
    // 'relay' sends everything through TURN (to test a relay; the page's `?iceTransportPolicy=relay`).
    this.iceTransportPolicy = 'all';
    this.iceServers = [];
    // A network change may take the transports' path away: restart their ICE at once.
    if (typeof window !== 'undefined') {
      const changed = () => {
        for (const r of this.iceRecoveries.values()) r.networkChanged();
      };
      window.addEventListener('online', changed);
      globalThis.navigator?.connection?.addEventListener?.('change', changed);
    }
  }

  /** Forgets every media-plane object: after a leave, a dropped connection or a dead worker. */
  reset() {
    for (const r of this.iceRecoveries?.values() ?? []) r.stop();
    this.iceRecoveries = new Map(); // direction → IceRecovery
    for (const t of [this.sendTransport, this.recvTransport]) if (t && !t.closed) t.close();
    this.peerId = null;
    this.device = null;
    this.sendTransport = null;
    this.recvTransport = null;
    this.producers = new Map(); // source → Producer
    this.consumers = new Map(); // consumerId → {consumer, peerId, source, producerId}
    this.remoteProducers = new Map(); // producerId → {peerId, kind, source, paused}
    this.peers = new Map(); // peerId → displayName
    this.dataProducer = null;
    this.dataConsumers = new Map(); // dataProducerId → {dataConsumer, peerId}
    this.maxMessageSize = 0; // the send transport's SCTP maximum, bytes
    // Bumped on every (re)join so that work started for an older session drops its results.
    this.generation = (this.generation ?? 0) + 1;
    this.ready = null;
  }

  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, []);
    this.listeners.get(event).push(fn);
  }

  emit(event, payload) {
    for (const fn of this.listeners.get(event) ?? []) {
      try {
        fn(payload);
      } catch (e) {
        console.error(`listener of ${event} failed`, e);
      }
    }
  }

  /** Resolves once the socket is connected; rejects with `server_unreachable` if it cannot be. */
  connect() {
    if (this.socket?.connected) return Promise.resolve();
    if (!this.socket) this.openSocket();
    return new Promise((resolve, reject) => {
      const socket = this.socket;
      const done = (err) => {
        socket.off('connect', onConnect);
        socket.off('connect_error', onError);
        err ? reject(err) : resolve();
      };
      const onConnect = () => done();
      const onError = () => {
        // Not in a call yet: stop retrying in the background; the next join starts afresh.
        if (!this.wantJoined) {
          this.socket.close();
          this.socket = null;
        }
        done(new CallError('server_unreachable', `cannot reach ${this.url}`));
      };
      socket.on('connect', onConnect);
      socket.on('connect_error', onError);
      if (!socket.active) socket.connect();
    });
  }

  /** Other servers of the same cluster, in order of preference (a clustered Octo's `/servers`). */
  setServers(urls) {
    const more = (urls ?? []).filter((u) => typeof u === 'string' && /^https?:\/\//.test(u));
    this.servers = [...new Set([this.servers[0], ...more])];
  }

  /** After a few failed reconnections in a call, the next server of the list (they share rooms). */
  maybeFailOver() {
    if (!this.wantJoined || this.servers.length < 2 || ++this.failures < FAILOVER_AFTER) return;
    const next = this.servers[(this.servers.indexOf(this.url) + 1) % this.servers.length];
    this.emit('warning', new CallError('server_unreachable', `${this.url} is unreachable; trying ${next}`));
    this.failures = 0;
    this.socket.close();
    this.url = next;
    this.openSocket();
    this.socket.connect();
  }

  openSocket() {
    // Another origin than the page's (a cluster's other node): WebSocket from the start, as long
    // polling across origins would need CORS.
    const crossOrigin = new URL(this.url).origin !== location.origin;
    const s = io(this.url, {
      timeout: 5000,
      reconnectionDelay: 500,
      reconnectionDelayMax: 3000,
      ...(crossOrigin ? { transports: ['websocket'] } : {}),
    });
    this.socket = s;
    s.on('connect', () => {
      this.failures = 0;
      this.emit('connection', 'up');
      // The server treats a dropped connection as a leave: join again with the same media.
      if (this.wantJoined && !this.peerId) this.rejoin('reconnected');
    });
    s.on('disconnect', (reason) => {
      if (reason === 'io client disconnect') return;
      this.emit('connection', 'down');
      if (this.wantJoined) this.dropSession();
    });
    s.on('connect_error', () => {
      if (this.wantJoined) this.emit('connection', 'down');
      if (this.socket === s) this.maybeFailOver();
    });
    s.on('peerJoined', ({ peerId, displayName }) => {
      this.peers.set(peerId, displayName ?? '');
      this.emit('peerJoined', { peerId, displayName: displayName ?? '' });
    });
    s.on('peerHand', ({ peerId, raisedAt } = {}) => this.emit('peerHand', { peerId, raisedAt: raisedAt ?? null }));
    s.on('peerLeft', ({ peerId }) => {
      for (const [id, c] of this.consumers) if (c.peerId === peerId) this.dropConsumer(id);
      for (const [id, p] of this.remoteProducers) if (p.peerId === peerId) this.remoteProducers.delete(id);
      for (const [id, d] of this.dataConsumers) if (d.peerId === peerId) this.dropDataConsumer(id);
      this.peers.delete(peerId);
      this.emit('peerLeft', { peerId });
    });
    s.on('newProducer', (p) => this.consume(p).catch((e) => this.emit('warning', e)));
    s.on('producerClosed', ({ producerId }) => this.dropProducer(producerId));
    s.on('consumerClosed', ({ producerId }) => this.dropProducer(producerId));
    s.on('newDataProducer', (p) => this.consumeData(p).catch((e) => this.emit('warning', e)));
    s.on('dataProducerClosed', ({ dataProducerId }) => this.dropDataConsumer(dataProducerId));
    s.on('consumerLayersChanged', ({ consumerId, spatialLayer, temporalLayer }) => {
      const c = this.consumers.get(consumerId);
      if (!c) return;
      c.layers = spatialLayer == null ? null : { spatialLayer, temporalLayer };
      this.emit('layersChanged', { consumerId, peerId: c.peerId, source: c.source, layers: c.layers });
    });
    // The server's view of each consumer's path (0–10, from its receiver's reports): for the tiles' bars.
    s.on('consumerScore', ({ consumerId, score } = {}) => {
      const c = this.consumers.get(consumerId);
      if (c && Number.isFinite(score)) c.score = score;
    });
    s.on('producerPaused', ({ producerId }) => this.remotePaused(producerId, true));
    s.on('producerResumed', ({ producerId }) => this.remotePaused(producerId, false));
    s.on('roomError', (e) => {
      // The room's media worker died: the room is gone and we are out of it. Join again; the server
      // creates the room on a live worker.
      this.emit('roomError', e);
      this.dropSession();
      this.rejoin('worker_died');
    });
    // The worker's active-speaker observer (ssrc-audio-level) names the loudest peer, or null in silence.
    s.on('activeSpeaker', ({ peerId } = {}) => this.emit('activeSpeaker', { peerId: peerId ?? null }));
    // The server is shutting down (SIGTERM): the call goes on until the deadline, then the connection
    // closes and we keep trying to reconnect (a restarted server takes us back).
    s.on('serverDraining', ({ remainingMs } = {}) =>
      this.emit('draining', { remainingMs: Number.isFinite(remainingMs) ? Math.max(0, remainingMs) : null }),
    );
  }

  /** Octo's ack: `{data}` or `{error: {code, message}}`. */
  async request(event, data) {
    let ack;
    try {
      ack = await this.socket.timeout(REQUEST_TIMEOUT_MS).emitWithAck(event, data);
    } catch {
      throw new CallError('timeout', `${event}: no answer from the server`);
    }
    if (ack?.error) throw new CallError(ack.error.code, ack.error.message);
    return ack?.data;
  }

  /**
   * Joins `roomId`, publishing `tracks` (source → `{track, paused}`): a paused one (joining muted or
   * with the camera off) is published paused, so the others see it off from the start.
   */
  async join({ roomId, displayName, token, tracks }) {
    this.roomId = roomId;
    this.displayName = displayName;
    this.token = token;
    this.local = new Map([...tracks].map(([source, { track, paused = false }]) => [source, { track, paused }]));
    await this.connect();
    await this.enter();
    this.wantJoined = true;
  }

  async enter() {
    this.reset();
    const gen = this.generation;
    const joinData = await this.request('joinRoom', {
      roomId: this.roomId,
      displayName: this.displayName,
      ...(this.token ? { token: this.token } : {}),
      protocol: protocolVersion(),
    });
    if (gen !== this.generation) return;
    this.peerId = joinData.peerId;
    let markReady;
    this.ready = new Promise((r) => (markReady = r));
    this.emit('joined', { peerId: this.peerId, peers: joinData.peers.map((p) => ({ peerId: p.peerId, displayName: p.displayName ?? '' })) });
    for (const p of joinData.peers) {
      this.peers.set(p.peerId, p.displayName ?? '');
      this.emit('peerJoined', { peerId: p.peerId, displayName: p.displayName ?? '' });
      if (p.handRaisedAt != null) this.emit('peerHand', { peerId: p.peerId, raisedAt: p.handRaisedAt });
    }
    // A hand raised before a rejoin (a dead worker, a restarted server) goes up again.
    if (this.handRaised) this.setHand(true).catch((e) => this.emit('warning', e));
    // A clustered Octo keeps each room's recent chat and hands it to whoever joins.
    if (Array.isArray(joinData.chatHistory)) this.emit('chatHistory', joinData.chatHistory);
    // TURN relays the server names (absent without any): for networks that block UDP to it.
    this.iceServers = Array.isArray(joinData.iceServers) ? joinData.iceServers : [];
    const device = new Device();
    await device.load({ routerRtpCapabilities: joinData.rtpCapabilities });
    this.device = device;
    this.sendTransport = await this.createTransport('send');
    this.recvTransport = await this.createTransport('recv');
    if (gen !== this.generation) return;
    markReady();
    // Chat first: it works even for someone without camera or microphone.
    await this.produceData().catch((e) => this.emit('warning', e));
    for (const [source, { track, paused }] of this.local) await this.publish(source, track, paused);
    for (const p of joinData.producers) this.consume(p).catch((e) => this.emit('warning', e));
    for (const d of joinData.dataProducers ?? []) this.consumeData(d).catch((e) => this.emit('warning', e));
  }

  async rejoin(why) {
    if (this.rejoining) return;
    this.rejoining = true;
    this.emit('rejoining', why);
    try {
      for (let attempt = 0; this.wantJoined; attempt++) {
        try {
          if (!this.socket.connected) return; // the `connect` handler rejoins
          await this.enter();
          this.emit('rejoined', why);
          return;
        } catch (e) {
          this.emit('warning', e);
          if (e.code === 'already_joined') await this.request('leaveRoom', {}).catch(() => {});
          await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 5000)));
        }
      }
    } finally {
      this.rejoining = false;
    }
  }

  /**
   * The session is gone (connection or worker lost); our tracks stay. `sessionLost` comes before the
   * consumers close, so the UI can keep each remote tile's last frame while we rejoin: the others are
   * most likely coming back too, not leaving.
   */
  dropSession() {
    const peers = [...this.peers].map(([peerId, displayName]) => ({ peerId, displayName }));
    this.emit('sessionLost', { peers });
    this.reset();
  }

  async createTransport(direction) {
    const params = await this.request('createWebRtcTransport', {
      direction,
      sctpCapabilities: this.device.sctpCapabilities,
    });
    if (direction === 'send') this.maxMessageSize = params.sctpParameters?.maxMessageSize ?? 0;
    const device = this.device;
    const options = { ...params, iceServers: this.iceServers, iceTransportPolicy: this.iceTransportPolicy };
    const transport =
      direction === 'send' ? device.createSendTransport(options) : device.createRecvTransport(options);
    transport.on('connect', ({ dtlsParameters }, callback, errback) => {
      this.request('connectWebRtcTransport', { transportId: transport.id, dtlsParameters }).then(callback, errback);
    });
    const gen = this.generation;
    const recovery = new IceRecovery(
      transport,
      async () => (await this.request('restartIce', { transportId: transport.id })).iceParameters,
      (event, detail) => {
        if (event === 'restarted') {
          this.iceRestarts += 1;
          this.emit('iceRestarted', { direction, ...detail });
        } else if (event === 'notConnecting' || event === 'connected') {
          // The UI names the likely cause: a network blocking UDP (and TCP, when the server offered
          // ICE-TCP too), with or without a relay to try.
          const tcp = params.iceCandidates.some((c) => c.protocol === 'tcp');
          this.emit('mediaBlocked', { direction, blocked: event === 'notConnecting', turn: this.iceServers.length > 0, tcp });
        } else if (event === 'gaveUp') {
          this.emit('warning', new CallError('ice_failed', `the ${direction} transport did not come back after ${detail.restarts} ICE restarts`));
          if (gen === this.generation) this.rejoin('ice_failed');
        } else {
          this.emit('warning', detail);
        }
      },
    );
    this.iceRecoveries.set(direction, recovery);
    transport.on('connectionstatechange', (state) => {
      this.emit('transportState', { direction, state });
      recovery.stateChanged(state);
    });
    if (direction === 'send') {
      transport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
        this.request('produce', { transportId: transport.id, kind, rtpParameters, appData })
          .then(({ id }) => callback({ id }), errback);
      });
      transport.on('producedata', ({ sctpStreamParameters, label, protocol, appData }, callback, errback) => {
        this.request('produceData', { transportId: transport.id, sctpStreamParameters, label, protocol, appData })
          .then(({ id }) => callback({ id }), errback);
      });
    }
    return transport;
  }

  async publish(source, track, paused = false) {
    const gen = this.generation;
    this.local.set(source, { track, paused });
    // mediasoup-client takes a disabled track for a paused producer; make the track say what we mean
    // (a track muted in an earlier session must not come back silent but shown as on, or the reverse).
    track.enabled = !paused;
    const producer = await this.sendTransport.produce({ track, ...sendOptions(source, track), appData: { source }, stopTracks: false });
    if (gen !== this.generation) return;
    this.producers.set(source, producer);
    if (paused) await this.setPaused(source, true);
  }

  /**
   * Raises or lowers our hand; it stays raised across rejoins until lowered. Emits `ownHand` with
   * the server's time of raising (what orders the hands), or null.
   */
  async setHand(raised) {
    this.handRaised = raised;
    if (!this.peerId) return;
    const gen = this.generation;
    const { raisedAt } = await this.request(raised ? 'raiseHand' : 'lowerHand', {});
    if (gen === this.generation) this.emit('ownHand', { raisedAt: raisedAt ?? null });
  }

  /** Pauses or resumes one of our producers, locally and at the server (so the others see it). */
  async setPaused(source, paused) {
    const entry = this.local.get(source);
    if (entry) entry.paused = paused;
    const producer = this.producers.get(source);
    if (!producer) return;
    if (paused) producer.pause();
    else producer.resume();
    await this.request(paused ? 'pauseProducer' : 'resumeProducer', { producerId: producer.id });
  }

  /**
   * Sends `track` for `source` instead of the one sent now (another camera or microphone), on the
   * same producer: the others keep their consumer, tile and decoder, nothing is renegotiated. It is
   * remembered for rejoins; a source not published yet (joined without that device) is published.
   */
  async replaceTrack(source, track) {
    const entry = this.local.get(source);
    if (!entry) {
      this.local.set(source, { track, paused: false });
      if (this.sendTransport) await this.publish(source, track, false);
      return;
    }
    entry.track = track;
    track.enabled = !entry.paused;
    const producer = this.producers.get(source);
    if (producer && !producer.closed) await producer.replaceTrack({ track });
  }

  async startScreen(track) {
    await this.publish('screen', track);
  }

  async stopScreen() {
    this.local.delete('screen');
    const producer = this.producers.get('screen');
    this.producers.delete('screen');
    if (!producer) return;
    producer.close();
    await this.request('closeProducer', { producerId: producer.id }).catch(() => {});
  }

  async consume({ producerId, peerId, kind, appData }) {
    const source = appData?.source ?? (kind === 'audio' ? 'mic' : 'webcam');
    this.remoteProducers.set(producerId, { peerId, kind, source, paused: false });
    const gen = this.generation;
    await this.ready;
    if (gen !== this.generation || !this.recvTransport) return;
    const params = await this.request('consume', {
      transportId: this.recvTransport.id,
      producerId,
      rtpCapabilities: this.device.rtpCapabilities,
    });
    if (gen !== this.generation) return;
    const consumer = await this.recvTransport.consume({
      id: params.id,
      producerId,
      kind: params.kind,
      rtpParameters: params.rtpParameters,
    });
    const remote = this.remoteProducers.get(producerId);
    if (gen !== this.generation || !remote) {
      // Closed while we were setting it up.
      consumer.close();
      return;
    }
    if (params.producerPaused) remote.paused = true;
    const simulcast = params.type === 'simulcast';
    this.consumers.set(consumer.id, { consumer, peerId, source, producerId, simulcast, layers: null, wanted: null, hidden: false });
    await this.request('resumeConsumer', { consumerId: consumer.id });
    this.emit('track', {
      peerId, source, kind: consumer.kind, track: consumer.track, paused: remote.paused, consumerId: consumer.id, simulcast,
    });
  }

  /** Our one data producer: ordered and reliable, since a chat must not lose or reorder lines. */
  async produceData() {
    const gen = this.generation;
    const dataProducer = await this.sendTransport.produceData({ ordered: true, label: DATA_LABEL, protocol: DATA_PROTOCOL });
    if (gen !== this.generation) return dataProducer.close();
    this.dataProducer = dataProducer;
  }

  /**
   * Sends one DataChannel message (a string or an ArrayBuffer / typed array) to everyone, waiting for
   * the channel to open if it has not yet. Throws if there is no channel or it does not open in time.
   */
  async sendData(data) {
    const dp = this.dataProducer;
    if (!dp || dp.closed) throw new CallError('invalid_state', 'not connected for chat');
    if (dp.readyState === 'connecting') {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new CallError('timeout', 'the chat channel did not open')), REQUEST_TIMEOUT_MS);
        dp.once('open', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    dp.send(data);
  }

  /** Another peer's data producer: we consume those of our own protocol and emit their messages. */
  async consumeData({ dataProducerId, peerId, label, protocol }) {
    if (label !== DATA_LABEL || protocol !== DATA_PROTOCOL) return;
    const gen = this.generation;
    await this.ready;
    if (gen !== this.generation || !this.recvTransport) return;
    const params = await this.request('consumeData', { transportId: this.recvTransport.id, dataProducerId });
    if (gen !== this.generation) return;
    const dataConsumer = await this.recvTransport.consumeData({
      id: params.id,
      dataProducerId,
      sctpStreamParameters: params.sctpStreamParameters,
      label: params.label,
      protocol: params.protocol,
    });
    // Closed (its peer left) while we were setting it up.
    if (gen !== this.generation || !this.peers.has(peerId)) return dataConsumer.close();
    dataConsumer.binaryType = 'arraybuffer';
    // The sender is who signaling says owns the data producer, never what a message claims.
    dataConsumer.on('message', (data) => this.emit('data', { peerId, data }));
    this.dataConsumers.set(dataProducerId, { dataConsumer, peerId });
  }

  dropDataConsumer(dataProducerId) {
    const d = this.dataConsumers.get(dataProducerId);
    if (!d) return;
    this.dataConsumers.delete(dataProducerId);
    d.dataConsumer.close();
  }

  remotePaused(producerId, paused) {
    const remote = this.remoteProducers.get(producerId);
    if (!remote) return;
    remote.paused = paused;
    this.emit('remotePaused', { peerId: remote.peerId, source: remote.source, kind: remote.kind, paused });
  }

  dropProducer(producerId) {
    const remote = this.remoteProducers.get(producerId);
    this.remoteProducers.delete(producerId);
    for (const [id, c] of this.consumers) if (c.producerId === producerId) this.dropConsumer(id);
    if (remote) this.emit('trackEnded', { peerId: remote.peerId, source: remote.source, kind: remote.kind });
  }

  /**
   * Adaptive stream: what a video tile needs of its consumer. `width` is the tile's rendered width in
   * device pixels; `visible` whether any of it is on screen. A hidden tile's consumer is paused at the
   * server (no bytes at all); a visible one asks for the smallest layer at least as wide as the tile
   * (a 160-pixel tile never gets 720p). Repeated calls with the same answer send nothing.
   */
  async fitConsumer(consumerId, { width, visible }) {
    const c = this.consumers.get(consumerId);
    if (!c || c.consumer.kind !== 'video' || c.consumer.closed) return;
    if (!visible !== c.hidden) {
      c.hidden = !visible;
      await this.request(visible ? 'resumeConsumer' : 'pauseConsumer', { consumerId });
    }
    if (!visible || !c.simulcast) return;
    const spatialLayer = layerForWidth(width, c.consumer.rtpParameters.encodings?.[0]?.scalabilityMode);
    if (spatialLayer === c.wanted) return;
    c.wanted = spatialLayer;
    await this.request('setConsumerPreferredLayers', { consumerId, spatialLayer });
  }

  dropConsumer(consumerId) {
    const c = this.consumers.get(consumerId);
    if (!c) return;
    this.consumers.delete(consumerId);
    c.consumer.close();
  }

  async leave() {
    this.wantJoined = false;
    // A hand is for this call: whoever comes back later starts with it down.
    this.handRaised = false;
    if (this.socket?.connected && this.peerId) await this.request('leaveRoom', {}).catch(() => {});
    this.reset();
  }

  /**
   * Per-consumer receive figures and the receive transport's round-trip time (s, on its selected
   * pair, or null), from one stats report of the receive transport. (Asking each consumer would
   * make the browser build the whole connection's report once per consumer: with 48 others in the
   * call, 96 full reports every tick.)
   */
  async receiveStats() {
    const byTrack = new Map();
    let rtt = null;
    try {
      for (const s of (await this.recvTransport?.getStats())?.values() ?? []) {
        if (s.type === 'inbound-rtp' && s.trackIdentifier) {
          if (!byTrack.has(s.trackIdentifier)) byTrack.set(s.trackIdentifier, []);
          byTrack.get(s.trackIdentifier).push(s);
        } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && s.currentRoundTripTime != null) {
          rtt = s.currentRoundTripTime;
        }
      }
    } catch {
      // The transport closed meanwhile: every consumer reports zeros.
    }
    return { consumers: this.#consumerFigures(byTrack), rtt };
  }

  /** Per-consumer receive figures (`inbound-rtp`), for the connection indicators and the tests. */
  async consumerStats() {
    return (await this.receiveStats()).consumers;
  }

  /** Each consumer's figures from its track's `inbound-rtp` entries in `byTrack`. */
  #consumerFigures(byTrack) {
    const out = [];
    for (const [consumerId, c] of this.consumers) {
      const entry = {
        consumerId, peerId: c.peerId, source: c.source, kind: c.consumer.kind,
        paused: this.remoteProducers.get(c.producerId)?.paused ?? false,
        packetsReceived: 0, packetsLost: 0, bytesReceived: 0, framesDecoded: 0, jitter: 0,
        frameWidth: 0, frameHeight: 0, freezeCount: 0,
        // Loss repair as the browser saw it: NACKs and PLIs it sent, retransmissions that came back.
        nackCount: 0, pliCount: 0, retransmittedPacketsReceived: 0,
        // What the server says it forwards (simulcast), and whether we paused it (tile not shown).
        spatialLayer: c.layers?.spatialLayer ?? null, hidden: c.hidden, score: c.score ?? null,
      };
      for (const s of byTrack.get(c.consumer.track?.id) ?? []) {
        entry.packetsReceived += s.packetsReceived ?? 0;
        entry.packetsLost += s.packetsLost ?? 0;
        entry.bytesReceived += s.bytesReceived ?? 0;
        entry.framesDecoded += s.framesDecoded ?? 0;
        entry.jitter = Math.max(entry.jitter, s.jitter ?? 0);
        entry.frameWidth = s.frameWidth ?? entry.frameWidth;
        entry.frameHeight = s.frameHeight ?? entry.frameHeight;
        entry.freezeCount += s.freezeCount ?? 0;
        entry.nackCount += s.nackCount ?? 0;
        entry.pliCount += s.pliCount ?? 0;
        entry.retransmittedPacketsReceived += s.retransmittedPacketsReceived ?? 0;
      }
      out.push(entry);
    }
    return out;
  }
}

/**
 * How a track is sent. A camera goes out as three simulcast encodings (a quarter, half and full
 * resolution, each with three temporal layers) so that every receiver gets what its tile and its
 * downlink take; a screen share as one high-quality encoding (text must stay sharp, and it is shown
 * large); audio as is.
 */
function sendOptions(source, track) {
  if (track.kind !== 'video' || source === 'screen') return {};
  return {
    encodings: [
      { rid: 'r0', scaleResolutionDownBy: 4, maxBitrate: 150_000, scalabilityMode: 'L1T3' },
      { rid: 'r1', scaleResolutionDownBy: 2, maxBitrate: 500_000, scalabilityMode: 'L1T3' },
      { rid: 'r2', scaleResolutionDownBy: 1, maxBitrate: 1_200_000, scalabilityMode: 'L1T3' },
    ],
    codecOptions: { videoGoogleStartBitrate: 1000 },
  };
}

/**
 * The simulcast layer for a tile `width` device pixels wide: layer k is 1280 / 2^(n-1-k) pixels wide
 * (320, 640, 1280 for three), and the tile gets the smallest one at least as wide as itself.
 */
export function layerForWidth(width, scalabilityMode) {
  const layers = Number(/^L(\d+)/.exec(scalabilityMode ?? '')?.[1] ?? 1);
  for (let k = 0; k < layers - 1; k++) if (width <= 1280 / 2 ** (layers - 1 - k)) return k;
  return layers - 1;
}
