// Keyboard shortcuts in a call, as Google Meet has them: Ctrl+D (⌘D on a Mac) mutes or unmutes,
// Ctrl+E (⌘E) turns the camera off or on, Ctrl+Alt+C (⌘⌥C) opens or closes the chat, Ctrl+Alt+H
// (⌘⌥H) raises or lowers the hand, Ctrl+Alt+P (⌘⌥P) opens or closes the list of people. They work
// while typing in the chat too, and take the browser's own meaning of those keys (bookmark, search)
// only inside a call.

/** The control a key event asks for (`mic`, `cam`, `chat`, `hand`, `people`), or null. Pure: tested without a page. */
export function shortcutFor(event, isMac) {
  const command = isMac ? event.metaKey && !event.ctrlKey : event.ctrlKey && !event.metaKey;
  if (!command || event.shiftKey || event.repeat) return null;
  // `code` is the key's place, so a French or German layout's D and E are where a user looks.
  if (!event.altKey && event.code === 'KeyD') return 'mic';
  if (!event.altKey && event.code === 'KeyE') return 'cam';
  if (event.altKey && event.code === 'KeyC') return 'chat';
  if (event.altKey && event.code === 'KeyH') return 'hand';
  if (event.altKey && event.code === 'KeyP') return 'people';
  return null;
}

/** The label shown beside a control: `Ctrl+D`, or `⌘D` on a Mac. */
export function shortcutLabel(control, isMac) {
  const key = { mic: 'D', cam: 'E', chat: 'C', hand: 'H', people: 'P' }[control];
  const alt = !['mic', 'cam'].includes(control);
  return isMac ? `⌘${alt ? '⌥' : ''}${key}` : `Ctrl+${alt ? 'Alt+' : ''}${key}`;
}

/**
 * Listens on `doc`: while `active()` (the call view is shown), a shortcut clicks its button in
 * `buttons` (`{mic, cam, chat, hand, people}`), so it does exactly what the click does, and a disabled button
 * (no microphone) stays inert. Each button gets its shortcut in its title and `aria-keyshortcuts`.
 */
export function setupShortcuts(doc, buttons, active, isMac) {
  const names = { mic: 'Microphone', cam: 'Camera', chat: 'Chat', hand: 'Raise or lower your hand', people: 'People' };
  for (const [control, button] of Object.entries(buttons)) {
    const label = shortcutLabel(control, isMac);
    button.setAttribute('aria-keyshortcuts', label.replace('⌘', 'Meta+').replace('⌥', 'Alt+'));
    button.title = `${names[control]} (${label})`;
  }
  doc.addEventListener('keydown', (event) => {
    if (!active()) return;
    const control = shortcutFor(event, isMac);
    if (!control) return;
    event.preventDefault();
    const button = buttons[control];
    if (!button.disabled) button.click();
  });
}
