// The dashboard's Map view (#/map): cameras by state, flood hotspots by state, and the
// open fire incidents with the bearing lines of the cameras that see them, on the map of
// /ui/map.js (works with no internet: the bundled outline of the Hue area). An ES module
// imported by app.js, which lends its helpers (h, api, show, setNav, can, errorBox) as it
// does to watchlist.js. Refreshed from the API every 10 s while the view is shown.

import { t, ready, fmtTime } from "/i18n/i18n.js";
import { createMap, drawHotspots, drawCameras, drawIncidents, addLegend, fitOnce } from "/ui/map.js";

const REFRESH_MS = 10000;
const MAX_CAMERAS = 5000;
const MAX_INCIDENTS = 30; // details fetched per refresh (one request each)
let timer = null;

async function allCameras(api) {
  const out = [];
  for (let offset = 0; offset < MAX_CAMERAS; offset += 1000) {
    const page = await api(`/api/v1/cameras?limit=1000&offset=${offset}`);
    out.push(...page.items);
    if (out.length >= page.total || !page.items.length) break;
  }
  return out;
}

async function openIncidents(api) {
  const lists = await Promise.all(["open", "acknowledged"].map((s) => api(`/api/v1/incidents?state=${s}&limit=${MAX_INCIDENTS}`)));
  const rows = lists.flat().slice(0, MAX_INCIDENTS);
  return Promise.all(rows.map((r) => api(`/api/v1/incidents/${encodeURIComponent(r.id)}`)));
}

function stateLabel(p) {
  if (p.state === "normal") return t("map.state_normal");
  if (p.state === "unknown") return t("map.state_unknown");
  return t("map.state_level", { name: p.state });
}

export async function showMap(ui) {
  const { h, api, show, setNav, can, errorBox } = ui;
  setNav("map");
  clearInterval(timer);
  await ready(["common", "map"]);
  const status = h("p", { class: "muted", id: "map-status", "aria-live": "polite" }, t("map.loading"));
  const el = h("div", { id: "ops-map", class: "ops-map", role: "region", "aria-label": t("map.title") });
  const title = h("h1", {}, t("map.title"));
  show(title, status, el);
  let handle;
  try {
    handle = await createMap(el);
  } catch (e) {
    show(title, errorBox(t("map.error", { error: e.message }), () => showMap(ui)));
    return;
  }
  addLegend(handle, [
    ["cam", t("map.legend_camera")],
    ["normal", t("map.state_normal")],
    ["level-1", t("map.legend_level")],
    ["unknown", t("map.state_unknown")],
    ["inc", t("map.legend_incident")],
  ]);
  let refreshes = 0;
  const refresh = async () => {
    if (!el.isConnected) {
      clearInterval(timer); // the view was left
      return;
    }
    const [cams, spots, incs] = await Promise.allSettled([
      allCameras(api),
      can("internal") ? api("/api/v1/hotspots/internal") : api("/api/v1/hotspots").then((d) => d.features),
      can("incidents") ? openIncidents(api) : Promise.resolve([]),
    ]);
    if (!el.isConnected) return;
    const cameras = cams.status === "fulfilled" ? cams.value : [];
    const placed = drawCameras(handle, cameras);
    const hotspots = spots.status === "fulfilled" ? spots.value : [];
    drawHotspots(handle, hotspots, { label: stateLabel });
    const incidents = incs.status === "fulfilled" ? incs.value : [];
    const lines = drawIncidents(handle, incidents, cameras);
    fitOnce(handle);
    const failed = [cams, spots, incs].filter((r) => r.status === "rejected").map((r) => r.reason.message);
    refreshes += 1;
    el.dataset.refreshes = String(refreshes);
    el.dataset.bearings = String(lines);
    status.textContent = [
      t("map.counts", { cameras: placed, hotspots: hotspots.length, incidents: incidents.length }),
      t("map.updated", { time: fmtTime(new Date(), { seconds: true }) }),
      can("incidents") ? "" : t("map.no_incidents"),
      failed.length ? t("map.refresh_failed", { error: failed.join("; ") }) : "",
    ]
      .filter(Boolean)
      .join(" · ");
  };
  await refresh();
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
}
