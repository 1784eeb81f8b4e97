// tastebud page: plain JavaScript against the service's JSON endpoints (no build step, no CDN).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { models: [], model: null, history: [], mode: null, user: null, titles: new Map(), seq: 0 };
// every request that fills the recommendations list takes a number; an answer to an older one is dropped
const ticket = () => ++state.seq;
const stale = (t) => t !== state.seq;

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const kid of kids) e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return e;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({ detail: r.statusText }));
  if (!r.ok) throw new Error(data.detail || r.statusText);
  return data;
}

function q(params) {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) s.set(k, v);
  return s.toString();
}

function remember(ids, metadata) {
  (ids || []).forEach((id, j) => {
    const m = metadata && metadata[j];
    if (id !== null && m && (m.title || m.name)) state.titles.set(String(id), m.title || m.name);
  });
}

const titleOf = (id) => state.titles.get(String(id)) || `item ${id}`;
const current = () => state.models.find((m) => m.name === state.model) || {};
const can = (cap) => (current().capabilities || []).includes(cap);

function metaText(m) {
  if (!m) return "";
  const parts = [];
  for (const [k, v] of Object.entries(m)) {
    if (k === "title" || k === "name" || k === "url" || v === null || v === "") continue;
    parts.push(Array.isArray(v) ? v.join(", ") : String(v));
    if (parts.length >= 2) break;
  }
  return parts.join(" · ");
}

function reasonOf(ex) {
  if (!ex) return null;
  const fmt = (x) => (x >= 0 ? "+" : "") + x.toFixed(3);
  switch (ex.kind) {
    case "contributions": {
      const pos = ex.top.filter((c) => c.value > 0).slice(0, 3);
      if (!pos.length) return "no history item pulls this up";
      return "because of " + pos.map((c) => `${titleOf(c.item)} (${fmt(c.value)})`).join(" · ");
    }
    case "similar":
      return "like " + ex.top.slice(0, 3).map((c) => `${titleOf(c.item)} (${c.similarity.toFixed(2)})`).join(" · ");
    case "rule":
      if (!ex.rule) return "popular (no rule fires)";
      return `rule {${ex.rule.antecedent.map(titleOf).join(", ")}} → ${titleOf(ex.rule.consequent)} ` +
        `(confidence ${ex.rule.confidence.toFixed(2)}, lift ${ex.rule.lift.toFixed(2)})`;
    case "attention":
      return "attended to " + ex.top.slice(0, 3).map((c) => `${titleOf(c.item)} ${(100 * c.weight).toFixed(0)}%`).join(" · ");
    case "terms":
      return "largest terms: " + ex.pairwise.slice(0, 2).map((t) => `${t.features.join(" × ")} (${fmt(t.value)})`).join(" · ");
    default:
      return ex.reason || null;
  }
}

function renderList(target, data, opts = {}) {
  const ol = $(target);
  ol.replaceChildren();
  ol.dataset.for = opts.tag || "";  // what this list answers (tests and scripts wait on it)
  remember(data.items, data.metadata);
  for (const [id, t] of Object.entries(data.titles || {})) state.titles.set(id, t);
  (data.items || []).forEach((id, j) => {
    if (id === null) return;
    const m = data.metadata ? data.metadata[j] : null;
    const li = el("li", { "data-item": String(id) },
      el("span", { class: "title", title: `item ${id}`, onclick: () => showSimilar(id) }, titleOf(id)),
      el("span", { class: "meta" }, metaText(m)),
      el("span", { class: "score" }, data.scores[j] === null ? "" : Number(data.scores[j]).toFixed(3)));
    const ex = data.explanations ? data.explanations[j] : null;
    const why = reasonOf(ex);
    if (why) li.append(el("span", { class: "reason" }, why));
    if (opts.add) li.append(" ", el("button", { class: "small", type: "button", onclick: () => addItem(id) }, "+ add"));
    ol.append(li);
  });
}

function status(msg, error = false) {
  $("status").textContent = msg || "";
  $("status").className = error ? "error" : "muted";
}

async function refresh() {
  if (state.mode === "user") return recommendUser(state.user);
  if (state.mode === "history") return recommendHistory();
}

async function recommendUser(user) {
  state.mode = "user"; state.user = user;
  const t = ticket();
  $("recs-title").textContent = `Recommendations for user ${user}`;
  try {
    const data = await api(`/recommend/${encodeURIComponent(user)}?` +
      q({ k: 10, model: state.model, explain: $("explain").checked }));
    if (stale(t)) return;
    renderList("recs", data, { tag: `user:${user}:${state.model}` });
    status(`${data.model} v${data.version}` + (data.source ? ` · from ${data.source}` : ""));
  } catch (e) { if (!stale(t)) { $("recs").replaceChildren(); status(e.message, true); } }
}

async function recommendHistory() {
  state.mode = "history";
  const t = ticket();
  const tag = `history:${state.history.length}:${state.model}`;
  $("recs-title").textContent = `Recommendations after ${state.history.length} item(s)`;
  if (!state.history.length) { $("recs").replaceChildren(); status("add items to the history"); return; }
  if (!can("history")) { status(`${state.model} cannot recommend for a new history; pick another model`, true); }
  else {
    try {
      const data = await api("/recommend_for_history",
        { items: state.history, k: 10, model: state.model, explain: $("explain").checked });
      if (stale(t)) return;
      renderList("recs", data, { tag });
      status(`${data.model} v${data.version}`);
    } catch (e) { if (!stale(t)) { $("recs").replaceChildren(); status(e.message, true); } }
  }
  const rulesModel = can("rules") ? current() : state.models.find((m) => (m.capabilities || []).includes("rules"));
  $("rules-card").hidden = !rulesModel;
  if (rulesModel) {
    try {
      const r = await api("/rules", { basket: state.history, k: 5, model: rulesModel.name, explain: true });
      if (stale(t)) return;
      renderList("rules", r, { tag });
    } catch (e) { $("rules").replaceChildren(el("li", { class: "error" }, e.message)); }
  }
}

async function showSimilar(id) {
  $("similar-title").textContent = `Similar to ${titleOf(id)}`;
  try {
    const data = await api(`/similar/${encodeURIComponent(id)}?` + q({ k: 8, model: state.model }));
    renderList("similar", data, { add: true, tag: `similar:${id}` });
  } catch (e) { $("similar").replaceChildren(el("li", { class: "error" }, e.message)); }
}

function renderHistory() {
  $("history").replaceChildren(...state.history.map((id, j) => el("li", { "data-item": String(id) }, titleOf(id),
    el("button", { type: "button", title: "remove", onclick: () => { state.history.splice(j, 1); renderHistory(); recommendHistory(); } }, "×"))));
}

function addItem(id) {
  state.history.push(id);
  renderHistory();
  recommendHistory();
}

let searchTimer = null;
async function search() {
  const text = $("search").value.trim();
  const ul = $("search-results");
  if (!text) { ul.replaceChildren(); return; }
  try {
    const data = await api("/items/search?" + q({ q: text, limit: 15, model: state.model }));
    ul.replaceChildren(...data.results.map((r) => {
      if (r.title || r.name) state.titles.set(String(r.item), r.title || r.name);
      const { item, ...meta } = r;
      return el("li", { "data-item": String(item) },
        el("span", {}, titleOf(item), el("span", { class: "meta" }, metaText(meta))),
        el("button", { class: "small", type: "button", onclick: () => addItem(item) }, "+ add"));
    }));
    if (!data.results.length) ul.replaceChildren(el("li", { class: "muted" }, "no match"));
  } catch (e) { ul.replaceChildren(el("li", { class: "error" }, e.message)); }
}

async function init() {
  try {
    const data = await api("/models");
    state.models = data.models;
    state.model = data.default;
    $("model").replaceChildren(...data.models.map((m) =>
      el("option", { value: m.name }, `${m.name} (${m.class}, v${m.version})`)));
    $("model").value = state.model;
    const fails = data.failed.length ? ` · ${data.failed.length} model file(s) failed to load` : "";
    $("model-info").textContent = `${data.models.length} model(s)${fails}`;
    $("rules-card").hidden = !data.models.some((m) => (m.capabilities || []).includes("rules"));
  } catch (e) { status(e.message, true); }
  $("model").addEventListener("change", () => { state.model = $("model").value; refresh(); });
  $("explain").addEventListener("change", refresh);
  $("user-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const u = $("user").value.trim();
    if (u) recommendUser(u);
  });
  $("search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(search, 200); });
  $("clear").addEventListener("click", () => { state.history = []; renderHistory(); recommendHistory(); });
  document.body.dataset.ready = "1";
}

init();
