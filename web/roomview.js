// The room as the page shows it, drawn from the page's state (`window.wisp`): which tile is
// large, what each tile says, which layer each slot asks for, and the people list. Called after
// every room event; idempotent (it only changes what differs).
import { arrange, showTile, tileFor } from '/web/tiles.js';

const $ = (id) => document.getElementById(id);

/** What a participant's tile shows: the roster's word on it, and this page's pin. */
function describe(app, who) {
  const p = app.roster.get(who) || {};
  const owner = p.screenOf ? app.roster.get(p.screenOf) : null;
  return {
    label: p.screenOf ? `${owner?.name || p.name || who} (screen)` : (p.name || who),
    name: owner?.name || p.name || who,
    muted: !!p.muted && !p.screenOf, cameraOff: !!p.cameraOff, weak: !!p.weak,
    speaking: app.speaking.has(who), screen: !!p.screenOf, pinned: app.pinned === who,
  };
}

/**
 * Draws the room: one tile per video slot of the WHEP session (`remoteStreams`, mid → stream)
 * plus the page's own (`local`) and its own screen share; the speaker view's large tile is the
 * pinned participant, else a shared screen, else the active speaker. `wantLayer(mid, pref)` asks
 * for a slot's layer; `onPin(tile)` is the pin button.
 */
export function renderRoom(app, { remoteStreams, local, onPin, wantLayer }) {
  const tiles = $('tiles');
  const shown = [...remoteStreams.keys()].filter((mid) => app.slots.get(mid));
  // The large tile of the speaker view: the pinned one, else a screen, else the speaker.
  const visible = shown.map((mid) => app.slots.get(mid));
  const screens = visible.filter((w) => app.roster.get(w)?.screenOf);
  const featured = (app.pinned && visible.includes(app.pinned) && app.pinned)
    || screens.at(-1) || (visible.includes(app.active) && app.active) || visible[0] || null;
  const speaker = app.layout !== 'grid';
  const many = visible.length + 1 + (app.share ? 1 : 0) > 4;
  for (const [mid, stream] of remoteStreams) {
    const who = app.slots.get(mid);
    const tile = tileFor(tiles, `slot-${mid}`, { onPin });
    tile.hidden = !who;
    tile.dataset.participant = who || '';
    const v = tile.querySelector('video');
    if (v.srcObject !== stream) v.srcObject = stream;
    if (!who) { tile.classList.remove('featured', 'speaking'); continue; }
    const d = describe(app, who);
    showTile(tile, { ...d, featured: speaker && who === featured });
    // Large tiles get the best layer, small ones at most 240 lines (WHEP layer selection;
    // no-op without simulcast); a pinned one carries the pin.
    const big = speaker ? who === featured : (!many || d.screen || d.pinned);
    let pref = big ? {} : { maxHeight: 240 };
    if (d.pinned) pref = { participant: who };
    wantLayer(mid, pref);
  }
  const self = tileFor(tiles, 'self');
  const sv = self.querySelector('video');
  if (sv.srcObject !== local) sv.srcObject = local;
  showTile(self, {
    label: `${app.name || $('name').value} (you)`, name: app.name, muted: app.muted,
    cameraOff: app.cameraOff, weak: app.weak, speaking: app.speaking.has(app.me),
    featured: speaker && !featured,
  });
  // This page's own screen share: shown small (never large to its sharer: no hall of mirrors).
  const mine = document.querySelector('.tile[data-key="screen-self"]');
  if (app.share) {
    const t = mine || tileFor(tiles, 'screen-self');
    const v2 = t.querySelector('video');
    if (v2.srcObject !== app.share.stream) v2.srcObject = app.share.stream;
    showTile(t, { label: 'Your screen', name: app.name, screen: true });
  } else if (mine) mine.remove();
  arrange(tiles, app.layout);

  const people = $('people');
  people.replaceChildren();
  const list = [...app.roster.values()].filter((p) => !p.screenOf);
  for (const p of list) {
    const li = document.createElement('li');
    li.textContent = p.id === app.me ? `${p.name} (you)` : p.name;
    li.classList.toggle('speaking', app.speaking.has(p.id));
    li.classList.toggle('muted', p.id === app.me ? app.muted : !!p.muted);
    li.classList.toggle('sharing', [...app.roster.values()].some((q) => q.screenOf === p.id));
    people.appendChild(li);
  }
  $('count').textContent = list.length ? `(${list.length})` : '';
}
