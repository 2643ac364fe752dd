// The one translation module of every page of the hub (dashboard, login, rangers, public
// flood page). Why a module of our own and not a library: the pages have no build step and
// may load nothing from a CDN, and what they need is small: look a key up in one catalogue
// per language (central/web/i18n/<lang>.json, served by central/api/i18n.py in sections, so
// that a phone on the public page does not download the dashboard's strings), fill
// "{name}" placeholders, choose a plural form, and format numbers and times as people of
// the chosen language write them (vi-VN: "1,25 m", "14:05", "01/12/2026").
//
// A missing key is shown as ⟦key⟧ and recorded in window.__i18nMissing, which the browser
// tests read: a page that shows a missing key fails its test.

const STORE = "edgewatch.lang";
export const LANGS = ["vi", "en"];
const LOCALES = { vi: "vi-VN", en: "en-GB" };
const NATIVE = { vi: "Tiếng Việt", en: "English" }; // each language named in itself

window.__i18nMissing = window.__i18nMissing || [];
const warned = new Set();
const dicts = { vi: {}, en: {} }; // lang -> key -> text (or plural object)
const loading = new Map(); // "lang/section" -> Promise, so each section is fetched once
const wanted = new Set(); // the sections this page asked for, reloaded on a language change
let current = pick();
setHtmlLang();

function pick() {
  try {
    const saved = localStorage.getItem(STORE);
    if (LANGS.includes(saved)) return saved;
  } catch (e) {
    /* storage disabled: fall through to the browser's languages */
  }
  for (const l of navigator.languages || [navigator.language || ""]) {
    const base = String(l).toLowerCase().slice(0, 2);
    if (LANGS.includes(base)) return base;
  }
  return "vi"; // the city's language
}

function setHtmlLang() {
  document.documentElement.lang = current;
}

/** The chosen language: "vi" or "en". */
export function lang() {
  return current;
}

/** A place as the chosen language writes it (`names` from the hub, e.g. {"vi": "Phú Hội"}),
 * else its one `name`. Place names are data, not catalogue keys. */
export function placeName(p) {
  return (p && p.names && p.names[lang()]) || (p && p.name) || "";
}

/** The BCP 47 locale for Intl of the chosen language ("vi-VN" or "en-GB"). */
export function locale() {
  return LOCALES[current];
}

function loadSections(l, sections) {
  const todo = sections.filter((s) => !loading.has(`${l}/${s}`));
  if (todo.length) {
    const p = fetch(`/i18n/${l}.json?sections=${todo.map(encodeURIComponent).join(",")}`, {
      credentials: "same-origin",
    }).then(async (r) => {
      if (!r.ok) throw new Error(`catalogue ${l} (${todo.join(",")}): HTTP ${r.status}`);
      Object.assign(dicts[l], await r.json());
    });
    for (const s of todo) loading.set(`${l}/${s}`, p);
    // a failed fetch may be tried again by the next ready()
    p.catch(() => todo.forEach((s) => loading.delete(`${l}/${s}`)));
  }
  return Promise.all(sections.map((s) => loading.get(`${l}/${s}`)));
}

/** Loads the catalogue sections (e.g. ["common", "dashboard"]) of the chosen language. */
export async function ready(sections = ["common"]) {
  for (const s of sections) wanted.add(s);
  await loadSections(current, sections);
  setHtmlLang();
}

function missing(key) {
  if (!warned.has(key)) {
    warned.add(key);
    window.__i18nMissing.push(key);
    console.warn(`i18n: no "${key}" in the ${current} catalogue`);
  }
  return `⟦${key}⟧`;
}

function fill(text, params) {
  return text.replace(/\{(\w+)\}/g, (whole, name) => {
    if (!(name in params)) return whole;
    const v = params[name];
    return typeof v === "number" ? fmtNumber(v) : String(v);
  });
}

/**
 * The text of `key` in the chosen language, with "{name}" placeholders filled from
 * `params` (numbers formatted for the locale). A plural entry ({"one": ..., "other": ...})
 * is chosen by params.n. With opts.fallback, a key that has no text gives the fallback
 * (for names that come from the hub, like a plugin's kind) instead of a missing-key mark.
 */
export function t(key, params = {}, opts = {}) {
  let text = dicts[current][key];
  if (text === undefined) {
    if (opts.fallback !== undefined && opts.fallback !== null) return fill(String(opts.fallback), params);
    return missing(key);
  }
  if (typeof text === "object") {
    const form = new Intl.PluralRules(locale()).select(Number(params.n ?? 0));
    text = text[form] ?? text.other;
  }
  return fill(text, params);
}

/** Whether the catalogue has `key` (for optional texts). */
export function has(key) {
  return dicts[current][key] !== undefined;
}

/**
 * Fills [data-i18n="key"] elements' textContent and [data-i18n-attr="title:key;placeholder:key2"]
 * attributes under `root`.
 */
export function applyI18n(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":").map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
}

/**
 * Switches the language: remembered in localStorage, the page's sections loaded in the new
 * language, static texts refilled, then a "langchange" event on window for the page to
 * draw its dynamic parts again.
 */
export async function setLang(l) {
  if (!LANGS.includes(l)) throw new Error(`unknown language ${l}`);
  if (l !== current) await loadSections(l, [...wanted]); // texts first: a failed load switches nothing
  try {
    localStorage.setItem(STORE, l);
  } catch (e) {
    /* not remembered, but still switched */
  }
  if (l === current) return;
  current = l;
  setHtmlLang();
  applyI18n(document);
  window.dispatchEvent(new CustomEvent("langchange", { detail: { lang: l } }));
}

/** Two buttons, "Tiếng Việt" / "English", with aria-pressed on the chosen one. */
export function langSwitcher() {
  const box = document.createElement("div");
  box.className = "lang-switch";
  box.setAttribute("role", "group");
  const label = () => box.setAttribute("aria-label", has("common.language") ? t("common.language") : "Language");
  label();
  const buttons = LANGS.map((l) => {
    const b = document.createElement("button");
    b.type = "button";
    b.lang = l;
    b.dataset.lang = l;
    b.textContent = NATIVE[l];
    b.addEventListener("click", () => setLang(l).catch((e) => console.warn(`i18n: ${e.message}`)));
    return b;
  });
  const mark = () => {
    for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.lang === current));
    label();
  };
  mark();
  window.addEventListener("langchange", mark);
  box.append(...buttons);
  return box;
}

// -- formats ------------------------------------------------------------------------------

function toDate(v) {
  if (v === null || v === undefined || v === "") return null;
  const d = v instanceof Date ? v : new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** A number as the chosen language writes it (vi: "1,25"; en: "1.25"). */
export function fmtNumber(v, opts = {}) {
  if (v === null || v === undefined || Number.isNaN(Number(v))) return "—";
  return new Intl.NumberFormat(locale(), opts).format(v);
}

/** A clock time, 24 h ("14:05"); opts.seconds adds seconds. */
export function fmtTime(v, opts = {}) {
  const d = toDate(v);
  if (!d) return "—";
  const o = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (opts.seconds) o.second = "2-digit";
  return new Intl.DateTimeFormat(locale(), o).format(d);
}

/** A date, dd/mm/yyyy. */
export function fmtDate(v) {
  const d = toDate(v);
  if (!d) return "—";
  return new Intl.DateTimeFormat(locale(), { day: "2-digit", month: "2-digit", year: "numeric" }).format(d);
}

/** A date and a 24 h time with seconds, as the locale orders them. */
export function fmtDateTime(v) {
  const d = toDate(v);
  if (!d) return "—";
  return new Intl.DateTimeFormat(locale(), {
    day: "2-digit",
    month: "2-digit",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  }).format(d);
}
