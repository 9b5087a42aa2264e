// The page: state kept in the URL (so a view can be bookmarked, shared and reloaded), the top
// bar (database, time range, refresh, theme), the tag filters, and the router that draws the
// overview, the explorer or a custom dashboard.
//
// Every time panels are drawn is a "render pass". When all panels of a pass have answered,
// <body> gets data-ready="true" and data-render-seq=<n>, and window.tallyTiming records when
// the pass started and when it was fully drawn; the browser tests and the benchmark read them.

import { allSeries, runQuery } from "./api.js";
import { renderDashboards } from "./dashboards.js";
import { renderExplorer } from "./explorer.js";
import { OVERVIEW_SECTIONS } from "./overview.js";
import { createPanelElement, loadPanel } from "./panels.js";
import { RELATIVE_PRESETS, describeRange, isValidBound, resolveRange } from "./time.js";

/** The filters shown above every view, and the tag keys each one applies through. */
const FILTER_KEYS = { host: ["host"], gpu: ["gpu", "index"], model: ["model"], provider: ["provider"] };
const REFRESH_CHOICES = ["off", "5s", "10s", "30s", "1m", "5m", "15m"];
const DEFAULT_RANGE = { from: "now-1h", to: "now" };

const state = {
  view: "overview",
  dashboardId: null,
  db: "",
  from: DEFAULT_RANGE.from,
  to: DEFAULT_RANGE.to,
  refresh: "off",
  filters: { host: "", gpu: "", model: "", provider: "" },
  query: "",
};

const catalog = { db: null, databases: [], measurements: new Set(), tagKeys: new Map(), filterValues: {} };
let renderSeq = 0;
let currentPass = null;
let refreshTimer = null;

const $ = (selector) => document.querySelector(selector);

function readUrl() {
  const hash = location.hash.replace(/^#/, "") || "/overview";
  const [path, search = ""] = hash.split("?");
  const params = new URLSearchParams(search);
  const parts = path.split("/").filter(Boolean);
  state.view = parts[0] || "overview";
  state.dashboardId = state.view === "dashboards" && parts[1] ? decodeURIComponent(parts[1]) : null;
  state.db = params.get("db") || state.db;
  state.from = params.get("from") || DEFAULT_RANGE.from;
  state.to = params.get("to") || DEFAULT_RANGE.to;
  if (!isValidBound(state.from) || !isValidBound(state.to)) {
    state.from = DEFAULT_RANGE.from;
    state.to = DEFAULT_RANGE.to;
  }
  state.refresh = REFRESH_CHOICES.includes(params.get("refresh")) ? params.get("refresh") : "off";
  for (const key of Object.keys(state.filters)) state.filters[key] = params.get(key) || "";
  state.query = params.get("q") || "";
}

function urlFor(overrides = {}) {
  const next = { ...state, ...overrides, filters: { ...state.filters, ...(overrides.filters || {}) } };
  const path = next.view === "dashboards" && next.dashboardId ? `/dashboards/${encodeURIComponent(next.dashboardId)}` : `/${next.view}`;
  const params = new URLSearchParams();
  if (next.db) params.set("db", next.db);
  if (next.from !== DEFAULT_RANGE.from || next.to !== DEFAULT_RANGE.to) {
    params.set("from", String(next.from));
    params.set("to", String(next.to));
  }
  if (next.refresh !== "off") params.set("refresh", next.refresh);
  for (const [key, value] of Object.entries(next.filters)) if (value) params.set(key, value);
  if (next.view === "explore" && next.query) params.set("q", next.query);
  const search = params.toString();
  return `#${path}${search ? `?${search}` : ""}`;
}

/** Changes the state (and the URL); `push` makes a history entry (Back undoes a zoom). */
export function navigate(overrides, { push = true, render: shouldRender = true } = {}) {
  const url = urlFor(overrides);
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
  readUrl();
  syncControls();
  if (shouldRender) render();
}

function syncControls() {
  $("#time-button-label").textContent = describeRange(state);
  $("#time-from").value = String(state.from).match(/^\d+$/) ? new Date(Number(state.from)).toISOString() : state.from;
  $("#time-to").value = String(state.to).match(/^\d+$/) ? new Date(Number(state.to)).toISOString() : state.to;
  $("#refresh").value = state.refresh;
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === state.view);
    link.href = urlFor({ view: link.dataset.nav, dashboardId: null });
  }
  for (const [key, select] of Object.entries(filterSelects)) select.value = state.filters[key];
  scheduleRefresh();
}

async function loadCatalog(force = false) {
  if (!force && catalog.db === state.db && catalog.databases.length) return;
  const databases = allSeries(await runQuery("SHOW DATABASES")).flatMap((s) => (s.values || []).map((row) => row[0]));
  catalog.databases = databases;
  if (!state.db || !databases.includes(state.db)) {
    const fallback = databases.includes("telemetry") ? "telemetry" : databases[0] || "";
    if (fallback !== state.db) navigate({ db: fallback }, { push: false, render: false });
  }
  const select = $("#database");
  select.replaceChildren(
    ...(databases.length ? databases : [""]).map((name) => new Option(name || "(no databases yet)", name)),
  );
  select.value = state.db;
  catalog.db = state.db;
  catalog.measurements = new Set();
  catalog.tagKeys = new Map();
  catalog.filterValues = {};
  if (!state.db) return;
  const keys = Object.values(FILTER_KEYS).flat().map((key) => `"${key}"`).join(", ");
  const results = await runQuery(`SHOW MEASUREMENTS; SHOW TAG KEYS; SHOW TAG VALUES WITH KEY IN (${keys})`, { db: state.db });
  for (const s of results[0]?.series || []) for (const row of s.values || []) catalog.measurements.add(row[0]);
  for (const s of results[1]?.series || []) catalog.tagKeys.set(s.name, new Set((s.values || []).map((row) => row[0])));
  for (const [filter, tagKeys] of Object.entries(FILTER_KEYS)) {
    const values = new Set();
    for (const s of results[2]?.series || []) {
      for (const [key, value] of s.values || []) if (tagKeys.includes(key)) values.add(value);
    }
    catalog.filterValues[filter] = Array.from(values).sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  }
  for (const [filter, select] of Object.entries(filterSelects)) {
    const values = catalog.filterValues[filter] || [];
    const current = state.filters[filter];
    if (current && !values.includes(current)) values.unshift(current);
    select.replaceChildren(new Option(`All`, ""), ...values.map((v) => new Option(v, v)));
    select.value = current;
    select.closest("label").classList.toggle("unused", values.length === 0);
  }
}

/** What panels need to load: database, range, filters, catalog, abort signal, zoom. */
export function panelContext(signal) {
  return {
    db: state.db,
    range: resolveRange(state),
    filters: { ...state.filters },
    filterKeys: FILTER_KEYS,
    tagKeys: catalog.tagKeys,
    measurements: catalog.measurements,
    signal,
    onZoom: (fromMs, toMs) => navigate({ from: String(fromMs), to: String(toMs) }),
  };
}

/** Loads every panel element of `entries` ([element, definition]) as one render pass. */
export async function loadPanels(entries, pass) {
  const context = panelContext(pass.controller.signal);
  await Promise.all(entries.map(([element, definition]) => loadPanel(element, definition, context)));
}

function beginPass() {
  if (currentPass) currentPass.controller.abort();
  renderSeq += 1;
  const pass = { seq: renderSeq, controller: new AbortController(), startedAt: performance.now() };
  currentPass = pass;
  document.body.dataset.ready = "false";
  return pass;
}

function finishPass(pass) {
  if (currentPass !== pass) return;
  document.body.dataset.ready = "true";
  document.body.dataset.renderSeq = String(pass.seq);
  window.tallyTiming = { seq: pass.seq, startedAt: pass.startedAt, drawnAt: performance.now() };
}

function renderOverview(view, pass, { refreshOnly }) {
  if (!refreshOnly || !view.querySelector(".overview")) {
    const root = document.createElement("div");
    root.className = "overview";
    if (!catalog.db) {
      root.append(notice("No data yet", "This tallyd has no databases. Write points to /write (see docs/dashboard.md) or start the samplers; the overview fills in by itself."));
    } else if (!OVERVIEW_SECTIONS.some((s) => s.panels.some((p) => p.sources.some((src) => catalog.measurements.has(src.measurement))))) {
      root.append(notice(`Database “${state.db}” has none of the measurements the overview reads`, "Pick another database above, or see docs/dashboard.md for the measurements each panel reads."));
    }
    for (const section of OVERVIEW_SECTIONS) {
      const block = document.createElement("div");
      block.className = `section ${section.className || ""}`;
      const heading = document.createElement("h2");
      heading.textContent = section.title;
      const grid = document.createElement("div");
      grid.className = section.className === "stats" ? "grid grid-stats" : "grid";
      for (const definition of section.panels) grid.append(createPanelElement(definition));
      block.append(heading, grid);
      root.append(block);
    }
    view.replaceChildren(root);
  }
  const definitions = new Map(OVERVIEW_SECTIONS.flatMap((s) => s.panels).map((d) => [d.id, d]));
  const entries = Array.from(view.querySelectorAll(".panel")).map((element) => [element, definitions.get(element.dataset.panelId)]);
  return loadPanels(entries, pass);
}

function notice(title, text) {
  const box = document.createElement("div");
  box.className = "notice";
  const strong = document.createElement("strong");
  strong.textContent = title;
  const paragraph = document.createElement("p");
  paragraph.textContent = text;
  box.append(strong, paragraph);
  return box;
}

/** Draws the current view. `refreshOnly` keeps the layout and reloads the data. */
export async function render({ refreshOnly = false } = {}) {
  const pass = beginPass();
  const view = $("#view");
  try {
    if (!refreshOnly) await loadCatalog();
    if (currentPass !== pass) return;
    document.body.dataset.view = state.view;
    if (state.view === "explore") await renderExplorer(view, app, { refreshOnly });
    else if (state.view === "dashboards") await renderDashboards(view, app, { refreshOnly });
    else await renderOverview(view, pass, { refreshOnly });
  } catch (error) {
    if (error.name !== "AbortError") {
      view.replaceChildren(notice("Cannot reach tallyd", String(error.message || error)));
    }
  }
  finishPass(pass);
}

/**
 * What the views use. `pass` is always the current render pass, so a handler attached during
 * an earlier pass (a button of the explorer or of the dashboard editor) loads with a signal
 * that is still live.
 */
const app = {
  state,
  catalog,
  navigate,
  loadPanels,
  render,
  panelContext,
  get pass() {
    return currentPass;
  },
};

function scheduleRefresh() {
  if (refreshTimer) clearInterval(refreshTimer);
  refreshTimer = null;
  const match = /^(\d+)([sm])$/.exec(state.refresh);
  if (!match) return;
  const ms = Number(match[1]) * (match[2] === "m" ? 60_000 : 1000);
  refreshTimer = setInterval(() => {
    // An absolute range does not move: refreshing it would redraw the same thing.
    if (document.visibilityState === "visible" && (String(state.to).startsWith("now") || String(state.from).startsWith("now"))) {
      render({ refreshOnly: true });
    }
  }, ms);
}

const filterSelects = {};

function buildControls() {
  const menu = $("#time-menu");
  const presets = $("#time-presets");
  for (const [from, label] of RELATIVE_PRESETS) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    button.dataset.from = from;
    button.addEventListener("click", () => {
      menu.hidden = true;
      navigate({ from, to: "now" });
    });
    presets.append(button);
  }
  $("#time-button").addEventListener("click", () => {
    menu.hidden = !menu.hidden;
  });
  document.addEventListener("click", (event) => {
    if (!menu.hidden && !event.target.closest(".time-picker")) menu.hidden = true;
  });
  $("#time-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const read = (text) => {
      const trimmed = text.trim();
      if (trimmed === "now" || /^now-\d+[smhdw]$/.test(trimmed)) return trimmed;
      const ms = Date.parse(trimmed);
      return Number.isNaN(ms) ? null : String(ms);
    };
    const from = read($("#time-from").value);
    const to = read($("#time-to").value);
    const error = $("#time-error");
    if (from === null || to === null) {
      error.textContent = "Write now, now-6h, or a time such as 2026-11-30 14:00 (local) or 2026-11-30T14:00:00Z.";
      return;
    }
    if (resolveRange({ from, to }).fromMs >= resolveRange({ from, to }).toMs) {
      error.textContent = "The start must be before the end.";
      return;
    }
    error.textContent = "";
    menu.hidden = true;
    navigate({ from, to });
  });
  $("#zoom-out").addEventListener("click", () => {
    const { fromMs, toMs } = resolveRange(state);
    const half = (toMs - fromMs) / 2;
    const now = Date.now();
    const to = Math.min(now, toMs + half);
    navigate({ from: String(Math.round(fromMs - half)), to: to === now ? "now" : String(Math.round(to)) });
  });
  $("#database").addEventListener("change", (event) => {
    const filters = Object.fromEntries(Object.keys(state.filters).map((k) => [k, ""]));
    navigate({ db: event.target.value, filters });
  });
  const refresh = $("#refresh");
  refresh.replaceChildren(...REFRESH_CHOICES.map((c) => new Option(c === "off" ? "Off" : `Every ${c}`, c)));
  refresh.addEventListener("change", (event) => navigate({ refresh: event.target.value }, { push: false, render: false }));
  $("#reload").addEventListener("click", async () => {
    catalog.db = null;
    render();
  });
  const filters = $("#filters");
  for (const key of Object.keys(FILTER_KEYS)) {
    const label = document.createElement("label");
    label.className = "filter";
    label.append(document.createTextNode(key));
    const select = document.createElement("select");
    select.id = `filter-${key}`;
    select.name = key;
    select.addEventListener("change", (event) => navigate({ filters: { [key]: event.target.value } }));
    label.append(select);
    filters.append(label);
    filterSelects[key] = select;
  }
  $("#theme").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    setTheme(next);
    localStorage.setItem("tally-theme", next);
    render();
  });
}

function setTheme(theme) {
  document.documentElement.dataset.theme = theme;
  $("#theme").textContent = theme === "dark" ? "☀" : "☾";
  $("#theme").title = theme === "dark" ? "Light colours" : "Dark colours";
}

function start() {
  const saved = localStorage.getItem("tally-theme");
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const prefersDark = window.matchMedia("(prefers-color-scheme: dark)").matches;
  setTheme(params.get("theme") || saved || (prefersDark ? "dark" : "light"));
  buildControls();
  readUrl();
  syncControls();
  window.addEventListener("popstate", () => {
    readUrl();
    syncControls();
    render();
  });
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => render({ refreshOnly: true }), 300);
  });
  render();
}

start();
