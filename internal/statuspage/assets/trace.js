// tailsift trace view. trace.html?id=<trace ID> draws one trace from the
// retrieval API (GET /api/v1/traces/{id}, OTLP JSON, the decision in its
// headers) as a waterfall; trace.html alone lists the recently kept errors,
// slow traces and anomalies. With &source=jaeger it reads the trace from Jaeger's
// /api/v3/traces/{id} on this host's port 16686 (make demo's Jaeger allows
// this page's origin). Needs page.js.
"use strict";

const maxRows = 2000; // spans drawn: a larger trace is cut, with a note
const params = new URLSearchParams(location.search);
const view = document.getElementById("view");

function fail(msg) {
  const e = document.getElementById("error");
  e.textContent = msg;
  e.hidden = false;
}

// text renders an OTLP JSON AnyValue.
function text(v) {
  if (!v) return "";
  if ("stringValue" in v) return v.stringValue;
  for (const k of ["intValue", "doubleValue", "boolValue", "bytesValue"]) if (k in v) return String(v[k]);
  if ("arrayValue" in v) return "[" + (v.arrayValue.values || []).map(text).join(", ") + "]";
  if ("kvlistValue" in v) return "{" + (v.kvlistValue.values || []).map((kv) => kv.key + ": " + text(kv.value)).join(", ") + "}";
  return "";
}
const attrs = (list) => (list || []).map((kv) => [kv.key, text(kv.value)]);
const attr = (list, key) => (list.find(([k]) => k === key) || [])[1];

// Enums come as numbers from tailsift and as names from Jaeger's API.
const kinds = ["unspecified", "internal", "server", "client", "producer", "consumer"];
const kindName = (k) => (typeof k === "string" ? k.replace("SPAN_KIND_", "").toLowerCase() : kinds[k || 0]);
const isError = (s) => s.status.code === 2 || s.status.code === "STATUS_CODE_ERROR";

// spans flattens OTLP JSON into one object per span.
function spans(data) {
  const out = [];
  for (const rs of data.resourceSpans || []) {
    const resource = attrs(rs.resource && rs.resource.attributes);
    const service = attr(resource, "service.name") || "unknown service";
    for (const ss of rs.scopeSpans || []) {
      for (const s of ss.spans || []) {
        out.push({ id: s.spanId, parent: s.parentSpanId || "", name: s.name, service, resource,
          kind: kindName(s.kind), start: BigInt(s.startTimeUnixNano || 0), end: BigInt(s.endTimeUnixNano || 0),
          status: s.status || {}, attrs: attrs(s.attributes), events: s.events || [],
          traceState: s.traceState || "", children: [] });
      }
    }
  }
  return out;
}

// order returns the spans depth first, children by start time, each with
// its depth. A span whose parent is missing (or in a cycle) is a root.
function order(list) {
  const byID = new Map(list.map((s) => [s.id, s]));
  const roots = [];
  for (const s of list) {
    const p = s.parent && byID.get(s.parent);
    if (p && p !== s) p.children.push(s);
    else roots.push(s);
  }
  const byStart = (a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0);
  const out = [];
  const seen = new Set();
  const walk = (root) => {
    const stack = [[root, 0]];
    while (stack.length) {
      const [s, depth] = stack.pop();
      if (seen.has(s)) continue;
      seen.add(s);
      s.depth = depth;
      out.push(s);
      s.children.sort(byStart);
      for (let i = s.children.length - 1; i >= 0; i--) stack.push([s.children[i], depth + 1]);
    }
  };
  roots.sort(byStart).forEach(walk);
  list.filter((s) => !seen.has(s)).forEach(walk);
  return out;
}

// thOf reads the OpenTelemetry threshold (th) from a tracestate.
function thOf(ts) {
  const ot = /(?:^|,)\s*ot=([^,]*)/.exec(ts || "");
  return ot ? (/(?:^|;)th:([0-9a-f]{1,14})/.exec(ot[1]) || [])[1] : undefined;
}

// adjusted is the adjusted count of threshold th: 1 / the probability it
// keeps with, which is 1 - th/2^56 (th is the first up-to-14 hex digits).
function adjusted(th) {
  const p = 1 - parseInt(th.padEnd(14, "0"), 16) / 2 ** 56;
  return p > 0 ? 1 / p : 0;
}

// hue is a service's colour: greens to purples, leaving red to ERROR.
const hue = (s) => 100 + ([...s].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0, 2166136261) % 200);
const serviceTag = (name) => {
  const t = el("span", { class: "svc" }, name);
  t.style.borderColor = "hsl(" + hue(name) + " 55% 50%)";
  return t;
};

function summary(id, list, meta, t0, t1) {
  const roots = list.filter((s) => !s.parent);
  const root = roots[0] || list[0];
  const rule = meta.policy || roots.map((s) => attr(s.attrs, "sampling.rule")).find(Boolean);
  const th = meta.threshold || (root && thOf(root.traceState));
  const errors = list.filter(isError).length;
  const item = (k, label, v, cls) => [el("dt", {}, label), el("dd", { "data-k": k, class: cls }, v)];
  return el("section", { id: "summary", class: "card wide" },
    el("h2", {}, root ? root.service + ": " + root.name : "trace", " ", el("code", {}, id)),
    el("dl", { class: "facts" },
      ...item("decision", "decision", meta.decision || "–", meta.decision === "keep" ? "keep" : ""),
      ...item("rule", "sampling.rule", rule || "–"),
      ...item("reason", "decided by", meta.reason || "–"),
      ...item("th", "th (threshold)", th === undefined ? "–" : th),
      ...item("adjusted", "adjusted count", th === undefined ? "–" : +adjusted(th).toPrecision(6)),
      ...item("spans", "spans", int(list.length)),
      ...item("services", "services", int(new Set(list.map((s) => s.service)).size)),
      ...item("errors", "ERROR spans", int(errors), errors ? "bad" : ""),
      ...item("duration", "duration", msec(Number(t1 - t0) / 1e6))));
}

function details(s, t0) {
  const ms = (t) => msec(Number(t - t0) / 1e6);
  const rows = [["span ID", s.id], ["parent", s.parent || "(root)"], ["service", s.service], ["kind", s.kind],
    ["start", "+" + ms(s.start)], ["duration", msec(Number(s.end - s.start) / 1e6)],
    ["status", (isError(s) ? "ERROR" : s.status.code ? "OK" : "unset") + (s.status.message ? ": " + s.status.message : "")],
    ["tracestate", s.traceState || "–"], ...s.attrs, ...s.resource.map(([k, v]) => ["resource " + k, v]),
    ...s.events.map((e) => ["event +" + ms(BigInt(e.timeUnixNano || 0)),
      e.name + attrs(e.attributes).map(([k, v]) => " " + k + "=" + v).join("")])];
  return el("div", { class: "wf-detail" },
    el("table", {}, el("tbody", {}, ...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))))));
}

function waterfall(rows, t0, t1) {
  const total = Number(t1 - t0) || 1;
  const pos = (t) => (100 * Number(t - t0)) / total;
  const axis = el("div", { class: "wf-time" }, ...[0, 0.25, 0.5, 0.75, 1].map((f) => {
    const tick = el("span", {}, f ? msec((f * total) / 1e6) : "0");
    tick.style.left = 100 * f + "%";
    return tick;
  }));
  const head = el("div", { class: "wf-row wf-axis" }, el("div", { class: "wf-name" }, "service and span"), axis);
  const body = rows.map((s, i) => {
    const left = pos(s.start);
    const width = Math.max(pos(s.end) - left, 0.15);
    const bar = el("span", { class: "wf-bar" });
    bar.style.cssText = "left:" + left + "%;width:" + width + "%;background:hsl(" + hue(s.service) + " 55% 55%)";
    const dur = el("span", { class: "wf-dur" }, msec(Number(s.end - s.start) / 1e6));
    // The duration goes right of the bar, else left of it, else inside.
    if (left + width <= 75) dur.style.left = left + width + 0.5 + "%";
    else if (left >= 15) dur.style.right = 100 - left + 0.5 + "%";
    else dur.style.cssText = "left:" + (left + 0.5) + "%;color:#fff";
    const name = el("div", { class: "wf-name" }, serviceTag(s.service), " ", s.name,
      isError(s) ? el("span", { class: "tag error" }, "ERROR") : null);
    name.style.paddingLeft = Math.min(s.depth, 40) * 0.9 + "em";
    return el("div", { class: "wf-row" + (isError(s) ? " err" : ""), "data-i": i, "data-span": s.id,
      "data-status": isError(s) ? "error" : "", tabindex: 0 }, name, el("div", { class: "wf-time" }, bar, dur));
  });
  const wf = el("section", { id: "waterfall", class: "card wide" }, head, ...body);
  // A span's details open below its row; #span=<span ID> links to them.
  const toggle = (row) => {
    if (row.nextSibling && row.nextSibling.classList.contains("wf-detail")) return row.nextSibling.remove();
    row.after(details(rows[+row.dataset.i], t0));
    history.replaceState(null, "", "#span=" + row.dataset.span);
  };
  const linked = wf.querySelector('.wf-row[data-span="' + CSS.escape(location.hash.replace(/^#span=/, "")) + '"]');
  if (linked) toggle(linked);
  wf.addEventListener("click", (e) => {
    const row = e.target.closest(".wf-row[data-i]");
    if (row) toggle(row);
  });
  wf.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.target.matches(".wf-row[data-i]")) toggle(e.target);
  });
  return wf;
}

async function showTrace(id) {
  document.title = "tailsift trace " + id;
  document.getElementById("title").textContent = "trace " + id;
  if (!/^[0-9a-f]{32}$/.test(id)) throw new Error("a trace ID is 32 hex digits, got " + JSON.stringify(id));
  const jaeger = params.get("source") === "jaeger";
  const url = jaeger ? location.protocol + "//" + location.hostname + ":16686/api/v3/traces/" + id
    : new URL("../api/v1/traces/" + id, location.href);
  const r = await fetch(url, { cache: "no-store" });
  if (!r.ok) throw new Error("trace " + id + ": " + r.status + " " + (await r.text()).trim());
  const data = await r.json();
  const h = (k) => r.headers.get("Tailsift-" + k) || undefined;
  const meta = jaeger ? {} : { decision: h("Decision"), policy: h("Policy"), reason: h("Reason"), threshold: h("Threshold") };
  const list = spans(jaeger ? data.result || data : data);
  const other = new URLSearchParams(params);
  if (jaeger) other.delete("source");
  else other.set("source", "jaeger");
  document.getElementById("source").replaceChildren(jaeger
    ? "Spans from Jaeger's /api/v3/traces/{id}, as tailsift exported them: sampling.rule on the root, th in each span's tracestate. "
    : "Spans from the collector's store (/api/v1/traces/{id}, OTLP JSON), as they arrived; the decision, policy and threshold are the ones tailsift exported the trace with. ",
  el("a", { href: "trace.html?" + other }, jaeger ? "The collector's copy" : "Jaeger's copy"), ".");
  if (!list.length) throw new Error("trace " + id + " has no spans");
  const t0 = list.reduce((m, s) => (s.start < m ? s.start : m), list[0].start);
  const t1 = list.reduce((m, s) => (s.end > m ? s.end : m), list[0].end);
  const rows = order(list);
  const cut = rows.length > maxRows
    ? el("p", { class: "bad", id: "cut" }, "Showing the first " + int(maxRows) + " of " + int(rows.length) + " spans.") : null;
  view.replaceChildren(el("div", { class: "grid" }, summary(id, list, meta, t0, t1), cut,
    waterfall(rows.slice(0, maxRows), t0, t1)));
  view.dataset.spans = list.length;
}

async function showList() {
  const s = await fetchStatus();
  const kept = s.components.flatMap((c) => c.recent)
    .sort((a, b) => Date.parse(b.decided_at) - Date.parse(a.decided_at));
  const rows = kept.map((k) => [new Date(k.decided_at).toLocaleTimeString(), keptTags(k), k.policy,
    traceLink(k.trace_id), int(k.spans), msec(k.duration_ms)]);
  view.replaceChildren(el("section", { class: "card wide" }, el("h3", {}, "Recently kept errors, slow traces and anomalies"),
    rows.length ? table(["decided", "", "policy", "trace", "spans", "duration"], rows, [0, 0, 0, 0, 1, 1])
      : el("p", { class: "muted" }, "none yet"),
    el("p", { class: "muted" }, "Other kept traces (the baseline), and dropped ones within the store's retention: enter the trace ID above.")));
  setTimeout(() => showList().catch((e) => fail(e.message)), s.refresh_ms || 2000);
}

const id = (params.get("id") || "").trim().toLowerCase();
(id ? showTrace(id) : showList()).catch((e) => {
  fail(e.message);
  view.replaceChildren(el("p", { class: "muted" }, "Nothing to show."));
});
