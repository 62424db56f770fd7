import { describe, expect, it } from "vitest";
import {
  DEFAULT_ALERTS,
  DEFAULT_INVENTORY,
  DEFAULT_LOGS,
  missedSearch,
  DEFAULT_METRICS,
  DEFAULT_TRACES,
  alertsQuery,
  andQuery,
  attributeClause,
  fieldClause,
  inventoryQuery,
  logsQuery,
  metricsQuery,
  parseAlerts,
  parseInventory,
  parseLogs,
  parseMetrics,
  parseRoute,
  parseTrace,
  parseTraces,
  traceQuery,
  tracesQuery,
  type LogsState,
  type MetricsState,
  type TracesState,
} from "./state";
import { parseVersions, servicesSql, versionLogsHref, versionsQuery } from "./views/VersionsView";

const params = (query: string) => new URLSearchParams(query);

describe("logs state", () => {
  it("defaults to an empty query over the last hour, not live", () => {
    expect(parseLogs(params(""))).toEqual(DEFAULT_LOGS);
    expect(logsQuery(DEFAULT_LOGS)).toBe("");
  });

  it("round-trips every field", () => {
    const state: LogsState = {
      q: 'error AND "connection refused"',
      service: "checkout",
      namespace: "shop",
      pod: "checkout-7d9f",
      version: "v2.0.1",
      severity: "ERROR",
      live: true,
      oldestFirst: true,
      from: "2026-12-03T10:00:00Z",
      to: "now-5m",
    };
    const query = logsQuery(state);
    expect(parseLogs(params(query.slice(1)))).toEqual(state);
    expect(query).toContain("live=1");
    expect(query).toContain("direction=forward");
  });

  it("leaves defaults out of the URL", () => {
    expect(logsQuery({ ...DEFAULT_LOGS, q: "zebra" })).toBe("?q=zebra");
  });

  it("drops bad values instead of breaking", () => {
    const state = parseLogs(params("severity=LOUD&from=yesterday&to=&live=yes&direction=up"));
    expect(state.severity).toBe("");
    expect(state.from).toBe("now-1h");
    expect(state.to).toBe("now");
    expect(state.live).toBe(false);
    expect(state.oldestFirst).toBe(false);
  });

  it("accepts severities in any case", () => {
    expect(parseLogs(params("severity=warn")).severity).toBe("WARN");
  });
});

describe("traces state", () => {
  it("defaults", () => {
    expect(parseTraces(params(""))).toEqual(DEFAULT_TRACES);
    expect(tracesQuery(DEFAULT_TRACES)).toBe("");
  });

  it("round-trips every field with the API's parameter names", () => {
    const state: TracesState = {
      q: "http.route:/pay",
      service: "checkout",
      name: "GET /pay",
      minDuration: "250ms",
      maxDuration: "2s",
      status: "ERROR",
      from: "now-24h",
      to: "now",
    };
    const query = tracesQuery(state);
    expect(query).toContain("min_duration=250ms");
    expect(parseTraces(params(query.slice(1)))).toEqual(state);
  });

  it("drops bad durations and statuses", () => {
    const state = parseTraces(params("min_duration=fast&status=broken&max_duration=1h"));
    expect(state.minDuration).toBe("");
    expect(state.status).toBe("");
    expect(state.maxDuration).toBe("1h");
  });

  it("keeps the selected span of a trace only when it is a span id", () => {
    expect(parseTrace(params("span=A83A950A28A58B6B"))).toEqual({ span: "a83a950a28a58b6b" });
    expect(parseTrace(params("span=nope"))).toEqual({ span: "" });
    expect(traceQuery({ span: "a83a950a28a58b6b" })).toBe("?span=a83a950a28a58b6b");
    expect(traceQuery({ span: "" })).toBe("");
  });
});

describe("metrics state", () => {
  it("defaults", () => {
    expect(parseMetrics(params(""))).toEqual(DEFAULT_METRICS);
    expect(metricsQuery(DEFAULT_METRICS)).toBe("");
  });

  it("round-trips a PromQL query with braces and quotes", () => {
    const state: MetricsState = {
      query: 'sum by (region) (rate(feed_orders_total{job="checkout"}[5m]))',
      step: "15",
      from: "now-6h",
      to: "now",
    };
    expect(parseMetrics(params(metricsQuery(state).slice(1)))).toEqual(state);
  });

  it("drops a step that is not a positive number", () => {
    expect(parseMetrics(params("step=-5")).step).toBe("");
    expect(parseMetrics(params("step=abc")).step).toBe("");
    expect(parseMetrics(params("step=0")).step).toBe("");
  });
});

describe("alerts state", () => {
  it("round-trips the filter", () => {
    expect(parseAlerts(params(""))).toEqual(DEFAULT_ALERTS);
    expect(parseAlerts(params(alertsQuery({ filter: "zebra x" }).slice(1)))).toEqual({ filter: "zebra x" });
  });
});

describe("routes", () => {
  it("maps paths to views, / and unknown paths to logs", () => {
    expect(parseRoute("/")).toEqual({ view: "logs" });
    expect(parseRoute("/logs")).toEqual({ view: "logs" });
    expect(parseRoute("/nowhere")).toEqual({ view: "logs" });
    expect(parseRoute("/traces")).toEqual({ view: "traces" });
    expect(parseRoute("/traces/")).toEqual({ view: "traces" });
    expect(parseRoute("/traces/abc123")).toEqual({ view: "trace", traceId: "abc123" });
    expect(parseRoute("/graph")).toEqual({ view: "metrics" });
    expect(parseRoute("/alerts")).toEqual({ view: "alerts" });
    expect(parseRoute("/versions")).toEqual({ view: "versions" });
    expect(parseRoute("/inventory")).toEqual({ view: "inventory" });
    expect(parseRoute("/inventory/")).toEqual({ view: "inventory" });
  });
});

describe("versions state", () => {
  it("round-trips through the URL, with defaults left out", () => {
    expect(versionsQuery("checkout", "24h")).toBe("?service=checkout");
    expect(versionsQuery("checkout", "7d")).toBe("?service=checkout&since=7d");
    expect(versionsQuery("", "24h")).toBe("");
    const back = parseVersions(new URLSearchParams(versionsQuery("a b", "6h").slice(1)));
    expect(back).toEqual({ service: "a b", since: "6h" });
  });
  it("lists the services of both logs and spans since the page's range began", () => {
    const now = Date.parse("2026-12-06T12:00:00Z");
    const text = servicesSql("6h", now);
    expect(text.match(/timestamp >= '2026-12-06T06:00:00(\.000)?Z'/g)).toHaveLength(2);
    expect(text).toContain("FROM logs");
    expect(text).toContain("FROM spans");
    expect(text).toMatch(/ UNION .* ORDER BY v LIMIT \d+$/);
  });
  it("falls back to 24h for a range it does not offer", () => {
    expect(parseVersions(new URLSearchParams("service=x&since=5y"))).toEqual({ service: "x", since: "24h" });
  });
  it("links a version to its error logs over the page's range, as the logs view reads them", () => {
    const href = versionLogsHref("checkout", "v2.0.0", "6h");
    expect(href).toBe("/logs?service=checkout&version=v2.0.0&severity=ERROR&from=now-6h");
    const url = new URL(href, "http://x");
    expect(url.pathname).toBe("/logs");
    expect(parseLogs(url.searchParams)).toEqual({
      ...DEFAULT_LOGS,
      service: "checkout",
      version: "v2.0.0",
      severity: "ERROR",
      from: "now-6h",
    });
    // Versions with characters a query string escapes come back as they were.
    expect(parseLogs(new URL(versionLogsHref("a b", "1.0+git&x", "24h"), "http://x").searchParams).version).toBe("1.0+git&x");
  });
});

describe("inventory state", () => {
  it("defaults to every service, running pods only, with an empty URL", () => {
    expect(parseInventory(params(""))).toEqual(DEFAULT_INVENTORY);
    expect(inventoryQuery(DEFAULT_INVENTORY)).toBe("");
  });
  it("keeps the service and status=all (the API's own parameter) in the URL", () => {
    expect(inventoryQuery({ service: "cart", all: false })).toBe("?service=cart");
    expect(inventoryQuery({ service: "", all: true })).toBe("?status=all");
    const state = { service: "a b", all: true };
    expect(parseInventory(params(inventoryQuery(state).slice(1)))).toEqual(state);
  });
  it("reads any other status as running only", () => {
    expect(parseInventory(params("status=running")).all).toBe(false);
    expect(parseInventory(params("status=maybe")).all).toBe(false);
  });
});

describe("fieldClause and andQuery", () => {
  it("says a field's exact value in the query language, or nothing", () => {
    expect(fieldClause("http.status", 502)).toBe("http.status:502");
    expect(fieldClause("retry", true)).toBe("retry:true");
    expect(fieldClause("http.route", "/pay")).toBe('http.route:"/pay"');
    expect(fieldClause("msg", 'say "hi" \\ bye')).toBe('msg:"say \\"hi\\" \\\\ bye"');
    expect(fieldClause("has space", "x")).toBeNull();
    expect(fieldClause("tags", ["a"])).toBeNull();
    expect(fieldClause("nothing", null)).toBeNull();
    expect(fieldClause("empty", "")).toBeNull();
    expect(fieldClause("exception.stacktrace", "Traceback:\n  File x")).toBeNull();
  });
  it("reaches an attribute or JSON field named like an index field through attributes.", () => {
    expect(attributeClause("service", "billing")).toBe('attributes.service:"billing"');
    expect(attributeClause("trace_id.x", 1)).toBe("attributes.trace_id.x:1");
    expect(attributeClause("http.route", "/pay")).toBe('http.route:"/pay"');
    expect(attributeClause("services", "a")).toBe('services:"a"');
  });
  it("narrows the whole query", () => {
    expect(andQuery("", "a:1")).toBe("a:1");
    expect(andQuery(" error ", "a:1")).toBe("error AND a:1");
    expect(andQuery("error OR warn", "a:1")).toBe("(error OR warn) AND a:1");
  });
});

describe("missedSearch", () => {
  it("searches the live view's query and filters from the first missed record, oldest first", () => {
    const live = { ...DEFAULT_LOGS, q: "payment", service: "checkout", live: true, from: "now-15m" };
    const query = new URLSearchParams(missedSearch(live, "2026-12-07T10:00:00.5Z"));
    expect(Object.fromEntries(query)).toEqual({
      q: "payment",
      service: "checkout",
      from: "2026-12-07T10:00:00.5Z",
      direction: "forward",
    });
    expect(parseLogs(query)).toMatchObject({ live: false, oldestFirst: true, to: "now" });
  });
});
