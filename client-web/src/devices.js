// Devices during a call: switch camera, microphone and speaker without leaving, and turn the
// microphone's noise suppression and echo cancellation on or off. A new camera or microphone is
// captured, then sent on the same producer (`Call.replaceTrack`): the others keep their tile and
// decoder. Turning a processing switch captures the microphone again with it, since browsers do
// not reliably change audio processing on a live track — and Chromium opens a microphone with one
// processing setting at a time, so the old capture (and the meter's clone) is released first: the
// audio drops for a moment, as it does in every client that offers the switch. The speaker is each <audio>'s `setSinkId`,
// where the browser has it (Chromium does; Firefox and Safari only partly).

const $ = (id) => document.getElementById(id);

/** Whether this browser can pick the speaker. */
export const canPickSpeaker = () => typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;

/** The getUserMedia audio constraints for `deviceId` (or the default) and the two switches. */
export function audioConstraints(deviceId, { noiseSuppression, echoCancellation }) {
  return { ...(deviceId ? { deviceId: { exact: deviceId } } : {}), noiseSuppression, echoCancellation, autoGainControl: true };
}

/**
 * `stream()` is the local stream (its tracks are what we send); `videoSize()` the camera's
 * constraints; `useTrack(kind, track)` puts a freshly captured track in place of the current one
 * (and stops that); `releaseMic()` stops every capture of the microphone; `onError(err)` reports
 * a failure.
 */
export function setupDevicesPanel({ stream, videoSize, useTrack, releaseMic, onError }) {
  const ui = {
    panel: $('devices'), button: $('devices-btn'), close: $('devices-close'), camera: $('call-camera'), mic: $('call-mic'),
    speaker: $('call-speaker'), speakerRow: $('speaker-row'), noise: $('noise-suppression'), echo: $('echo-cancellation'),
  };
  let sinkId = '';
  ui.speakerRow.hidden = !canPickSpeaker();

  function setOpen(open) {
    ui.panel.hidden = !open;
    ui.button.setAttribute('aria-expanded', String(open));
    if (open) fill().catch(() => {});
  }
  ui.button.addEventListener('click', () => setOpen(ui.panel.hidden));
  ui.close.addEventListener('click', () => {
    setOpen(false);
    ui.button.focus();
  });

  async function fill() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const now = {
      videoinput: stream()?.getVideoTracks()[0]?.getSettings().deviceId,
      audioinput: stream()?.getAudioTracks()[0]?.getSettings().deviceId,
      audiooutput: sinkId,
    };
    const names = { videoinput: 'Camera', audioinput: 'Microphone', audiooutput: 'Speaker' };
    for (const [select, kind] of [[ui.camera, 'videoinput'], [ui.mic, 'audioinput'], [ui.speaker, 'audiooutput']]) {
      const list = devices.filter((d) => d.kind === kind && d.deviceId);
      select.replaceChildren(...list.map((d, i) => new Option(d.label || `${names[kind]} ${i + 1}`, d.deviceId)));
      if (now[kind]) select.value = now[kind];
      select.disabled = list.length === 0;
    }
  }

  const processing = () => ({ noiseSuppression: ui.noise.checked, echoCancellation: ui.echo.checked });

  async function capture(kind, deviceId, { release = false } = {}) {
    if (release) releaseMic();
    const constraints =
      kind === 'video' ? { video: { deviceId: { exact: deviceId }, ...videoSize() } } : { audio: audioConstraints(deviceId, processing()) };
    const track = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks()[0];
    await useTrack(kind, track);
  }

  const guarded = (fn) => async () => {
    try {
      await fn();
    } catch (err) {
      onError(err);
      await fill().catch(() => {});
    }
  };
  ui.camera.addEventListener('change', guarded(() => capture('video', ui.camera.value)));
  ui.mic.addEventListener('change', guarded(() => capture('audio', ui.mic.value)));
  const reprocess = guarded(() =>
    capture('audio', stream()?.getAudioTracks()[0]?.getSettings().deviceId ?? ui.mic.value, { release: true }),
  );
  ui.noise.addEventListener('change', reprocess);
  ui.echo.addEventListener('change', reprocess);
  ui.speaker.addEventListener(
    'change',
    guarded(async () => {
      sinkId = ui.speaker.value;
      await Promise.all([...document.querySelectorAll('#grid audio')].map((a) => a.setSinkId(sinkId)));
    }),
  );

  return {
    setOpen,
    /** A new <audio> plays where the person chose. */
    applySink(audio) {
      if (sinkId && canPickSpeaker()) audio.setSinkId(sinkId).catch(() => {});
    },
    processing,
  };
}
