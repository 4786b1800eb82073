// The participant list and raised hands. Everyone in the call is a row: name, microphone and
// camera state, a raised hand with its place in the queue, "presenting" while sharing a screen.
// Raised hands come first, in the order they went up (the server's clock orders them, so every page
// agrees); then you, then the others by name. The same places label the hands on the tiles.

/**
 * The hands' places: `hands` maps peerId → raisedAt (ms); returns peerId → 1, 2, 3… in the order
 * of raising (ties, which one clock makes rare, by peer id so every page breaks them alike).
 */
export function handPlaces(hands) {
  const order = [...hands].sort(([a, ta], [b, tb]) => ta - tb || (a < b ? -1 : a > b ? 1 : 0));
  return new Map(order.map(([peerId], i) => [peerId, i + 1]));
}

/**
 * The list's rows in order. `people`: `{peerId, name, self, mic, cam, presenting}` each (`mic`,
 * `cam`: 'on' | 'off'); `places`: from `handPlaces`, keyed by the same ids.
 */
export function peopleRows(people, places) {
  const byName = (a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }) || (a.peerId < b.peerId ? -1 : 1);
  const rows = people.map((p) => ({ ...p, hand: places.get(p.peerId) ?? null }));
  const raised = rows.filter((r) => r.hand !== null).sort((a, b) => a.hand - b.hand);
  const rest = rows.filter((r) => r.hand === null).sort((a, b) => (a.self !== b.self ? (a.self ? -1 : 1) : byName(a, b)));
  return [...raised, ...rest];
}

/** What a screen reader says of a row, and the row's tooltip. */
export function describeRow(r) {
  const parts = [r.self ? `${r.name} (you)` : r.name];
  if (r.hand !== null) parts.push(`hand raised, ${ordinal(r.hand)}`);
  if (r.presenting) parts.push('presenting');
  parts.push(r.mic === 'on' ? 'microphone on' : 'muted', r.cam === 'on' ? 'camera on' : 'camera off');
  return parts.join(', ');
}

function ordinal(n) {
  const s = n % 100 >= 11 && n % 100 <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' }[n % 10] ?? 'th');
  return `${n}${s}`;
}

/** The panel: `render(rows)` replaces the list; the People button shows the count. */
export function setupPeoplePanel({ panel, list, button, count, close }) {
  function setOpen(open) {
    panel.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
  }
  button.addEventListener('click', () => setOpen(panel.hidden));
  close.addEventListener('click', () => {
    setOpen(false);
    button.focus();
  });
  return {
    setOpen,
    get open() {
      return !panel.hidden;
    },
    render(rows) {
      count.textContent = String(rows.length);
      button.setAttribute('aria-label', `People, ${rows.length} in the call`);
      list.replaceChildren(
        ...rows.map((r) => {
          const li = document.createElement('li');
          li.dataset.peerId = r.peerId;
          li.dataset.mic = r.mic;
          li.dataset.cam = r.cam;
          if (r.hand !== null) li.dataset.hand = String(r.hand);
          if (r.presenting) li.dataset.presenting = 'true';
          li.title = describeRow(r);
          li.setAttribute('aria-label', li.title);
          const hand = document.createElement('span');
          hand.className = 'hand';
          hand.textContent = r.hand !== null ? `✋${r.hand}` : '';
          const name = document.createElement('span');
          name.className = 'name';
          name.textContent = r.self ? `${r.name} (you)` : r.name;
          const badges = document.createElement('span');
          badges.className = 'states';
          const state = (cls, text) => {
            const s = document.createElement('span');
            s.className = cls;
            s.textContent = text;
            return s;
          };
          // Words, and only for what is off: a list of "on" icons says nothing, and words need no
          // emoji font.
          if (r.presenting) badges.append(state('presenting', 'presenting'));
          if (r.mic !== 'on') badges.append(state('mic', 'muted'));
          if (r.cam !== 'on') badges.append(state('cam', 'camera off'));
          li.append(hand, name, badges);
          return li;
        }),
      );
    },
  };
}
