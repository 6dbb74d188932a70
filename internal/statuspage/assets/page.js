// Helpers shared by the status page and the trace view. No dependencies.
"use strict";

// el builds an element: attrs ("class", "text" or any attribute; a false,
// null or undefined value is left out) and children (nodes or text).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const int = (n) => Math.round(n).toLocaleString("en-US");
const msec = (m) => (m >= 1000 ? (m / 1000).toFixed(2) + " s" : m.toFixed(m >= 10 ? 0 : m >= 1 ? 1 : 3) + " ms");

function table(head, rows, numeric) {
  const tr = el("tr", {}, ...head.map((h, i) => el("th", { class: numeric[i] ? "n" : "" }, h)));
  return el("table", {}, el("thead", {}, tr),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c, i) => el("td", { class: numeric[i] ? "n" : "" }, c))))));
}

// traceLink links a trace ID to the trace view.
const traceLink = (id) => el("a", { class: "id", href: "trace.html?id=" + encodeURIComponent(id) }, id);

// keptTags are the error, slow and anomaly tags of a kept trace of the snapshot.
const keptTags = (k) => el("span", {}, ...["error", "slow", "anomaly"].flatMap((t) =>
  k[t] ? [el("span", { class: "tag " + t }, t), " "] : []));

// fetchStatus fetches the status snapshot (the page sits under /status/).
async function fetchStatus() {
  const r = await fetch(new URL("../api/v1/status", location.href), { cache: "no-store" });
  if (!r.ok) throw new Error(r.status + " " + r.statusText);
  return r.json();
}
