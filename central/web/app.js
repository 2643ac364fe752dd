// The operations-centre dashboard: plain ES module, no build step, no CDN.
// Every piece of data comes from the hub's API with the session cookie; writes carry
// the session's CSRF token. Text from the API is only ever set as textContent.

import { showWatchlist } from "/ui/watchlist.js";
import { showSetup } from "/ui/setup.js";

const view = document.getElementById("view");
const liveBadge = document.getElementById("live");
let me = null;
const alerts = new Map(); // id -> alert, the live list
const kinds = new Map(); // kind name -> its spec (severity, urgent, review, ...) from the hub
const filters = { kind: "", camera: "", status: "open" };
let stream = null;
let refreshTimer = null;
window.__alarms = 0; // urgent alerts that sounded (read by the browser tests)

// -- helpers ------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function show(...nodes) {
  view.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
}

async function api(path, { method = "GET", body } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && me && me.csrf_token) headers["X-CSRF-Token"] = me.csrf_token;
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (r.status === 401) {
    location.assign(`/login?next=${encodeURIComponent("/ui" + location.hash)}`);
    throw new Error("signed out");
  }
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `HTTP ${r.status}`;
    const err = new Error(detail);
    err.status = r.status;
    throw err;
  }
  return data;
}

const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}
const can = (perm) => me && me.permissions.includes(perm);

// The colour of an alert, from the kind specs the analytics declare (GET /api/v1/kinds):
// urgent when the hub says so; a violation in the review queue "traffic"; then by the
// kind's declared severity (urgent, high and medium are drawn alike, as "high").
const SEVERITY_CLASS = { urgent: "high", high: "high", medium: "high", system: "system", info: "info" };
function severity(a) {
  if (a.urgent) return "urgent";
  const spec = kinds.get(a.kind);
  const queued = a.review !== null && a.review !== undefined;
  if (!spec || spec.review) return queued ? "traffic" : "info";
  return SEVERITY_CLASS[spec.severity] || "info";
}

function errorBox(message, retry) {
  return h(
    "div",
    { class: "error-state", role: "alert" },
    h("p", {}, message),
    retry ? h("button", { onclick: retry }, "Retry") : null,
  );
}

function setNav(name) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === name);
  }
}

// -- sound --------------------------------------------------------------------------------

let audio = null;
function beep() {
  try {
    audio = audio || new AudioContext();
    if (audio.state !== "running") {
      document.getElementById("sound").hidden = false;
      audio.resume().catch(() => {});
    }
    for (const [i, f] of [880, 660, 880].entries()) {
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.frequency.value = f;
      g.gain.value = 0.2;
      o.connect(g).connect(audio.destination);
      o.start(audio.currentTime + i * 0.25);
      o.stop(audio.currentTime + i * 0.25 + 0.2);
    }
  } catch (e) {
    document.getElementById("sound").hidden = false;
  }
}
document.getElementById("enable-sound").addEventListener("click", async () => {
  audio = audio || new AudioContext();
  await audio.resume();
  document.getElementById("sound").hidden = true;
});

// -- live stream --------------------------------------------------------------------------

function connectStream() {
  stream = new EventSource("/api/v1/alerts/stream");
  let connected = false;
  stream.addEventListener("hello", () => {
    liveBadge.textContent = "● live";
    liveBadge.className = "live on";
    if (connected) loadAlerts().then(() => currentRoute().name === "alerts" && renderAlertList()); // after a gap
    connected = true;
  });
  stream.addEventListener("alert", (ev) => {
    const a = JSON.parse(ev.data);
    const isNew = !alerts.has(a.id);
    alerts.set(a.id, a);
    if (isNew && a.urgent && a.state === "active") {
      window.__alarms += 1;
      beep();
    }
    if (currentRoute().name === "alerts") renderAlertList();
    if (currentRoute().name === "alert" && currentRoute().id === a.id) showAlert(a.id);
  });
  stream.addEventListener("resync", () => loadAlerts().then(() => currentRoute().name === "alerts" && renderAlertList()));
  // The hub ends a stream whose session ended (logout, disabled account, new password) or
  // whose account changed role: sign in again, or reload for the new role's view.
  stream.addEventListener("ended", (ev) => {
    stream.close();
    const { reason } = JSON.parse(ev.data || "{}");
    if (reason === "role_changed") location.reload();
    else location.assign("/login");
  });
  stream.onerror = () => {
    liveBadge.textContent = "● reconnecting";
    liveBadge.className = "live off";
  };
}

async function loadAlerts() {
  // Merged, never cleared: an alert the stream delivered while this page was being
  // fetched must not be lost to an older copy.
  const page = await api("/api/v1/events?limit=200&sort=received_at");
  for (const a of page.items) {
    const have = alerts.get(a.id);
    if (!have || new Date(have.updated_at) <= new Date(a.updated_at)) alerts.set(a.id, a);
  }
}

// -- live alerts page ---------------------------------------------------------------------

function matches(a) {
  if (filters.kind && a.kind !== filters.kind) return false;
  if (filters.camera && a.camera_id !== filters.camera) return false;
  if (filters.status === "open") return a.status === "new" || a.status === "acknowledged";
  if (filters.status && a.status !== filters.status) return false;
  return true;
}

function select(name, label, options) {
  const el = h(
    "select",
    {
      id: `filter-${name}`,
      "aria-label": label,
      onchange: (ev) => {
        filters[name] = ev.target.value;
        renderAlertList();
      },
    },
    options.map(([value, text]) => h("option", { value, selected: filters[name] === value }, text)),
  );
  return h("label", {}, `${label} `, el);
}

function renderAlertList() {
  const list = [...alerts.values()].sort(
    (x, y) => new Date(y.start_time) - new Date(x.start_time) || (x.id < y.id ? 1 : -1),
  );
  const kinds = [...new Set(list.map((a) => a.kind))].sort();
  const cameras = [...new Set(list.map((a) => a.camera_id))].sort();
  const shown = list.filter(matches);
  const bar = h(
    "div",
    { class: "filters" },
    select("kind", "Kind", [["", "all kinds"], ...kinds.map((k) => [k, k])]),
    select("camera", "Camera", [["", "all cameras"], ...cameras.map((c) => [c, c])]),
    select("status", "State", [
      ["open", "open (new + acknowledged)"],
      ["", "all"],
      ["new", "new"],
      ["acknowledged", "acknowledged"],
      ["resolved", "resolved"],
      ["false_alarm", "false alarm"],
    ]),
    h("span", { class: "muted" }, `${shown.length} of ${list.length}`),
  );
  const table = shown.length
    ? h(
        "table",
        { class: "alerts", id: "alert-table" },
        h(
          "thead",
          {},
          h("tr", {}, ["", "Kind", "Camera", "Zone", "Started", "Score", "Edge state", "Status"].map((t) => h("th", {}, t))),
        ),
        h(
          "tbody",
          {},
          shown.map((a) => {
            const prior = view.querySelector(`tr[data-id="${CSS.escape(a.id)}"]`);
            const shownAt = prior ? prior.dataset.shownAt : String(Date.now());
            return h(
              "tr",
              {
                class: `sev-${severity(a)} status-${a.status}`,
                dataset: { id: a.id, shownAt },
                tabindex: 0,
                onclick: () => (location.hash = `#/alert/${a.id}`),
                onkeydown: (ev) => ev.key === "Enter" && (location.hash = `#/alert/${a.id}`),
              },
              h("td", {}, h("span", { class: "dot", title: severity(a) })),
              h("td", {}, h("strong", {}, a.kind), a.label ? ` · ${a.label}` : ""),
              h("td", {}, a.camera_id),
              h("td", {}, a.zone || "—"),
              h("td", { title: a.start_time }, fmtTime(a.start_time)),
              h("td", {}, a.score.toFixed(2)),
              h("td", {}, a.state),
              h("td", {}, h("span", { class: `pill ${a.status}` }, a.status.replace("_", " "))),
            );
          }),
        ),
      )
    : h(
        "div",
        { class: "empty", id: "alerts-empty" },
        list.length
          ? "No alerts match these filters."
          : "No alerts yet. New alerts appear here the moment the hub receives them.",
      );
  show(h("h1", {}, "Live alerts"), bar, table);
}

async function showAlerts() {
  setNav("alerts");
  renderAlertList();
}

// -- alert detail -------------------------------------------------------------------------

function actions(a, rerender) {
  if (!can("act")) {
    return h("p", { class: "muted", id: "no-actions" }, `Your role (${me.role}) can view alerts but not act on them.`);
  }
  if (a.status === "resolved" || a.status === "false_alarm") {
    return h("p", { class: "muted" }, `Closed: ${a.status.replace("_", " ")} by ${a.status_by}.`);
  }
  const note = h("textarea", { id: "note", rows: 2, placeholder: "Note (optional): what you did, who you called" });
  const msg = h("p", { class: "error", role: "alert", hidden: true });
  const buttons = [];
  const act = (path, label) =>
    h(
      "button",
      {
        id: `act-${path}`,
        disabled: path === "ack" && a.status === "acknowledged",
        onclick: async (ev) => {
          buttons.forEach((b) => (b.disabled = true));
          ev.target.textContent = "Saving…";
          msg.hidden = true;
          try {
            const updated = await api(`/api/v1/events/${a.id}/${path}`, {
              method: "POST",
              body: { note: note.value.trim() || null },
            });
            alerts.set(updated.id, { ...alerts.get(updated.id), ...updated });
            rerender(updated);
          } catch (e) {
            msg.textContent = `Could not save: ${e.message}`;
            msg.hidden = false;
            buttons.forEach((b) => (b.disabled = false));
            ev.target.textContent = label;
          }
        },
      },
      label,
    );
  buttons.push(act("ack", "Acknowledge"), act("resolve", "Resolve"), act("false_alarm", "False alarm"));
  return h("div", { class: "actions" }, note, h("div", {}, buttons), msg);
}

function boxOverlay(box) {
  // The detection box, drawn over the snapshot (box = fractions of width and height).
  if (!box) return null;
  const el = h("div", { class: "box", id: "box" });
  el.style.left = `${box[0] * 100}%`;
  el.style.top = `${box[1] * 100}%`;
  el.style.width = `${(box[2] - box[0]) * 100}%`;
  el.style.height = `${(box[3] - box[1]) * 100}%`;
  return el;
}

function renderAlert(a) {
  const attrs = Object.entries(a.attributes || {});
  const plate = a.attributes?.plate ?? a.attributes?.plate_text;
  const files = a.evidence_files || {};
  const clip = files["clip.mp4"];
  const frames = ["before.jpg", "at.jpg", "after.jpg"].filter((n) => files[n]);
  const evidence = a.evidence
    ? h(
        "section",
        { class: "evidence" },
        h("h2", {}, "Evidence"),
        a.snapshot_url
          ? h("div", { class: "snapwrap" }, h("img", { id: "snapshot", src: a.snapshot_url, alt: `snapshot of ${a.kind} at ${a.camera_id}` }), boxOverlay(a.box))
          : h("p", { class: "muted" }, "No snapshot for this alert."),
        clip
          ? h("video", { id: "clip", src: clip, controls: true, preload: "metadata" })
          : h("p", { class: "muted", id: "no-clip" }, "No clip recorded for this alert."),
        frames.length
          ? h("div", { class: "frames", id: "frames" }, frames.map((n) => h("figure", {}, h("img", { src: files[n], alt: n }), h("figcaption", {}, n.replace(".jpg", "")))))
          : null,
        h("p", {}, "Plate: ", h("strong", { id: "plate" }, plate ?? "—"), a.attributes?.plate_reason && !plate ? h("span", { class: "muted" }, ` (${a.attributes.plate_reason})`) : null),
        files["manifest.json"] ? h("p", { id: "integrity", class: "muted" }, "Checking the evidence against its manifest…") : null,
      )
    : h("section", { class: "evidence" }, h("h2", {}, "Evidence"), h("p", { class: "muted", id: "no-evidence" }, `Your role (${me.role}) may not see evidence.`));
  const timeline = h(
    "ol",
    { class: "timeline", id: "timeline" },
    a.timeline.map((u) => h("li", {}, `${fmtTime(u.frame_time)} · ${u.type} · score ${u.score.toFixed(2)}`)),
  );
  const audit = a.audit.length
    ? h(
        "ol",
        { class: "audit", id: "audit" },
        a.audit.map((e) =>
          h("li", {}, h("strong", {}, e.action.replace("_", " ")), ` by ${e.actor} · ${fmtTime(e.time)}`, e.note ? h("q", {}, e.note) : null),
        ),
      )
    : h("p", { class: "muted", id: "audit-empty" }, "Nobody has acted on this alert yet.");
  show(
    h("p", {}, h("a", { href: "#/alerts" }, "← Live alerts")),
    h(
      "h1",
      { class: `sev-${severity(a)}` },
      h("span", { class: "dot" }),
      ` ${a.kind}${a.label ? " · " + a.label : ""} `,
      h("span", { class: `pill ${a.status}`, id: "status" }, a.status.replace("_", " ")),
    ),
    h(
      "dl",
      { class: "facts" },
      [
        ["Camera", `${a.camera_id} (${a.site} / ${a.edge_id})`],
        ["Zone", a.zone || "—"],
        ["Started", fmtTime(a.start_time)],
        ["Ended", a.end_time ? fmtTime(a.end_time) : "still active"],
        ["Score", a.score.toFixed(2)],
        ["Position", a.lat !== null ? `${a.lat.toFixed(5)}, ${a.lon.toFixed(5)}` : "—"],
        ["Review", a.review ? `${a.review}${a.reviewer ? " by " + a.reviewer : ""}` : "—"],
      ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
    ),
    h("div", { class: "cols" }, evidence, h("section", {}, h("h2", {}, "Actions"), actions(a, renderAlert), h("h2", {}, "Audit log"), audit)),
    h("section", {}, h("h2", {}, "Timeline"), timeline),
    attrs.length
      ? h("section", {}, h("h2", {}, "Details"), h("table", { class: "kv" }, attrs.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, String(v))))))
      : null,
  );
}

async function checkEvidence(a) {
  const el = document.getElementById("integrity");
  if (!el) return;
  try {
    const ev = await api(`/api/v1/events/${encodeURIComponent(a.id)}/evidence`);
    el.textContent = ev.verified
      ? `Evidence verified: ${ev.files.length} files match the manifest published with the alert (SHA-256).`
      : `Evidence NOT verified: ${ev.problems.join("; ")}`;
    el.className = ev.verified ? "ok" : "error";
  } catch (e) {
    el.textContent = `Could not check the evidence: ${e.message}`;
  }
}

async function showAlert(id) {
  setNav("alerts");
  try {
    const a = await api(`/api/v1/events/${encodeURIComponent(id)}`);
    renderAlert(a);
    checkEvidence(a);
  } catch (e) {
    show(
      h("p", {}, h("a", { href: "#/alerts" }, "← Live alerts")),
      errorBox(e.status === 404 ? "This alert does not exist (or your role may not see it)." : `Could not load the alert: ${e.message}`, () => showAlert(id)),
    );
  }
}

// -- cameras ------------------------------------------------------------------------------

const CAMERA_PAGE = 200;

async function showCameras(state = "", offset = 0) {
  setNav("cameras");
  const load = async () => {
    let page;
    try {
      const q = new URLSearchParams({ limit: String(CAMERA_PAGE), offset: String(offset) });
      if (state) q.set("state", state);
      page = await api(`/api/v1/cameras?${q}`);
    } catch (e) {
      show(h("h1", {}, "Cameras"), errorBox(`Could not load cameras: ${e.message}`, load));
      return;
    }
    if (page.total && offset >= page.total) {
      // the fleet shrank under this page: go to the last one
      offset = Math.max(0, Math.floor((page.total - 1) / CAMERA_PAGE) * CAMERA_PAGE);
      return load();
    }
    const cams = page.items;
    const n = page.states || {};
    const fleet = (n.online || 0) + (n.degraded || 0) + (n.offline || 0);
    const go = (s, o) => () => {
      clearInterval(refreshTimer);
      refreshTimer = null;
      showCameras(s, o);
    };
    const tabs = h(
      "div",
      { class: "tabs", id: "camera-tabs" },
      [["", "all"], ["offline", "offline"], ["degraded", "degraded"], ["online", "online"]].map(([s, label]) =>
        h("button", { class: s === state ? "active" : "", dataset: { state: s }, onclick: go(s, 0) }, label),
      ),
    );
    const pager =
      page.total > cams.length
        ? h(
            "div",
            { class: "filters", id: "camera-pager" },
            h("button", { class: "secondary", disabled: offset === 0, onclick: go(state, Math.max(0, offset - CAMERA_PAGE)) }, "← Previous"),
            h("span", { class: "muted" }, `${offset + 1}–${offset + cams.length} of ${page.total}`),
            h("button", { class: "secondary", disabled: offset + cams.length >= page.total, onclick: go(state, offset + CAMERA_PAGE) }, "Next →"),
          )
        : null;
    show(
      h("h1", {}, "Cameras"),
      h("p", { class: "muted", id: "camera-counts" }, `${fleet} cameras · ${n.online || 0} online · ${n.degraded || 0} degraded · ${n.offline || 0} offline`),
      tabs,
      pager,
      cams.length
        ? h(
            "div",
            { class: "grid", id: "camera-grid" },
            cams.map((c) =>
              h(
                "article",
                { class: `cam ${c.state}`, dataset: { camera: c.camera_id } },
                h("h3", {}, c.camera_id),
                h("p", { class: "state" }, c.state),
                h("p", { class: "muted" }, `${c.site} / ${c.edge_id}`),
                h("p", {}, `Last frame ${ago(c.last_frame_time)}`),
                h("p", {}, `${c.fps.toFixed(1)} fps · ${c.reconnects} reconnects`),
                c.degraded_reason ? h("p", { class: "warn" }, c.degraded_reason) : null,
                c.error ? h("p", { class: "error" }, c.error) : null,
                can("setup") ? h("p", {}, h("a", { class: "setup-link", href: `#/setup/${encodeURIComponent(c.camera_id)}` }, "Set up")) : null,
              ),
            ),
          )
        : h(
            "div",
            { class: "empty" },
            state ? `No ${state} camera.` : "No camera has reported yet. Cameras appear when their edge worker connects.",
          ),
    );
  };
  await load();
  refreshTimer = setInterval(load, 5000);
}

// -- hotspots -----------------------------------------------------------------------------

async function showHotspots() {
  setNav("hotspots");
  if (!can("internal")) {
    show(h("h1", {}, "Flood hotspots"), h("p", { class: "muted", id: "no-hotspots" }, `Your role (${me.role}) cannot see the internal hotspot data; the public page is `, h("a", { href: "/hotspots" }, "/hotspots"), "."));
    return;
  }
  const load = async () => {
    let spots;
    try {
      spots = await api("/api/v1/hotspots/internal");
    } catch (e) {
      show(h("h1", {}, "Flood hotspots"), errorBox(`Could not load hotspots: ${e.message}`, load));
      return;
    }
    show(
      h("h1", {}, "Flood hotspots"),
      h("p", { class: "muted" }, "What citizens see on ", h("a", { href: "/hotspots" }, "/hotspots"), ", plus the camera, edge and raw reading."),
      spots.length
        ? h(
            "table",
            { class: "alerts", id: "hotspot-table" },
            h("thead", {}, h("tr", {}, ["Hotspot", "State", "Level", "Trend", "Next level", "Camera", "Edge", "Last reading", "Reason"].map((t) => h("th", {}, t)))),
            h(
              "tbody",
              {},
              spots.map((p) =>
                h(
                  "tr",
                  { class: `sev-${p.severity >= 4 ? "urgent" : p.severity >= 2 ? "high" : "info"}` },
                  h("td", {}, h("strong", {}, p.name), h("br"), h("small", { class: "muted" }, p.id)),
                  h("td", {}, p.state),
                  h("td", {}, p.level_cm === null || p.level_cm === undefined ? "—" : `${p.level_cm} cm`),
                  h("td", {}, p.trend || "—"),
                  h("td", {}, p.next_level ? `${p.next_level}${p.eta_s ? " in " + Math.round(p.eta_s / 60) + " min" : ""}` : "—"),
                  h("td", {}, p.camera_id || "—"),
                  h("td", {}, p.edge_id || "—"),
                  h("td", { title: p.received_at || "" }, ago(p.updated_at)),
                  h("td", {}, p.reason || ""),
                ),
              ),
            ),
          )
        : h("div", { class: "empty" }, "No hotspots are configured on this hub (hotspots_file)."),
    );
  };
  await load();
  refreshTimer = setInterval(load, 10000);
}

// -- readings -----------------------------------------------------------------------------
// Any analytic's measurements (line counts, occupancy, levels): the latest of each camera's
// analytics, and one value of the chosen one charted over the last hours (inline SVG).

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const chosen = { key: null, name: null, hours: 6 }; // kept across refreshes
const readingKey = (r) => [r.site, r.edge_id, r.camera_id, r.analytic].join("/");
function fmtValue(v, unit) {
  if (v === null || v === undefined) return "—";
  const text = Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) < 10 ? 2 : 1);
  return unit ? `${text} ${unit}` : text;
}

function chart(series, hours) {
  const [W, H, L, R, T, B] = [760, 240, 56, 16, 14, 30];
  const t1 = Date.now();
  const t0 = t1 - hours * 3600e3;
  const pts = series.points.filter((p) => p.time).map((p) => ({ t: new Date(p.time).getTime(), v: p.value }));
  const vals = pts.map((p) => p.v).filter((v) => v !== null);
  if (!vals.length) {
    return h("div", { class: "empty", id: "chart-empty" }, `No ${series.name} reading in the last ${hours} h.`);
  }
  let lo = Math.min(0, ...vals);
  let hi = Math.max(...vals);
  if (hi === lo) hi = lo + 1;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  let d = "";
  let pen = false;
  for (const p of pts) {
    if (p.v === null) {
      pen = false; // not measured: a gap, never a line through it
      continue;
    }
    d += `${pen ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)} `;
    pen = true;
  }
  const unit = series.unit ? ` ${series.unit}` : "";
  const clock = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return svg(
    "svg",
    { class: "chart", id: "reading-svg", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${series.name} over the last ${hours} hours`, "data-points": vals.length },
    [lo, (lo + hi) / 2, hi].map((v) => [
      svg("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }),
      svg("text", { class: "axis", x: L - 6, y: y(v) + 4, "text-anchor": "end" }, fmtValue(Math.round(v * 100) / 100)),
    ]),
    svg("text", { class: "axis", x: L, y: H - 8 }, clock(t0)),
    svg("text", { class: "axis", x: W - R, y: H - 8, "text-anchor": "end" }, "now"),
    unit ? svg("text", { class: "axis", x: L + 6, y: T + 12 }, unit.trim()) : null,
    svg("path", { class: "line", d }),
    vals.length <= 120 ? pts.filter((p) => p.v !== null).map((p) => svg("circle", { class: "pt", cx: x(p.t), cy: y(p.v), r: 2.5 }, svg("title", {}, `${fmtTime(new Date(p.t).toISOString())}: ${fmtValue(p.v, series.unit)}`))) : null,
  );
}

async function showReadings() {
  setNav("readings");
  const title = h("h1", {}, "Readings");
  const load = async () => {
    let latest;
    try {
      latest = await api("/api/v1/readings/latest");
    } catch (e) {
      if (currentRoute().name === "readings") show(title, errorBox(`Could not load readings: ${e.message}`, load));
      return;
    }
    if (!latest.length) {
      if (currentRoute().name === "readings") {
        show(title, h("div", { class: "empty", id: "readings-empty" }, "No analytic has sent a reading yet. Counts, occupancy and levels appear here as edges publish them."));
      }
      return;
    }
    const sel = latest.find((r) => readingKey(r) === chosen.key) || latest[0];
    chosen.key = readingKey(sel);
    const names = Object.keys(sel.values).sort();
    if (!names.includes(chosen.name)) chosen.name = names[0] ?? null;
    let series = null;
    let problem = null;
    if (chosen.name) {
      const q = new URLSearchParams({
        site: sel.site,
        edge_id: sel.edge_id,
        camera_id: sel.camera_id,
        analytic: sel.analytic,
        name: chosen.name,
        since: new Date(Date.now() - chosen.hours * 3600e3).toISOString(),
      });
      try {
        series = await api(`/api/v1/readings/series?${q}`);
      } catch (e) {
        problem = e.message;
      }
    }
    if (currentRoute().name !== "readings") return; // the operator went elsewhere meanwhile
    const pick = (r) => () => {
      chosen.key = readingKey(r);
      load();
    };
    const table = h(
      "table",
      { class: "alerts", id: "readings-table" },
      h("thead", {}, h("tr", {}, ["Camera", "Analytic", "State", "Values", "Time"].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        latest.map((r) => {
          const entries = Object.entries(r.values);
          return h(
            "tr",
            {
              class: readingKey(r) === chosen.key ? "chosen" : "",
              dataset: { key: readingKey(r) },
              tabindex: 0,
              onclick: pick(r),
              onkeydown: (ev) => ev.key === "Enter" && pick(r)(),
            },
            h("td", {}, h("strong", {}, r.camera_id), h("br"), h("small", { class: "muted" }, `${r.site} / ${r.edge_id}`)),
            h("td", {}, r.analytic, h("br"), h("small", { class: "muted" }, r.analytic_type)),
            h("td", {}, r.state ? h("span", { class: "pill" }, r.state) : "—"),
            h(
              "td",
              { class: "values" },
              entries.slice(0, 8).map(([k, v]) => h("span", { class: "value" }, `${k}: ${fmtValue(v, r.units[k])}`)),
              entries.length > 8 ? h("span", { class: "muted" }, `+${entries.length - 8} more`) : null,
            ),
            h("td", { title: r.time }, ago(r.time), r.stale ? h("span", { class: "warn" }, " · stale") : null),
          );
        }),
      ),
    );
    const nameSelect = h(
      "select",
      { id: "reading-name", "aria-label": "Value", onchange: (ev) => ((chosen.name = ev.target.value), load()) },
      names.map((n) => h("option", { value: n, selected: n === chosen.name }, n)),
    );
    const hoursSelect = h(
      "select",
      { id: "reading-hours", "aria-label": "Period", onchange: (ev) => ((chosen.hours = Number(ev.target.value)), load()) },
      [1, 6, 24].map((n) => h("option", { value: n, selected: n === chosen.hours }, `last ${n} h`)),
    );
    show(
      title,
      h("p", { class: "muted" }, "The latest reading of every camera's analytics; choose one to chart a value. Refreshed every 30 s."),
      table,
      h(
        "section",
        { id: "reading-chart" },
        h("h2", {}, `${sel.camera_id} · ${sel.analytic}`),
        h("div", { class: "filters" }, h("label", {}, "Value ", nameSelect), h("label", {}, "Period ", hoursSelect)),
        problem ? errorBox(`Could not load the series: ${problem}`, load) : series ? chart(series, chosen.hours) : h("p", { class: "muted" }, "This reading carries no values."),
      ),
    );
  };
  await load();
  refreshTimer = setInterval(load, 30000);
}

// -- traffic review -----------------------------------------------------------------------

async function showReview(state = "pending") {
  setNav("review");
  if (!can("review")) {
    show(h("h1", {}, "Traffic review"), h("p", { class: "muted", id: "no-review" }, `Your role (${me.role}) cannot review violations.`));
    return;
  }
  const tabs = h(
    "div",
    { class: "tabs" },
    ["pending", "confirmed", "rejected"].map((s) =>
      h("button", { class: s === state ? "active" : "", onclick: () => showReview(s) }, s),
    ),
  );
  show(h("h1", {}, "Traffic review"), tabs, h("p", { class: "muted" }, "Loading…"));
  let page;
  try {
    page = await api(`/api/v1/reviews?state=${state}&limit=100`);
  } catch (e) {
    show(h("h1", {}, "Traffic review"), tabs, errorBox(`Could not load the queue: ${e.message}`, () => showReview(state)));
    return;
  }
  const item = (a) => {
    const reason = h("input", { placeholder: "Reason (required to reject)", "aria-label": "reason" });
    const msg = h("p", { class: "error", role: "alert", hidden: true });
    const decide = (decision) => async (ev) => {
      ev.target.disabled = true;
      msg.hidden = true;
      try {
        await api(`/api/v1/reviews/${a.id}`, { method: "POST", body: { decision, reason: reason.value.trim() || null } });
        card.classList.add("done");
        card.replaceChildren(h("p", {}, `${a.kind} at ${a.camera_id}: ${decision}.`));
      } catch (e) {
        msg.textContent = e.message;
        msg.hidden = false;
        ev.target.disabled = false;
      }
    };
    const card = h(
      "article",
      { class: "review", dataset: { id: a.id } },
      a.snapshot_url ? h("img", { src: a.snapshot_url, alt: "violation snapshot" }) : h("div", { class: "noimg" }, "no snapshot"),
      h(
        "div",
        {},
        h("h3", {}, h("a", { href: `#/alert/${a.id}` }, a.kind), ` · ${a.camera_id}`),
        h("p", {}, fmtTime(a.start_time), a.label ? ` · ${a.label}` : ""),
        h("p", {}, "Plate: ", h("strong", {}, a.attributes?.plate ?? "—"), a.attributes?.speed_kmh ? ` · ${a.attributes.speed_kmh} km/h` : ""),
        state === "pending"
          ? h("div", { class: "actions" }, reason, h("button", { onclick: decide("confirmed") }, "Confirm"), h("button", { class: "secondary", onclick: decide("rejected") }, "Reject"), msg)
          : h("p", { class: "muted" }, `${a.review} by ${a.reviewer}${a.review_reason ? ": " + a.review_reason : ""}`),
      ),
    );
    return card;
  };
  show(
    h("h1", {}, "Traffic review"),
    tabs,
    page.items.length
      ? h("div", { class: "queue", id: "review-queue" }, page.items.map(item))
      : h("div", { class: "empty", id: "review-empty" }, state === "pending" ? "The queue is empty: every violation has been reviewed." : `No ${state} violations.`),
  );
}

// -- routing ------------------------------------------------------------------------------

function currentRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  return { name: parts[0] || "alerts", id: parts[1] ? decodeURIComponent(parts[1]) : null };
}

async function route() {
  clearInterval(refreshTimer);
  refreshTimer = null;
  const r = currentRoute();
  if (r.name === "alert" && r.id) return showAlert(r.id);
  if (r.name === "cameras") return showCameras();
  if (r.name === "hotspots") return showHotspots();
  if (r.name === "readings") return showReadings();
  if (r.name === "review") return showReview();
  if (r.name === "watchlist") {
    return showWatchlist({ h, api, show, setNav, can, me, fmtTime, errorBox });
  }
  if (r.name === "setup" && r.id) {
    return showSetup({ h, api, show, setNav, can, me, fmtTime, errorBox }, r.id);
  }
  return showAlerts();
}

async function main() {
  try {
    me = await api("/api/v1/auth/me");
  } catch (e) {
    if (e.message !== "signed out") show(errorBox(`The hub cannot be reached: ${e.message}`, main));
    return;
  }
  document.getElementById("who").textContent = `${me.username} (${me.role})`;
  if (!can("review")) document.querySelector("[data-nav=review]").hidden = true;
  if (!can("review")) document.querySelector("[data-nav=watchlist]").hidden = true;
  if (!can("internal")) document.querySelector("[data-nav=hotspots]").hidden = true;
  document.getElementById("logout").addEventListener("click", async () => {
    await api("/api/v1/auth/logout", { method: "POST" }).catch(() => {});
    location.assign("/login");
  });
  try {
    for (const k of await api("/api/v1/kinds")) kinds.set(k.name, k);
  } catch (e) {
    if (e.message === "signed out") return; // else: alerts are drawn as info until a reload
  }
  if (!stream) connectStream(); // first, so nothing committed after the list query is missed
  try {
    await loadAlerts();
  } catch (e) {
    show(errorBox(`Could not load alerts: ${e.message}`, main));
    return;
  }
  window.addEventListener("hashchange", route);
  await route();
  document.body.dataset.ready = "1";
}

main();
