// The client apply benchmark on a page of its own: decodes and applies a
// synthetic arena snapshot (full, and a 10 %-changed delta) with the same
// Rust code as the native twin (`cargo xtask bench wasm` runs both).
import init, { bench_snapshot_decode } from './pkg/arena_web.js';

const params = new URLSearchParams(location.search);
const out = document.getElementById('out');

/** A positive integer query parameter, or `undefined` (the Rust default). */
function count(name) {
  const v = Number.parseInt(params.get(name) ?? '', 10);
  return Number.isFinite(v) && v > 0 ? v : undefined;
}

/** The smallest step `performance.now()` takes here, in ms (bounded loop). */
function timerStep() {
  let step = Infinity;
  let last = performance.now();
  for (let i = 0, seen = 0; i < 1e6 && seen < 50; i++) {
    const t = performance.now();
    if (t > last) {
      step = Math.min(step, t - last);
      last = t;
      seen++;
    }
  }
  return step;
}

async function run() {
  const result = {
    user_agent: navigator.userAgent,
    cross_origin_isolated: self.crossOriginIsolated === true,
    timer_step_ms: timerStep(),
  };
  try {
    await init();
    const json = bench_snapshot_decode(count('entities') ?? 1000, count('iterations') ?? 200, count('samples'));
    result.bench = JSON.parse(json);
  } catch (err) {
    result.error = String(err);
  }
  out.textContent = JSON.stringify(result, null, 2);
  window.benchResult = result;
  const report = params.get('report');
  if (report?.startsWith('/')) {
    await fetch(report, { method: 'POST', body: JSON.stringify(result) });
  }
}

run();
