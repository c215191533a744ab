// The page's thin shell: loads the wasm client, remembers the name, and
// exposes `window.tickwire` for tests. All game and protocol logic is Rust.
import init, { start, start_seat, stop, client_stats, bench_snapshot_decode } from './pkg/arena_web.js';

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

/**
 * Asks this node's matchmaker (`POST /matchmake`, docs/PROTOCOL.md §13) for a seat:
 * `request` is `{mode}` or `{room}`, with `auth`. Resolves to the ticket
 * `{node, wss_url, quic_url, room, mode, seat_token, expires_in_ms}`; rejects with an
 * Error whose `status`, `code` and `retryAfter` (seconds, on 503) say why.
 */
async function matchmake(request) {
  const res = await fetch('/matchmake', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(request),
  });
  const body = await res.json().catch(() => ({ error: 'http', message: res.statusText }));
  if (res.ok) return body;
  const err = new Error(`matchmaking refused (${res.status} ${body.error}): ${body.message}`);
  err.status = res.status;
  err.code = body.error;
  err.retryAfter = Number(res.headers.get('Retry-After')) || undefined;
  throw err;
}

/**
 * Starts (or restarts) playing as `name` (default: the name field). With `?matchmake`
 * in the page's URL it matchmakes first (`?mode=…` or `?room=…`), so one URL reaches a fleet.
 */
async function play(name = nameInput.value) {
  name = String(name).trim().slice(0, 16);
  if (!name) {
    nameInput.focus();
    return false;
  }
  nameInput.value = name;
  try { localStorage.setItem(NAME_KEY, name); } catch { /* private mode */ }
  await ready;
  if (params.has('matchmake')) {
    const request = params.has('room') ? { room: params.get('room') } : { mode: params.get('mode') ?? '' };
    try {
      const t = await matchmake({ ...request, auth: name });
      start_seat('game', name, t.wss_url, t.room, t.seat_token);
    } catch (err) {
      banner.className = 'banner error';
      banner.textContent = String(err.message ?? err);
      return false;
    }
  } else {
    start('game', name, params.get('server'), params.get('transport'));
  }
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
  matchmake,
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
