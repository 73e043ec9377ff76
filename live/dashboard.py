"""The live dashboard: one static page the control endpoint serves at ``/`` and ``/dashboard``.

The page holds no data and no secret: it asks for the bearer token (or takes it from the URL
fragment, ``#token=...``, which browsers never send to the server), then polls ``/status``
with it twice a second and shows positions, P&L, working orders, latency per stage and the
risk state; its kill button posts ``/kill`` with the token. Values are written with
``textContent`` only (no HTML from the status is ever interpreted).
"""

from __future__ import annotations

PAGE = """<!DOCTYPE html>
<html lang=en>
<head>
<meta charset=utf-8>
<title>hftlab live</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;max-width:1100px}
h1{font-size:1.3em}h2{font-size:1.05em;margin-top:1.2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:2px 8px}
th{background:#f4f4f4;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
#state.killed{color:#fff;background:#b00;padding:2px 8px}
#state.live{color:#fff;background:#070;padding:2px 8px}
button{font-size:1em;padding:4px 14px}#kill{background:#b00;color:#fff;border:0}
#error{color:#b00}
</style>
</head>
<body>
<h1>hftlab live: <span id=strategy>?</span> <span id=state>connecting</span></h1>
<p><label>Token <input id=token type=password size=30></label>
<button id=kill disabled>Kill</button> <span id=error></span></p>
<p>P&amp;L <b id=pnl>?</b> &middot; equity <span id=equity>?</span>
&middot; updated <span id=updated>never</span> &middot; reason <span id=reason></span></p>
<h2>Positions</h2><table id=positions><tr><th>instrument</th><th>position</th></tr></table>
<h2>Working orders</h2>
<table id=orders><tr><th>id</th><th>instrument</th><th>side</th><th>price</th><th>qty</th>
<th>filled</th><th>status</th></tr></table>
<h2>Latency per stage (&micro;s)</h2>
<table id=latency><tr><th>stage</th><th>p50</th><th>p99</th><th>p99.9</th><th>max</th>
<th>count</th></tr></table>
<h2>Risk</h2><table id=risk><tr><th>check</th><th>value</th></tr></table>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function fromFragment() {
  const frag = new URLSearchParams(location.hash.slice(1));
  if (frag.get("token")) { $("token").value = frag.get("token"); poll(); }
}
window.addEventListener("hashchange", fromFragment);
function auth() { return {"Authorization": "Bearer " + $("token").value}; }
function cell(tr, v, num) {
  const td = document.createElement("td");
  td.textContent = (v === null || v === undefined) ? "" : String(v);
  if (num) { td.className = "n"; }
  tr.appendChild(td);
}
function fill(id, rows, cols, nums) {
  const t = $(id);
  while (t.rows.length > 1) { t.deleteRow(1); }
  for (const r of rows) {
    const tr = t.insertRow();
    cols.forEach((c, i) => cell(tr, r[c], nums[i]));
  }
}
function us(ns) { return ns === null || ns === undefined ? "" : (ns / 1000).toFixed(1); }
async function poll() {
  try {
    const r = await fetch("/status", {headers: auth(), cache: "no-store"});
    if (r.status === 401) {
      $("error").textContent = "token refused";
      $("kill").disabled = true;
      return;
    }
    const s = await r.json();
    $("error").textContent = "";
    $("kill").disabled = false;
    $("strategy").textContent = s.strategy || "";
    $("state").textContent = s.killed ? "KILLED" : "live";
    $("state").className = s.killed ? "killed" : "live";
    $("reason").textContent = s.reason || "";
    $("pnl").textContent = s.pnl === undefined ? "" : Number(s.pnl).toFixed(2);
    $("equity").textContent = s.equity === undefined ? "" : Number(s.equity).toFixed(2);
    $("updated").textContent = new Date().toISOString().slice(11, 23);
    const pos = Object.entries(s.positions || {}).map(([k, v]) => ({inst: k, pos: v}));
    fill("positions", pos, ["inst", "pos"], [false, true]);
    fill("orders", s.orders || [], ["id", "instrument", "side", "price", "qty", "filled", "status"],
         [true, false, false, true, true, true, false]);
    const lat = Object.entries(s.latency || {}).map(([k, v]) => ({stage: k, p50: us(v.p50),
      p99: us(v.p99), p999: us(v.p999), max: us(v.max), count: v.count}));
    fill("latency", lat, ["stage", "p50", "p99", "p999", "max", "count"],
         [false, true, true, true, true, true]);
    const risk = Object.entries(s.risk || {}).map(([k, v]) => ({k: k, v: v}));
    fill("risk", risk, ["k", "v"], [false, false]);
  } catch (e) {
    $("error").textContent = "no answer from the process";
  }
}
$("kill").addEventListener("click", async () => {
  const r = await fetch("/kill", {method: "POST", headers: {...auth(),
    "Content-Type": "application/json"}, body: JSON.stringify({reason: "dashboard kill"})});
  if (r.status !== 200) { $("error").textContent = "kill refused (" + r.status + ")"; }
  poll();
});
fromFragment();
poll();
setInterval(poll, 500);
</script>
</body>
</html>
"""

__all__ = ["PAGE"]
