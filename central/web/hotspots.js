// The public flood hotspot page: no build step, no CDN. Polls the public API every 30 s;
// the browser revalidates with If-None-Match, so an unchanged list costs a 304.
const REFRESH_MS = 30000;
const list = document.getElementById("list");
const summary = document.getElementById("summary");
const errorBox = document.getElementById("error");
const thrColours = ["#b7791f", "#ef6c00", "#c62828", "#7b1fa2"];

function fmtLevel(p) {
  if (p.level_cm === null || p.level_cm === undefined) return "–";
  return p.level_cm >= 100 ? `${(p.level_cm / 100).toFixed(2)} m` : `${Math.round(p.level_cm)} cm`;
}

function fmtEta(s) {
  if (s === null || s === undefined) return null;
  if (s < 3600) return `${Math.max(1, Math.round(s / 60))} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function fmtAgo(iso) {
  if (!iso) return "never";
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (s < 90) return `${Math.max(0, Math.round(s))} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return new Date(iso).toLocaleString();
}

const STATE_TEXT = { normal: "Normal", unknown: "Unknown" };

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fact(dl, name, value) {
  if (value === null || value === undefined) return;
  const d = el("div");
  d.append(el("dt", {}, name), el("dd", {}, value));
  dl.append(d);
}

function chart(svg, points, levels) {
  const W = 600, H = 90, pad = 4;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const vals = points.filter((p) => p.level_cm !== null);
  if (!vals.length) {
    const t = document.createElementNS("http://www.w3.org/2000/svg", "text");
    t.setAttribute("x", 8); t.setAttribute("y", 48); t.textContent = "no readings in the last 24 h";
    svg.append(t);
    return;
  }
  const t0 = Date.parse(vals[0].time), t1 = Math.max(Date.parse(vals[vals.length - 1].time), t0 + 1);
  const ys = vals.map((p) => p.level_cm).concat(levels.map((l) => l.level_cm));
  const lo = Math.min(...ys) - 5, hi = Math.max(...ys) + 5;
  const x = (t) => pad + ((t - t0) / (t1 - t0)) * (W - 2 * pad);
  const y = (v) => H - pad - ((v - lo) / (hi - lo)) * (H - 2 * pad);
  const ns = "http://www.w3.org/2000/svg";
  levels.forEach((l, i) => {
    const line = document.createElementNS(ns, "line");
    line.setAttribute("class", "thr");
    line.setAttribute("x1", pad); line.setAttribute("x2", W - pad);
    line.setAttribute("y1", y(l.level_cm)); line.setAttribute("y2", y(l.level_cm));
    line.setAttribute("stroke", thrColours[i % thrColours.length]);
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", W - 60); label.setAttribute("y", y(l.level_cm) - 2);
    label.textContent = `${l.name} ${l.level_cm} cm`;
    svg.append(line, label);
  });
  const path = document.createElementNS(ns, "polyline");
  path.setAttribute("class", "line");
  path.setAttribute("points", vals.map((p) => `${x(Date.parse(p.time)).toFixed(1)},${y(p.level_cm).toFixed(1)}`).join(" "));
  svg.append(path);
}

async function loadHistory(id, svg, levels) {
  try {
    const r = await fetch(`/api/v1/hotspots/${encodeURIComponent(id)}/history`);
    if (!r.ok) throw new Error(r.status);
    const doc = await r.json();
    chart(svg, doc.points, levels);
    svg.dataset.points = String(doc.points.length);
  } catch (e) {
    svg.dataset.error = String(e);
  }
}

function card(f) {
  const p = f.properties;
  const li = el("li", { class: `card sev-${p.severity}`, "data-id": p.id, "data-state": p.state });
  const h = el("h2");
  h.append(el("span", { class: "name" }, p.name));
  const stateText = STATE_TEXT[p.state] || `Level ${p.state}`;
  h.append(el("span", { class: "badge state" }, stateText));
  if (p.stale) h.append(el("span", { class: "badge stale" }, "no recent reading"));
  if (p.example) h.append(el("span", { class: "badge example" }, "example"));
  li.append(h);
  const dl = el("dl", { class: "facts" });
  fact(dl, "Water", fmtLevel(p));
  if (p.depth_class) fact(dl, "Road", p.depth_class);
  if (p.trend) fact(dl, "Trend", p.trend + (p.trend_cm_per_h ? ` (${p.trend_cm_per_h > 0 ? "+" : ""}${p.trend_cm_per_h} cm/h)` : ""));
  const eta = fmtEta(p.eta_s);
  if (eta && p.next_level) fact(dl, `Level ${p.next_level} in`, `~${eta}`);
  if (p.state === "unknown") {
    fact(dl, "Why", (p.reason || "").replaceAll("_", " "));
    if (p.last_known_state) fact(dl, "Last known", p.last_known_state);
  }
  fact(dl, "Updated", fmtAgo(p.updated_at));
  li.append(dl);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `water level at ${p.name}, last 24 hours`);
  li.append(svg);
  loadHistory(p.id, svg, p.levels);
  return li;
}

async function refresh() {
  try {
    const r = await fetch("/api/v1/hotspots", { cache: "no-cache" });
    if (!r.ok) throw new Error(`the server answered ${r.status}`);
    const doc = await r.json();
    const feats = doc.features;
    errorBox.hidden = true;
    if (!feats.length) {
      list.replaceChildren(el("li", { class: "empty" }, "No hotspots are configured."));
      summary.textContent = "";
      return;
    }
    list.replaceChildren(...feats.map(card));
    const alarmed = feats.filter((f) => f.properties.severity >= 2).length;
    const unknown = feats.filter((f) => f.properties.state === "unknown").length;
    summary.textContent = `${feats.length} hotspots: ${alarmed} at an alarm level, ${unknown} unknown. Updated ${new Date().toLocaleTimeString()}.`;
  } catch (e) {
    errorBox.textContent = `Could not load the latest readings (${e.message}). Retrying in 30 s; the list below may be out of date.`;
    errorBox.hidden = false;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
