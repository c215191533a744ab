// tickwire fleet console: polls /admin/api/* once a second with the admin
// token from sessionStorage (never from the page itself). No dependencies.
"use strict";
(function () {
  const KEY = "tickwire-admin-token";
  const $ = (id) => document.getElementById(id);
  let selectedRoom = null;
  let timer = null;

  function token() { return sessionStorage.getItem(KEY); }

  async function api(method, path, body) {
    const headers = { "Authorization": "Bearer " + token() };
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch("/admin/api/" + path, init);
    let json = null;
    try { json = await res.json(); } catch (e) { /* not JSON */ }
    if (res.status === 401) { signOut("the token was refused"); throw new Error("unauthorized"); }
    if (!res.ok) throw new Error((json && json.message) || ("HTTP " + res.status));
    return json;
  }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "–" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }
  function stateCell(row, state) {
    const td = document.createElement("td");
    const span = document.createElement("span");
    span.className = "state " + state;
    span.textContent = state;
    td.appendChild(span);
    row.appendChild(td);
  }
  function button(row, label, onClick, danger) {
    const td = document.createElement("td");
    const b = document.createElement("button");
    b.textContent = label;
    if (danger) b.className = "danger";
    b.addEventListener("click", (e) => { e.stopPropagation(); onClick(); });
    td.appendChild(b);
    row.appendChild(td);
  }
  function fill(tbody, rows, columns, render) {
    tbody.replaceChildren();
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = columns;
      td.className = "empty";
      td.textContent = "none";
      tr.appendChild(td);
      tbody.appendChild(tr);
      return;
    }
    for (const r of rows) {
      const tr = document.createElement("tr");
      render(tr, r);
      tbody.appendChild(tr);
    }
  }
  const num = (x, digits) => (x === null || x === undefined) ? null : Number(x).toFixed(digits);
  const int = (x) => Math.round(x).toLocaleString("en-US");
  function duration(s) {
    if (s < 60) return Math.floor(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  async function refresh() {
    try {
      const [nodes, rooms] = await Promise.all([api("GET", "nodes"), api("GET", "rooms")]);
      $("node").textContent = "this node: " + rooms.node + " · " + rooms.state;
      fill($("nodes"), nodes.nodes, 8, (tr, n) => {
        cell(tr, n.id + (n.self ? " (this node)" : ""));
        stateCell(tr, n.state);
        cell(tr, n.players, "num");
        cell(tr, n.capacity || null, "num");
        cell(tr, n.capacity ? Math.round(100 * n.players / n.capacity) + " %" : null, "num");
        cell(tr, n.rooms, "num");
        cell(tr, n.wss_url);
        cell(tr, n.quic_url);
      });
      fill($("fleet-rooms"), nodes.fleet_rooms, 6, (tr, r) => {
        cell(tr, r.name); cell(tr, r.node); cell(tr, r.mode || null);
        cell(tr, r.players, "num"); cell(tr, r.capacity, "num"); stateCell(tr, r.state);
      });
      if (selectedRoom && !rooms.rooms.some((r) => r.name === selectedRoom)) selectedRoom = null;
      if (!selectedRoom && rooms.rooms.length > 0) selectedRoom = rooms.rooms[0].name;
      fill($("rooms"), rooms.rooms, 9, (tr, r) => {
        tr.className = "clickable" + (r.name === selectedRoom ? " selected" : "");
        tr.dataset.room = r.name;
        tr.addEventListener("click", () => { selectedRoom = r.name; refresh(); });
        cell(tr, r.name); cell(tr, r.mode || null); cell(tr, r.players, "num");
        cell(tr, num(r.tick_p50_ms, 3), "num"); cell(tr, num(r.tick_p99_ms, 3), "num");
        cell(tr, r.overruns, "num"); cell(tr, num(r.snapshots_per_s, 1), "num");
        cell(tr, int(r.bytes_per_s), "num");
        button(tr, "Close room", () => closeRoom(r.name), true);
      });
      if (selectedRoom) {
        $("clients-room").textContent = "in room " + selectedRoom;
        const clients = await api("GET", "rooms/" + encodeURIComponent(selectedRoom) + "/clients");
        fill($("clients"), clients.clients, 6, (tr, c) => {
          cell(tr, c.id, "num"); cell(tr, num(c.rtt_ms, 1), "num");
          cell(tr, num(c.snapshots_per_s, 1), "num"); cell(tr, int(c.bytes_per_s), "num");
          cell(tr, duration(c.connected_s), "num");
          button(tr, "Kick", () => kick(selectedRoom, c.id), true);
        });
      } else {
        $("clients-room").textContent = "select a room";
        fill($("clients"), [], 6, () => {});
      }
      const s = $("status");
      s.className = nodes.directory_error ? "error" : "";
      s.textContent = nodes.directory_error
        ? "directory: " + nodes.directory_error
        : "updated " + new Date().toLocaleTimeString();
    } catch (e) {
      if (token()) { $("status").className = "error"; $("status").textContent = String(e.message || e); }
    }
  }

  async function act(what, method, path, body) {
    try { await api(method, path, body); refresh(); }
    catch (e) { alert(what + " failed: " + (e.message || e)); }
  }
  function kick(room, id) {
    const reason = prompt("Kick client " + id + " from " + room + "? Reason:", "kicked by an operator");
    if (reason === null) return;
    act("Kick", "POST", "rooms/" + encodeURIComponent(room) + "/clients/" + id + "/kick", { reason });
  }
  function closeRoom(room) {
    if (!confirm("Close room " + room + "? Every player in it is disconnected.")) return;
    act("Close", "POST", "rooms/" + encodeURIComponent(room) + "/close", { reason: "room closed by an operator" });
  }
  function drain() {
    if (!confirm("Drain this node? It takes no new players, and stops once its rooms end or the grace period passes.")) return;
    act("Drain", "POST", "drain", {});
  }

  function signIn() {
    $("login").classList.add("hidden");
    $("console").classList.remove("hidden");
    $("drain").classList.remove("hidden");
    $("logout").classList.remove("hidden");
    refresh();
    if (!timer) timer = setInterval(refresh, 1000);
  }
  function signOut(why) {
    sessionStorage.removeItem(KEY);
    if (timer) { clearInterval(timer); timer = null; }
    $("console").classList.add("hidden");
    $("drain").classList.add("hidden");
    $("logout").classList.add("hidden");
    $("login").classList.remove("hidden");
    $("status").className = why ? "error" : "";
    $("status").textContent = why || "not signed in";
  }

  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const t = $("token").value.trim();
    if (!t) return;
    sessionStorage.setItem(KEY, t);
    $("token").value = "";
    signIn();
  });
  $("logout").addEventListener("click", () => signOut());
  $("drain").addEventListener("click", drain);
  if (token()) signIn();
})();
