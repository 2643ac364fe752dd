// The rangers' page: subscribes this device to its team's Web Push alerts. A file of its
// own, not an inline script: the hub's Content-Security-Policy allows no inline code.
// Texts from the catalogue (i18n.js). The service worker, which writes the notifications
// while the page is closed, is told the chosen language in its URL (sw.js?lang=vi) and
// registered again when the ranger switches language, so notifications follow the page.
import { t, lang, ready, applyI18n, langSwitcher } from "/i18n/i18n.js";

const params = new URLSearchParams(location.search);
const team = params.get("team");
const token = params.get("token");
const status = document.getElementById("status");
let said = null; // [key, params, error]: the status line, drawn again on a language change
function say(key, p = {}, error = false) {
  said = [key, p, error];
  status.removeAttribute("data-i18n"); // says something else now, in every language
  status.textContent = t(key, p);
  status.className = error ? "err" : "";
}
function b64ToBytes(s) {
  const pad = "=".repeat((4 - s.length % 4) % 4);
  const raw = atob((s + pad).replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(raw, c => c.charCodeAt(0));
}
const swUrl = () => `/rangers/sw.js?lang=${lang()}`;

// A bad link is said at once, in the page's own words (its English, until the texts come
// and applyI18n fills it in the chosen language); the button works from the first instant.
if (!team || !token) {
  const words = document.getElementById("no-link").content.firstElementChild;
  status.dataset.i18n = words.dataset.i18n;
  status.textContent = words.textContent;
  status.className = "err";
}
const texts = ready(["common", "rangers"]).then(() => {
  applyI18n(document);
  document.getElementById("lang").append(langSwitcher());
});
texts.catch((e) => console.warn(`texts not loaded: ${e.message}`));

window.addEventListener("langchange", async () => {
  if (said) say(...said);
  // a device already subscribed: its worker gets the new language (the subscription stays)
  const reg = "serviceWorker" in navigator ? await navigator.serviceWorker.getRegistration("/rangers") : null;
  if (reg) await navigator.serviceWorker.register(swUrl(), { scope: "/rangers" }).catch(() => {});
});

document.getElementById("enable").addEventListener("click", async () => {
  try {
    await texts;
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
      say("rangers.no_push", {}, true); return;
    }
    say("rangers.asking");
    if (await Notification.requestPermission() !== "granted") {
      say("rangers.not_allowed", {}, true); return;
    }
    const reg = await navigator.serviceWorker.register(swUrl(), { scope: "/rangers" });
    const { key } = await (await fetch("/api/v1/push/vapid_public_key")).json();
    const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64ToBytes(key) });
    const body = { ...sub.toJSON(), token };
    const r = await fetch(`/api/v1/teams/${encodeURIComponent(team)}/subscriptions`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!r.ok) { say("rangers.refused", { status: r.status }, true); return; }
    say("rangers.subscribed", { team });
  } catch (e) { say("rangers.could_not", { error: String(e) }, true); }
});
