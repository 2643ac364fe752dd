// Service worker of the rangers' page: shows each incident as a notification, with an
// "Acknowledge" action that calls the signed ack link (stops the escalation; a link
// acknowledges once, within incidents.ack_link_ttl_s, and cannot resolve).
//
// Its texts come from the same catalogue as the pages, in the language the page chose
// (sw.js?lang=vi). A worker is no module and has no page to load texts for it, so it keeps
// its sections in Cache Storage from its install on (a push may come when the network is
// bad); English words written here are the last resort, never shown when the catalogue came.
const LANG = new URL(self.location.href).searchParams.get("lang") === "en" ? "en" : "vi";
const LOCALE = LANG === "vi" ? "vi-VN" : "en-GB";
const TEXTS_URL = `/i18n/${LANG}.json?sections=common,rangers,kinds`;
const CACHE = "edgewatch-i18n";
const LAST_RESORT = {
  "rangers.sw_urgent": "URGENT",
  "rangers.sw_incident": "incident",
  "rangers.sw_alerts": "{n} camera alert(s)",
  "rangers.sw_near": "near {lat}, {lon}",
  "rangers.sw_escalated": "escalated: nobody acknowledged",
  "rangers.sw_ack": "Acknowledge",
  "rangers.sw_not_acked": "Not acknowledged",
  "rangers.sw_not_acked_body": "{why}. Open the incident or call the operations centre.",
  "rangers.sw_error": "error {status}",
};
let texts = null;

async function fetchTexts() {
  const cache = await caches.open(CACHE);
  const r = await fetch(TEXTS_URL);
  if (!r.ok) throw new Error(`texts: HTTP ${r.status}`);
  await cache.put(TEXTS_URL, r.clone());
  return r.json();
}
async function loadTexts() {
  if (texts) return texts;
  try {
    const hit = await caches.match(TEXTS_URL);
    texts = hit ? await hit.json() : await fetchTexts();
  } catch (e) {
    texts = {};
  }
  return texts;
}
function t(key, params = {}, fallback = undefined) {
  let s = texts && texts[key] !== undefined ? texts[key] : fallback !== undefined ? fallback : LAST_RESORT[key] ?? key;
  if (typeof s === "object") s = s[new Intl.PluralRules(LOCALE).select(Number(params.n ?? 0))] ?? s.other;
  return String(s).replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}
// coordinates in GPS notation (decimal point) in every language, as maps and phones show them
const num = (v) => Number(v).toFixed(4);

self.addEventListener("install", (event) => {
  event.waitUntil(fetchTexts().catch(() => {}).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { kind: "alert" }; }
  const refresh = texts ? fetchTexts().then((d) => (texts = d)).catch(() => {}) : null; // a newer catalogue, next time
  event.waitUntil(Promise.all([refresh, loadTexts().then(() => {
    const urgent = data.urgent ? `${t("rangers.sw_urgent")} ` : "";
    const where = data.estimated_location || data.location;
    const n = (data.alerts || []).length;
    const body = [
      t("rangers.sw_alerts", { n }),
      where ? t("rangers.sw_near", { lat: num(where.lat), lon: num(where.lon) }) : "",
      data.reason === "escalation" ? t("rangers.sw_escalated") : "",
    ].filter(Boolean).join(" - ");
    const kind = data.kind ? t(`kinds.${data.kind}`, {}, data.kind) : t("rangers.sw_incident");
    return self.registration.showNotification(`${urgent}${kind}`, {
      body, tag: data.incident_id, renotify: true, requireInteraction: !!data.urgent, lang: LANG,
      data, actions: data.ack_url ? [{ action: "ack", title: t("rangers.sw_ack") }] : [],
    });
  })]));
});
self.addEventListener("notificationclick", (event) => {
  const data = event.notification.data || {};
  event.notification.close();
  if (event.action === "ack" && data.ack_url) {
    // The link's token is the credential (it names the team in the audit trail, works once
    // and expires); no cookies, so a dashboard session in this browser does not interfere.
    event.waitUntil(fetch(data.ack_url, {
      method: "POST", credentials: "omit", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ note: "acknowledged from a push notification" }),
    }).then(async (r) => {
      if (r.ok) return;
      await loadTexts();
      let why = t("rangers.sw_error", { status: r.status });
      try { why = (await r.json()).detail || why; } catch (e) { /* not JSON */ }
      await self.registration.showNotification(t("rangers.sw_not_acked"), {
        body: t("rangers.sw_not_acked_body", { why }), lang: LANG,
        tag: data.incident_id, renotify: true, requireInteraction: !!data.urgent, data: { url: data.url },
      });
    }));
  } else if (data.url) {
    event.waitUntil(clients.openWindow(data.url));
  }
});
