// The plate watch list page of the dashboard (admins and operators): list, add, remove.
// An ES module imported by app.js, which lends its helpers (h, api, show, setNav, can,
// me, fmtTime, errorBox) so that this page looks and behaves like the others. Plates and
// reasons are only ever set as textContent.

// The hub's rule (edgewatch.contract.normalize_plate), checked here too so that a typo
// gets a clear message before the request: separators dropped, 4-12 letters and digits.
const SEPARATORS = /[\s.\-_·/]+/g;
export function normalizePlate(text) {
  const out = text.replace(SEPARATORS, "");
  if (!/^[A-Za-z0-9]{4,12}$/.test(out)) return null;
  return out.toUpperCase();
}

export async function showWatchlist(ui) {
  const { h, api, show, setNav, can, me, fmtTime, errorBox } = ui;
  setNav("watchlist");
  const title = h("h1", {}, "Plate watch list");
  if (!can("review")) {
    show(title, h("p", { class: "muted", id: "no-watchlist" }, `Your role (${me.role}) cannot see the watch list.`));
    return;
  }
  const load = async () => {
    let doc;
    try {
      doc = await api("/api/v1/watchlist");
    } catch (e) {
      show(title, errorBox(`Could not load the watch list: ${e.message}`, load));
      return;
    }
    const plate = h("input", { id: "wl-plate", placeholder: "Plate, e.g. 30A-123.45", "aria-label": "plate", maxlength: 32, autocomplete: "off" });
    const reason = h("input", { id: "wl-reason", placeholder: "Reason (optional), e.g. reported stolen", "aria-label": "reason", maxlength: 200 });
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
            fail("A plate has 4 to 12 letters A-Z and digits (separators . - and spaces are dropped).");
            return;
          }
          add.disabled = true;
          try {
            await api("/api/v1/watchlist", { method: "POST", body: { plate: plate.value, reason: reason.value.trim() || null } });
            await load();
          } catch (e) {
            fail(`Could not add: ${e.message}`);
            add.disabled = false;
          }
        },
      },
      "Add to the list",
    );
    const remove = (entry) => async (ev) => {
      if (!confirm(`Take ${entry.plate} off the watch list?`)) return;
      ev.target.disabled = true;
      try {
        await api(`/api/v1/watchlist/${entry.id}`, { method: "DELETE" });
        await load();
      } catch (e) {
        fail(`Could not remove ${entry.plate}: ${e.message}`);
        ev.target.disabled = false;
      }
    };
    const current = doc.edges.filter((e) => e.current).length;
    show(
      title,
      h(
        "p",
        { class: "muted", id: "wl-delivery" },
        `Version ${doc.version} · changed ${fmtTime(doc.updated_at)} · sent to ${current} of ${doc.edges.length} edges. `,
        "A plate read by a camera's traffic analytic that is on this list raises an urgent alert. Matching is exact: list the plate as written.",
        " ",
        h("button", { class: "link", onclick: load }, "Refresh"),
      ),
      h("div", { class: "filters" }, plate, reason, add),
      msg,
      doc.entries.length
        ? h(
            "table",
            { class: "alerts", id: "wl-table" },
            h("thead", {}, h("tr", {}, ["Plate", "Reason", "Added by", "Added", ""].map((t) => h("th", {}, t)))),
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
                  h("td", {}, h("button", { class: "secondary", onclick: remove(e) }, "Remove")),
                ),
              ),
            ),
          )
        : h("div", { class: "empty", id: "wl-empty" }, "The watch list is empty."),
    );
  };
  await load();
}
