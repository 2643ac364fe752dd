// The public flood hotspot page, made for a phone on a slow network: no build step, no
// CDN. The first paint needs only this page's HTML, CSS and JS, its texts (the "common"
// and "public" sections of the catalogue) and the hotspot list; each hotspot's level
// chart is fetched only when its card comes into view (never 50 requests at once), and
// the map library after the list has been drawn.
//
// It polls the public API every 30 s (the browser revalidates with If-None-Match: an
// unchanged list costs a 304). The last good answer is kept in localStorage, so a page
// opened while the hub is unreachable still shows what it last knew, with its age, and
// keeps retrying every 10 s. Text from the API is only ever set as textContent.

import { t, ready, applyI18n, langSwitcher, fmtNumber, fmtTime, placeName } from "/i18n/i18n.js";

const REFRESH_MS = 30000;
const RETRY_MS = 10000;
const HISTORY_TTL_MS = 60000; // a chart fetched this recently is not fetched again
const STORE = "edgewatch.public.hotspots.v1";
const RISING_CM_PER_H = 2; // as the hub's trend: rising above +2 cm/h, falling below -2
const THR_COLOURS = ["#b7791f", "#ef6c00", "#c62828", "#7b1fa2"];
const SVG = "http://www.w3.org/2000/svg";

const list = document.getElementById("list");
const summary = document.getElementById("summary");
const errorBox = document.getElementById("error");
const mapBox = document.getElementById("map");

let current = null; // { doc, text, at (ms, when the hub sent it) }
let reachable = true;
let failedSince = null;
let timer = null;
let mapHandle = null;
let mapStarted = false;
const histories = new Map(); // id -> { at, points }
window.__historyFetches = 0; // read by the tests: charts are fetched lazily

// -- helpers ------------------------------------------------------------------------------

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function svgEl(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return t("common.ago_s", { n: s });
  if (s < 5400) return t("common.ago_min", { n: Math.round(s / 60) });
  if (s < 2 * 86400) return t("common.ago_h", { n: Math.round(s / 3600) });
  return t("common.ago_d", { n: Math.round(s / 86400) });
}

function fmtLevel(cm) {
  if (cm === null || cm === undefined) return "–";
  if (Math.abs(cm) >= 100) return t("common.unit_m", { v: fmtNumber(cm / 100, { minimumFractionDigits: 2, maximumFractionDigits: 2 }) });
  return t("common.unit_cm", { v: fmtNumber(Math.round(cm)) });
}

function fmtDuration(s) {
  if (s < 3600) return t("public.dur_min", { n: Math.max(1, Math.round(s / 60)) });
  return t("public.dur_h", { n: fmtNumber(s / 3600, { maximumFractionDigits: 1 }) });
}

function stateText(p) {
  if (p.state === "normal") return t("public.state_normal");
  if (p.state === "unknown") return t("public.state_unknown");
  // named levels (a road's "knee") read as words; numbered ones (I, II, III) as "Level II"
  const named = t(`public.level_${p.state}`, {}, { fallback: "" });
  return named || t("public.state_level", { name: p.state });
}

/** cm/h from the last hour of readings (least squares), or null with too few points. */
function rateFromPoints(points) {
  const vals = points.filter((q) => typeof q.level_cm === "number");
  if (vals.length < 3) return null;
  const tEnd = Date.parse(vals[vals.length - 1].time);
  const recent = vals.filter((q) => tEnd - Date.parse(q.time) <= 3600e3);
  if (recent.length < 3) return null;
  const xs = recent.map((q) => (Date.parse(q.time) - tEnd) / 3600e3);
  const ys = recent.map((q) => q.level_cm);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  xs.forEach((x, i) => {
    num += (x - mx) * (ys[i] - my);
    den += (x - mx) ** 2;
  });
  return den > 0 ? num / den : null;
}

function trendOf(rate) {
  if (rate === null || rate === undefined) return null;
  return rate > RISING_CM_PER_H ? "rising" : rate < -RISING_CM_PER_H ? "falling" : "steady";
}

/** The next level above the current one and the seconds to it at the current rate:
 * the hub's own eta when it gave one, else from the rate. */
function nextLevel(p, rate) {
  if (p.state === "unknown" || typeof p.level_cm !== "number" || !(rate > RISING_CM_PER_H)) return null;
  if (p.next_level && typeof p.eta_s === "number") return { name: p.next_level, eta_s: p.eta_s };
  const next = (p.levels || []).find((l) => l.level_cm > p.level_cm);
  if (!next) return null;
  return { name: next.name, eta_s: ((next.level_cm - p.level_cm) / rate) * 3600 };
}

// -- cards --------------------------------------------------------------------------------

function fact(dl, name, value, cls) {
  if (value === null || value === undefined || value === "") return null;
  const d = el("div", cls ? { class: cls } : {});
  const dd = el("dd", {}, value);
  d.append(el("dt", {}, name), dd);
  dl.append(d);
  return dd;
}

function trendFacts(card, p, points) {
  const dl = card.querySelector("dl.facts");
  dl.querySelectorAll(".trend, .next").forEach((n) => n.remove());
  if (p.state === "unknown") return;
  let rate = typeof p.trend_cm_per_h === "number" ? p.trend_cm_per_h : null;
  if (rate === null && points) rate = rateFromPoints(points);
  const trend = p.trend || trendOf(rate);
  if (!trend) return;
  const sign = rate > 0 ? "+" : "";
  const rateText = rate === null ? "" : ` (${sign}${t("public.rate", { v: fmtNumber(rate, { maximumFractionDigits: 1 }) })})`;
  const dd = fact(dl, t("public.trend"), t(`public.trend_${trend}`) + rateText, "trend");
  dd.dataset.trend = trend;
  const nxt = nextLevel(p, rate);
  if (nxt) {
    // a named level ("knee") in words, "Level II" for a numbered one
    const named = t(`public.level_${nxt.name}`, {}, { fallback: "" });
    const head = named ? t("public.next_named", { name: named }) : t("public.next_level", { name: nxt.name });
    fact(dl, head, t("public.eta", { t: fmtDuration(nxt.eta_s) }), "next");
  }
}

function card(f) {
  const p = f.properties;
  const li = el("li", { class: `card sev-${p.severity}`, "data-id": p.id, "data-state": p.state, tabindex: "-1" });
  const head = el("div", { class: "head" });
  head.append(el("h2", { class: "name" }, placeName(p)), el("span", { class: "state" }, stateText(p)));
  li.append(head);
  const badges = el("div", { class: "badges" });
  if (p.stale) badges.append(el("span", { class: "badge stale" }, t("public.stale")));
  if (p.example) badges.append(el("span", { class: "badge example" }, t("public.example")));
  if (badges.childElementCount) li.append(badges);
  const dl = el("dl", { class: "facts" });
  fact(dl, t("public.water"), fmtLevel(p.level_cm), "level");
  if (p.depth_class) {
    const level = t(`public.level_${p.depth_class}`, {}, { fallback: p.depth_class });
    fact(dl, t("public.road"), t(`public.depth_${p.depth_class}`, {}, { fallback: level }));
  }
  if (p.state === "unknown") {
    fact(dl, t("public.why"), t(`public.reason_${p.reason}`, {}, { fallback: (p.reason || "").replaceAll("_", " ") }));
    if (p.last_known_state) fact(dl, t("public.last_known"), p.last_known_state);
  }
  const upd = fact(dl, t("public.updated"), p.updated_at ? `${fmtTime(p.updated_at)} (${ago(Date.parse(p.updated_at))})` : t("public.never"), "updated");
  if (upd && p.updated_at) upd.dataset.at = p.updated_at;
  li.append(dl);
  trendFacts(li, p, histories.get(p.id)?.points);
  li.addEventListener("click", () => openCard(p.id, false));
  if (!p.updated_at) return li; // never read: no chart to fetch
  const svg = svgEl("svg", { class: "chart", role: "img", "aria-label": t("public.chart_label", { name: placeName(p) }) });
  li.append(svg);
  const hist = histories.get(p.id);
  if (hist) drawChart(svg, hist.points, p.levels || []);
  observer.observe(li);
  return li;
}

// -- charts (fetched when the card is in view) -------------------------------------------

function drawChart(svg, points, levels) {
  const W = 360; // about the width of a phone's card: the texts keep their size
  const H = 110;
  const pad = 4;
  const foot = 14;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const vals = points.filter((q) => q.level_cm !== null);
  svg.dataset.points = String(points.length);
  if (!vals.length) {
    svg.append(svgEl("text", { x: 8, y: 50 }, t("public.chart_empty")));
    return;
  }
  const t0 = Date.parse(vals[0].time);
  const t1 = Math.max(Date.parse(vals[vals.length - 1].time), t0 + 1);
  const ys = vals.map((q) => q.level_cm).concat(levels.map((l) => l.level_cm));
  const lo = Math.min(...ys) - 5;
  const hi = Math.max(...ys) + 5;
  const x = (ms) => pad + ((ms - t0) / (t1 - t0)) * (W - 2 * pad);
  const y = (v) => H - foot - pad - ((v - lo) / (hi - lo)) * (H - foot - 2 * pad);
  levels.forEach((l, i) => {
    const yy = y(l.level_cm).toFixed(1);
    svg.append(
      svgEl("line", { class: "thr", x1: pad, x2: W - pad, y1: yy, y2: yy, stroke: THR_COLOURS[i % THR_COLOURS.length] }),
      svgEl("text", { x: W - pad, y: yy < 14 ? Number(yy) + 11 : yy - 2, "text-anchor": "end" }, `${l.name} ${fmtLevel(l.level_cm)}`),
    );
  });
  svg.append(
    svgEl("polyline", { class: "line", points: vals.map((q) => `${x(Date.parse(q.time)).toFixed(1)},${y(q.level_cm).toFixed(1)}`).join(" ") }),
    svgEl("text", { x: pad, y: H - 2 }, fmtTime(vals[0].time)),
    svgEl("text", { x: W - pad, y: H - 2, "text-anchor": "end" }, fmtTime(vals[vals.length - 1].time)),
  );
}

async function loadHistory(li) {
  const id = li.dataset.id;
  const svg = li.querySelector("svg.chart");
  if (!svg) return;
  const have = histories.get(id);
  const p = current?.doc.features.find((f) => f.properties.id === id)?.properties;
  if (!p) return;
  if (have && Date.now() - have.at < HISTORY_TTL_MS) {
    if (!svg.dataset.points) drawChart(svg, have.points, p.levels || []);
    return;
  }
  if (li.dataset.loading) return;
  li.dataset.loading = "1";
  if (!have) svg.replaceChildren(svgEl("text", { x: 8, y: 50 }, t("public.chart_loading")));
  try {
    window.__historyFetches += 1;
    const r = await fetch(`/api/v1/hotspots/${encodeURIComponent(id)}/history`, { cache: "no-cache" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const doc = await r.json();
    histories.set(id, { at: Date.now(), points: doc.points });
    for (const node of document.querySelectorAll(`li.card[data-id="${CSS.escape(id)}"]`)) {
      const chart = node.querySelector("svg.chart");
      if (chart) drawChart(chart, doc.points, p.levels || []);
      trendFacts(node, p, doc.points);
    }
  } catch (e) {
    svg.dataset.error = String(e.message || e);
    if (!have) svg.replaceChildren(svgEl("text", { x: 8, y: 50 }, t("public.chart_error")));
  } finally {
    delete li.dataset.loading;
  }
}

const observer = new IntersectionObserver(
  (entries) => {
    for (const e of entries) if (e.isIntersecting) loadHistory(e.target);
  },
  { rootMargin: "80px 0px" },
);

function openCard(id, scroll = true) {
  const li = list.querySelector(`li.card[data-id="${CSS.escape(id)}"]`);
  if (!li) return;
  list.querySelectorAll("li.card.open").forEach((n) => n.classList.remove("open"));
  li.classList.add("open");
  if (scroll) {
    li.scrollIntoView({ block: "center" });
    li.focus({ preventScroll: true });
  }
  loadHistory(li);
}

// -- the list, the summary and the offline note ------------------------------------------

function render() {
  const feats = current.doc.features;
  if (!feats.length) {
    list.replaceChildren(el("li", { class: "empty" }, t("public.none")));
  } else {
    const open = list.querySelector("li.card.open")?.dataset.id;
    observer.disconnect();
    list.replaceChildren(...feats.map(card));
    if (open) list.querySelector(`li.card[data-id="${CSS.escape(open)}"]`)?.classList.add("open");
  }
  drawMapLayers();
  status();
}

function status() {
  if (!current) return;
  const feats = current.doc.features;
  const alarm = feats.filter((f) => f.properties.severity >= 2).length;
  const unknown = feats.filter((f) => f.properties.state === "unknown").length;
  summary.textContent = feats.length
    ? `${t("public.summary", { n: feats.length, alarm, unknown })} ${t("public.as_of", { time: fmtTime(current.at), ago: ago(current.at) })}`
    : "";
  for (const dd of list.querySelectorAll("dd[data-at]")) dd.textContent = `${fmtTime(dd.dataset.at)} (${ago(Date.parse(dd.dataset.at))})`;
  if (reachable) {
    errorBox.hidden = true;
    document.body.classList.remove("offline");
  } else {
    errorBox.textContent = t("public.offline", { time: fmtTime(current.at), ago: ago(current.at) });
    errorBox.dataset.asOf = new Date(current.at).toISOString();
    errorBox.hidden = false;
    document.body.classList.add("offline");
  }
}

function save(text, at) {
  try {
    localStorage.setItem(STORE, JSON.stringify({ at, text }));
  } catch (e) {
    /* storage full or disabled: the page still works while online */
  }
}

function restore() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORE) || "null");
    if (saved && typeof saved.text === "string" && typeof saved.at === "number") {
      return { doc: JSON.parse(saved.text), text: saved.text, at: saved.at };
    }
  } catch (e) {
    /* a broken copy is no copy */
  }
  return null;
}

async function poll() {
  clearTimeout(timer);
  try {
    const r = await fetch("/api/v1/hotspots", { cache: "no-cache" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const text = await r.text();
    const sent = Date.parse(r.headers.get("date") || "") || Date.now();
    const at = Math.min(sent, Date.now());
    const changed = !current || current.text !== text;
    current = { doc: JSON.parse(text), text, at };
    reachable = true;
    failedSince = null;
    save(text, at);
    if (changed) render();
    else status();
    timer = setTimeout(poll, REFRESH_MS);
  } catch (e) {
    reachable = false;
    failedSince = failedSince || Date.now();
    if (current) status();
    else {
      summary.textContent = "";
      errorBox.textContent = t("public.offline_none");
      errorBox.hidden = false;
    }
    timer = setTimeout(poll, RETRY_MS);
  }
  startMap();
}

// -- the map, loaded after the list ------------------------------------------------------

function drawMapLayers() {
  if (!mapHandle || !current) return;
  import("/ui/map.js").then(({ drawHotspots, fitOnce }) => {
    drawHotspots(mapHandle, current.doc.features, { label: stateText, onClick: (p) => openCard(p.id) });
    fitOnce(mapHandle);
  });
}

function startMap() {
  if (mapStarted || !current) return;
  mapStarted = true;
  const go = async () => {
    try {
      const m = await import("/ui/map.js");
      await ready(["map"]);
      mapBox.replaceChildren();
      mapHandle = await m.createMap(mapBox);
      const legend = () =>
        m.addLegend(mapHandle, [
          ["normal", t("public.state_normal")],
          ["level-0", t("public.state_level", { name: "I" })],
          ["level-1", t("public.state_level", { name: "II" })],
          ["level-2", t("public.state_level", { name: "III" })],
          ["unknown", t("public.state_unknown")],
        ]);
      let shown = legend();
      window.addEventListener("langchange", () => {
        shown.remove();
        shown = legend();
      });
      drawMapLayers();
      mapBox.dataset.ready = "1";
    } catch (e) {
      mapStarted = false; // tried again at the next poll
      mapBox.replaceChildren(el("p", { class: "map-wait" }, t("map.error", { error: e.message })));
    }
  };
  // after the list has been painted, when the browser is idle
  (window.requestIdleCallback || ((fn) => setTimeout(fn, 200)))(go, { timeout: 1500 });
}

async function main() {
  try {
    await ready(["common", "public"]);
  } catch (e) {
    /* texts not reachable: the keys are shown until the next load; the data still is */
  }
  document.title = t("public.page_title");
  applyI18n(document);
  document.getElementById("lang").replaceChildren(langSwitcher());
  const saved = restore();
  if (saved) {
    current = saved; // drawn at once; the first poll says whether it is still current
    render();
    summary.textContent = t("public.loading");
  }
  await poll();
  window.addEventListener("langchange", async () => {
    await ready(["map"]).catch(() => {});
    document.title = t("public.page_title");
    if (current) render();
  });
  setInterval(status, 30000); // the ages grow while the hub is silent
}

main();
