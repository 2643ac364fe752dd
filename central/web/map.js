// The maps of the hub, one small ES module for the dashboard's Map view and the public
// flood page. Why Leaflet with a bundled outline: the hub often has no internet, so the
// library (/vendor/leaflet, from the npm registry) and an openly licensed outline of the
// Hue area (land, lagoons, sea: /vendor/hue-outline.geojson) are served by the hub
// itself; tiles are drawn over them only where the hub config names a tile server
// (GET /api/v1/map). Leaflet is loaded on demand, so a page pays for it only when it
// draws a map. Every text from the API goes into popups as textContent.
//
// Layers carry class names the tests count: ew-outline, ew-hotspot (+ ew-state-normal,
// ew-state-level-N, ew-state-unknown), ew-camera (+ ew-camera-online/degraded/offline),
// ew-incident and ew-bearing.

import { t, ready, fmtNumber, placeName } from "/i18n/i18n.js";

let leafletPromise = null;

function addCss(href) {
  const had = document.querySelector(`link[data-ew-css="${href}"]`);
  if (had) return had.sheet ? Promise.resolve() : new Promise((ok) => had.addEventListener("load", ok, { once: true }));
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = href;
  link.dataset.ewCss = href;
  // resolved on error too: a map without its styles is still a map
  const done = new Promise((ok) => {
    link.addEventListener("load", ok, { once: true });
    link.addEventListener("error", ok, { once: true });
  });
  document.head.append(link);
  return done;
}

/** Leaflet (window.L), loaded once: a classic script from the hub, and its styles (the
 * styles first: Leaflet measures its container when a map is made). */
export function loadLeaflet() {
  if (!leafletPromise) {
    const css = Promise.all([addCss("/vendor/leaflet/leaflet.css"), addCss("/ui/map.css")]);
    const js = window.L
      ? Promise.resolve(window.L)
      : new Promise((resolve, reject) => {
          const s = document.createElement("script");
          s.src = "/vendor/leaflet/leaflet.js";
          s.onload = () => resolve(window.L);
          s.onerror = () => {
            leafletPromise = null;
            s.remove();
            reject(new Error("the map library could not be loaded"));
          };
          document.head.append(s);
        });
    leafletPromise = Promise.all([css, js]).then(([, L]) => L);
  }
  return leafletPromise;
}

async function getJson(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

// State colours. A level's colour comes from its place among the hotspot's levels (the
// first level amber, then orange, red, purple); "unknown" is grey and hollow, never green.
export const LEVEL_COLOURS = ["#f9a825", "#ef6c00", "#c62828", "#7b1fa2"];
const NORMAL = "#2e7d32";
const UNKNOWN = "#6d6d6d";

/** "normal", "level-N" (0-based index among the hotspot's levels) or "unknown". */
export function stateClass(state, levels) {
  if (state === "normal") return "normal";
  const i = (levels || []).findIndex((l) => l.name === state);
  return i >= 0 ? `level-${i}` : "unknown";
}

function stateStyle(cls) {
  if (cls === "normal") return { color: "#1b5e20", fillColor: NORMAL, fillOpacity: 0.85, weight: 2 };
  if (cls.startsWith("level-")) {
    const c = LEVEL_COLOURS[Math.min(Number(cls.slice(6)), LEVEL_COLOURS.length - 1)];
    return { color: "#3e2723", fillColor: c, fillOpacity: 0.9, weight: 2 };
  }
  return { color: UNKNOWN, fillColor: UNKNOWN, fillOpacity: 0, weight: 3, dashArray: "3 3" };
}

function popupNode(lines) {
  const box = document.createElement("div");
  box.className = "ew-popup";
  lines.forEach((text, i) => {
    if (text === null || text === undefined || text === "") return;
    const el = document.createElement(i === 0 ? "strong" : "div");
    el.textContent = String(text);
    box.append(el);
  });
  return box;
}

/**
 * A map in `el`: the bundled outline as the base layer, the configured tiles (if any)
 * over it, and the credits (the library's, the outline's, the tiles'). Returns a handle
 * for the draw functions below.
 */
export async function createMap(el, { settings } = {}) {
  const [L, cfg, outline] = await Promise.all([
    loadLeaflet(),
    settings ? Promise.resolve(settings) : getJson("/api/v1/map"),
    getJson("/vendor/hue-outline.geojson"),
    ready(["common", "map"]),
  ]);
  el.classList.add("ew-map");
  // Leaflet's own attribution control writes its texts as HTML: the credits here are
  // drawn by a control of our own, as text (the tiles' attribution comes from the config)
  const map = L.map(el, { center: cfg.center, zoom: cfg.zoom, zoomSnap: 0.5, attributionControl: false });
  const Credits = L.Control.extend({
    onAdd() {
      const box = L.DomUtil.create("div", "leaflet-control-attribution ew-credits");
      const lib = document.createElement("a");
      lib.href = cfg.library_url;
      lib.rel = "noopener";
      lib.textContent = cfg.library_credit;
      box.append(lib);
      for (const text of [cfg.outline_credit, cfg.tile_url ? cfg.attribution : ""]) {
        if (text) box.append(document.createTextNode(` | ${text}`));
      }
      return box;
    },
  });
  new Credits({ position: "bottomright" }).addTo(map);
  L.geoJSON(outline, {
    interactive: false,
    style: () => ({ className: "ew-outline", color: "#8a9a78", weight: 1, fillColor: "#eef1e6", fillOpacity: 1 }),
  }).addTo(map);
  if (cfg.tile_url) L.tileLayer(cfg.tile_url, { maxZoom: 19, className: "ew-tiles" }).addTo(map);
  const layers = { hotspots: L.layerGroup().addTo(map), cameras: L.layerGroup().addTo(map), incidents: L.layerGroup().addTo(map) };
  return { L, map, cfg, layers, el };
}

/**
 * Frame what is drawn (hotspots, cameras, incidents) the first time there is something:
 * the configured centre and zoom show the whole area, where a city's 50 hotspots are one
 * blob. Later refreshes leave the view where the user put it.
 */
export function fitOnce(handle, { maxZoom = 14 } = {}) {
  if (handle.fitted) return;
  const { L, map, layers } = handle;
  const pts = [];
  for (const g of [layers.hotspots, layers.cameras, layers.incidents]) {
    g.eachLayer((l) => l.getLatLng && pts.push(l.getLatLng()));
  }
  if (!pts.length) return;
  map.fitBounds(L.latLngBounds(pts), { padding: [24, 24], maxZoom });
  handle.fitted = true;
}

/**
 * Hotspots as circle markers coloured by state. `items`: objects with id, name, lat, lon,
 * state, levels (the internal list, or GeoJSON features of the public one). `label(p)`
 * gives the state's text; `onClick(p)` is called when a marker is clicked.
 */
export function drawHotspots(handle, items, { label = (p) => p.state, onClick } = {}) {
  const { L, layers } = handle;
  layers.hotspots.clearLayers();
  const out = [];
  for (const item of items) {
    const p = item.properties ? { ...item.properties, lon: item.geometry.coordinates[0], lat: item.geometry.coordinates[1] } : item;
    if (typeof p.lat !== "number" || typeof p.lon !== "number") continue;
    const cls = stateClass(p.state, p.levels);
    const m = L.circleMarker([p.lat, p.lon], { radius: cls === "normal" ? 7 : 9, ...stateStyle(cls), className: `ew-hotspot ew-state-${cls}` });
    const level = typeof p.level_cm === "number" ? t("map.level", { v: fmtNumber(p.level_cm / 100, { minimumFractionDigits: 2, maximumFractionDigits: 2 }) }) : null;
    m.bindPopup(() => popupNode([placeName(p), label(p), level]));
    m.bindTooltip(() => popupNode([placeName(p)]), { direction: "top" });
    if (onClick) m.on("click", () => onClick(p));
    m.addTo(layers.hotspots);
    out.push(m);
  }
  return out;
}

const CAMERA_STATES = ["online", "degraded", "offline"];

/** Cameras with a position, as squares coloured by state (online / degraded / offline). */
export function drawCameras(handle, cameras) {
  const { L, layers } = handle;
  layers.cameras.clearLayers();
  let n = 0;
  for (const c of cameras) {
    if (typeof c.lat !== "number" || typeof c.lon !== "number") continue;
    const st = CAMERA_STATES.includes(c.state) ? c.state : "offline";
    const icon = L.divIcon({ className: `ew-camera ew-camera-${st}`, iconSize: [14, 14], html: "" });
    const m = L.marker([c.lat, c.lon], { icon, keyboard: true, title: c.camera_id });
    m.bindPopup(() => popupNode([t("map.camera", { id: c.camera_id }), t(`map.camera_${st}`), c.edge_id ? t("map.edge", { id: c.edge_id }) : null, c.degraded_reason || c.error || null]));
    m.addTo(layers.cameras);
    n += 1;
  }
  return n;
}

const EARTH_M = 6371008.8;
const rad = (d) => (d * Math.PI) / 180;
const deg = (r) => (r * 180) / Math.PI;

/** The point `dist` metres from (lat, lon) along `bearing` degrees (great circle). */
export function destination(lat, lon, bearing, dist) {
  const d = dist / EARTH_M;
  const b = rad(bearing);
  const p1 = rad(lat);
  const l1 = rad(lon);
  const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(b));
  const l2 = l1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
  return [deg(p2), deg(l2)];
}

function distanceM(a, b) {
  const dp = rad(b[0] - a[0]);
  const dl = rad(b[1] - a[1]);
  const h = Math.sin(dp / 2) ** 2 + Math.cos(rad(a[0])) * Math.cos(rad(b[0])) * Math.sin(dl / 2) ** 2;
  return 2 * EARTH_M * Math.asin(Math.sqrt(h));
}

/**
 * Incidents: a marker where the incident is (the estimated position where two bearings
 * cross, else where its first camera stands), and for each camera that sees it with a
 * bearing, a line from the camera along that bearing. `incidents`: detail documents
 * (GET /api/v1/incidents/{id}: alert_list with camera_id, edge_id, bearing_deg);
 * `cameras`: the camera list (for the cameras' positions). Returns the bearing lines drawn.
 */
export function drawIncidents(handle, incidents, cameras, { rangeM = 6000, onClick } = {}) {
  const { L, layers } = handle;
  layers.incidents.clearLayers();
  const where = new Map(cameras.filter((c) => typeof c.lat === "number").map((c) => [`${c.edge_id}/${c.camera_id}`, [c.lat, c.lon]]));
  let lines = 0;
  for (const inc of incidents) {
    const est = typeof inc.est_lat === "number" ? [inc.est_lat, inc.est_lon] : null;
    const pos = est || (typeof inc.lat === "number" ? [inc.lat, inc.lon] : null);
    const seen = new Set();
    for (const a of inc.alert_list || []) {
      if (typeof a.bearing_deg !== "number") continue;
      const key = `${a.edge_id}/${a.camera_id}`;
      const from = where.get(key);
      if (!from || seen.has(key)) continue;
      seen.add(key);
      const len = est ? Math.max(distanceM(from, est) * 1.25, 500) : rangeM;
      const to = destination(from[0], from[1], a.bearing_deg, len);
      L.polyline([from, to], { className: "ew-bearing", color: "#b71c1c", weight: 2, dashArray: "6 4", interactive: true })
        .bindTooltip(() => popupNode([t("map.bearing", { camera: a.camera_id, deg: fmtNumber(Math.round(a.bearing_deg)) })]))
        .addTo(layers.incidents);
      lines += 1;
    }
    if (!pos) continue;
    const m = L.circleMarker(pos, { radius: 11, className: "ew-incident", color: "#4a0000", weight: 3, fillColor: "#ff3d00", fillOpacity: 0.9 });
    m.bindPopup(() => popupNode([t("map.incident", { kind: inc.kind }), t(`map.incident_${inc.state}`, {}, { fallback: inc.state }), est ? t("map.estimated") : t("map.first_camera"), inc.team_id ? t("map.team", { id: inc.team_id }) : null]));
    if (onClick) m.on("click", () => onClick(inc));
    m.addTo(layers.incidents);
  }
  return lines;
}

/** A legend in a corner: `entries` are [swatch, text]; swatches: normal, level-0..2,
 * unknown, cam, inc (map.css). */
export function addLegend(handle, entries) {
  const { L, map } = handle;
  const Legend = L.Control.extend({
    onAdd() {
      const box = L.DomUtil.create("div", "ew-legend");
      for (const [cls, text] of entries) {
        const row = document.createElement("div");
        const sw = document.createElement("i");
        sw.className = `ew-lg-${cls}`;
        row.append(sw, document.createTextNode(text));
        box.append(row);
      }
      return box;
    },
  });
  const legend = new Legend({ position: "topright" });
  legend.addTo(map);
  return legend;
}
