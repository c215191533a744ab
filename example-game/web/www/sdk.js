// A page that plays the arena through the generic JavaScript API only: the class
// `TickwireClient` that `tickwire_web::export_js_api!` generates for the arena's types
// (typings in pkg/arena_web.d.ts). No game code, no canvas, no npm.
import init, { TickwireClient, bench_js_api } from './pkg/arena_web.js';

/** What the page saw through the API's callbacks. */
const seen = {
  statuses: [],
  events: [],
  snapshots: 0,
  tick: undefined,
  added: 0,
  changed: 0,
  removed: 0,
  /** Snapshots whose id lists were not arrays. */
  badChanges: 0,
  /** The world as rebuilt from the change callbacks alone: id -> state. */
  world: new Map(),
  /** When each snapshot was applied (`performance.now()`, ms). */
  arrivals: [],
};
let client;
let holding;

await init();

const out = document.getElementById('out');
const show = () => { out.textContent = JSON.stringify({ ...seen, world: seen.world.size }, null, 2); };

/** A plain object (not a class instance, not a Map) all the way down. */
function plain(v) {
  if (v === null || typeof v !== 'object') return true;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== Array.prototype) return false;
  return Object.values(v).every(plain);
}

window.sdk = {
  /**
   * Connects as `name` (to this page's server unless `url` is given); `options` are more
   * connect options (`transport`, `webTransportDeadlineMs`, `rememberFailureMs`).
   */
  start(name, url, options = {}) {
    client = new TickwireClient(url);
    client.onStatus((s) => { seen.statuses.push(s.status); show(); });
    client.onEvent((e) => { seen.events.push(e); });
    client.onSnapshot((c) => {
      seen.snapshots += 1;
      seen.arrivals.push(performance.now());
      seen.tick = c.tick;
      // Ids only (arrays of numbers); the states are read on demand.
      if (!(Array.isArray(c.added) && Array.isArray(c.changed) && Array.isArray(c.removed))) {
        seen.badChanges += 1;
      }
      for (const id of c.added) { seen.world.set(id, client.entity(id)); seen.added += 1; }
      for (const id of c.changed) { seen.world.set(id, client.entity(id)); seen.changed += 1; }
      for (const id of c.removed) { seen.world.delete(id); seen.removed += 1; }
      if (seen.snapshots % 30 === 1) show();
    });
    client.connect({ auth: name, ...options });
  },
  status: () => client?.status().status ?? 'none',
  /** The transport in use: "webtransport", "websocket" or undefined. */
  transport: () => client?.transport,
  /** Drops the transport like a network loss (see `interruptTransport`). */
  interrupt: (markWebTransportFailed) => client.interruptTransport(markWebTransportFailed),
  /**
   * The intervals between applied snapshots from now on, for `ms` milliseconds: resolves to
   * `{count, p50, p99, max}` (ms).
   */
  async snapshotIntervals(ms) {
    const from = seen.arrivals.length;
    await new Promise((r) => setTimeout(r, ms));
    const t = seen.arrivals.slice(from);
    const d = t.slice(1).map((x, i) => x - t[i]).sort((a, b) => a - b);
    const q = (p) => (d.length ? d[Math.min(d.length - 1, Math.ceil(p * d.length) - 1)] : null);
    return { count: d.length, p50: q(0.5), p99: q(0.99), max: d.length ? d[d.length - 1] : null };
  },
  statuses: () => seen.statuses,
  stats: () => client.stats(),
  /** The client's world now: `{id, state}` objects. */
  entities: () => client.entities(),
  clientId: () => client.clientId,
  /** The entity `YouAre` named, from the game's events. */
  youAre: () => seen.events.find((e) => e.YouAre)?.YouAre.entity,
  /** The player `name` as the change callbacks left it: `{id, state, plain}`. */
  player(name) {
    for (const [id, state] of seen.world) {
      if (state.kind === 'Player' && state.name === name) {
        return { id, state, plain: plain(state) && typeof state.pos.x === 'number' };
      }
    }
    return null;
  },
  /** True when the world rebuilt from the callbacks equals `entities()`. */
  callbacksMatchWorld() {
    const now = client.entities();
    if (now.length !== seen.world.size || now.length === 0) return false;
    return now.every((e) => JSON.stringify(seen.world.get(e.id)) === JSON.stringify(e.state)
      && JSON.stringify(client.entity(e.id)) === JSON.stringify(e.state));
  },
  /**
   * True when reading an entity twice gives the same object (built once per version), and
   * `entities()` and `states(ids)` (a Uint32Array or an array) hand over those objects.
   */
  statesAreShared() {
    const now = client.entities();
    const ids = now.map((e) => e.id);
    const batch = client.states(new Uint32Array([...ids, 0xffffffff]));
    return now.length > 0
      && now.every((e) => client.entity(e.id) === client.entity(e.id) && client.entity(e.id) === e.state)
      && batch.length === ids.length + 1 && batch[ids.length] === undefined
      && ids.every((id, i) => batch[i] === client.entity(id))
      && client.states(ids).every((st, i) => st === batch[i]);
  },
  counts: () => ({
    snapshots: seen.snapshots, added: seen.added, changed: seen.changed, removed: seen.removed, tick: seen.tick,
    badChanges: seen.badChanges,
  }),
  /** Sends `{buttons, aim}` every 16 ms until `release()`; returns the first sequence number. */
  hold(buttons, aim = 0) {
    clearInterval(holding);
    const first = client.sendInput({ buttons, aim });
    holding = setInterval(() => client.sendInput({ buttons, aim }), 16);
    return first ?? null;
  },
  release() { clearInterval(holding); },
  /** The error a malformed input raises (inputs are checked against the game's type). */
  badInput() {
    try { client.sendInput({ buttons: 'left' }); return null; } catch (e) { return String(e); }
  },
  close() { clearInterval(holding); client.close(); },
  /**
   * µs the JS API adds per received snapshot (see `bench_js_api` in arena-web); `read`:
   * "none" (the notification alone), "each" (every changed state with `entity(id)`) or
   * "batch" (the same with one `states(ids)`).
   */
  bench: (entities = 1000, iterations = 200, samples = undefined, read = 'none') =>
    JSON.parse(bench_js_api(entities, iterations, samples, read)),
};
show();
