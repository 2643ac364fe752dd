// The plate watch list page of the dashboard (admins and operators): list, add, remove.
// An ES module imported by app.js, which lends its helpers (h, api, show, setNav, can,
// me, fmtTime, errorBox, and t, roleName of i18n.js) so that this page looks and behaves like
// the others. Plates and reasons are only ever set as textContent, and never translated.

// The hub's rule (edgewatch.contract.normalize_plate), checked here too so that a typo
// gets a clear message before the request: separators dropped, 4-12 letters and digits.
const SEPARATORS = /[\s.\-_·/]+/g;
export function normalizePlate(text) {
  const out = text.replace(SEPARATORS, "");
  if (!/^[A-Za-z0-9]{4,12}$/.test(out)) return null;
  return out.toUpperCase();
}

export async function showWatchlist(ui) {
  const { h, api, show, setNav, can, me, fmtTime, errorBox, t, roleName } = ui;
  setNav("watchlist");
  const title = h("h1", {}, t("watchlist.title"));
  if (!can("review")) {
    show(title, h("p", { class: "muted", id: "no-watchlist" }, t("watchlist.no_role", { role: roleName(me.role) })));
    return;
  }
  const load = async () => {
    let doc;
    try {
      doc = await api("/api/v1/watchlist");
    } catch (e) {
      show(title, errorBox(t("watchlist.load_failed", { error: e.message }), load));
      return;
    }
    const plate = h("input", { id: "wl-plate", placeholder: t("watchlist.plate_placeholder"), "aria-label": t("watchlist.plate"), maxlength: 32, autocomplete: "off" });
    const reason = h("input", { id: "wl-reason", placeholder: t("watchlist.reason_placeholder"), "aria-label": t("watchlist.reason"), maxlength: 200 });
    const msg = h("p", { class: "error", role: "alert", id: "wl-error", hidden: true });
    const fail = (text) => {
      msg.textContent = text;
      msg.hidden = false;
    };
    const add = h(
      "button",
      {
        id: "wl-add",
        onclick: async () => {
          msg.hidden = true;
          if (normalizePlate(plate.value) === null) {
            fail(t("watchlist.bad_plate"));
            return;
          }
          add.disabled = true;
          try {
            await api("/api/v1/watchlist", { method: "POST", body: { plate: plate.value, reason: reason.value.trim() || null } });
            await load();
          } catch (e) {
            fail(t("watchlist.add_failed", { error: e.message }));
            add.disabled = false;
          }
        },
      },
      t("watchlist.add"),
    );
    const remove = (entry) => async (ev) => {
      if (!confirm(t("watchlist.confirm_remove", { plate: entry.plate }))) return;
      ev.target.disabled = true;
      try {
        await api(`/api/v1/watchlist/${entry.id}`, { method: "DELETE" });
        await load();
      } catch (e) {
        fail(t("watchlist.remove_failed", { plate: entry.plate, error: e.message }));
        ev.target.disabled = false;
      }
    };
    const current = doc.edges.filter((e) => e.current).length;
    show(
      title,
      h(
        "p",
        { class: "muted", id: "wl-delivery" },
        t("watchlist.delivery", { version: String(doc.version), time: fmtTime(doc.updated_at), n: current, m: doc.edges.length }),
        " ",
        t("watchlist.explain"),
        " ",
        h("button", { class: "link", onclick: load }, t("watchlist.refresh")),
      ),
      h("div", { class: "filters" }, plate, reason, add),
      msg,
      doc.entries.length
        ? h(
            "table",
            { class: "alerts", id: "wl-table" },
            h("thead", {}, h("tr", {}, [t("watchlist.plate"), t("watchlist.reason"), t("watchlist.added_by"), t("watchlist.added"), ""].map((c) => h("th", {}, c)))),
            h(
              "tbody",
              {},
              doc.entries.map((e) =>
                h(
                  "tr",
                  { dataset: { id: String(e.id) } },
                  h("td", {}, h("strong", {}, e.plate)),
                  h("td", {}, e.reason || "—"),
                  h("td", {}, e.created_by),
                  h("td", { title: e.created_at }, fmtTime(e.created_at)),
                  h("td", {}, h("button", { class: "secondary", onclick: remove(e) }, t("watchlist.remove"))),
                ),
              ),
            ),
          )
        : h("div", { class: "empty", id: "wl-empty" }, t("watchlist.empty")),
    );
  };
  await load();
}
