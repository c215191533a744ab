// The page's thin shell: loads the wasm client, remembers the name, and
// exposes `window.tickwire` for tests. All game and protocol logic is Rust.
import init, { start, stop, client_stats, bench_snapshot_decode } from './pkg/tickwire_web.js';

const NAME_KEY = 'tickwire.name';
const params = new URLSearchParams(location.search);
const form = document.getElementById('join');
const nameInput = document.getElementById('name');
const banner = document.getElementById('banner');

let loaded = false;
const ready = init().then(() => { loaded = true; });
ready.catch((err) => {
  banner.className = 'banner error';
  banner.textContent = `Could not load the game: ${err}`;
});

function storedName() {
  try { return localStorage.getItem(NAME_KEY) ?? ''; } catch { return ''; }
}

nameInput.value = params.get('name') ?? storedName();

/** Starts (or restarts) playing as `name` (default: the name field). */
async function play(name = nameInput.value) {
  name = String(name).trim().slice(0, 16);
  if (!name) {
    nameInput.focus();
    return false;
  }
  nameInput.value = name;
  try { localStorage.setItem(NAME_KEY, name); } catch { /* private mode */ }
  await ready;
  start('game', name, params.get('server'));
  form.classList.add('hidden');
  document.getElementById('game').focus();
  return true;
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  play();
});

addEventListener('keydown', (e) => {
  if (e.key !== 'Escape') return;
  form.classList.toggle('hidden');
  if (!form.classList.contains('hidden')) nameInput.select();
});

window.tickwire = {
  ready,
  play,
  stop: () => { if (loaded) stop(); },
  /** The client's figures (see `client_stats` in the Rust docs). */
  stats: () => (loaded ? JSON.parse(client_stats()) : { connected: false, status: 'loading' }),
  /**
   * µs to decode + apply a synthetic snapshot (full, 10 %-changed delta) to the client's world;
   * decode_* = old path. A warm-up batch of `iterations` runs, then `samples` timed batches
   * (median and fastest; `samples` defaults to the Rust side's DEFAULT_SAMPLES).
   */
  bench: async (entities = 1000, iterations = 200, samples = undefined) => {
    await ready;
    return JSON.parse(bench_snapshot_decode(entities, iterations, samples));
  },
};

if (params.has('autoplay')) play();
else nameInput.focus();
