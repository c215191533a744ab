// @ts-check
// The trading floor's page: JavaScript on tickwire-web's JS API only (the class
// `TickwireClient`, exported for the game's types by `export_js_api!`). The types
// below come from the generated `pkg/trading_web.d.ts`, so an editor checks this file.
import init, { TickwireClient } from './pkg/trading_web.js';

/** @typedef {import('./pkg/trading_web.js').Instrument} Instrument */
/** @typedef {import('./pkg/trading_web.js').Portfolio} Portfolio */
/** @typedef {import('./pkg/trading_web.js').TradeEvent} TradeEvent */
/** @typedef {import('./pkg/trading_web.js').Side} Side */
/** @typedef {import('./pkg/trading_web.js').Order} Order */

await init();

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** Cents as dollars. @param {number} cents */
const usd = (cents) => (cents / 100).toLocaleString('en-US', { style: 'currency', currency: 'USD' });
/** @param {number} n */
const signed = (n) => (n > 0 ? '+' : '') + usd(n);
const ARROW = { Up: '▲', Flat: '▶', Down: '▼' };

/** @type {Map<number, Instrument>} The ticker, by entity id. */
const market = new Map();
/** @type {Map<number, HTMLTableRowElement>} */
const rows = new Map();
/** @type {Portfolio | undefined} The only portfolio this client can see: its own. */
let portfolio;
/** @type {TradeEvent[]} */
const events = [];
let client = new TickwireClient();

/** Sends a market order; the answer comes back as a `TradeEvent`. @param {Order} order */
function send(order) {
  try {
    client.sendMessage(order);
    return null;
  } catch (e) {
    const err = /** @type {Error & {code?: string}} */ (e);
    logLine(`not sent (${err.code}): ${err.message}`, true);
    return err.code ?? String(e);
  }
}

/** @param {string} symbol @param {Side} side */
function place(symbol, side) {
  const qty = Number(/** @type {HTMLInputElement} */ ($('qty')).value);
  return send({ symbol, side, qty });
}

/** One ticker row, made the first time an instrument shows up. @param {number} id @param {Instrument} i */
function row(id, i) {
  let tr = rows.get(id);
  if (!tr) {
    tr = document.createElement('tr');
    tr.innerHTML = '<td></td><td></td><td></td><td></td><td></td>'
      + `<td><button class="buy" data-symbol="${i.symbol}" data-side="Buy">Buy</button> `
      + `<button class="sell" data-symbol="${i.symbol}" data-side="Sell">Sell</button></td>`;
    for (const b of tr.querySelectorAll('button')) {
      const { symbol, side } = /** @type {HTMLButtonElement} */ (b).dataset;
      b.addEventListener('click', () => place(String(symbol), /** @type {Side} */ (side)));
    }
    rows.set(id, tr);
    $('ticker').append(tr);
  }
  return tr;
}

/** @param {number} id @param {Instrument} i @param {Instrument | undefined} before */
function drawInstrument(id, i, before) {
  const cells = row(id, i).cells;
  const change = i.price - i.open;
  const dir = change > 0 ? 'up' : change < 0 ? 'down' : 'flat';
  cells[0].textContent = i.symbol;
  cells[1].textContent = usd(i.price);
  cells[2].textContent = `${signed(change)} (${((100 * change) / i.open).toFixed(2)}%)`;
  cells[2].className = dir;
  cells[3].textContent = i.volume.toLocaleString('en-US');
  cells[4].textContent = ARROW[i.trend];
  cells[4].className = i.trend.toLowerCase();
  if (before && before.price !== i.price) cells[1].className = i.price > before.price ? 'up' : 'down';
}

function drawPortfolio() {
  if (!portfolio) return;
  const bySymbol = new Map([...market.values()].map((i) => [i.symbol, i]));
  let value = 0;
  $('holdings').replaceChildren(...portfolio.holdings.map((h) => {
    const price = bySymbol.get(h.symbol)?.price ?? 0;
    const pnl = price * h.qty - h.cost;
    value += price * h.qty;
    const tr = document.createElement('tr');
    tr.dataset.symbol = h.symbol;
    tr.innerHTML = `<td>${h.symbol}</td><td>${h.qty}</td><td>${usd(h.cost / h.qty)}</td>`
      + `<td>${usd(price * h.qty)}</td><td class="${pnl >= 0 ? 'up' : 'down'}">${signed(pnl)}</td>`;
    return tr;
  }));
  const cost = portfolio.holdings.reduce((sum, h) => sum + h.cost, 0);
  $('who').textContent = portfolio.name;
  $('cash').textContent = usd(portfolio.cash);
  $('equity').textContent = usd(portfolio.cash + value);
  $('pnl').textContent = signed(value - cost);
  $('pnl').className = value >= cost ? 'up' : 'down';
}

/** @param {string} text @param {boolean} bad */
function logLine(text, bad) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  if (bad) li.className = 'rejected';
  $('log').prepend(li);
  while ($('log').childElementCount > 100) $('log').lastElementChild?.remove();
}

/** @param {TradeEvent} e */
function onTradeEvent(e) {
  events.push(e);
  if ('Filled' in e) {
    const f = e.Filled;
    logLine(`${f.side === 'Buy' ? 'BOUGHT' : 'SOLD  '} ${f.qty} ${f.symbol} @ ${usd(f.price)}`, false);
  } else {
    const { order, reason } = e.Rejected;
    const why = typeof reason === 'string' ? reason : JSON.stringify(reason);
    logLine(`REJECTED ${order.side} ${order.qty} ${order.symbol}: ${why}`, true);
  }
}

/** Connects as `name` (a new name is a new player). @param {string} name */
function join(name) {
  client.close();
  client = new TickwireClient();
  market.clear();
  rows.clear();
  $('ticker').replaceChildren();
  portfolio = undefined;
  client.onStatus((s) => {
    $('status').textContent = s.status + (s.reason ? `: ${s.reason}` : '');
    $('status').className = `pill ${s.status}`;
  });
  client.onSnapshot((c) => {
    const ids = [...c.added, ...c.changed];
    const states = client.states(ids); // one call for all of them
    for (const [i, id] of ids.entries()) {
      const state = states[i];
      if (state === undefined) continue; // removed by a newer snapshot already
      if ('Instrument' in state) {
        drawInstrument(id, state.Instrument, market.get(id));
        market.set(id, state.Instrument);
      } else {
        portfolio = state.Portfolio;
      }
    }
    for (const id of c.removed) {
      rows.get(id)?.remove();
      rows.delete(id);
      market.delete(id);
    }
    drawPortfolio();
  });
  client.onEvent(onTradeEvent);
  client.connect({ auth: name });
}

setInterval(() => {
  const s = client.stats();
  const rtt = s.rttMs === undefined ? '–' : `${s.rttMs.toFixed(0)} ms`;
  $('net').textContent = `WebSocket ${location.host} · ${s.status} · tick ${s.tick ?? '–'} · rtt ${rtt}`
    + ` · ${s.snapshotsPerSec.toFixed(0)} snapshots/s · ${(s.bytesInPerSec / 1024).toFixed(1)} KiB/s in`
    + ` · ${s.entityCount} entities`;
}, 500);

const nameBox = /** @type {HTMLInputElement} */ ($('name'));
nameBox.value = new URLSearchParams(location.search).get('name') ?? `trader-${Math.floor(Math.random() * 9000 + 1000)}`;
$('join').addEventListener('submit', (e) => { e.preventDefault(); join(nameBox.value); });
join(nameBox.value);

// For tests and the console: what the page shows, and the same order path as the buttons.
Object.assign(window, {
  trading: {
    status: () => client.status().status,
    clientId: () => client.clientId,
    market: () => [...market.values()],
    portfolio: () => portfolio,
    /** How many portfolios this client can see (visibility: 1, its own). */
    portfolios: () => client.entities().filter((e) => 'Portfolio' in e.state).length,
    events: () => events,
    /** @param {string} symbol @param {Side} side @param {number} qty */
    order: (symbol, side, qty) => send({ symbol, side, qty }),
    /** The error code of `sendMessage` on a client that never connected. */
    offlineError() {
      try { new TickwireClient().sendMessage({ symbol: 'TICK', side: 'Buy', qty: 1 }); return null; }
      catch (e) { return /** @type {{code?: string}} */ (e).code; }
    },
  },
});
