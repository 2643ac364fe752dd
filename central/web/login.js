// Sign-in form: POST /api/v1/auth/login sets the session cookie; then on to the dashboard.
const form = document.getElementById("login");
const error = document.getElementById("error");
const button = document.getElementById("submit");

function safeNext() {
  const next = new URLSearchParams(location.search).get("next") || "/ui";
  return next.startsWith("/ui") ? next : "/ui"; // never an open redirect
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  button.disabled = true;
  button.textContent = "Signing in…";
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
        ? `Too many failed attempts. Try again in ${r.headers.get("Retry-After") || "a few"} seconds.`
        : body.detail && typeof body.detail === "string"
          ? body.detail
          : `Sign-in failed (${r.status}).`;
  } catch (e) {
    error.textContent = "The hub cannot be reached. Check the network and try again.";
  }
  error.hidden = false;
  button.disabled = false;
  button.textContent = "Sign in";
});
