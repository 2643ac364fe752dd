// The operations-centre dashboard: plain ES module, no build step, no CDN.
// Every piece of data comes from the hub's API with the session cookie; writes carry
// the session's CSRF token. Text from the API is only ever set as textContent.

import { t, ready, applyI18n, langSwitcher, fmtNumber, fmtDateTime, fmtTime as fmtClock, placeName } from "/i18n/i18n.js";
import { showWatchlist } from "/ui/watchlist.js";
import { showSetup } from "/ui/setup.js";
import { showMap } from "/ui/mapview.js";

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

// Dates, times and numbers as the chosen language writes them (vi: "01/12/2026 14:05:09", "0,87").
const fmtTime = (iso) => (iso ? fmtDateTime(iso) : "—");
const fmt2 = (v) => fmtNumber(v, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
function ago(iso) {
  if (!iso) return t("dashboard.never");
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 60) return t("common.ago_s", { n: s });
  if (s < 3600) return t("common.ago_min", { n: Math.round(s / 60) });
  return t("common.ago_h", { n: Math.round(s / 3600) });
}
// Names the hub gives in English (kinds, states): the catalogue's word, else the hub's own.
const kindName = (k) => t(`kinds.${k}`, {}, { fallback: k });
const stateName = (s) => (s ? t(`states.${s}`, {}, { fallback: String(s).replace("_", " ") }) : "—");
const roleName = (role) => t(`dashboard.role_${role}`, {}, { fallback: role });
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
    retry ? h("button", { onclick: retry }, t("common.retry")) : null,
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
    liveBadge.dataset.i18n = "dashboard.live_on";
    liveBadge.textContent = t("dashboard.live_on");
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
    liveBadge.dataset.i18n = "dashboard.live_reconnecting";
    liveBadge.textContent = t("dashboard.live_reconnecting");
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
    select("kind", t("dashboard.col_kind"), [["", t("dashboard.all_kinds")], ...kinds.map((k) => [k, kindName(k)])]),
    select("camera", t("dashboard.col_camera"), [["", t("dashboard.all_cameras")], ...cameras.map((c) => [c, c])]),
    select("status", t("dashboard.col_state"), [
      ["open", t("dashboard.status_open")],
      ["", t("dashboard.status_all")],
      ...["new", "acknowledged", "resolved", "false_alarm"].map((s) => [s, stateName(s)]),
    ]),
    h("span", { class: "muted" }, t("dashboard.n_of_m", { n: shown.length, m: list.length })),
  );
  const table = shown.length
    ? h(
        "table",
        { class: "alerts", id: "alert-table" },
        h(
          "thead",
          {},
          h("tr", {}, ["", t("dashboard.col_kind"), t("dashboard.col_camera"), t("dashboard.col_zone"), t("dashboard.col_started"), t("dashboard.col_score"), t("dashboard.col_edge_state"), t("dashboard.col_status")].map((c) => h("th", {}, c))),
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
              h("td", {}, h("strong", { title: a.kind }, kindName(a.kind)), a.label ? ` · ${a.label}` : ""),
              h("td", {}, a.camera_id),
              h("td", {}, a.zone || "—"),
              h("td", { title: a.start_time }, fmtTime(a.start_time)),
              h("td", {}, fmt2(a.score)),
              h("td", {}, stateName(a.state)),
              h("td", {}, h("span", { class: `pill ${a.status}` }, stateName(a.status))),
            );
          }),
        ),
      )
    : h(
        "div",
        { class: "empty", id: "alerts-empty" },
        list.length ? t("dashboard.alerts_none_match") : t("dashboard.alerts_empty"),
      );
  show(h("h1", {}, t("dashboard.nav_alerts")), bar, table);
}

async function showAlerts() {
  setNav("alerts");
  renderAlertList();
}

// -- alert detail -------------------------------------------------------------------------

function actions(a, rerender) {
  if (!can("act")) {
    return h("p", { class: "muted", id: "no-actions" }, t("dashboard.no_actions", { role: roleName(me.role) }));
  }
  if (a.status === "resolved" || a.status === "false_alarm") {
    return h("p", { class: "muted" }, t("dashboard.closed_by", { status: stateName(a.status), user: a.status_by }));
  }
  const note = h("textarea", { id: "note", rows: 2, placeholder: t("dashboard.note_placeholder") });
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
          ev.target.textContent = t("dashboard.saving");
          msg.hidden = true;
          try {
            const updated = await api(`/api/v1/events/${a.id}/${path}`, {
              method: "POST",
              body: { note: note.value.trim() || null },
            });
            alerts.set(updated.id, { ...alerts.get(updated.id), ...updated });
            rerender(updated);
          } catch (e) {
            msg.textContent = t("dashboard.could_not_save", { error: e.message });
            msg.hidden = false;
            buttons.forEach((b) => (b.disabled = false));
            ev.target.textContent = label;
          }
        },
      },
      label,
    );
  buttons.push(act("ack", t("dashboard.act_ack")), act("resolve", t("dashboard.act_resolve")), act("false_alarm", t("dashboard.act_false_alarm")));
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
        h("h2", {}, t("dashboard.evidence")),
        a.snapshot_url
          ? h("div", { class: "snapwrap" }, h("img", { id: "snapshot", src: a.snapshot_url, alt: t("dashboard.snapshot_alt", { kind: kindName(a.kind), camera: a.camera_id }) }), boxOverlay(a.box))
          : h("p", { class: "muted" }, t("dashboard.no_snapshot")),
        clip
          ? h("video", { id: "clip", src: clip, controls: true, preload: "metadata" })
          : h("p", { class: "muted", id: "no-clip" }, t("dashboard.no_clip")),
        frames.length
          ? h("div", { class: "frames", id: "frames" }, frames.map((n) => h("figure", {}, h("img", { src: files[n], alt: n }), h("figcaption", {}, t(`dashboard.frame_${n.replace(".jpg", "")}`)))))
          : null,
        h("p", {}, t("dashboard.plate"), " ", h("strong", { id: "plate" }, plate ?? "—"), a.attributes?.plate_reason && !plate ? h("span", { class: "muted" }, ` (${a.attributes.plate_reason})`) : null),
        files["manifest.json"] ? h("p", { id: "integrity", class: "muted" }, t("dashboard.evidence_checking")) : null,
      )
    : h("section", { class: "evidence" }, h("h2", {}, t("dashboard.evidence")), h("p", { class: "muted", id: "no-evidence" }, t("dashboard.no_evidence_role", { role: roleName(me.role) })));
  const timeline = h(
    "ol",
    { class: "timeline", id: "timeline" },
    a.timeline.map((u) => h("li", {}, t("dashboard.timeline_item", { time: fmtTime(u.frame_time), type: t(`dashboard.update_${u.type}`, {}, { fallback: u.type }), score: fmt2(u.score) }))),
  );
  const audit = a.audit.length
    ? h(
        "ol",
        { class: "audit", id: "audit" },
        a.audit.map((e) =>
          h("li", {}, h("strong", {}, stateName(e.action)), " ", t("dashboard.audit_by", { user: e.actor, time: fmtTime(e.time) }), e.note ? h("q", {}, e.note) : null),
        ),
      )
    : h("p", { class: "muted", id: "audit-empty" }, t("dashboard.audit_empty"));
  show(
    h("p", {}, h("a", { href: "#/alerts" }, t("dashboard.back_alerts"))),
    h(
      "h1",
      { class: `sev-${severity(a)}` },
      h("span", { class: "dot" }),
      ` ${kindName(a.kind)}${a.label ? " · " + a.label : ""} `,
      h("span", { class: `pill ${a.status}`, id: "status" }, stateName(a.status)),
    ),
    h(
      "dl",
      { class: "facts" },
      [
        [t("dashboard.col_camera"), `${a.camera_id} (${a.site} / ${a.edge_id})`],
        [t("dashboard.col_zone"), a.zone || "—"],
        [t("dashboard.col_started"), fmtTime(a.start_time)],
        [t("dashboard.ended"), a.end_time ? fmtTime(a.end_time) : t("dashboard.still_active")],
        [t("dashboard.col_score"), fmt2(a.score)],
        // coordinates keep the dot and comma of GPS notation in every language
        [t("dashboard.position"), a.lat !== null ? `${a.lat.toFixed(5)}, ${a.lon.toFixed(5)}` : "—"],
        [t("dashboard.review"), a.review ? (a.reviewer ? t("dashboard.review_by", { review: stateName(a.review), user: a.reviewer }) : stateName(a.review)) : "—"],
      ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
    ),
    h("div", { class: "cols" }, evidence, h("section", {}, h("h2", {}, t("dashboard.actions")), actions(a, renderAlert), h("h2", {}, t("dashboard.audit_log")), audit)),
    h("section", {}, h("h2", {}, t("dashboard.timeline")), timeline),
    attrs.length
      ? h("section", {}, h("h2", {}, t("dashboard.details")), h("table", { class: "kv" }, attrs.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, String(v))))))
      : null,
  );
}

async function checkEvidence(a) {
  const el = document.getElementById("integrity");
  if (!el) return;
  try {
    const ev = await api(`/api/v1/events/${encodeURIComponent(a.id)}/evidence`);
    el.textContent = ev.verified
      ? t("dashboard.evidence_verified", { n: ev.files.length })
      : t("dashboard.evidence_not_verified", { problems: ev.problems.join("; ") });
    el.className = ev.verified ? "ok" : "error";
  } catch (e) {
    el.textContent = t("dashboard.evidence_check_failed", { error: e.message });
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
      h("p", {}, h("a", { href: "#/alerts" }, t("dashboard.back_alerts"))),
      errorBox(e.status === 404 ? t("dashboard.alert_not_found") : t("dashboard.alert_load_failed", { error: e.message }), () => showAlert(id)),
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
      show(h("h1", {}, t("dashboard.nav_cameras")), errorBox(t("dashboard.cameras_load_failed", { error: e.message }), load));
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
      [["", t("dashboard.status_all")], ...["offline", "degraded", "online"].map((s) => [s, stateName(s)])].map(([s, label]) =>
        h("button", { class: s === state ? "active" : "", dataset: { state: s }, onclick: go(s, 0) }, label),
      ),
    );
    const pager =
      page.total > cams.length
        ? h(
            "div",
            { class: "filters", id: "camera-pager" },
            h("button", { class: "secondary", disabled: offset === 0, onclick: go(state, Math.max(0, offset - CAMERA_PAGE)) }, t("dashboard.previous")),
            h("span", { class: "muted" }, t("dashboard.range_of", { from: offset + 1, to: offset + cams.length, total: page.total })),
            h("button", { class: "secondary", disabled: offset + cams.length >= page.total, onclick: go(state, offset + CAMERA_PAGE) }, t("dashboard.next")),
          )
        : null;
    show(
      h("h1", {}, t("dashboard.nav_cameras")),
      h("p", { class: "muted", id: "camera-counts" }, t("dashboard.camera_counts", { n: fleet, online: n.online || 0, degraded: n.degraded || 0, offline: n.offline || 0 })),
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
                h("p", { class: "state" }, stateName(c.state)),
                h("p", { class: "muted" }, `${c.site} / ${c.edge_id}`),
                h("p", {}, t("dashboard.last_frame", { ago: ago(c.last_frame_time) })),
                h("p", {}, t("dashboard.fps_reconnects", { fps: fmtNumber(c.fps, { minimumFractionDigits: 1, maximumFractionDigits: 1 }), n: c.reconnects })),
                c.degraded_reason ? h("p", { class: "warn" }, c.degraded_reason) : null,
                c.error ? h("p", { class: "error" }, c.error) : null,
                can("setup") ? h("p", {}, h("a", { class: "setup-link", href: `#/setup/${encodeURIComponent(c.camera_id)}` }, t("dashboard.set_up"))) : null,
              ),
            ),
          )
        : h(
            "div",
            { class: "empty" },
            state ? t("dashboard.no_camera_in_state", { state: stateName(state) }) : t("dashboard.no_camera"),
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
    show(h("h1", {}, t("dashboard.nav_hotspots")), h("p", { class: "muted", id: "no-hotspots" }, t("dashboard.no_hotspots_role", { role: roleName(me.role) }), " ", h("a", { href: "/hotspots" }, "/hotspots"), "."));
    return;
  }
  const load = async () => {
    let spots;
    try {
      spots = await api("/api/v1/hotspots/internal");
    } catch (e) {
      show(h("h1", {}, t("dashboard.nav_hotspots")), errorBox(t("dashboard.hotspots_load_failed", { error: e.message }), load));
      return;
    }
    show(
      h("h1", {}, t("dashboard.nav_hotspots")),
      h("p", { class: "muted" }, t("dashboard.hotspots_intro_1"), " ", h("a", { href: "/hotspots" }, "/hotspots"), t("dashboard.hotspots_intro_2")),
      spots.length
        ? h(
            "table",
            { class: "alerts", id: "hotspot-table" },
            h("thead", {}, h("tr", {}, ["hotspot", "state", "level", "trend", "next_level", "camera", "edge", "last_reading", "reason"].map((c) => h("th", {}, t(`dashboard.hs_${c}`))))),
            h(
              "tbody",
              {},
              spots.map((p) =>
                h(
                  "tr",
                  { class: `sev-${p.severity >= 4 ? "urgent" : p.severity >= 2 ? "high" : "info"}` },
                  h("td", {}, h("strong", {}, placeName(p)), h("br"), h("small", { class: "muted" }, p.id)),
                  h("td", {}, stateName(p.state)),
                  h("td", {}, p.level_cm === null || p.level_cm === undefined ? "—" : t("common.unit_cm", { v: p.level_cm })),
                  h("td", {}, p.trend ? stateName(p.trend) : "—"),
                  h("td", {}, p.next_level ? (p.eta_s ? t("dashboard.next_level_in", { level: p.next_level, n: Math.round(p.eta_s / 60) }) : p.next_level) : "—"),
                  h("td", {}, p.camera_id || "—"),
                  h("td", {}, p.edge_id || "—"),
                  h("td", { title: p.received_at || "" }, ago(p.updated_at)),
                  h("td", {}, p.reason ? t(`dashboard.reason_${p.reason}`, {}, { fallback: p.reason }) : ""),
                ),
              ),
            ),
          )
        : h("div", { class: "empty" }, t("dashboard.no_hotspots")),
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
  const digits = Number.isInteger(v) ? 0 : Math.abs(v) < 10 ? 2 : 1;
  const text = fmtNumber(v, { minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: false });
  return unit ? `${text} ${unit}` : text;
}

function chart(series, hours) {
  const [W, H, L, R, T, B] = [760, 240, 56, 16, 14, 30];
  const t1 = Date.now();
  const t0 = t1 - hours * 3600e3;
  const pts = series.points.filter((p) => p.time).map((p) => ({ t: new Date(p.time).getTime(), v: p.value }));
  const vals = pts.map((p) => p.v).filter((v) => v !== null);
  if (!vals.length) {
    return h("div", { class: "empty", id: "chart-empty" }, t("dashboard.chart_empty", { name: series.name, n: hours }));
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
  const clock = (ms) => fmtClock(ms);
  return svg(
    "svg",
    { class: "chart", id: "reading-svg", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": t("dashboard.chart_label", { name: series.name, n: hours }), "data-points": vals.length },
    [lo, (lo + hi) / 2, hi].map((v) => [
      svg("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }),
      svg("text", { class: "axis", x: L - 6, y: y(v) + 4, "text-anchor": "end" }, fmtValue(Math.round(v * 100) / 100)),
    ]),
    svg("text", { class: "axis", x: L, y: H - 8 }, clock(t0)),
    svg("text", { class: "axis", x: W - R, y: H - 8, "text-anchor": "end" }, t("dashboard.now")),
    unit ? svg("text", { class: "axis", x: L + 6, y: T + 12 }, unit.trim()) : null,
    svg("path", { class: "line", d }),
    vals.length <= 120 ? pts.filter((p) => p.v !== null).map((p) => svg("circle", { class: "pt", cx: x(p.t), cy: y(p.v), r: 2.5 }, svg("title", {}, `${fmtTime(new Date(p.t).toISOString())}: ${fmtValue(p.v, series.unit)}`))) : null,
  );
}

async function showReadings() {
  setNav("readings");
  const title = h("h1", {}, t("dashboard.nav_readings"));
  const load = async () => {
    let latest;
    try {
      latest = await api("/api/v1/readings/latest");
    } catch (e) {
      if (currentRoute().name === "readings") show(title, errorBox(t("dashboard.readings_load_failed", { error: e.message }), load));
      return;
    }
    if (!latest.length) {
      if (currentRoute().name === "readings") {
        show(title, h("div", { class: "empty", id: "readings-empty" }, t("dashboard.readings_empty")));
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
      h("thead", {}, h("tr", {}, ["camera", "analytic", "state", "values", "time"].map((c) => h("th", {}, t(`dashboard.rd_${c}`))))),
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
            h("td", {}, r.state ? h("span", { class: "pill" }, stateName(r.state)) : "—"),
            h(
              "td",
              { class: "values" },
              entries.slice(0, 8).map(([k, v]) => h("span", { class: "value" }, `${k}: ${fmtValue(v, r.units[k])}`)),
              entries.length > 8 ? h("span", { class: "muted" }, t("dashboard.n_more", { n: entries.length - 8 })) : null,
            ),
            h("td", { title: r.time }, ago(r.time), r.stale ? h("span", { class: "warn" }, ` · ${t("dashboard.reason_stale")}`) : null),
          );
        }),
      ),
    );
    const nameSelect = h(
      "select",
      { id: "reading-name", "aria-label": t("dashboard.value"), onchange: (ev) => ((chosen.name = ev.target.value), load()) },
      names.map((n) => h("option", { value: n, selected: n === chosen.name }, n)),
    );
    const hoursSelect = h(
      "select",
      { id: "reading-hours", "aria-label": t("dashboard.period"), onchange: (ev) => ((chosen.hours = Number(ev.target.value)), load()) },
      [1, 6, 24].map((n) => h("option", { value: n, selected: n === chosen.hours }, t("dashboard.last_n_h", { n }))),
    );
    show(
      title,
      h("p", { class: "muted" }, t("dashboard.readings_intro")),
      table,
      h(
        "section",
        { id: "reading-chart" },
        h("h2", {}, `${sel.camera_id} · ${sel.analytic}`),
        h("div", { class: "filters" }, h("label", {}, `${t("dashboard.value")} `, nameSelect), h("label", {}, `${t("dashboard.period")} `, hoursSelect)),
        problem ? errorBox(t("dashboard.series_load_failed", { error: problem }), load) : series ? chart(series, chosen.hours) : h("p", { class: "muted" }, t("dashboard.no_values")),
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
    show(h("h1", {}, t("dashboard.review_title")), h("p", { class: "muted", id: "no-review" }, t("dashboard.no_review_role", { role: roleName(me.role) })));
    return;
  }
  const tabs = h(
    "div",
    { class: "tabs" },
    ["pending", "confirmed", "rejected"].map((s) =>
      h("button", { class: s === state ? "active" : "", dataset: { state: s }, onclick: () => showReview(s) }, stateName(s)),
    ),
  );
  show(h("h1", {}, t("dashboard.review_title")), tabs, h("p", { class: "muted" }, t("common.loading")));
  let page;
  try {
    page = await api(`/api/v1/reviews?state=${state}&limit=100`);
  } catch (e) {
    show(h("h1", {}, t("dashboard.review_title")), tabs, errorBox(t("dashboard.queue_load_failed", { error: e.message }), () => showReview(state)));
    return;
  }
  const item = (a) => {
    const reason = h("input", { placeholder: t("dashboard.reject_reason"), "aria-label": t("dashboard.hs_reason") });
    const msg = h("p", { class: "error", role: "alert", hidden: true });
    const decide = (decision) => async (ev) => {
      ev.target.disabled = true;
      msg.hidden = true;
      try {
        await api(`/api/v1/reviews/${a.id}`, { method: "POST", body: { decision, reason: reason.value.trim() || null } });
        card.classList.add("done");
        card.replaceChildren(h("p", {}, t("dashboard.decided", { kind: kindName(a.kind), camera: a.camera_id, decision: stateName(decision) })));
      } catch (e) {
        msg.textContent = e.message;
        msg.hidden = false;
        ev.target.disabled = false;
      }
    };
    const card = h(
      "article",
      { class: "review", dataset: { id: a.id } },
      a.snapshot_url ? h("img", { src: a.snapshot_url, alt: t("dashboard.violation_snapshot") }) : h("div", { class: "noimg" }, t("dashboard.no_snapshot_short")),
      h(
        "div",
        {},
        h("h3", {}, h("a", { href: `#/alert/${a.id}` }, kindName(a.kind)), ` · ${a.camera_id}`),
        h("p", {}, fmtTime(a.start_time), a.label ? ` · ${a.label}` : ""),
        h("p", {}, t("dashboard.plate"), " ", h("strong", {}, a.attributes?.plate ?? "—"), a.attributes?.speed_kmh ? ` · ${t("common.unit_kmh", { v: a.attributes.speed_kmh })}` : ""),
        state === "pending"
          ? h("div", { class: "actions" }, reason, h("button", { onclick: decide("confirmed") }, t("dashboard.confirm")), h("button", { class: "secondary", onclick: decide("rejected") }, t("dashboard.reject")), msg)
          : h("p", { class: "muted" }, t("dashboard.review_by", { review: stateName(a.review), user: a.reviewer }), a.review_reason ? `: ${a.review_reason}` : ""),
      ),
    );
    return card;
  };
  show(
    h("h1", {}, t("dashboard.review_title")),
    tabs,
    page.items.length
      ? h("div", { class: "queue", id: "review-queue" }, page.items.map(item))
      : h("div", { class: "empty", id: "review-empty" }, state === "pending" ? t("dashboard.queue_empty") : t("dashboard.no_violations_in_state", { state: stateName(state) })),
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
  if (r.name === "map") return showMap({ h, api, show, setNav, can, me, fmtTime, errorBox });
  if (r.name === "review") return showReview();
  if (r.name === "watchlist") {
    return showWatchlist({ h, api, show, setNav, can, me, fmtTime, errorBox, t, roleName });
  }
  if (r.name === "setup" && r.id) {
    return showSetup({ h, api, show, setNav, can, me, fmtTime, errorBox, t, roleName }, r.id);
  }
  return showAlerts();
}

// The catalogue sections the dashboard's pages use (one request; the public page loads less).
const SECTIONS = ["common", "dashboard", "states", "kinds", "watchlist", "setup"];

function drawWho() {
  if (me) document.getElementById("who").textContent = t("dashboard.who", { user: me.username, role: roleName(me.role) });
}

async function main() {
  try {
    await ready(SECTIONS);
  } catch (e) {
    // without texts every label would be a ⟦key⟧ mark: say so plainly, in both languages
    view.replaceChildren(
      h("div", { class: "error-state", role: "alert" }, h("p", {}, `Không tải được nội dung / Could not load the texts: ${e.message}`), h("button", { onclick: main }, "Thử lại / Retry")),
    );
    return;
  }
  applyI18n(document);
  const header = document.querySelector("header.top");
  if (!header.querySelector(".lang-switch")) header.insertBefore(langSwitcher(), document.getElementById("logout"));
  try {
    me = await api("/api/v1/auth/me");
  } catch (e) {
    if (e.message !== "signed out") show(errorBox(t("dashboard.hub_unreachable", { error: e.message }), main));
    return;
  }
  drawWho();
  if (!can("review")) document.querySelector("[data-nav=review]").hidden = true;
  if (!can("review")) document.querySelector("[data-nav=watchlist]").hidden = true;
  if (!can("internal")) document.querySelector("[data-nav=hotspots]").hidden = true;
  document.getElementById("logout").addEventListener("click", async () => {
    // the stream first: its "ended" event would navigate to /login too, aborting this one
    if (stream) stream.close();
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
    show(errorBox(t("dashboard.alerts_load_failed", { error: e.message }), main));
    return;
  }
  window.addEventListener("hashchange", route);
  // another language chosen: the static texts are refilled by i18n.js; draw the page again
  window.addEventListener("langchange", () => {
    drawWho();
    route();
  });
  await route();
  document.body.dataset.ready = "1";
}

main();
