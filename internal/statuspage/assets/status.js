// tailsift status page: fetches the snapshot and redraws. Needs page.js.
"use strict";

let refreshMs = 2000;

const rate = (n) => (n >= 100 ? int(n) : n.toFixed(n >= 10 ? 1 : 2));
const pct = (f) => (100 * f).toFixed(f < 0.1 ? 2 : 1) + "%";
function bytes(b) {
  const u = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (i ? b.toFixed(1) : b) + " " + u[i];
}
function bar(frac) {
  const b = el("div", { class: "bar" + (frac > 1 ? " over" : "") }, el("span"));
  b.firstChild.style.width = Math.min(100, Math.max(0, 100 * frac)) + "%";
  return b;
}
// card is a titled box; width is "", "half" (two columns) or "wide" (the row).
function card(title, width, ...body) {
  return el("div", { class: "card " + width }, el("h3", {}, title), ...body);
}
function metric(name, value, text) {
  return el("span", { "data-metric": name, "data-value": value }, text === undefined ? int(value) : text);
}

function bufferCard(c) {
  const b = c.buffer;
  return card("Buffer", "",
    el("div", { class: "big" }, metric("buffer_fill", b.fill, pct(b.fill))),
    bar(b.fill),
    el("dl", {},
      el("dt", {}, "buffered"), el("dd", {}, metric("buffered_bytes", b.bytes, bytes(b.bytes)), " of ", bytes(b.max_bytes)),
      el("dt", {}, "traces in flight"), el("dd", {}, metric("buffered_traces", b.traces)),
      el("dt", {}, "held for rescue"), el("dd", {}, bytes(b.held_bytes), " / ", int(b.held_traces), " traces"),
      el("dt", {}, "arena mapped"), el("dd", {}, bytes(b.mapped_bytes))));
}

function countersCard(c) {
  const k = c.counters;
  const early = Object.entries(k.early_decisions).filter(([, n]) => n > 0);
  return card("Totals", "", el("dl", {},
    el("dt", {}, "spans received"), el("dd", {}, metric("spans_received", k.spans_received)),
    el("dt", {}, "traces decided"), el("dd", {}, metric("traces_decided", k.traces_decided)),
    el("dt", {}, "spans kept / dropped"), el("dd", {}, el("span", { class: "keep" }, metric("spans_kept", k.spans_kept)), " / ",
      el("span", { class: "drop" }, metric("spans_dropped", k.spans_dropped))),
    el("dt", {}, "late spans kept / dropped"), el("dd", {}, metric("late_spans_kept", k.late_spans_kept), " / ",
      metric("late_spans_dropped", k.late_spans_dropped)),
    el("dt", {}, "early decisions"), el("dd", {}, metric("early_decisions",
      Object.values(k.early_decisions).reduce((a, b) => a + b, 0)),
      early.length ? " (" + early.map(([r, n]) => r + " " + int(n)).join(", ") + ")" : ""),
    el("dt", {}, "refused (queue full / too large / invalid)"),
    el("dd", { class: k.spans_refused_queue_full || k.spans_refused_too_large ? "bad" : "" },
      int(k.spans_refused_queue_full), " / ", int(k.spans_refused_too_large), " / ", int(k.spans_refused_invalid)),
    el("dt", {}, "rescued / deduplicated"), el("dd", {}, int(k.traces_rescued), " / ", int(k.spans_deduplicated)),
    el("dt", {}, "export failures"), el("dd", { class: k.export_failures ? "bad" : "" }, int(k.export_failures))));
}

function decisionsCard(c) {
  const by = new Map();
  for (const d of c.decisions || []) {
    const p = d.policy || "(none kept)";
    if (!by.has(p)) by.set(p, { keep: null, drop: null });
    by.get(p)[d.decision] = d;
  }
  const cell = (d, cls) => d ? el("span", { class: cls }, c.rate_window_s ? rate(d.traces_per_second) : "…") : "–";
  const rows = [...by].map(([p, v]) => [p, cell(v.keep, "keep"), cell(v.drop, "drop"),
    int(v.keep ? v.keep.traces : 0), int(v.drop ? v.drop.traces : 0)]);
  const win = c.rate_window_s ? " (over " + c.rate_window_s.toFixed(0) + " s)" : "";
  return card("Decisions per second by policy" + win, "half",
    table(["policy", "keep/s", "drop/s", "kept", "dropped"], rows, [0, 1, 1, 1, 1]));
}

function budgetCard(c) {
  const b = c.budget;
  if (!b) return null;
  const rows = b.classes.map((k) => [k.name,
    el("span", { "data-class": k.name }, rate(k.kept_per_second)),
    rate(k.allocated), bar(k.allocated > 0 ? k.kept_per_second / k.allocated : 0), rate(k.demand), pct(k.probability)]);
  return card("Budget: " + rate(b.rate) + " " + b.unit + "/s", "half",
    table(["class", "kept/s", "share/s", "kept vs share", "demand/s", "p"], rows, [0, 1, 1, 0, 1, 1]));
}

function routesCard(c) {
  if (!c.routes || !c.routes.length) return null;
  const rows = c.routes.map((r) => [r.route, r.policy, rate(r.observations), msec(r.p50_ms), msec(r.p95_ms),
    el("span", { class: r.anomalies ? "bad" : "" }, int(r.anomalies)), pct(r.probability)]);
  return card("Routes (adaptive)", "wide",
    table(["route", "policy", "traces (decayed)", "p50", "p95", "anomalies", "keep p"], rows, [0, 0, 1, 1, 1, 1, 1]));
}

function recentCard(c) {
  const rows = c.recent.map((k) => [
    new Date(k.decided_at).toLocaleTimeString(), keptTags(k), k.policy, traceLink(k.trace_id),
    int(k.spans), msec(k.duration_ms), el("a", { href: ".." + k.link, class: "muted" }, "OTLP JSON")]);
  return card("Recent kept errors, slow traces and anomalies", "wide", rows.length
    ? table(["decided", "", "policy", "trace", "spans", "duration", ""], rows, [0, 0, 0, 0, 1, 1, 0])
    : el("p", { class: "muted" }, "none yet"));
}

function component(c) {
  return el("section", { "data-component": c.id },
    el("h2", {}, c.kind + " ", el("code", {}, c.id)),
    el("div", { class: "grid" }, bufferCard(c), countersCard(c), decisionsCard(c), budgetCard(c),
      routesCard(c), recentCard(c)));
}

function cluster(s) {
  const rows = s.members.map((m) => [m.address + (m.self ? " (self)" : ""),
    el("span", { class: m.up ? "keep" : "bad" }, m.up ? "up" : "down"), int(m.spans)]);
  const hand = Object.entries(s.handovers || {}).map(([k, v]) => k + " " + int(v)).join(", ");
  return card(s.role + " " + s.component, "half",
    table(["member", "state", "spans sent"], rows, [0, 0, 1]),
    el("dl", {},
      el("dt", {}, "rerouted spans"), el("dd", {}, int(s.rerouted)),
      hand ? el("dt", {}, "handovers") : null, hand ? el("dd", { "data-metric": "handovers" }, hand) : null));
}

function render(s) {
  refreshMs = s.refresh_ms || refreshMs;
  document.getElementById("refresh").textContent = (refreshMs / 1000).toString();
  const main = document.getElementById("components");
  main.replaceChildren(...(s.components.length ? s.components.map(component)
    : [el("p", { class: "muted" }, "No tailsift processor or receiver is running.")]));
  const cl = document.getElementById("clusters");
  cl.hidden = !s.clusters.length;
  document.getElementById("cluster-list").replaceChildren(el("div", { class: "grid" }, ...s.clusters.map(cluster)));
  const u = document.getElementById("updated");
  u.textContent = "updated " + new Date(s.time).toLocaleTimeString();
  u.dataset.time = s.time;
}

async function tick() {
  const err = document.getElementById("error");
  try {
    render(await fetchStatus());
    err.hidden = true;
  } catch (e) {
    err.textContent = "cannot fetch the status: " + e.message;
    err.hidden = false;
  }
  setTimeout(tick, refreshMs);
}
tick();
