// The chat panel: the log (sender, time, text or file), the input, file sending, and the unread
// badge on the Chat button while the panel is closed. Messages go over the call's DataChannel in
// wire.js's format; main.js hands received ones to `receive`.
import { MAX_TEXT, encodeChat, encodeFile } from './wire.js';

const $ = (id) => document.getElementById(id);

export function setupChat(call) {
  const ui = {
    panel: $('chat'), log: $('chat-log'), form: $('chat-form'), input: $('chat-input'), button: $('chat-btn'),
    badge: $('chat-badge'), fileInput: $('file-input'), fileBtn: $('file-btn'),
  };
  ui.input.maxLength = MAX_TEXT;
  let unread = 0;
  // The file each peer announced last: its next binary message is that file's contents.
  const announced = new Map();
  // Received files, kept for their download links (and the debug hook).
  const files = [];

  function setUnread(n) {
    unread = n;
    ui.badge.textContent = n > 99 ? '99+' : String(n);
    ui.badge.hidden = n === 0;
    ui.button.setAttribute('aria-label', n ? `Chat, ${n} unread` : 'Chat');
  }

  function setOpen(open) {
    ui.panel.hidden = !open;
    ui.button.setAttribute('aria-expanded', String(open));
    if (open) {
      setUnread(0);
      ui.input.focus();
      ui.log.scrollTop = ui.log.scrollHeight;
    }
  }

  /** One line of the log; `body` is a string or an element. Counts as unread if someone else's
   * (and not from before this person joined: `at`, the time it was sent, is given only for those). */
  function append({ peerId, from, body, own = false, note = false, at = null }) {
    const li = document.createElement('li');
    li.className = `msg${own ? ' own' : ''}${note ? ' note' : ''}${at ? ' earlier' : ''}`;
    li.dataset.peerId = peerId;
    const head = document.createElement('div');
    const name = document.createElement('span');
    name.className = 'from';
    name.textContent = from;
    const time = document.createElement('time');
    const now = at ? new Date(at) : new Date();
    time.dateTime = now.toISOString();
    time.textContent = now.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    head.append(name, time);
    const text = document.createElement('p');
    text.className = 'text';
    text.append(body);
    li.append(head, text);
    const atBottom = ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 40;
    ui.log.append(li);
    if (atBottom || own) ui.log.scrollTop = ui.log.scrollHeight;
    if (!own && !note && !at && ui.panel.hidden) setUnread(unread + 1);
  }

  const ownLine = (body) => append({ peerId: 'self', from: 'You', body, own: true });
  const note = (text) => append({ peerId: 'self', from: '', body: text, note: true });

  function fileLink(name, bytes) {
    const a = document.createElement('a');
    // Always a download, never displayed: the bytes are someone else's.
    a.href = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
    a.download = name;
    a.textContent = `${name} (${formatSize(bytes.byteLength)})`;
    return a;
  }

  ui.button.addEventListener('click', () => setOpen(ui.panel.hidden));
  $('chat-close').addEventListener('click', () => setOpen(false));

  ui.form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = ui.input.value.trim();
    if (!text) return;
    try {
      await call.sendData(encodeChat(text));
    } catch (e) {
      return note(`Not sent: ${e.message}`);
    }
    ui.input.value = '';
    ownLine(text);
  });

  ui.fileBtn.addEventListener('click', () => ui.fileInput.click());
  ui.fileInput.addEventListener('change', async () => {
    const file = ui.fileInput.files[0];
    ui.fileInput.value = '';
    if (!file) return;
    if (file.size > call.maxMessageSize) {
      return note(`${file.name} is too large to send here (at most ${formatSize(call.maxMessageSize)}).`);
    }
    const bytes = await file.arrayBuffer();
    try {
      // One ordered, reliable channel: the contents always follow their announcement.
      await call.sendData(encodeFile({ name: file.name, size: bytes.byteLength }));
      await call.sendData(bytes);
    } catch (e) {
      return note(`${file.name} not sent: ${e.message}`);
    }
    ownLine(fileLink(file.name, bytes));
  });

  return {
    /** A decoded message of `peerId` (wire.js): chat lines and files; other types are not ours. */
    receive(peerId, msg) {
      const from = call.peers.get(peerId) || 'Someone';
      if (msg.type === 'chat') append({ peerId, from, body: msg.text });
      else if (msg.type === 'file') announced.set(peerId, msg);
      else if (msg.type === 'binary') {
        const header = announced.get(peerId);
        announced.delete(peerId);
        const name = header && header.size === msg.bytes.byteLength ? header.name : 'binary data';
        files.push({ peerId, name, bytes: msg.bytes });
        append({ peerId, from, body: fileLink(name, msg.bytes) });
      }
    },
    /** What was said before this person joined (lines `{peerId, displayName, text, at}`), shown
     * once: after an automatic rejoin the log already has it. */
    history(lines) {
      if (ui.log.childElementCount > 0 || lines.length === 0) return;
      for (const line of lines) {
        if (typeof line?.text !== 'string' || !Number.isFinite(line.at)) continue;
        append({ peerId: String(line.peerId ?? ''), from: String(line.displayName || 'Someone'), body: line.text, at: line.at });
      }
      note('Messages above were sent before you joined.');
    },
    /** The log as shown: `{peerId, from, text, earlier}` per line, for the debug hook. */
    lines() {
      return [...ui.log.querySelectorAll('li.msg:not(.note)')].map((li) => ({
        peerId: li.dataset.peerId, from: li.querySelector('.from').textContent,
        text: li.querySelector('.text').textContent, earlier: li.classList.contains('earlier'),
      }));
    },
    /** Leaving the call: an empty log and no unread messages for the next one. */
    clear() {
      for (const a of ui.log.querySelectorAll('a[href^="blob:"]')) URL.revokeObjectURL(a.href);
      ui.log.replaceChildren();
      files.length = 0;
      announced.clear();
      setUnread(0);
      setOpen(false);
    },
    /** Received files with their SHA-256 (hex), for the debug hook. */
    async files() {
      const out = [];
      for (const f of files) {
        const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', f.bytes));
        const sha256 = [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
        out.push({ peerId: f.peerId, name: f.name, size: f.bytes.byteLength, sha256 });
      }
      return out;
    },
  };
}

function formatSize(n) {
  return n < 1024 ? `${n} B` : `${Math.round(n / 1024)} KiB`;
}
