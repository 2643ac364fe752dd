// Service worker of the rangers' page: shows each incident as a notification, with an
// "Acknowledge" action that calls the signed ack link (stops the escalation).
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
    event.waitUntil(fetch(data.ack_url, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ actor: "ranger (push)" }) }));
  } else if (data.url) {
    event.waitUntil(clients.openWindow(data.url));
  }
});
