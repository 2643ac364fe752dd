// Service worker of the rangers' page: shows each incident as a notification, with an
// "Acknowledge" action that calls the signed ack link (stops the escalation; a link
// acknowledges once, within incidents.ack_link_ttl_s, and cannot resolve).
self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { kind: "alert" }; }
  const urgent = data.urgent ? "URGENT " : "";
  const where = data.estimated_location || data.location;
  const body = [
    `${(data.alerts || []).length} camera alert(s)`,
    where ? `near ${where.lat.toFixed(4)}, ${where.lon.toFixed(4)}` : "",
    data.reason === "escalation" ? "escalated: nobody acknowledged" : "",
  ].filter(Boolean).join(" - ");
  event.waitUntil(self.registration.showNotification(`${urgent}${data.kind || "incident"}`, {
    body, tag: data.incident_id, renotify: true, requireInteraction: !!data.urgent,
    data, actions: data.ack_url ? [{ action: "ack", title: "Acknowledge" }] : [],
  }));
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
      let why = `error ${r.status}`;
      try { why = (await r.json()).detail || why; } catch (e) { /* not JSON */ }
      await self.registration.showNotification("Not acknowledged", {
        body: `${why}. Open the incident or call the operations centre.`,
        tag: data.incident_id, renotify: true, requireInteraction: !!data.urgent, data: { url: data.url },
      });
    }));
  } else if (data.url) {
    event.waitUntil(clients.openWindow(data.url));
  }
});
