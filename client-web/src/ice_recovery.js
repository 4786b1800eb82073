// Brings a transport whose network path broke back without leaving the room: ICE restart.
//
// A transport that goes `disconnected` is given a moment to recover by itself (a few lost consent
// checks); if it does not, or it goes `failed`, we ask the server for new ICE credentials and hand
// them to mediasoup-client (`restartIce`), which renegotiates with the browser's ICE agent. If the
// transport is still not connected a while later we try again, a few times, before giving up: then
// the caller rejoins the room (new transports, new everything). A network change (the browser comes
// back online, or its connection type changes) restarts at once, as the old path is likely gone.

/** `disconnected` this long before we restart (browsers recover from a short blip by themselves). */
export const DISCONNECTED_GRACE_MS = 1000;
/** A restart that has not brought the transport back after this long is tried again. */
export const RESTART_WAIT_MS = 6000;
/** Restarts without a connection in between before we give up and rejoin. */
export const MAX_RESTARTS = 4;
/** A transport still not connected this long after it started connecting is reported: the network
 * most likely blocks the media (browsers take ~30 s to call it `failed`). */
export const CONNECT_TIMEOUT_MS = 10000;

export class IceRecovery {
  /**
   * @param transport a mediasoup-client Transport
   * @param requestRestart async () => iceParameters: the server's `restartIce`
   * @param onEvent (name, detail) => void: 'restarted', 'gaveUp', 'notConnecting' (first connection
   *   overdue), 'connected' (after a 'notConnecting'), 'warning'
   */
  constructor(transport, requestRestart, onEvent) {
    this.transport = transport;
    this.requestRestart = requestRestart;
    this.onEvent = onEvent;
    this.timer = null;
    this.attempts = 0;
    this.restarts = 0;
    this.busy = false;
    this.stopped = false;
    this.everConnected = false;
    this.connectTimer = null;
    this.overdue = false;
  }

  /** Feed it every `connectionstatechange`. */
  stateChanged(state) {
    if (this.stopped) return;
    this.cancel();
    if (state === 'connecting' && !this.everConnected && !this.connectTimer) {
      this.connectTimer = setTimeout(() => {
        this.overdue = true;
        this.onEvent('notConnecting', {});
      }, CONNECT_TIMEOUT_MS);
    }
    if (state === 'connected' || state === 'completed') {
      this.attempts = 0;
      this.everConnected = true;
      clearTimeout(this.connectTimer);
      if (this.overdue) this.onEvent('connected', {});
      this.overdue = false;
    } else if (state === 'disconnected') {
      this.timer = setTimeout(() => this.restart('disconnected'), DISCONNECTED_GRACE_MS);
    } else if (state === 'failed') {
      this.restart('failed');
    } else if (state === 'closed') {
      this.stop();
    }
  }

  /** The network changed under us: the path the transport used may be gone. */
  networkChanged() {
    if (this.stopped || this.transport.closed) return;
    // A transport that never connected has nothing to restart yet.
    if (this.transport.connectionState === 'new') return;
    this.cancel();
    this.restart('network change');
  }

  async restart(why) {
    if (this.stopped || this.busy || this.transport.closed) return;
    if (this.attempts >= MAX_RESTARTS) {
      this.stop();
      this.onEvent('gaveUp', { why, restarts: this.restarts });
      return;
    }
    this.attempts += 1;
    this.busy = true;
    try {
      const iceParameters = await this.requestRestart();
      if (this.stopped || this.transport.closed) return;
      await this.transport.restartIce({ iceParameters });
      this.restarts += 1;
      this.onEvent('restarted', { why, attempt: this.attempts });
    } catch (e) {
      this.onEvent('warning', e);
    } finally {
      this.busy = false;
    }
    if (this.stopped) return;
    // Not back yet? Try again later (states keep arriving meanwhile and may cancel this).
    this.cancel();
    this.timer = setTimeout(() => {
      const state = this.transport.connectionState;
      if (state !== 'connected' && state !== 'completed') this.restart(`still ${state}`);
    }, RESTART_WAIT_MS);
  }

  cancel() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  stop() {
    this.stopped = true;
    this.cancel();
    clearTimeout(this.connectTimer);
  }
}
