// The room's video tiles: one per slot of the page's WHEP session plus the page's own, each
// showing the name (`.label`, exactly the name: the tests read it), microphone muted, camera
// off, weak connection and speaking; a pin button on the others' tiles. Two layouts: the
// speaker view (one featured tile large, the rest a strip) and a grid sized to fit 1-16 tiles.

// Icons: static markup of this file, never built from anything a participant sent.
const ICON = {
  micOff: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1A7 7 0 0 0 19 11h-2z"/><path d="M3 3l18 18" stroke="currentColor" stroke-width="2.4"/></svg>',
  camOff: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M15 8v8H5V8h10m1-2H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11l-4 4V7a1 1 0 0 0-1-1z"/><path d="M3 3l18 18" stroke="currentColor" stroke-width="2.4"/></svg>',
  weak: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M3 20h3v-4H3zm5 0h3v-8H8z"/><path d="M13 20h3V8h-3zm5 0h3V4h-3z" opacity=".3"/><path d="M14 3l7 7m0-7l-7 7" stroke="currentColor" stroke-width="2"/></svg>',
  pin: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M16 3l5 5-2 1-4 4 1 5-2 2-4-4-5 5-1-1 5-5-4-4 2-2 5 1 4-4z"/></svg>',
};
export { ICON };

/** The tile with `key` in `container`, made on first use. `onPin(tile)` for the pin button. */
export function tileFor(container, key, { onPin } = {}) {
  let tile = container.querySelector(`.tile[data-key="${CSS.escape(key)}"]`);
  if (tile) return tile;
  tile = document.createElement('div');
  tile.className = 'tile';
  tile.dataset.key = key;
  tile.innerHTML = '<video autoplay playsinline muted></video>'
    + '<div class="avatar" aria-hidden="true"><span></span></div>'
    + '<div class="bar"><span class="inds">'
    + `<span class="ind mic-off" role="img" aria-label="microphone muted" title="Microphone muted" hidden>${ICON.micOff}</span>`
    + `<span class="ind cam-off" role="img" aria-label="camera off" title="Camera off" hidden>${ICON.camOff}</span>`
    + `<span class="ind weak" role="img" aria-label="weak connection" title="Weak connection" hidden>${ICON.weak}</span>`
    + '</span><span class="label"></span></div>';
  if (onPin) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'pin';
    b.setAttribute('aria-pressed', 'false');
    b.innerHTML = ICON.pin;
    b.addEventListener('click', () => onPin(tile));
    tile.appendChild(b);
  }
  container.appendChild(tile);
  return tile;
}

/**
 * Shows `s` on `tile`: { label, name, muted, cameraOff, weak, speaking, screen, pinned,
 * featured }. `label` is the exact text of `.label`; `name` the person (for the avatar's
 * initial and the pin button's name).
 */
export function showTile(tile, s) {
  const label = tile.querySelector('.label');
  if (label.textContent !== s.label) label.textContent = s.label;
  const initial = (s.name || s.label || '?').trim().charAt(0).toUpperCase() || '?';
  const av = tile.querySelector('.avatar span');
  if (av.textContent !== initial) av.textContent = initial;
  tile.querySelector('.mic-off').hidden = !s.muted;
  tile.querySelector('.cam-off').hidden = !s.cameraOff || !!s.screen;
  tile.querySelector('.weak').hidden = !s.weak;
  tile.classList.toggle('speaking', !!s.speaking);
  tile.classList.toggle('camoff', !!s.cameraOff && !s.screen);
  tile.classList.toggle('screen', !!s.screen);
  tile.classList.toggle('pinned', !!s.pinned);
  tile.classList.toggle('featured', !!s.featured);
  const pin = tile.querySelector('.pin');
  if (pin) {
    pin.setAttribute('aria-pressed', String(!!s.pinned));
    const what = `${s.pinned ? 'Unpin' : 'Pin'} ${s.label}`;
    if (pin.getAttribute('aria-label') !== what) { pin.setAttribute('aria-label', what); pin.title = what; }
  }
}

/**
 * The number of columns that makes `n` tiles of aspect 16:9 (a screen share counting as a
 * 2×2 block) largest in a `w`×`h` box with `gap` between them.
 */
export function bestColumns(n, w, h, gap = 8, screens = 0) {
  let best = { cols: 1, size: 0 };
  for (let cols = 1; cols <= Math.max(1, n); cols++) {
    const span = Math.min(2, cols);
    const cells = n - screens + screens * span * span;
    const rows = Math.ceil(cells / cols);
    const tw = Math.min((w - gap * (cols - 1)) / cols, ((h - gap * (rows - 1)) / rows) * 16 / 9);
    if (tw > best.size) best = { cols, size: tw };
  }
  return best;
}

/** Lays the visible tiles of `container` out for `mode` ('grid' or 'speaker'). */
export function arrange(container, mode) {
  container.classList.toggle('grid', mode === 'grid');
  container.classList.toggle('speaker', mode !== 'grid');
  const tiles = [...container.querySelectorAll('.tile:not([hidden])')];
  container.dataset.count = String(tiles.length);
  if (mode !== 'grid') { container.style.removeProperty('--cols'); container.style.removeProperty('--tile-w'); return; }
  const screens = tiles.filter((t) => t.classList.contains('screen')).length;
  const { cols, size } = bestColumns(tiles.length, container.clientWidth, container.clientHeight, 8, screens);
  container.classList.toggle('one-col', cols === 1);
  container.style.setProperty('--cols', String(cols));
  container.style.setProperty('--tile-w', `${Math.max(80, Math.floor(size))}px`);
}
