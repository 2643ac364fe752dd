// Sign-in form: POST /api/v1/auth/login sets the session cookie; then on to the dashboard.
// Texts from the catalogue (i18n.js); the hub's own error message (English) is shown
// translated when the catalogue knows it, as itself otherwise.
import { t, ready, applyI18n, langSwitcher } from "/i18n/i18n.js";

// The submit handler is attached at once, the texts come after: a form submitted before
// its handler is there would go out as a GET with the password in the URL.
const texts = ready(["common", "login"])
  .then(() => {
    applyI18n(document);
    document.getElementById("lang").append(langSwitcher());
  })
  .catch((e) => console.warn(`texts not loaded, the form keeps its English: ${e.message}`));

// the hub's messages (English) that the catalogue translates
const HUB_MESSAGES = { "wrong user name or password": "login.wrong_password" };
const hubText = (s) => (HUB_MESSAGES[s] ? t(HUB_MESSAGES[s]) : s);

const form = document.getElementById("login");
const error = document.getElementById("error");
const button = document.getElementById("submit");

function safeNext() {
  const next = new URLSearchParams(location.search).get("next") || "/ui";
  return next.startsWith("/ui") ? next : "/ui"; // never an open redirect
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  await texts; // (at once, but for a click in the page's first instant)
  error.hidden = true;
  button.disabled = true;
  button.textContent = t("login.submitting");
  try {
    const r = await fetch("/api/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        username: form.username.value.trim(),
        password: form.password.value,
      }),
    });
    if (r.ok) {
      location.assign(safeNext());
      return;
    }
    const body = await r.json().catch(() => ({}));
    error.textContent =
      r.status === 429
        ? t("login.too_many", { s: r.headers.get("Retry-After") || t("login.a_few") })
        : body.detail && typeof body.detail === "string"
          ? hubText(body.detail)
          : t("login.failed", { status: r.status });
  } catch (e) {
    error.textContent = t("common.unreachable");
  }
  error.hidden = false;
  button.disabled = false;
  button.textContent = t("login.submit");
});
