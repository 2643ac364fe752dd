// The rangers' page: subscribes this device to its team's Web Push alerts. A file of its
// own, not an inline script: the hub's Content-Security-Policy allows no inline code.
const params = new URLSearchParams(location.search);
const team = params.get("team");
const token = params.get("token");
const status = document.getElementById("status");
function say(text, error = false) { status.textContent = text; status.className = error ? "err" : ""; }
function b64ToBytes(s) {
  const pad = "=".repeat((4 - s.length % 4) % 4);
  const raw = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(raw, c => c.charCodeAt(0));
}
if (!team || !token) say("This link has no team or token: ask your team lead for the enrolment link.", true);
document.getElementById("enable").addEventListener("click", async () => {
  try {
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
      say("This browser cannot receive push notifications.", true); return;
    }
    say("Asking for permission...");
    if (await Notification.requestPermission() !== "granted") {
      say("Notifications were not allowed.", true); return;
    }
    const reg = await navigator.serviceWorker.register("/rangers/sw.js", { scope: "/rangers" });
    const { key } = await (await fetch("/api/v1/push/vapid_public_key")).json();
    const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64ToBytes(key) });
    const body = { ...sub.toJSON(), token };
    const r = await fetch(`/api/v1/teams/${encodeURIComponent(team)}/subscriptions`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!r.ok) { say(`The hub refused the subscription (${r.status}).`, true); return; }
    say(`Subscribed: this device gets ${team} alerts.`);
  } catch (e) { say(`Could not subscribe: ${e}`, true); }
});
