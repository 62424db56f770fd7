// Every view's state as a URL query string and back. Defaults are left out of the URL so
// links stay short; values that cannot be right (an unknown severity, a time that does not
// parse) fall back to the default instead of breaking the view.

import { SEVERITIES, type Severity } from "./format";
import { isTimeExpression, parseDuration, type TimeRange } from "./time";

export const DEFAULT_RANGE: TimeRange = { from: "now-1h", to: "now" };

export interface LogsState extends TimeRange {
  q: string;
  service: string;
  namespace: string;
  pod: string;
  version: string;
  severity: Severity | "";
  live: boolean;
  /** Oldest first (the API's `direction=forward`) instead of newest first. */
  oldestFirst: boolean;
}

export const LOG_FILTERS = ["service", "namespace", "pod", "version"] as const;

export const DEFAULT_LOGS: LogsState = {
  q: "",
  service: "",
  namespace: "",
  pod: "",
  version: "",
  severity: "",
  live: false,
  oldestFirst: false,
  ...DEFAULT_RANGE,
};

export interface TracesState extends TimeRange {
  q: string;
  service: string;
  name: string;
  minDuration: string;
  maxDuration: string;
  status: "" | "OK" | "ERROR" | "UNSET";
}

export const DEFAULT_TRACES: TracesState = {
  q: "",
  service: "",
  name: "",
  minDuration: "",
  maxDuration: "",
  status: "",
  ...DEFAULT_RANGE,
};

export interface TraceState {
  span: string;
}

export interface MetricsState extends TimeRange {
  query: string;
  /** Seconds; empty chooses one from the range. */
  step: string;
}

export const DEFAULT_METRICS: MetricsState = { query: "", step: "", ...DEFAULT_RANGE };

export interface AlertsState {
  filter: string;
}

export const DEFAULT_ALERTS: AlertsState = { filter: "" };

export interface InventoryState {
  /** One service (exact, as `GET /api/v1/inventory?service=`); empty lists all. */
  service: string;
  /** Also the pods that stopped or went silent (`status=all`). */
  all: boolean;
}

export const DEFAULT_INVENTORY: InventoryState = { service: "", all: false };

function text(params: URLSearchParams, name: string, fallback: string): string {
  return params.get(name) ?? fallback;
}

function range(params: URLSearchParams): TimeRange {
  const from = params.get("from");
  const to = params.get("to");
  return {
    from: from !== null && isTimeExpression(from) ? from : DEFAULT_RANGE.from,
    to: to !== null && isTimeExpression(to) ? to : DEFAULT_RANGE.to,
  };
}

function build(values: Record<string, string>, defaults: Record<string, string>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) {
    if (value !== defaults[key]) params.set(key, value);
  }
  const query = params.toString();
  return query ? `?${query}` : "";
}

export function parseLogs(params: URLSearchParams): LogsState {
  const severity = (params.get("severity") ?? "").toUpperCase();
  return {
    q: text(params, "q", ""),
    service: text(params, "service", ""),
    namespace: text(params, "namespace", ""),
    pod: text(params, "pod", ""),
    version: text(params, "version", ""),
    severity: (SEVERITIES as readonly string[]).includes(severity) ? (severity as Severity) : "",
    live: params.get("live") === "1",
    oldestFirst: params.get("direction") === "forward",
    ...range(params),
  };
}

export function logsQuery(state: LogsState): string {
  const { live, oldestFirst, ...rest } = state;
  const { live: _live, oldestFirst: _oldestFirst, ...defaults } = DEFAULT_LOGS;
  void _live;
  void _oldestFirst;
  return build(
    { ...rest, live: live ? "1" : "", direction: oldestFirst ? "forward" : "" },
    { ...defaults, live: "", direction: "" },
  );
}

/** The query string of a search, oldest first, for the records a resumed live tail did
 * not send: the same query and filters, from the first of them (`from`) to now. */
export function missedSearch(state: LogsState, from: string): string {
  return logsQuery({ ...state, live: false, oldestFirst: true, from, to: "now" });
}

export function parseTraces(params: URLSearchParams): TracesState {
  const status = (params.get("status") ?? "").toUpperCase();
  const duration = (name: string) => {
    const value = params.get(name) ?? "";
    return parseDuration(value) === null ? "" : value;
  };
  return {
    q: text(params, "q", ""),
    service: text(params, "service", ""),
    name: text(params, "name", ""),
    minDuration: duration("min_duration"),
    maxDuration: duration("max_duration"),
    status: status === "OK" || status === "ERROR" || status === "UNSET" ? status : "",
    ...range(params),
  };
}

export function tracesQuery(state: TracesState): string {
  const { minDuration, maxDuration, ...rest } = state;
  const { minDuration: _a, maxDuration: _b, ...defaults } = DEFAULT_TRACES;
  void _a;
  void _b;
  return build(
    { ...rest, min_duration: minDuration, max_duration: maxDuration },
    { ...defaults, min_duration: "", max_duration: "" },
  );
}

export function parseTrace(params: URLSearchParams): TraceState {
  const span = params.get("span") ?? "";
  return { span: /^[0-9a-f]{16}$/i.test(span) ? span.toLowerCase() : "" };
}

export function traceQuery(state: TraceState): string {
  return build({ span: state.span }, { span: "" });
}

export function parseMetrics(params: URLSearchParams): MetricsState {
  const step = params.get("step") ?? "";
  return {
    query: text(params, "query", ""),
    step: /^\d+(\.\d+)?$/.test(step) && Number(step) > 0 ? step : "",
    ...range(params),
  };
}

export function metricsQuery(state: MetricsState): string {
  return build({ ...state }, { ...DEFAULT_METRICS });
}

export function parseAlerts(params: URLSearchParams): AlertsState {
  return { filter: text(params, "filter", "") };
}

export function alertsQuery(state: AlertsState): string {
  return build({ ...state }, { ...DEFAULT_ALERTS });
}

export function parseInventory(params: URLSearchParams): InventoryState {
  return { service: text(params, "service", ""), all: params.get("status") === "all" };
}

export function inventoryQuery(state: InventoryState): string {
  return build({ service: state.service, status: state.all ? "all" : "" }, { service: "", status: "" });
}

/** The views and their paths; `/` and unknown paths open the logs. */
export type Route =
  | { view: "logs" }
  | { view: "traces" }
  | { view: "trace"; traceId: string }
  | { view: "metrics" }
  | { view: "alerts" }
  | { view: "versions" }
  | { view: "inventory" }
  | { view: "snapshot"; snapshotId: string };

export function parseRoute(pathname: string): Route {
  const path = pathname.replace(/\/+$/, "");
  const trace = /^\/traces\/([^/]+)$/.exec(path);
  if (trace) return { view: "trace", traceId: decodeURIComponent(trace[1]) };
  if (path === "/traces") return { view: "traces" };
  // `/metrics` is the server's own Prometheus exposition, so the chart view is `/graph`
  // (as in Prometheus's UI).
  if (path === "/graph") return { view: "metrics" };
  if (path === "/alerts") return { view: "alerts" };
  if (path === "/versions") return { view: "versions" };
  if (path === "/inventory") return { view: "inventory" };
  const snapshot = /^\/snapshots\/([^/]+)$/.exec(path);
  if (snapshot) return { view: "snapshot", snapshotId: decodeURIComponent(snapshot[1]) };
  return { view: "logs" };
}

/**
 * A search clause that finds `key` with exactly `value` (an attribute, or a field of a
 * JSON log line): `status:502`, `http.route:"/pay"`, `retry:true`. Null when the query
 * language cannot say it (a key with characters outside `A-Za-z0-9_.-`, a value that is no
 * string, number or boolean) or it would not help (a multi-line string).
 */
export function fieldClause(key: string, value: unknown): string | null {
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key)) return null;
  if (typeof value === "number" && Number.isFinite(value)) return `${key}:${value}`;
  if (typeof value === "boolean") return `${key}:${value}`;
  // A multi-line value (a stack trace) is searched by its words, not as a whole.
  if (typeof value === "string" && value !== "" && !value.includes("\n")) return `${key}:"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  return null;
}

/** The logs index's own fields: an attribute or JSON field of one of these names is reached as `attributes.NAME`. */
const INDEX_FIELDS = new Set([
  ...["row", "timestamp", "record_id", "body", "attributes", "attribute_numbers", "severity", "trace_id"],
  ...["service", "namespace", "pod", "container", "version"],
]);

/**
 * {@link fieldClause} for a record's attribute or JSON field, named so that the search
 * reaches it rather than an index field of the same name (`attributes.service:…`).
 */
export function attributeClause(key: string, value: unknown): string | null {
  return fieldClause(INDEX_FIELDS.has(key) || INDEX_FIELDS.has(key.split(".")[0]) ? `attributes.${key}` : key, value);
}

/** `q` narrowed by `clause` (AND); the clause alone for an empty query. */
export function andQuery(q: string, clause: string): string {
  const trimmed = q.trim();
  if (trimmed === "") return clause;
  // A query with an OR in it is bracketed, so the clause narrows all of it.
  return /\bOR\b/.test(trimmed) ? `(${trimmed}) AND ${clause}` : `${trimmed} AND ${clause}`;
}
