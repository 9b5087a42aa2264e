// Talking to tallyd: /query (InfluxDB 1.x JSON), /api/v1/complete and /api/v1/dashboards.

/** An answer that is not what was asked for: an HTTP error, or a query that does not parse. */
export class ApiError extends Error {
  constructor(message, { status = 0, rendered = null, position = null, body = null } = {}) {
    super(message);
    this.status = status;
    this.rendered = rendered;
    this.position = position;
    this.body = body;
  }
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(`tallyd answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`, {
      status: response.status,
    });
  }
}

/**
 * Runs `q` (one or more statements) on database `db`; times come back as milliseconds.
 * Resolves to the `results` array; a query that does not parse rejects with an ApiError
 * carrying `rendered` (the query with a caret under the error) and `position`.
 */
export async function runQuery(q, { db = "", signal } = {}) {
  const params = new URLSearchParams({ q, epoch: "ms" });
  if (db) params.set("db", db);
  const response = await fetch(`/query?${params}`, { signal });
  const body = await readJson(response);
  if (!response.ok) {
    throw new ApiError(body?.error || `query failed with HTTP ${response.status}`, {
      status: response.status,
      rendered: body?.rendered ?? null,
      position: body?.position ?? null,
      body,
    });
  }
  return body?.results || [];
}

/** The same query as CSV text, as InfluxDB writes it. */
export async function runQueryCsv(q, { db = "" } = {}) {
  const params = new URLSearchParams({ q, epoch: "ms" });
  if (db) params.set("db", db);
  const response = await fetch(`/query?${params}`, { headers: { Accept: "application/csv" } });
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try {
      message = JSON.parse(text).error || text;
    } catch {
      // Not JSON: the text is the message.
    }
    throw new ApiError(message, { status: response.status });
  }
  return text;
}

/** Every series of every statement, each with its statement's index. */
export function allSeries(results) {
  const series = [];
  results.forEach((result, statementIndex) => {
    for (const one of result.series || []) series.push({ ...one, statementIndex });
  });
  return series;
}

/** The statement errors of a result list. */
export function statementErrors(results) {
  return results.filter((r) => r.error).map((r) => r.error);
}

/** The first column of every row of every series of a SHOW answer. */
export function firstColumn(results) {
  const names = [];
  for (const series of allSeries(results)) {
    for (const row of series.values || []) names.push(row[0]);
  }
  return names;
}

/** Completion at `cursor` (UTF-16 units) of `q`. */
export async function complete(q, cursor, db, signal) {
  const params = new URLSearchParams({ q, cursor: String(cursor) });
  if (db) params.set("db", db);
  const response = await fetch(`/api/v1/complete?${params}`, { signal });
  const body = await readJson(response);
  if (!response.ok) throw new ApiError(body?.error || `HTTP ${response.status}`, { status: response.status });
  return body;
}

async function dashboardsCall(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(`/api/v1/dashboards${path}`, init);
  const answer = await readJson(response);
  if (!response.ok) {
    throw new ApiError(answer?.error || `HTTP ${response.status}`, { status: response.status, body: answer });
  }
  return answer;
}

export const dashboardsApi = {
  list: () => dashboardsCall("GET", ""),
  get: (id) => dashboardsCall("GET", `/${encodeURIComponent(id)}`),
  create: (dashboard) => dashboardsCall("POST", "", dashboard),
  save: (id, dashboard) => dashboardsCall("PUT", `/${encodeURIComponent(id)}`, dashboard),
  remove: (id) => dashboardsCall("DELETE", `/${encodeURIComponent(id)}`),
  importText: (text, onConflict) =>
    dashboardsCall("POST", `/import?on_conflict=${encodeURIComponent(onConflict)}`, text),
  exportUrl: (id) => (id ? `/api/v1/dashboards/${encodeURIComponent(id)}/export` : "/api/v1/dashboards/export"),
};
