// The set-up page of one camera (#/setup/{camera_id}): its latest frame and, drawn on it,
// every zone, line, gauge, mark and lamp of its analytics, edited with the mouse or a
// finger and saved to the hub, which sends the configuration to the camera's edge; the
// page then follows the edge until it runs the new version or refuses it.
//
// Why a generic editor: the drawable fields are declared by each analytic's manifest
// (GET /api/v1/analytics: `geometry` [{path, kind, label, optional}] with `*` for list
// items, and the pydantic `config_schema`), so a new analytic's zones are drawn here
// without a line of JavaScript for it. Coordinates are fractions of the frame rounded to
// 4 decimals, so they survive a change of resolution. The overlay's viewBox is the frame's
// fractions scaled to 1000 units across (and the frame's aspect down), so points stay round.
//
// An ES module imported by app.js, which lends its helpers (h, api, show, setNav, can, me,
// fmtTime, errorBox). Text from the API is only ever set as textContent; styles are app.css
// classes, SVG presentation attributes or element.style properties (the hub's CSP forbids
// inline styles and scripts).
//
// Its texts come from the catalogue's "setup.*" keys (i18n.js, imported as `tr`: `t` is a
// common local name in this file). What the analytics' manifests declare (labels of zones
// and lines, summaries, field names) and what the operators typed is shown as it is.

import { t as tr, fmtNumber } from "/i18n/i18n.js";

const SVGNS = "http://www.w3.org/2000/svg";
const VW = 1000; // viewBox width; the height follows the frame's aspect ratio
const SNAP = 0.01; // a moved or added point joins another within 1 % of the frame
const UNDO_MAX = 300;
const POLL_MS = 1500;
const POLL_FOR_MS = 120000;
const PALETTE = ["#ffb020", "#36cfc9", "#ff5cd1", "#95de64", "#69b1ff", "#ff7a45", "#b37feb", "#fff566"];
// how to draw each kind of geometry: the catalogue's setup.help_<kind>
const KIND_HELP = (kind) => tr(`setup.help_${kind}`, {}, { fallback: "" });
// centimetres as the language writes them (vi: "60,5 cm")
const cm = (v) => tr("setup.cm", { v: fmtNumber(v, { maximumFractionDigits: 1, useGrouping: false }) });

const r4 = (v) => Math.round(v * 1e4) / 1e4;
const clamp01 = (v) => Math.min(1, Math.max(0, v));
const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
const isPt = (p) => Array.isArray(p) && p.length === 2 && p.every((n) => typeof n === "number" && Number.isFinite(n));
const samePt = (p, q) => isPt(p) && isPt(q) && p[0] === q[0] && p[1] === q[1];
const singular = (word) => word.replace(/ies$/, "y").replace(/s$/, "");

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.setAttribute("class", v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// -- the analytics' JSON schemas (pydantic's): enough to walk paths and make defaults -------

function deref(sch, defs) {
  let out = sch || {};
  for (let guard = 0; out.$ref && guard < 20; guard++) {
    const { $ref, ...rest } = out;
    out = { ...(defs[$ref.split("/").pop()] || {}), ...rest };
  }
  return out;
}

function alternatives(sch, defs) {
  const x = deref(sch, defs);
  const alts = x.anyOf || x.oneOf;
  if (!alts) return x.type === "null" ? [] : [x];
  return alts.map((a) => deref(a, defs)).filter((a) => a.type !== "null");
}

function nullable(sch, defs) {
  const x = deref(sch, defs);
  return x.type === "null" || (x.anyOf || x.oneOf || []).some((a) => deref(a, defs).type === "null");
}

function tagOf(objSch) {
  const t = objSch?.properties?.type;
  if (!t) return undefined;
  if ("const" in t) return t.const;
  return t.enum && t.enum.length === 1 ? t.enum[0] : undefined;
}

// The object alternative that fits `value` (a discriminated union picks by its `type`).
function objectSchema(sch, defs, value) {
  const alts = alternatives(sch, defs).filter((a) => a.properties);
  if (!alts.length) return null;
  const tag = value && typeof value === "object" && !Array.isArray(value) ? value.type : undefined;
  return alts.find((a) => tag !== undefined && tagOf(a) === tag) || alts[0];
}

function arraySchema(sch, defs) {
  return alternatives(sch, defs).find((a) => a.type === "array") || null;
}

function childSchema(sch, defs, value, seg) {
  if (typeof seg === "number") return arraySchema(sch, defs)?.items || {};
  return objectSchema(sch, defs, value)?.properties?.[seg] || {};
}

function schemaAt(root, defs, obj, path) {
  let sch = root;
  let cur = obj;
  for (const seg of path) {
    sch = childSchema(sch, defs, cur, seg);
    cur = cur == null ? undefined : cur[seg];
  }
  return sch;
}

function numberDefault(x) {
  if (x.minimum !== undefined) return x.minimum;
  if (x.exclusiveMinimum !== undefined) {
    const lo = x.exclusiveMinimum;
    const hi = x.maximum ?? x.exclusiveMaximum;
    if (hi !== undefined && hi - lo <= 1) return r4(lo + (hi - lo) / 10);
    return lo + 1;
  }
  return 0;
}

function defaultFor(sch, defs) {
  const x = deref(sch, defs);
  if ("default" in x) return clone(x.default);
  if ("const" in x) return x.const;
  if (x.enum) return x.enum[0];
  if (nullable(sch, defs)) return null;
  const alt = alternatives(sch, defs)[0] || {};
  if ("const" in alt) return alt.const;
  if (alt.enum) return alt.enum[0];
  if (alt.properties) return newObject(alt, defs);
  if (alt.type === "array") return [];
  if (alt.type === "string") return "";
  if (alt.type === "number" || alt.type === "integer") return numberDefault(alt);
  if (alt.type === "boolean") return false;
  return null;
}

// An object with its required fields only (the hub and the edge fill in the defaults).
function newObject(objSch, defs) {
  const out = {};
  const tag = tagOf(objSch);
  if (tag !== undefined) out.type = tag;
  for (const k of objSch.required || []) {
    if (k !== "type") out[k] = defaultFor(objSch.properties[k], defs);
  }
  return out;
}

function getAt(obj, path) {
  let cur = obj;
  for (const k of path) {
    if (cur === null || cur === undefined) return undefined;
    cur = cur[k];
  }
  return cur;
}

// Set `value` at `path`, making the missing objects and lists on the way (with their
// required fields, e.g. a traffic analytic's `signal` for its first lamp).
function setAt(root, rootSch, defs, path, value) {
  let cur = root;
  let sch = rootSch;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i];
    const next = childSchema(sch, defs, cur, k);
    if (cur[k] === null || cur[k] === undefined) {
      if (typeof path[i + 1] === "number") cur[k] = [];
      else {
        const o = objectSchema(next, defs, null);
        cur[k] = o ? newObject(o, defs) : {};
      }
    }
    cur = cur[k];
    sch = next;
  }
  cur[path[path.length - 1]] = value;
}

function deleteAt(root, path) {
  const parent = getAt(root, path.slice(0, -1));
  const last = path[path.length - 1];
  if (Array.isArray(parent) && typeof last === "number") parent.splice(last, 1);
  else if (parent && typeof parent === "object") delete parent[last];
}

// -- geometry instances: each declared path expanded over the config's list items ----------

function itemName(item, n) {
  if (item && typeof item === "object" && !Array.isArray(item)) {
    if (item.name || item.type) return item.name || item.type;
    if (typeof item.level_cm === "number") return cm(item.level_cm); // a gauge's mark
    if (typeof item.depth_cm === "number") return tr("setup.cm_deep", { v: cm(item.depth_cm) });
  }
  return `#${n + 1}`;
}

// A label's rough width (system-ui), to keep labels inside the frame.
const textWidth = (text, size) => String(text).length * size * 0.6;

function instancesOf(a, plugin) {
  const root = plugin?.config_schema || {};
  const defs = root.$defs || {};
  const out = [];
  for (const g of plugin?.geometry || []) {
    const segs = g.path.split(".");
    const walk = (cur, sch, i, path, names) => {
      if (i === segs.length) {
        out.push({ g, kind: g.kind, path, key: path.join("."), value: cur ?? null, names, label: [g.label, ...names].join(" · ") });
        return;
      }
      const seg = segs[i];
      if (seg === "*") {
        if (!Array.isArray(cur)) return;
        const items = arraySchema(sch, defs)?.items || {};
        cur.forEach((item, n) => walk(item, items, i + 1, [...path, n], [...names, itemName(item, n)]));
        return;
      }
      const o = objectSchema(sch, defs, cur);
      const here = cur && typeof cur === "object" && !Array.isArray(cur);
      if (!((here && seg in cur) || (o && seg in o.properties))) return; // e.g. a rule of another type
      const next = here ? cur[seg] : undefined;
      if ((next === null || next === undefined) && segs.slice(i + 1).includes("*")) return;
      walk(next, o?.properties?.[seg] || {}, i + 1, [...path, seg], names);
    };
    walk(a, root, 0, [], []);
  }
  return out;
}

// The lists whose items carry geometry (rules, lines, exclusions, marks, lamps): what the
// "add" buttons add to.
function listsOf(plugin) {
  const map = new Map();
  for (const g of plugin?.geometry || []) {
    const segs = g.path.split(".");
    const star = segs.indexOf("*");
    if (star < 0) continue;
    const prefix = segs.slice(0, star).join(".");
    if (!map.has(prefix)) map.set(prefix, []);
    map.get(prefix).push(g);
  }
  return [...map].map(([prefix, geoms]) => ({
    prefix,
    path: prefix.split("."),
    geoms,
    label: geoms.length === 1 ? geoms[0].label.replace(/\s*\(.*\)\s*$/, "") : singular(prefix.split(".").pop()),
  }));
}

function pointsOf(inst, anchor) {
  const v = inst.value;
  switch (inst.kind) {
    case "polygon":
    case "line":
      return Array.isArray(v) ? v.filter(isPt) : [];
    case "segment":
      return v && typeof v === "object" ? [v.a, v.b].filter(isPt) : [];
    case "point":
      return isPt(v) ? [v] : [];
    case "box":
      return Array.isArray(v) && v.length === 4 ? [[v[0], v[1]], [v[2], v[3]]] : [];
    case "vector":
      return isPt(v) && anchor ? [vectorHead(anchor, v)] : [];
    default:
      return [];
  }
}

function incomplete(inst) {
  const n = pointsOf(inst, [0.5, 0.5]).length;
  if (inst.kind === "polygon") return n < 3;
  if (inst.kind === "line" || inst.kind === "segment" || inst.kind === "box") return n < 2;
  return n < 1;
}

function centroid(pts) {
  const n = pts.length || 1;
  return [pts.reduce((t, p) => t + p[0], 0) / n, pts.reduce((t, p) => t + p[1], 0) / n];
}

function insidePolygon(p, poly) {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if (yi > p[1] !== yj > p[1] && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

let aspect = 9 / 16; // frame height / width, set from the frame (or the preview's size)
const VH = () => VW * aspect;
const VEC_LEN = 70; // an arrow's length on screen, viewBox units

// An arrow's head: `dir` (fractions) drawn VEC_LEN long from its anchor.
function vectorHead(anchor, dir) {
  const dx = dir[0] * VW;
  const dy = dir[1] * VH();
  const n = Math.hypot(dx, dy) || 1;
  return [clamp01(anchor[0] + (dx / n) * (VEC_LEN / VW)), clamp01(anchor[1] + (dy / n) * (VEC_LEN / VH()))];
}

function unit(dx, dy) {
  const n = Math.hypot(dx, dy);
  return n ? [r4(dx / n), r4(dy / n)] : null;
}

// Pydantic's error locations, as the hub passes them on: a list or a dotted string, maybe
// led by "body"/"config", with the tags of discriminated unions ("objects", "red_light").
function normalLoc(loc) {
  let parts = Array.isArray(loc) ? loc.slice() : String(loc ?? "").split(".").filter(Boolean);
  parts = parts.map((p) => (typeof p === "string" && /^\d+$/.test(p) ? Number(p) : p));
  while (parts.length && (parts[0] === "body" || parts[0] === "config")) parts.shift();
  return parts;
}

function cleanPath(value, rest) {
  const out = [];
  let cur = value;
  for (const seg of rest) {
    const obj = cur && typeof cur === "object" && !Array.isArray(cur);
    if (obj && !(seg in cur) && (seg === cur.type || /[[\]]/.test(String(seg)))) continue; // a union tag
    out.push(seg);
    cur = cur == null ? undefined : cur[seg];
  }
  return out;
}

// -- the page ------------------------------------------------------------------------------

export async function showSetup(ui, cameraId) {
  const { h, api, show, setNav, can, me, fmtTime, errorBox, roleName } = ui;
  setNav("cameras");
  const back = h("p", {}, h("a", { href: "#/cameras" }, tr("setup.back")));
  const title = h("h1", {}, tr("setup.title", { camera: cameraId ?? "" }));
  if (!cameraId) {
    show(back, title, errorBox(tr("setup.no_camera_given"), null));
    return;
  }
  if (!can("setup")) {
    show(back, title, h("p", { class: "muted", id: "no-setup" }, tr("setup.no_role", { role: roleName(me.role) })));
    return;
  }
  const enc = encodeURIComponent(cameraId);
  show(back, title, h("p", { class: "muted" }, tr("common.loading")));

  let doc = null;
  let registry;
  try {
    [doc, registry] = await Promise.all([
      api(`/api/v1/cameras/${enc}/config`).catch((e) => {
        if (e.status === 404) return null;
        throw e;
      }),
      api("/api/v1/analytics"),
    ]);
  } catch (e) {
    show(back, title, errorBox(tr("setup.load_failed", { error: e.message }), () => showSetup(ui, cameraId)));
    return;
  }
  if (!doc) {
    // a camera the hub knows from its status only: start its configuration here
    let cam = null;
    try {
      const page = await api(`/api/v1/cameras?limit=1000`);
      cam = page.items.find((c) => c.camera_id === cameraId) || null;
    } catch (e) {
      /* shown below */
    }
    if (!cam) {
      show(back, title, errorBox(tr("setup.unknown_camera"), null));
      return;
    }
    doc = { camera_id: cameraId, site: cam.site, edge_id: cam.edge_id, version: null, config_version: null, running: null, config: { id: cameraId, url: "", analytics: [] }, fresh: true };
  }
  // each plugin's pydantic JSON schema ("schema"; "config_schema" in older hubs)
  const plugins = new Map((Array.isArray(registry) ? registry : registry.items || []).map((p) => [p.type, { ...p, config_schema: p.config_schema || p.schema || {} }]));

  const st = {
    cfg: clone(doc.config),
    saved: JSON.stringify(doc.config),
    ai: 0,
    key: null,
    pt: null,
    drawing: null, // the key of the instance clicks add points to
    pending: null, // a box's first corner
    drag: null,
    undo: [],
    errors: [],
    frame: { url: null, note: tr("setup.frame_loading") },
    preview: null,
    version: doc.version,
    configVersion: doc.config_version,
    advDirty: false,
    poll: null,
  };
  if (!Array.isArray(st.cfg.analytics)) st.cfg.analytics = [];

  const typeOf = (a) => a?.type || "objects";
  const pluginOf = (a) => plugins.get(typeOf(a));
  const schemaOf = (a) => pluginOf(a)?.config_schema || {};
  const defsOf = (a) => schemaOf(a).$defs || {};
  // an analytic's name: its own, else its type's default (the name its readings carry)
  const nameOf = (a) => a?.name || deref(schemaOf(a).properties?.name || {}, defsOf(a)).default || typeOf(a);
  // "none = the whole frame": an optional zone whose absence means everywhere
  const wholeFrame = (a, inst) => {
    if (!inst.g.optional || inst.kind !== "polygon") return false;
    const d = deref(schemaAt(schemaOf(a), defsOf(a), a, inst.path), defsOf(a));
    return /whole frame/.test(`${d.description || ""} ${inst.g.label}`);
  };
  const colour = (ai) => PALETTE[ai % PALETTE.length];
  const analytic = () => st.cfg.analytics[st.ai] || null;
  const all = () => st.cfg.analytics.map((a, ai) => ({ a, ai, list: instancesOf(a, pluginOf(a)) }));
  const instOf = (ai, key) => {
    const a = st.cfg.analytics[ai];
    return a ? instancesOf(a, pluginOf(a)).find((i) => i.key === key) || null : null;
  };
  const current = () => instOf(st.ai, st.key);

  // The arrow of a vector starts at what it belongs to: the line, lane or zone beside it.
  function anchorOf(ai, inst) {
    const a = st.cfg.analytics[ai];
    const parent = inst.path.slice(0, -1).join(".");
    const sibs = instancesOf(a, pluginOf(a)).filter((o) => o.kind !== "vector");
    const same = sibs.filter((o) => o.key === parent || (o.path.slice(0, -1).join(".") === parent && o.path.length === inst.path.length));
    for (const o of same) {
      const pts = pointsOf(o);
      if (pts.length) return centroid(pts);
    }
    return [0.5, 0.5];
  }
  const pts = (ai, inst) => pointsOf(inst, inst.kind === "vector" ? anchorOf(ai, inst) : null);

  // -- edits (every one undoable) --

  function pushUndo() {
    st.undo.push({ cfg: JSON.stringify(st.cfg), ai: st.ai, key: st.key, drawing: st.drawing });
    if (st.undo.length > UNDO_MAX) st.undo.shift();
  }
  function undo() {
    const last = st.undo.pop();
    if (!last) return;
    st.cfg = JSON.parse(last.cfg);
    st.ai = last.ai;
    st.key = last.key;
    st.drawing = last.drawing;
    st.pt = null;
    st.pending = null;
    st.advDirty = false;
    render();
  }
  function setValue(ai, path, value) {
    const a = st.cfg.analytics[ai];
    setAt(a, schemaOf(a), defsOf(a), path, value);
  }
  function touched(ai, inst) {
    st.errors = st.errors.filter((e) => !(e.ai === ai && e.key === inst.key));
  }

  function select(ai, key, { draw = false } = {}) {
    st.ai = ai;
    st.key = key;
    st.pt = null;
    st.pending = null;
    const inst = current();
    st.drawing = inst && (draw || (incomplete(inst) && inst.kind !== "vector")) ? inst.key : null;
  }
  function selectAnalytic(ai) {
    const a = st.cfg.analytics[ai];
    const first = a ? instancesOf(a, pluginOf(a))[0] : null;
    select(ai, first ? first.key : null);
  }

  // A line or counting line just drawn gets a direction across it (up the image) if its
  // direction is not set yet; "Flip" turns it round.
  function defaultDirection(ai, inst) {
    const p = pointsOf(inst);
    if (p.length < 2) return;
    const parent = inst.kind === "segment" ? inst.key : inst.path.slice(0, -1).join(".");
    const a = st.cfg.analytics[ai];
    const vec = instancesOf(a, pluginOf(a)).find((o) => o.kind === "vector" && o.path.slice(0, -1).join(".") === parent && parent !== "");
    if (!vec || isPt(vec.value)) return;
    let n = unit(-(p[1][1] - p[0][1]), p[1][0] - p[0][0]);
    if (!n) return;
    if (n[1] > 0 || (n[1] === 0 && n[0] < 0)) n = [r4(-n[0]) || 0, r4(-n[1]) || 0];
    setValue(ai, vec.path, n);
  }

  function addPoint(p) {
    const inst = current();
    if (!inst) return;
    const ai = st.ai;
    const v = inst.value;
    switch (inst.kind) {
      case "polygon": {
        const list = Array.isArray(v) ? v.filter(isPt) : [];
        if (samePt(list[list.length - 1], p)) return; // the second click of a double-click
        pushUndo();
        setValue(ai, inst.path, [...list, p]);
        st.pt = list.length;
        break;
      }
      case "line": {
        let list = Array.isArray(v) ? v.filter(isPt) : [];
        if (list.length >= 2) list = [];
        if (samePt(list[list.length - 1], p)) return;
        pushUndo();
        setValue(ai, inst.path, [...list, p]);
        st.pt = list.length;
        if (list.length + 1 >= 2) {
          st.drawing = null;
          defaultDirection(ai, instOf(ai, inst.key));
        }
        break;
      }
      case "segment": {
        const item = v && typeof v === "object" ? v : {};
        const ends = [item.a, item.b].filter(isPt);
        if (ends.length === 1 && samePt(ends[0], p)) return;
        pushUndo();
        if (ends.length !== 1) {
          setValue(ai, [...inst.path, "a"], p);
          setValue(ai, [...inst.path, "b"], null);
          st.pt = 0;
        } else {
          setValue(ai, [...inst.path, "a"], ends[0]);
          setValue(ai, [...inst.path, "b"], p);
          st.pt = 1;
          st.drawing = null;
          defaultDirection(ai, instOf(ai, inst.key));
        }
        break;
      }
      case "box": {
        if (!st.pending || st.pending.key !== inst.key) {
          st.pending = { key: inst.key, p };
          st.drawing = inst.key;
          render();
          return;
        }
        const q = st.pending.p;
        if (samePt(q, p)) return;
        pushUndo();
        setValue(ai, inst.path, [Math.min(p[0], q[0]), Math.min(p[1], q[1]), Math.max(p[0], q[0]), Math.max(p[1], q[1])]);
        st.pending = null;
        st.drawing = null;
        break;
      }
      case "point":
        if (samePt(v, p)) return;
        pushUndo();
        setValue(ai, inst.path, p);
        st.pt = 0;
        st.drawing = null;
        break;
      case "vector": {
        const from = anchorOf(ai, inst);
        const d = unit(p[0] - from[0], p[1] - from[1]);
        if (!d) return;
        pushUndo();
        setValue(ai, inst.path, d);
        st.pt = 0;
        break;
      }
      default:
        return;
    }
    touched(ai, inst);
    render();
  }

  function movePoint(ai, inst, i, p) {
    switch (inst.kind) {
      case "polygon":
      case "line":
        setValue(ai, [...inst.path, i], p);
        break;
      case "segment":
        setValue(ai, [...inst.path, i === 0 ? "a" : "b"], p);
        break;
      case "point":
        setValue(ai, inst.path, p);
        break;
      case "box": {
        const b = inst.value.slice();
        b[i * 2] = p[0];
        b[i * 2 + 1] = p[1];
        setValue(ai, inst.path, b);
        break;
      }
      case "vector": {
        const from = anchorOf(ai, inst);
        const d = unit(p[0] - from[0], p[1] - from[1]);
        if (d) setValue(ai, inst.path, d);
        break;
      }
    }
  }

  function deletePoint(ai, key, i) {
    const inst = instOf(ai, key);
    if (!inst) return;
    const p = pointsOf(inst, [0.5, 0.5]);
    if (inst.kind === "vector") return; // an arrow is turned, not deleted ("Flip", "Remove")
    pushUndo();
    if (inst.kind === "polygon" || inst.kind === "line") {
      setValue(ai, inst.path, p.filter((_, n) => n !== i));
    } else if (inst.kind === "segment") {
      const keep = p.filter((_, n) => n !== i);
      setValue(ai, [...inst.path, "a"], keep[0] ?? null);
      setValue(ai, [...inst.path, "b"], null);
    } else if (inst.kind === "box") {
      setValue(ai, inst.path, null);
    } else if (inst.kind === "point") {
      const item = inst.path.findLastIndex((seg) => typeof seg === "number");
      if (item >= 0) {
        // a calibration mark or a lamp is its point: delete the item
        deleteAt(st.cfg.analytics[ai], inst.path.slice(0, item + 1));
        st.ai = ai;
        selectAnalytic(ai);
        render();
        return;
      }
      deleteAt(st.cfg.analytics[ai], inst.path);
    }
    st.ai = ai;
    st.key = key;
    st.pt = null;
    const now = instOf(ai, key);
    st.drawing = now && incomplete(now) ? key : null;
    touched(ai, inst);
    render();
  }

  function insertPoint(ai, inst, after, p) {
    pushUndo();
    const list = pointsOf(inst).slice();
    list.splice(after + 1, 0, p);
    setValue(ai, inst.path, list);
    st.pt = after + 1;
    touched(ai, inst);
  }

  function finish() {
    if (!st.drawing && !st.pending) return;
    st.drawing = null;
    st.pending = null;
    render();
  }

  function redraw() {
    const inst = current();
    if (!inst) return;
    pushUndo();
    if (inst.kind === "polygon" || inst.kind === "line") setValue(st.ai, inst.path, []);
    else if (inst.kind === "segment") {
      setValue(st.ai, [...inst.path, "a"], null);
      setValue(st.ai, [...inst.path, "b"], null);
    } else setValue(st.ai, inst.path, null);
    st.pt = null;
    st.pending = null;
    st.drawing = inst.kind === "vector" ? null : inst.key;
    touched(st.ai, inst);
    render();
  }

  function removeField() {
    const inst = current();
    if (!inst || !inst.g.optional) return;
    pushUndo();
    deleteAt(st.cfg.analytics[st.ai], inst.path);
    st.drawing = null;
    st.pt = null;
    touched(st.ai, inst);
    render();
  }

  function flip() {
    const inst = current();
    if (!inst || inst.kind !== "vector" || !isPt(inst.value)) return;
    pushUndo();
    setValue(st.ai, inst.path, [r4(-inst.value[0]) || 0, r4(-inst.value[1]) || 0]);
    render();
  }

  // What a list item is called ("calibration mark", "rule"), from the manifest's labels.
  function itemKind(a, itemPath) {
    const list = listsOf(pluginOf(a)).find((l) => l.prefix === itemPath.slice(0, -1).join("."));
    return list ? list.label : singular(String(itemPath[itemPath.length - 2]));
  }

  function itemPathOf(inst) {
    const n = inst.path.findIndex((seg) => typeof seg === "number");
    return n >= 0 ? inst.path.slice(0, n + 1) : null;
  }

  function deleteItem() {
    const inst = current();
    const path = inst && itemPathOf(inst);
    if (!path) return;
    pushUndo();
    deleteAt(st.cfg.analytics[st.ai], path);
    selectAnalytic(st.ai);
    render();
  }

  function uniqueName(base, taken, pattern) {
    const clean = String(base).toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^_+|_+$/g, "") || "item";
    for (let n = taken.has(clean) ? 2 : 1; n < 1000; n++) { // a second "speeding" is speeding_2
      const name = n === 1 && !pattern ? clean : `${clean}_${n}`;
      if (!taken.has(name)) return name;
    }
    return `${clean}_${Date.now()}`;
  }

  function addItem(list, tag) {
    const a = analytic();
    if (!a) return;
    const root = schemaOf(a);
    const defs = defsOf(a);
    const items = arraySchema(schemaAt(root, defs, a, list.path), defs)?.items || {};
    const alts = alternatives(items, defs).filter((x) => x.properties);
    const have = getAt(a, list.path);
    const siblings = Array.isArray(have) ? have : [];
    let item = [];
    if (alts.length) {
      const o = alts.find((x) => tagOf(x) === tag) || alts[0];
      item = newObject(o, defs);
      if (o.properties.name) {
        const taken = new Set(siblings.map((x) => x?.name || x?.type));
        const own = item.type || singular(list.path[list.path.length - 1]);
        if ((o.required || []).includes("name")) item.name = uniqueName(own, taken, true);
        else if (taken.has(own)) item.name = uniqueName(own, taken, true);
      }
    }
    const n = siblings.length;
    pushUndo();
    setValue(st.ai, [...list.path, n], item);
    const added = [...list.path, n].join(".");
    const fresh = instancesOf(a, pluginOf(a)).filter((i) => i.key === added || i.key.startsWith(added + "."));
    const empty = (v) => Array.isArray(v) && !v.length;
    for (const i of fresh) {
      if (["point", "vector", "box"].includes(i.kind) && empty(i.value)) setValue(st.ai, i.path, null);
      if (i.kind === "segment") for (const end of ["a", "b"]) if (empty(i.value?.[end])) setValue(st.ai, [...i.path, end], null);
    }
    const first = fresh.find((i) => i.kind !== "vector") || fresh[0];
    select(st.ai, first ? first.key : null, { draw: true });
    render();
  }

  function addAnalytic(type) {
    const plugin = plugins.get(type);
    if (!plugin) return;
    const root = plugin.config_schema || {};
    const defs = root.$defs || {};
    const a = newObject(root, defs);
    a.type = type;
    const taken = new Set(st.cfg.analytics.map((x) => nameOf(x)));
    const base = a.name || type;
    a.name = taken.has(base) ? uniqueName(base, taken, true) : base;
    pushUndo();
    st.cfg.analytics.push(a);
    const ai = st.cfg.analytics.length - 1;
    st.ai = ai;
    // a list the analytic cannot be without (a line_count's lines) gets its first item
    for (const list of listsOf(plugin)) {
      const arr = arraySchema(schemaAt(root, defs, a, list.path), defs);
      const union = alternatives(arr?.items || {}, defs).filter((x) => x.properties).length > 1;
      if (arr && arr.minItems >= 1 && !union && !getAt(a, list.path)?.length) {
        st.undo.pop(); // one undo step for the whole addition
        addItem(list);
        return;
      }
    }
    selectAnalytic(ai);
    const inst = current();
    if (inst && incomplete(inst) && inst.kind !== "vector") st.drawing = inst.key;
    render();
  }

  function removeAnalytic() {
    const a = analytic();
    if (!a || !confirm(tr("setup.confirm_remove_analytic", { name: nameOf(a) }))) return;
    pushUndo();
    st.cfg.analytics.splice(st.ai, 1);
    st.errors = [];
    selectAnalytic(Math.max(0, st.ai - 1));
    render();
  }

  // -- pointer, mouse, finger and keys --

  const svg = s("svg", { id: "setup-canvas", tabindex: 0, role: "application", "aria-label": tr("setup.canvas_label", { camera: cameraId }) });
  svg.setAttribute("viewBox", `0 0 ${VW} ${VH()}`);
  const frac = (ev) => {
    const r = svg.getBoundingClientRect();
    return [r4(clamp01((ev.clientX - r.left) / r.width)), r4(clamp01((ev.clientY - r.top) / r.height))];
  };
  function vertices() {
    const out = [];
    for (const { ai, list } of all()) {
      for (const inst of list) {
        if (inst.kind === "vector") continue;
        pointsOf(inst).forEach((p, i) => out.push({ ai, key: inst.key, i, p }));
      }
    }
    return out;
  }
  function snap(p, except) {
    let best = null;
    let bd = SNAP;
    for (const q of vertices()) {
      if (except && q.ai === except.ai && q.key === except.key && q.i === except.i) continue;
      const d = Math.hypot(q.p[0] - p[0], q.p[1] - p[1]);
      if (d <= bd) {
        bd = d;
        best = q.p;
      }
    }
    return best ? [best[0], best[1]] : p;
  }

  svg.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return; // the right button: contextmenu deletes
    ev.preventDefault();
    svg.focus({ preventScroll: true });
    const t = ev.target;
    const p = frac(ev);
    const inst = current();
    if (t.classList.contains("pt")) {
      const ai = Number(t.dataset.ai);
      const key = t.dataset.key;
      const i = Number(t.dataset.i);
      const own = ai === st.ai && key === st.key;
      if (st.drawing && !own) {
        addPoint(pointsOf(instOf(ai, key), [0.5, 0.5])[i] || p); // onto another shape's corner
        return;
      }
      if (own && st.drawing === key && inst.kind === "polygon" && i === 0 && pointsOf(inst).length >= 3) {
        finish(); // clicked the first point: closed
        return;
      }
      if (!own) select(ai, key);
      st.pt = i;
      st.drag = { ai, key, i, id: ev.pointerId, moved: false };
      svg.setPointerCapture(ev.pointerId);
      render();
      return;
    }
    if (t.classList.contains("edge") && inst) {
      const after = Number(t.dataset.i);
      const q = snap(p);
      insertPoint(st.ai, inst, after, q);
      st.drag = { ai: st.ai, key: inst.key, i: after + 1, id: ev.pointerId, moved: true };
      svg.setPointerCapture(ev.pointerId);
      render();
      return;
    }
    if (inst && (st.drawing || inst.kind === "point" || inst.kind === "vector")) {
      addPoint(snap(p));
      return;
    }
    const shape = t.closest("g.inst");
    if (shape && shape.dataset.key !== undefined) {
      select(Number(shape.dataset.ai), shape.dataset.key);
      render();
      return;
    }
    st.pt = null;
    render();
  });
  svg.addEventListener("pointermove", (ev) => {
    const d = st.drag;
    if (!d || ev.pointerId !== d.id) return;
    const inst = instOf(d.ai, d.key);
    if (!inst) return;
    const p = snap(frac(ev), d);
    const before = pts(d.ai, inst)[d.i];
    if (samePt(before, p)) return;
    if (!d.moved) {
      pushUndo();
      d.moved = true;
    }
    movePoint(d.ai, inst, d.i, p);
    touched(d.ai, inst);
    render({ light: true });
  });
  const endDrag = (ev) => {
    const d = st.drag;
    if (!d || ev.pointerId !== d.id) return;
    st.drag = null;
    const inst = instOf(d.ai, d.key);
    if (inst && inst.kind === "box" && d.moved) {
      const [x1, y1, x2, y2] = inst.value;
      setValue(d.ai, inst.path, [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)]);
    }
    render();
  };
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);
  svg.addEventListener("dblclick", (ev) => {
    ev.preventDefault();
    const inst = current();
    if (st.drawing && inst && inst.kind === "polygon") finish();
  });
  svg.addEventListener("contextmenu", (ev) => {
    ev.preventDefault();
    const t = ev.target;
    if (t.classList.contains("pt")) deletePoint(Number(t.dataset.ai), t.dataset.key, Number(t.dataset.i));
  });
  const onKey = (ev) => {
    if (!document.body.contains(svg)) {
      document.removeEventListener("keydown", onKey);
      return;
    }
    const typing = ev.target instanceof Element && ev.target.closest("input, textarea, select");
    if ((ev.ctrlKey || ev.metaKey) && !ev.shiftKey && ev.key.toLowerCase() === "z") {
      if (typing) return; // the text box's own undo
      ev.preventDefault();
      undo();
      return;
    }
    if (typing) return;
    if (ev.key === "Enter" && (st.drawing || st.pending)) {
      ev.preventDefault();
      finish();
    } else if (ev.key === "Escape") {
      finish();
    } else if ((ev.key === "Delete" || ev.key === "Backspace") && st.pt !== null && current()) {
      ev.preventDefault();
      deletePoint(st.ai, st.key, st.pt);
    }
  };
  document.addEventListener("keydown", onKey);

  // -- drawing the overlay --

  let k = 1; // viewBox units per screen pixel
  let compact = false; // a small screen (a phone): only the chosen shape is labelled
  const watched = (a) => (Array.isArray(a.classes) ? a.classes : a.fire_class ? [a.fire_class, a.smoke_class].filter(Boolean) : null);
  const isMask = (inst) => /^(exclude|sky)\b/.test(inst.key);
  const anchorOfBox = (b) => [(b[0] + b[2]) / 2, b[3]]; // the bottom centre: where an object stands

  function zoneHits() {
    const dets = st.preview?.detections || [];
    const rows = [];
    const hit = new Map(); // detection index -> colour (inside a zone), or "mask"
    for (const { a, ai, list } of all()) {
      const classes = watched(a);
      const polys = list.filter((i) => i.kind === "polygon" && pointsOf(i).length >= 3);
      for (const inst of polys) {
        const poly = pointsOf(inst);
        const inside = [];
        dets.forEach((d, n) => {
          if (classes && !classes.includes(d.label)) return;
          if (!insidePolygon(anchorOfBox(d.box), poly)) return;
          inside.push(d);
          if (isMask(inst)) hit.set(n, hit.get(n) || "mask");
          else if (!hit.has(n) || hit.get(n) === "mask") hit.set(n, colour(ai));
        });
        rows.push({ ai, inst, inside, mask: isMask(inst) });
      }
      const everywhere = list.find((i) => i.value === null && !i.names.length && wholeFrame(a, i));
      if (everywhere) rows.push({ ai, inst: everywhere, inside: dets.filter((d) => !classes || classes.includes(d.label)), whole: true });
    }
    return { rows, hit };
  }

  // The flood analytic's latest reading, placed on its gauge line by its calibration marks.
  function waterline(ai, a, list) {
    const reading = st.preview?.readings?.[nameOf(a)];
    if (!reading) return null;
    const level = reading.level_cm;
    const line = list.find((i) => i.kind === "line");
    const marks = (Array.isArray(a.points) ? a.points : []).filter((m) => isPt(m?.at) && typeof m.level_cm === "number");
    const out = { level, reading };
    if (!line || pointsOf(line).length < 2 || typeof level !== "number" || marks.length < 2) return out;
    const [T, B] = pointsOf(line);
    const ux = (B[0] - T[0]) * VW;
    const uy = (B[1] - T[1]) * VH();
    const len2 = ux * ux + uy * uy;
    if (!len2) return out;
    const ts = marks.map((m) => (((m.at[0] - T[0]) * VW) * ux + ((m.at[1] - T[1]) * VH()) * uy) / len2);
    const ls = marks.map((m) => m.level_cm);
    const mt = ts.reduce((x, y) => x + y, 0) / ts.length;
    const ml = ls.reduce((x, y) => x + y, 0) / ls.length;
    const sxx = ts.reduce((x, t) => x + (t - mt) ** 2, 0);
    if (!sxx) return out;
    const beta = ts.reduce((x, t, n) => x + (t - mt) * (ls[n] - ml), 0) / sxx;
    if (!beta) return out;
    const t = Math.max(-0.25, Math.min(1.25, mt + (level - ml) / beta));
    out.at = [T[0] + (B[0] - T[0]) * t, T[1] + (B[1] - T[1]) * t];
    out.dir = [ux / Math.sqrt(len2), uy / Math.sqrt(len2)];
    return out;
  }

  function pointLabel(a, inst) {
    const item = getAt(a, inst.path.slice(0, -1));
    if (item && typeof item.level_cm === "number") return cm(item.level_cm);
    if (item && typeof item.depth_cm === "number") return tr("setup.cm_deep", { v: cm(item.depth_cm) });
    if (item && item.colour) return item.colour;
    return inst.names[inst.names.length - 1] || inst.g.label;
  }

  // Where a shape's label goes: a zone's centre, above a line's middle (beside it when it
  // stands upright), right of a point, above a box, at an arrow's head.
  function labelPlace(inst, P) {
    const X = (p) => p[0] * VW;
    const Y = (p) => p[1] * VH();
    if (!P.length) return null;
    if (inst.kind === "polygon" && P.length >= 3) {
      const c = centroid(P);
      return { x: X(c), y: Y(c), anchor: "middle" };
    }
    if ((inst.kind === "line" || inst.kind === "segment" || inst.kind === "polygon") && P.length >= 2) {
      const [p, q] = P;
      const mx = (X(p) + X(q)) / 2;
      const my = (Y(p) + Y(q)) / 2;
      const dx = X(q) - X(p);
      const dy = Y(q) - Y(p);
      if (Math.abs(dy) > Math.abs(dx) * 1.5) return { x: mx - 10 * k, y: my, anchor: "end" }; // upright
      return { x: mx, y: my - 9 * k, anchor: "middle" };
    }
    if (inst.kind === "box" && P.length === 2) return { x: Math.min(X(P[0]), X(P[1])), y: Math.min(Y(P[0]), Y(P[1])) - 6 * k, anchor: "start" };
    return { x: X(P[0]) + 10 * k, y: Y(P[0]) + 4 * k, anchor: "start" };
  }
  function clampLabel(place, text, size) {
    const w = textWidth(text, size);
    let { x, anchor } = place;
    const left = anchor === "start" ? x : anchor === "end" ? x - w : x - w / 2;
    const pad = 4 * k;
    const shift = left < pad ? pad - left : left + w > VW - pad ? VW - pad - (left + w) : 0;
    x += shift;
    const y = Math.min(VH() - pad, Math.max(size + pad, place.y));
    return [x, y, anchor];
  }

  function drawInstance(ai, a, inst, bad) {
    const col = colour(ai);
    const own = ai === st.ai && inst.key === st.key;
    const drawingIt = own && st.drawing === inst.key;
    const P = pts(ai, inst);
    const X = (p) => r4(p[0] * VW);
    const Y = (p) => r4(p[1] * VH());
    const g = s("g", { class: `inst${own ? " current" : ""}${bad ? " bad" : ""}${ai !== st.ai ? " other" : ""}${isMask(inst) ? " mask" : ""}`, dataset: { ai: String(ai), key: inst.key, kind: inst.kind } });
    const hitW = 14 * k;
    if (inst.kind === "polygon") {
      const list = P.map((p) => `${X(p)},${Y(p)}`).join(" ");
      if (P.length >= 3 && !drawingIt) {
        g.append(s("polygon", { class: "geom", points: list, fill: col, stroke: col }));
        if (own) {
          P.forEach((p, i) => {
            const q = P[(i + 1) % P.length];
            g.append(s("line", { class: "edge", x1: X(p), y1: Y(p), x2: X(q), y2: Y(q), "stroke-width": hitW, dataset: { i: String(i) } }));
          });
        }
      } else if (P.length >= 2) {
        g.append(s("polyline", { class: "geom open", points: list, stroke: col }));
      }
    } else if ((inst.kind === "line" || inst.kind === "segment") && P.length === 2) {
      g.append(s("line", { class: "geom", x1: X(P[0]), y1: Y(P[0]), x2: X(P[1]), y2: Y(P[1]), stroke: col }));
      if (a.type === "flood") {
        g.append(s("text", { class: "end", x: X(P[0]) + 10 * k, y: Y(P[0]), "font-size": 11 * k }, tr("setup.gauge_top")));
        g.append(s("text", { class: "end", x: X(P[1]) + 10 * k, y: Y(P[1]), "font-size": 11 * k }, tr("setup.gauge_bottom")));
      }
    } else if (inst.kind === "box" && P.length === 2) {
      const [p, q] = P;
      g.append(s("rect", { class: "geom", x: Math.min(X(p), X(q)), y: Math.min(Y(p), Y(q)), width: Math.abs(X(q) - X(p)), height: Math.abs(Y(q) - Y(p)), fill: col, stroke: col }));
    } else if (inst.kind === "vector" && P.length === 1) {
      const from = anchorOf(ai, inst);
      const head = P[0];
      const ang = Math.atan2(Y(head) - Y(from), X(head) - X(from));
      const w = 9 * k;
      const tip = [X(head), Y(head)];
      const left = [tip[0] - w * 1.6 * Math.cos(ang) + w * Math.sin(ang), tip[1] - w * 1.6 * Math.sin(ang) - w * Math.cos(ang)];
      const right = [tip[0] - w * 1.6 * Math.cos(ang) - w * Math.sin(ang), tip[1] - w * 1.6 * Math.sin(ang) + w * Math.cos(ang)];
      g.append(
        s("line", { class: "vec", x1: X(from), y1: Y(from), x2: tip[0], y2: tip[1], stroke: col }),
        s("polygon", { class: "head", points: [tip, left, right].map((q) => q.map((n) => r4(n)).join(",")).join(" "), fill: col, stroke: col }),
      );
    }
    if (own && st.pending && st.pending.key === inst.key) {
      const q = st.pending.p;
      g.append(s("circle", { class: "pending", cx: X(q), cy: Y(q), r: 5 * k, fill: col }));
    }
    // the label: by the shape, inside the frame; the analytic named when it is not the chosen one
    const place = labelPlace(inst, P);
    const showLabel = place && (own || bad || (inst.kind !== "vector" && !compact));
    if (showLabel) {
      const text = inst.kind === "point" ? pointLabel(a, inst) : ai === st.ai ? inst.label : `${nameOf(a)} · ${inst.label}`;
      const size = (own ? 13 : 12) * k;
      const lines = [[text, "lbl", size]];
      if (bad) lines.push([bad, "errtxt", 12 * k]);
      lines.forEach(([t, cls, sz], n) => {
        const [x, y, anchor] = clampLabel(place, t, sz);
        g.append(s("text", { class: cls, x: r4(x), y: r4(y + n * 16 * k), "font-size": sz, "text-anchor": anchor }, t));
      });
    }
    // the points, last (on top); those of the selected shape larger
    P.forEach((p, i) => {
      const sel = own && st.pt === i;
      g.append(
        s("circle", {
          class: `pt${sel ? " sel" : ""}${drawingIt && i === 0 && inst.kind === "polygon" ? " first" : ""}`,
          cx: X(p),
          cy: Y(p),
          r: (own ? 7 : 5) * k,
          fill: col,
          dataset: { ai: String(ai), key: inst.key, i: String(i) },
        }),
      );
    });
    return g;
  }

  function drawOverlay() {
    const rect = svg.getBoundingClientRect();
    k = rect.width ? VW / rect.width : 1;
    compact = rect.width > 0 && rect.width < 600;
    svg.setAttribute("viewBox", `0 0 ${VW} ${r4(VH())}`);
    const nodes = [];
    if (st.frame.url) {
      nodes.push(s("image", { href: st.frame.url, x: 0, y: 0, width: VW, height: r4(VH()), preserveAspectRatio: "none" }));
    } else {
      nodes.push(s("rect", { class: "noframe", x: 0, y: 0, width: VW, height: r4(VH()) }));
      nodes.push(s("text", { class: "note", id: "setup-noframe", x: VW / 2, y: VH() / 2, "text-anchor": "middle", "font-size": 16 * k }, st.frame.note || ""));
    }
    const bad = new Map(st.errors.filter((e) => e.key !== null).map((e) => [`${e.ai}/${e.key}`, e.msg]));
    const groups = [];
    const front = [];
    const waters = [];
    for (const { a, ai, list } of all()) {
      for (const inst of list) {
        const el = drawInstance(ai, a, inst, bad.get(`${ai}/${inst.key}`));
        (ai === st.ai && inst.key === st.key ? front : groups).push(el);
      }
      if (typeOf(a) === "flood") {
        const w = waterline(ai, a, list);
        if (w) waters.push({ ai, ...w, list });
      }
    }
    // what the camera's detector sees now; a box whose anchor is in a zone in its colour
    const { hit } = zoneHits();
    const dets = (st.preview?.detections || []).map((d, n) => {
      const [x1, y1, x2, y2] = d.box;
      const c = hit.get(n);
      const stroke = c && c !== "mask" ? c : "#ffffff";
      const g = s("g", { class: `det${c && c !== "mask" ? " hit" : ""}${c === "mask" ? " masked" : ""}` });
      g.append(
        s("rect", { class: "box", x: r4(x1 * VW), y: r4(y1 * VH()), width: r4((x2 - x1) * VW), height: r4((y2 - y1) * VH()), stroke }),
        s("text", { class: "det-lbl", x: r4(x1 * VW + (y1 * VH() < 14 * k ? 4 * k : 0)), y: r4(y1 * VH() < 14 * k ? y1 * VH() + 14 * k : y1 * VH() - 4 * k), "font-size": 11 * k }, `${d.label} ${fmtNumber(Number(d.score), { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`),
      );
      if (c && c !== "mask") g.append(s("circle", { class: "anchor", cx: r4(((x1 + x2) / 2) * VW), cy: r4(y2 * VH()), r: 3.5 * k, fill: c }));
      return g;
    });
    const water = waters.map((w) => {
      const col = colour(w.ai);
      const text = typeof w.level === "number" ? tr("setup.water", { level: tr("setup.cm", { v: fmtNumber(w.level, { maximumFractionDigits: 0, useGrouping: false }) }) }) : tr("setup.level_unknown");
      if (w.at) {
        const [cx, cy] = [w.at[0] * VW, w.at[1] * VH()];
        const [nx, ny] = [-w.dir[1], w.dir[0]];
        const half = 28 * k;
        return s(
          "g",
          { class: "water", id: "setup-water" },
          s("line", { class: "wl", x1: r4(cx - nx * half), y1: r4(cy - ny * half), x2: r4(cx + nx * half), y2: r4(cy + ny * half), stroke: col }),
          s("text", { class: "lbl", x: r4(cx - half - 6 * k), y: r4(cy + 4 * k), "font-size": 13 * k, "text-anchor": "end" }, text),
        );
      }
      const line = w.list.find((i) => i.kind === "line");
      const p = line ? pointsOf(line)[1] : null;
      return s("text", { class: "lbl", id: "setup-water", x: p ? r4(p[0] * VW + 12 * k) : 12 * k, y: p ? r4(p[1] * VH()) : 24 * k, "font-size": 13 * k }, text);
    });
    svg.replaceChildren(...nodes, ...groups, ...water, ...dets, ...front);
    svg.classList.toggle("drawing", Boolean(st.drawing));
  }

  // -- the side panel (built once; filled on every render) --

  const selAnalytic = h("select", { id: "setup-analytic", "aria-label": tr("setup.analytic_label"), onchange: (ev) => (selectAnalytic(Number(ev.target.value)), render()) });
  const selField = h("select", { id: "setup-field", "aria-label": tr("setup.field_label"), onchange: (ev) => (select(st.ai, ev.target.value), render()) });
  const addType = h("select", { id: "setup-add-type", "aria-label": tr("setup.add_type_label") }, [...plugins.values()].map((p) => h("option", { value: p.type, title: p.summary || "" }, p.type)));
  const btnAddAnalytic = h("button", { id: "setup-add-analytic", class: "secondary", onclick: () => addAnalytic(addType.value) }, tr("setup.add_analytic"));
  const btnRemoveAnalytic = h("button", { id: "setup-remove-analytic", class: "secondary", title: tr("setup.remove_analytic_title"), onclick: removeAnalytic }, tr("setup.remove"));
  const summary = h("p", { class: "muted small", id: "setup-summary" });
  const items = h("div", { class: "setup-items", id: "setup-items" });
  const props = h("div", { class: "setup-props", id: "setup-props" });
  const btnUndo = h("button", { id: "setup-undo", class: "secondary", title: tr("setup.undo_title"), onclick: undo }, tr("setup.undo"));
  const btnDelete = h("button", { id: "setup-delete", class: "secondary", title: tr("setup.delete_point_title"), onclick: () => st.pt !== null && deletePoint(st.ai, st.key, st.pt) }, tr("setup.delete_point"));
  const btnFinish = h("button", { id: "setup-finish", class: "secondary", title: tr("setup.finish_title"), onclick: finish }, tr("setup.finish"));
  const btnRedraw = h("button", { id: "setup-redraw", class: "secondary", onclick: redraw }, tr("setup.redraw"));
  const btnRemoveField = h("button", { id: "setup-remove-field", class: "secondary", onclick: removeField }, tr("setup.remove"));
  const btnFlip = h("button", { id: "setup-flip", class: "secondary", onclick: flip }, tr("setup.flip"));
  const btnDeleteItem = h("button", { id: "setup-delete-item", class: "secondary", onclick: deleteItem }, tr("setup.delete_item_plain"));
  const btnRefresh = h("button", { id: "setup-refresh", class: "secondary", title: tr("setup.refresh_title"), onclick: () => loadFrame() }, tr("setup.refresh"));
  const hint = h("p", { class: "muted small", id: "setup-hint" });
  const frameInfo = h("p", { class: "muted small", id: "setup-frame-info" });
  const sees = h("div", { id: "setup-sees" });
  const errorsList = h("ul", { id: "setup-errors", class: "setup-errors" });
  const comment = h("input", { id: "setup-comment", placeholder: tr("setup.comment_placeholder"), "aria-label": tr("setup.comment_label"), maxlength: 500 });
  const btnSave = h("button", { id: "setup-save", onclick: () => save() }, tr("setup.save"));
  const status = h("p", { id: "setup-status", role: "status", class: "muted" });
  const jsonView = h("pre", { id: "setup-json", class: "setup-json" });
  const advScope = h("select", { id: "setup-advanced-scope", "aria-label": tr("setup.adv_scope_label"), onchange: () => ((st.advDirty = false), renderAdvanced(true)) });
  const advText = h("textarea", { id: "setup-advanced", rows: 14, spellcheck: "false", "aria-label": tr("setup.adv_text_label") });
  const advError = h("p", { id: "setup-json-error", class: "error", role: "alert", hidden: true });
  const btnApply = h("button", { id: "setup-apply", class: "secondary", onclick: () => applyAdvanced() }, tr("setup.apply"));
  const version = h("p", { class: "muted", id: "setup-version" });

  // The advanced text: the chosen analytic's (or the camera's) settings without geometry,
  // which is drawn; applied back with the geometry kept as drawn.
  function stripGeometry(a) {
    const out = clone(a);
    for (const inst of instancesOf(a, pluginOf(a)).sort((x, y) => y.path.length - x.path.length)) {
      const segs = inst.g.path.split(".");
      if (segs[segs.length - 1] === "*" && inst.kind !== "segment") deleteAt(out, segs.slice(0, -1));
      else if (inst.kind === "segment") {
        const item = getAt(out, inst.path);
        if (item && typeof item === "object") {
          delete item.a;
          delete item.b;
        }
      } else deleteAt(out, inst.path);
    }
    return out;
  }
  function mergeGeometry(next, old) {
    for (const inst of instancesOf(old, pluginOf(old))) {
      const segs = inst.g.path.split(".");
      if (segs[segs.length - 1] === "*" && inst.kind !== "segment") {
        const list = segs.slice(0, -1);
        const parent = getAt(next, list.slice(0, -1));
        if (parent && typeof parent === "object" && getAt(old, list) !== undefined) parent[list[list.length - 1]] = clone(getAt(old, list));
        continue;
      }
      const parentPath = inst.kind === "segment" ? inst.path : inst.path.slice(0, -1);
      const parent = getAt(next, parentPath);
      if (!parent || typeof parent !== "object") continue;
      if (inst.kind === "segment") {
        if (inst.value?.a !== undefined) parent.a = clone(inst.value.a);
        if (inst.value?.b !== undefined) parent.b = clone(inst.value.b);
      } else if (getAt(old, inst.path) !== undefined) parent[inst.path[inst.path.length - 1]] = clone(inst.value);
    }
    return next;
  }
  function advancedSource() {
    if (advScope.value === "camera") {
      const { analytics, ...rest } = st.cfg;
      return rest;
    }
    const a = st.cfg.analytics[Number(advScope.value)];
    return a ? stripGeometry(a) : {};
  }
  function renderAdvanced(force = false) {
    const want = ["camera", ...st.cfg.analytics.map((_, i) => String(i))];
    const keep = want.includes(advScope.value) ? advScope.value : st.cfg.analytics.length ? String(st.ai) : "camera";
    advScope.replaceChildren(
      h("option", { value: "camera" }, tr("setup.adv_camera")),
      ...st.cfg.analytics.map((a, i) => h("option", { value: String(i) }, tr("setup.adv_analytic", { name: nameOf(a), type: typeOf(a) }))),
    );
    advScope.value = keep;
    if (force || (!st.advDirty && document.activeElement !== advText)) {
      advText.value = JSON.stringify(advancedSource(), null, 2);
      advError.hidden = true;
    }
  }
  function parseAdvanced() {
    try {
      const v = JSON.parse(advText.value);
      if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error(tr("setup.json_object"));
      advError.hidden = true;
      return v;
    } catch (e) {
      const m = /position (\d+)/.exec(e.message);
      const line = m ? advText.value.slice(0, Number(m[1])).split("\n").length : null;
      advError.textContent = line ? tr("setup.bad_json_line", { line, error: e.message }) : tr("setup.bad_json", { error: e.message });
      advError.hidden = false;
      return null;
    }
  }
  advText.addEventListener("input", () => {
    st.advDirty = true;
    parseAdvanced();
  });
  function applyAdvanced() {
    const v = parseAdvanced();
    if (!v) return;
    pushUndo();
    if (advScope.value === "camera") {
      st.cfg = { ...v, analytics: st.cfg.analytics };
    } else {
      const ai = Number(advScope.value);
      const old = st.cfg.analytics[ai];
      if (!v.type) v.type = typeOf(old);
      st.cfg.analytics[ai] = mergeGeometry(v, old);
      if (!plugins.has(typeOf(v))) {
        advError.textContent = tr("setup.unknown_type", { type: JSON.stringify(v.type), known: [...plugins.keys()].join(", ") });
        advError.hidden = false;
      }
    }
    st.advDirty = false;
    const inst = current();
    if (!inst) selectAnalytic(Math.min(st.ai, st.cfg.analytics.length - 1));
    render();
  }

  function propInput(ai, objPath, key, sch, defs, value) {
    const x = alternatives(sch, defs)[0] || {};
    const id = `setup-prop-${[...objPath, key].join("-")}`;
    const set = (v) => {
      pushUndo();
      const a = st.cfg.analytics[ai];
      if (v === undefined) deleteAt(a, [...objPath, key]);
      else setValue(ai, [...objPath, key], v);
      st.errors = st.errors.filter((e) => !(e.ai === ai && e.path && e.path.join(".") === [...objPath, key].join(".")));
      render();
    };
    const enumValues = x.enum || (deref(sch, defs).enum ?? null);
    let input;
    if (enumValues) {
      input = h(
        "select",
        { id, onchange: (ev) => set(ev.target.value === "" ? undefined : ev.target.value) },
        nullable(sch, defs) || value === undefined ? h("option", { value: "" }, "—") : null,
        enumValues.map((v) => h("option", { value: v, selected: v === value }, v)),
      );
    } else if (x.type === "boolean") {
      input = h("input", { id, type: "checkbox", checked: value === true, onchange: (ev) => set(ev.target.checked) });
    } else if (x.type === "number" || x.type === "integer") {
      input = h("input", {
        id,
        type: "number",
        step: "any",
        value: typeof value === "number" ? String(value) : "",
        onchange: (ev) => set(ev.target.value === "" ? undefined : Number(ev.target.value)),
      });
    } else if (x.type === "array") {
      input = h("input", {
        id,
        value: Array.isArray(value) ? value.join(", ") : "",
        placeholder: tr("setup.comma_separated"),
        onchange: (ev) => set(ev.target.value.trim() === "" ? undefined : ev.target.value.split(",").map((t) => t.trim()).filter(Boolean)),
      });
    } else {
      input = h("input", { id, value: typeof value === "string" ? value : "", onchange: (ev) => set(ev.target.value === "" ? undefined : ev.target.value) });
    }
    const d = deref(sch, defs);
    const dflt = "default" in d ? d.default : x.default;
    if (dflt !== undefined && dflt !== null && input.tagName === "INPUT" && input.type !== "checkbox") input.placeholder = Array.isArray(dflt) ? dflt.join(", ") : String(dflt);
    if (dflt === null && input.tagName === "INPUT" && input.type !== "checkbox") input.placeholder = "—";
    return h("label", { class: "prop", title: d.description || x.description || "" }, h("span", {}, key), input);
  }

  // The selected item's plain fields (a calibration mark's level, a rule's classes, a speed
  // line's distance), and the analytic's required ones: typed beside what is drawn.
  function renderProps() {
    const a = analytic();
    const inst = current();
    const out = [];
    if (a) {
      const root = schemaOf(a);
      const defs = defsOf(a);
      const geomLeaves = new Set(instancesOf(a, pluginOf(a)).map((i) => i.path[i.path.length - 1]));
      const scalar = (sch) => {
        const x = alternatives(sch, defs)[0] || {};
        return x.enum || ["string", "number", "integer", "boolean"].includes(x.type) || (x.type === "array" && deref(x.items || {}, defs).type === "string");
      };
      const objects = [];
      if (inst) {
        for (let n = 1; n < inst.path.length; n++) {
          const p = inst.path.slice(0, n);
          const v = getAt(a, p);
          if (v && typeof v === "object" && !Array.isArray(v)) objects.push(p);
        }
        if (inst.kind === "segment") objects.push(inst.path);
      }
      const rootObj = objectSchema(root, defs, a);
      const rootKeys = (rootObj?.required || []).filter((key) => key !== "type" && scalar(rootObj.properties[key]));
      if (!rootKeys.includes("name")) rootKeys.unshift("name");
      out.push(h("div", { class: "prop-group" }, h("h3", {}, tr("setup.analytic_heading", { type: typeOf(a) })), rootKeys.map((key) => propInput(st.ai, [], key, rootObj?.properties?.[key] || {}, defs, a[key]))));
      for (const p of objects) {
        const v = getAt(a, p);
        const o = objectSchema(schemaAt(root, defs, a, p), defs, v);
        if (!o) continue;
        const keys = Object.keys(o.properties).filter((key) => key !== "type" && !geomLeaves.has(key) && scalar(o.properties[key]));
        if (!keys.length && !v.type) continue;
        const head = typeof p[p.length - 1] === "number" ? `${itemKind(a, p)} ${itemName(v, p[p.length - 1])}` : String(p[p.length - 1]);
        out.push(h("div", { class: "prop-group" }, h("h3", {}, head, v.type ? h("span", { class: "muted" }, ` (${v.type})`) : null), keys.map((key) => propInput(st.ai, p, key, o.properties[key], defs, v[key]))));
      }
    }
    props.replaceChildren(...out);
  }

  function renderItems() {
    const a = analytic();
    const plugin = a ? pluginOf(a) : null;
    const out = [];
    for (const list of listsOf(plugin)) {
      const root = schemaOf(a);
      const defs = defsOf(a);
      const arr = arraySchema(schemaAt(root, defs, a, list.path), defs);
      const alts = alternatives(arr?.items || {}, defs).filter((x) => x.properties && tagOf(x) !== undefined);
      const usable = alts.filter((x) => list.geoms.some((g) => g.path.split(".").slice(list.path.length + 1)[0] in x.properties));
      if (usable.length > 1) {
        const pick = h("select", { "aria-label": `${list.label} type`, dataset: { list: list.prefix } }, usable.map((x) => h("option", { value: tagOf(x) }, tagOf(x))));
        out.push(h("span", { class: "add-item" }, pick, h("button", { class: "secondary", dataset: { list: list.prefix }, onclick: () => addItem(list, pick.value) }, `+ ${list.label}`)));
      } else {
        out.push(h("button", { class: "secondary", dataset: { list: list.prefix }, onclick: () => addItem(list) }, `+ ${list.label}`));
      }
    }
    items.replaceChildren(...out);
  }

  function renderSees() {
    const { rows } = zoneHits();
    const out = [];
    if (!st.preview) {
      out.push(h("p", { class: "muted small" }, tr("setup.no_preview")));
    } else {
      const counts = (list) => {
        const by = {};
        for (const d of list) by[d.label] = (by[d.label] || 0) + 1;
        return Object.entries(by).map(([l, n]) => `${n} ${l}`).join(", ");
      };
      const zoned = all().some(({ list }) => list.some((i) => i.kind === "polygon" && (!i.g.optional || i.value !== null)));
      if (!rows.length && zoned) out.push(h("p", { class: "muted small" }, tr("setup.no_zone")));
      out.push(
        h(
          "ul",
          { class: "sees" },
          rows.map((r) =>
            h(
              "li",
              { dataset: { ai: String(r.ai), key: r.inst.key } },
              h("span", { class: "swatch", dataset: { c: String(r.ai % PALETTE.length) } }),
              `${nameOf(st.cfg.analytics[r.ai])} · ${r.whole ? tr("setup.whole_frame") : r.inst.label}: `,
              h("strong", {}, String(r.inside.length)),
              r.inside.length ? ` (${counts(r.inside)})` : "",
              r.mask && r.inside.length ? h("span", { class: "muted" }, ` ${tr("setup.ignored")}`) : null,
            ),
          ),
        ),
      );
      for (const a of st.cfg.analytics.filter((x) => typeOf(x) === "flood")) {
        const rd = st.preview.readings?.[nameOf(a)];
        out.push(
          h(
            "p",
            { class: "small", id: `setup-reading-${nameOf(a)}` },
            `${nameOf(a)} · ${tr("setup.level_now")} `,
            h("strong", {}, rd && typeof rd.level_cm === "number" ? cm(rd.level_cm) : tr("setup.unknown")),
            rd && typeof rd.confidence === "number" ? ` (${tr("setup.confidence", { v: fmtNumber(rd.confidence, { minimumFractionDigits: 2, maximumFractionDigits: 2 }) })})` : "",
          ),
        );
      }
    }
    sees.replaceChildren(...out);
  }

  function locText(e) {
    return e.loc.length ? e.loc.join(".") : tr("setup.configuration");
  }

  function renderErrors() {
    errorsList.replaceChildren(
      ...st.errors.map((e) =>
        h(
          "li",
          {
            class: "error",
            dataset: { ai: e.ai === null ? "" : String(e.ai), key: e.key ?? "" },
            tabindex: e.key !== null ? 0 : null,
            onclick: () => {
              if (e.ai !== null && e.ai < st.cfg.analytics.length) {
                if (e.key !== null) select(e.ai, e.key);
                else selectAnalytic(e.ai);
                render();
              }
            },
          },
          h("strong", {}, e.where || locText(e)),
          `: ${e.msg}`,
        ),
      ),
    );
    errorsList.hidden = !st.errors.length;
  }

  function renderSide() {
    const a = analytic();
    selAnalytic.replaceChildren(
      ...(st.cfg.analytics.length
        ? st.cfg.analytics.map((x, i) => h("option", { value: String(i) }, `${nameOf(x)} (${typeOf(x)})${st.errors.some((e) => e.ai === i) ? " ⚠" : ""}`))
        : [h("option", { value: "" }, tr("setup.no_analytic"))]),
    );
    selAnalytic.value = a ? String(st.ai) : "";
    selAnalytic.disabled = !a;
    btnRemoveAnalytic.disabled = !a;
    const list = a ? instancesOf(a, pluginOf(a)) : [];
    selField.replaceChildren(
      ...(list.length
        ? list.map((i) =>
            h(
              "option",
              { value: i.key },
              `${i.label}${incomplete(i) ? ` (${tr(pointsOf(i, [0.5, 0.5]).length ? "setup.incomplete" : wholeFrame(a, i) ? "setup.none_whole_frame" : i.g.optional ? "setup.not_set" : "setup.to_draw")})` : ""}${st.errors.some((e) => e.ai === st.ai && e.key === i.key) ? " ⚠" : ""}`,
            ),
          )
        : [h("option", { value: "" }, a ? (pluginOf(a) ? tr("setup.nothing_to_draw") : tr("setup.unknown_type_short", { type: typeOf(a) })) : "—")]),
    );
    selField.value = st.key ?? "";
    selField.disabled = !list.length;
    const plugin = a ? pluginOf(a) : null;
    summary.textContent = plugin ? plugin.summary || "" : "";
    const inst = current();
    btnFinish.hidden = !(st.drawing && inst && inst.kind === "polygon") && !st.pending;
    btnDelete.disabled = st.pt === null || !inst || inst.kind === "vector";
    btnRedraw.hidden = !inst || inst.kind === "vector";
    btnRemoveField.hidden = !inst || !inst.g.optional || inst.value === null || inst.path.some((p) => typeof p === "number");
    btnRemoveField.textContent = inst && wholeFrame(a, inst) ? tr("setup.remove_whole_frame") : tr("setup.remove");
    btnFlip.hidden = !inst || inst.kind !== "vector" || !isPt(inst.value);
    btnDeleteItem.hidden = !inst || !itemPathOf(inst);
    if (inst && itemPathOf(inst)) {
      const ip = itemPathOf(inst);
      btnDeleteItem.textContent = tr("setup.delete_item", { item: `${itemKind(a, ip)} ${itemName(getAt(a, ip), ip[ip.length - 1])}` });
    }
    btnUndo.disabled = !st.undo.length;
    if (!a) hint.textContent = tr("setup.hint_add");
    else if (!inst) hint.textContent = list.length ? tr("setup.hint_choose") : tr("setup.hint_nothing");
    else if (st.drawing || st.pending || ((inst.kind === "point" || inst.kind === "vector") && incomplete(inst))) {
      const n = pointsOf(inst).length;
      const sofar = inst.kind === "polygon" && st.drawing ? ` ${tr("setup.points_so_far", { n })}` : "";
      hint.textContent = `${tr("setup.drawing", { label: inst.label, help: KIND_HELP(inst.kind) })}${sofar}`;
    } else {
      const how = tr(inst.kind === "point" ? "setup.how_point" : inst.kind === "vector" ? "setup.how_vector" : "setup.how_drag");
      const edge = inst.kind === "polygon" ? tr("setup.how_edge") : "";
      hint.textContent = tr("setup.hint_edit", { label: inst.label, how: how + edge });
    }
    renderItems();
    renderProps();
    renderSees();
    renderErrors();
    renderAdvanced();
    const dirty = JSON.stringify(st.cfg) !== st.saved;
    if (!st.poll && !btnSave.disabled) {
      status.textContent = dirty ? tr("setup.unsaved") : status.dataset.after || tr("setup.no_changes");
      status.className = dirty ? "warn" : status.dataset.afterClass || "muted";
    }
  }

  function render({ light = false } = {}) {
    if (st.key !== null && !current()) {
      const a = analytic();
      if (!a) st.ai = 0;
      selectAnalytic(Math.min(st.ai, Math.max(0, st.cfg.analytics.length - 1)));
    }
    drawOverlay();
    jsonView.textContent = JSON.stringify(st.cfg, null, 2);
    if (!light) renderSide();
  }

  // -- the frame and what the edge sees --

  async function loadFrame() {
    let preview = null;
    try {
      preview = await api(`/api/v1/cameras/${enc}/preview`);
    } catch (e) {
      if (e.status !== 404 && e.message === "signed out") return;
    }
    st.preview = preview;
    let r;
    try {
      r = await fetch(`/api/v1/cameras/${enc}/frame.jpg?t=${Date.now()}`, { credentials: "same-origin" });
    } catch (e) {
      r = null;
    }
    if (r && r.ok) {
      const url = URL.createObjectURL(await r.blob());
      const img = new Image();
      img.src = url;
      try {
        await img.decode();
        if (st.frame.url) URL.revokeObjectURL(st.frame.url);
        st.frame = { url, note: null };
        if (img.naturalWidth && img.naturalHeight) aspect = img.naturalHeight / img.naturalWidth;
      } catch (e) {
        URL.revokeObjectURL(url);
        st.frame = { url: null, note: tr("setup.frame_undecodable") };
      }
    } else {
      if (st.frame.url) URL.revokeObjectURL(st.frame.url);
      const why = !r ? tr("setup.frame_unreachable") : r.status === 404 ? tr("setup.no_frame_yet") : r.status === 403 ? tr("setup.frame_forbidden", { role: roleName(me.role) }) : tr("setup.no_frame_status", { status: r.status });
      st.frame = { url: null, note: why };
      if (preview && preview.width && preview.height) aspect = preview.height / preview.width;
      else aspect = 9 / 16;
    }
    const bits = [];
    if (preview?.time) bits.push(tr("setup.frame_of", { time: fmtTime(preview.time) }));
    if (preview?.width) bits.push(`${preview.width}×${preview.height}`);
    if (preview) bits.push(tr("setup.n_detections", { n: (preview.detections || []).length }));
    if (preview?.config_version) bits.push(tr("setup.seen_with", { version: preview.config_version.slice(0, 8) }));
    frameInfo.textContent = bits.join(" · ") || (st.frame.url ? tr("setup.frame_no_detections") : "");
    if (document.body.contains(svg)) {
      drawOverlay(); // not the side panel: a field being typed in keeps its text
      renderSees();
    }
  }

  // -- saving, and following the edge --

  function mapError(err) {
    const loc = normalLoc(err.loc);
    const e = { loc, msg: String(err.msg ?? err.message ?? err), ai: null, key: null, path: null, where: null };
    e.msg = e.msg.replace(/^Value error, /, "");
    if (loc[0] !== "analytics" || typeof loc[1] !== "number" || !st.cfg.analytics[loc[1]]) return e;
    const ai = loc[1];
    const a = st.cfg.analytics[ai];
    const rest = cleanPath(a, loc.slice(2));
    e.ai = ai;
    e.path = rest;
    const list = instancesOf(a, pluginOf(a));
    const str = rest.join(".");
    // the geometry at, inside or holding the location (a point of a zone, a counting line)
    let best = null;
    for (const inst of list) {
      const k2 = inst.key;
      if (str === k2 || str.startsWith(k2 + ".")) {
        if (!best || k2.length > best.key.length) best = inst;
      }
    }
    if (!best && rest.length) best = list.find((inst) => inst.key.startsWith(str + ".") && inst.kind !== "vector") || null;
    if (!best) {
      // a model-level message naming the field ("zone: …", "lines.north_in.direction: …")
      const m = /^([A-Za-z0-9_.\-]+)[: ]/.exec(e.msg);
      if (m) {
        const named = m[1].split(".");
        const resolved = [...rest];
        let cur = getAt(a, rest);
        for (const seg of named) {
          if (Array.isArray(cur)) {
            const n = cur.findIndex((x) => x && (x.name === seg || x.type === seg));
            if (n < 0) break;
            resolved.push(n);
            cur = cur[n];
          } else if (cur && typeof cur === "object" && seg in cur) {
            resolved.push(seg);
            cur = cur[seg];
          } else break;
        }
        const rs = resolved.join(".");
        if (resolved.length > rest.length) best = list.find((inst) => inst.key === rs) || list.find((inst) => rs.startsWith(inst.key + ".")) || list.find((inst) => inst.key.startsWith(rs + ".")) || null;
      }
    }
    if (best) {
      e.key = best.key;
      e.where = `${nameOf(a)} · ${best.label}`;
    } else {
      e.where = `${nameOf(a)}${rest.length ? " · " + rest.join(".") : ""}`;
    }
    return e;
  }

  async function send(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    if (me && me.csrf_token) headers["X-CSRF-Token"] = me.csrf_token;
    const r = await fetch(path, { method, headers, body: JSON.stringify(body), credentials: "same-origin" });
    if (r.status === 401) {
      location.assign(`/login?next=${encodeURIComponent("/ui" + location.hash)}`);
      throw new Error("signed out");
    }
    const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
    return { status: r.status, ok: r.ok, data };
  }

  function errorsOf(data, code) {
    const d = data?.errors ?? data?.detail?.errors ?? data?.detail;
    if (Array.isArray(d)) return d;
    if (typeof d === "string") return [{ loc: [], msg: d }];
    return [{ loc: [], msg: tr("setup.hub_answered", { status: code }) }];
  }

  async function save() {
    if (st.advDirty) {
      advError.textContent = tr("setup.adv_not_applied");
      advError.hidden = false;
      advText.closest("details").open = true;
      return;
    }
    btnSave.disabled = true;
    stopPoll();
    status.dataset.state = "saving";
    status.className = "muted";
    status.textContent = tr("setup.saving");
    let res;
    try {
      res = await send("PUT", `/api/v1/cameras/${enc}/config`, { site: doc.site, edge_id: doc.edge_id, config: st.cfg, comment: comment.value.trim() || null });
    } catch (e) {
      btnSave.disabled = false;
      status.className = "error";
      status.textContent = tr("setup.could_not_save", { error: e.message });
      return;
    }
    btnSave.disabled = false;
    if (res.status === 422 || res.status === 400) {
      st.errors = errorsOf(res.data, res.status).map(mapError);
      const first = st.errors.find((e) => e.key !== null);
      if (first && first.ai !== null) {
        st.ai = first.ai;
        st.key = first.key;
        st.drawing = null;
        st.pt = null;
      }
      status.dataset.after = "";
      render();
      status.className = "error";
      status.textContent = tr("setup.not_saved", { n: st.errors.length });
      return;
    }
    if (!res.ok) {
      status.className = "error";
      const d = res.data?.detail;
      status.textContent = tr("setup.could_not_save", { error: typeof d === "string" ? d : `HTTP ${res.status}` });
      return;
    }
    const out = res.data || {};
    st.errors = [];
    st.saved = JSON.stringify(st.cfg);
    comment.value = "";
    if (out.version !== undefined) st.version = out.version;
    if (out.config_version) st.configVersion = out.config_version;
    renderVersion();
    render();
    follow(st.configVersion, out.changed === false ? "setup.unchanged_version" : "setup.saved_version");
  }

  function stopPoll() {
    if (st.poll) clearTimeout(st.poll);
    st.poll = null;
  }

  function follow(wanted, what) {
    const started = Date.now();
    status.dataset.state = "waiting";
    const saved = tr(what, { version: String(st.version ?? "?"), config: String(wanted ?? "").slice(0, 8) });
    status.className = "muted";
    status.textContent = `${saved} ${tr("setup.waiting_edge", { edge: doc.edge_id })}`;
    const tick = async () => {
      st.poll = null;
      if (!document.body.contains(status)) return;
      let cam = null;
      try {
        const page = await api(`/api/v1/cameras?edge=${encodeURIComponent(doc.edge_id)}&limit=1000`);
        cam = page.items.find((c) => c.camera_id === cameraId && c.site === doc.site) || page.items.find((c) => c.camera_id === cameraId) || null;
      } catch (e) {
        if (e.message === "signed out") return;
      }
      if (!document.body.contains(status)) return;
      const want = cam?.config_version_wanted ?? wanted;
      if (cam && cam.config_version && cam.config_version === want) {
        status.className = "ok";
        status.dataset.state = "running";
        status.textContent = `${saved} ${tr("setup.running_on", { edge: doc.edge_id })}`;
        status.dataset.after = status.textContent;
        status.dataset.afterClass = "ok";
        doc.running = true;
        renderVersion(cam);
        return;
      }
      if (cam && cam.config_error) {
        // the edge names the key path ("analytics.1.lines.0.direction: …"): shown there too
        const m = /^([A-Za-z0-9_.\-]+): (.+)$/s.exec(cam.config_error);
        if (m && m[1].startsWith("analytics.")) {
          const e = mapError({ loc: m[1], msg: tr("setup.refused_msg", { error: m[2] }) });
          st.errors = [...st.errors.filter((x) => !x.edge), { ...e, edge: true }];
          render();
        }
        status.className = "error";
        status.dataset.state = "refused";
        status.textContent = `${saved} ${tr("setup.refused", { error: cam.config_error })}`;
        status.dataset.after = status.textContent;
        status.dataset.afterClass = "error";
        renderVersion(cam);
        return;
      }
      if (Date.now() - started > POLL_FOR_MS) {
        status.className = "warn";
        status.dataset.state = "waiting";
        status.textContent = `${saved} ${tr("setup.not_applied_yet", { state: cam ? tr(`states.${cam.state}`, {}, { fallback: cam.state }) : tr("setup.not_reporting") })}`;
        status.dataset.after = status.textContent;
        status.dataset.afterClass = "warn";
        return;
      }
      status.dataset.state = "waiting";
      st.poll = setTimeout(tick, POLL_MS);
    };
    st.poll = setTimeout(tick, 300);
  }

  function renderVersion(cam = null) {
    const bits = [`${doc.site} / ${doc.edge_id}`];
    bits.push(st.version !== null && st.version !== undefined ? tr("setup.version", { version: String(st.version) }) : tr("setup.no_config"));
    if (st.configVersion) bits.push(tr("setup.config", { config: String(st.configVersion).slice(0, 8) }));
    const running = cam ? cam.config_version : doc.running;
    if (typeof running === "string") bits.push(running === st.configVersion ? tr("setup.running") : tr("setup.edge_runs", { config: running.slice(0, 8) }));
    else if (st.configVersion && running === null) bits.push(tr("setup.not_reported"));
    else if (running === true) bits.push(tr("setup.running"));
    else if (running === false) bits.push(tr("setup.not_running"));
    version.replaceChildren(bits.join(" · "), " ", h("a", { href: `/api/v1/cameras/${enc}/config/history`, target: "_blank", rel: "noopener" }, tr("setup.history")));
  }

  // -- the page --

  const stage = h(
    "div",
    { class: "setup-stage" },
    h("div", { class: "setup-canvas-wrap" }, svg),
    h("div", { class: "setup-tools" }, btnUndo, btnDelete, btnFinish, btnRedraw, btnRemoveField, btnFlip, btnDeleteItem, btnRefresh),
    hint,
    frameInfo,
  );
  const side = h(
    "aside",
    { class: "setup-side" },
    h("div", { class: "row" }, h("label", { class: "grow" }, h("span", {}, tr("setup.analytic")), selAnalytic), btnRemoveAnalytic),
    summary,
    h("div", { class: "row" }, h("span", {}, tr("setup.new")), addType, btnAddAnalytic),
    h("label", { class: "row" }, h("span", {}, tr("setup.draw")), selField),
    errorsList,
    items,
    props,
    h("h2", {}, tr("setup.sees_now")),
    sees,
    h("div", { class: "setup-save" }, comment, btnSave, status),
    h("details", { class: "setup-advanced" }, h("summary", {}, tr("setup.advanced")), h("p", { class: "muted small" }, tr("setup.advanced_intro")), advScope, advText, advError, btnApply),
    h("details", { class: "setup-json-box" }, h("summary", {}, tr("setup.json_view")), jsonView),
  );
  if (doc.fresh) status.dataset.after = tr("setup.fresh");
  renderVersion();
  selectAnalytic(0);
  show(back, title, version, h("div", { class: "setup" }, stage, side));
  const ro = new ResizeObserver(() => document.body.contains(svg) && drawOverlay());
  ro.observe(svg);
  render();
  await loadFrame();
  if (doc.config_version && doc.running !== doc.config_version) follow(doc.config_version, "setup.version_of");
  // the detections move: a fresh frame and preview every 15 s while nothing is being dragged
  const refresh = setInterval(() => {
    if (!document.body.contains(svg)) {
      clearInterval(refresh);
      ro.disconnect();
      return;
    }
    if (!st.drag) loadFrame();
  }, 15000);
}
