import { describe, expect, it } from "vitest";
import {
  ago,
  driftExplanation,
  driftReason,
  exitFailed,
  formatDrift,
  formatExit,
  formatRate,
  imageLabel,
  imageReference,
  plural,
  podLogsHref,
  shortDigest,
  sortPods,
  summarise,
  type Inventory,
  type InventoryPod,
} from "./inventory";
import { parseLogs } from "./state";

function pod(name: string, extra: Partial<InventoryPod> = {}): InventoryPod {
  return {
    namespace: "shop",
    pod: name,
    node: "node-a",
    containers: [{ name: "app", image: "registry.example/cart", tag: "v1", digest: null }],
    started_at: "2026-01-01T00:00:00Z",
    last_report: "2026-01-01T00:05:00Z",
    status: "running",
    logs: 0,
    error_logs: 0,
    error_log_rate: 0,
    last_log: null,
    drift: [],
    ...extra,
  };
}

const differs = { kind: "env", name: "APP_MODE", reason: "differs" };

describe("summarise", () => {
  it("counts running, not running and drifted pods across services and versions", () => {
    const inventory: Inventory = {
      start: "2026-01-01T00:00:00Z",
      end: "2026-01-01T00:15:00Z",
      drifted_pods: 2,
      truncated: false,
      services: [
        {
          service: "cart",
          versions: [
            { version: "v1", first_seen: null, pods: [pod("cart-1"), pod("cart-2", { drift: [differs] })] },
            { version: "v2", first_seen: null, pods: [pod("cart-3", { status: "stopped", drift: [differs] })] },
          ],
        },
        { service: "pay", versions: [{ version: "v1", first_seen: null, pods: [pod("pay-1", { status: "stale" })] }] },
      ],
    };
    expect(summarise(inventory)).toEqual({ pods: 4, running: 2, notRunning: 2, drifted: 2 });
  });

  it("is all zeros with no collectors reporting", () => {
    expect(summarise({ start: "", end: "", drifted_pods: 0, truncated: false, services: [] })).toEqual({
      pods: 0,
      running: 0,
      notRunning: 0,
      drifted: 0,
    });
  });

  it("pluralises", () => {
    expect(plural(1, "pod")).toBe("1 pod");
    expect(plural(0, "pod")).toBe("0 pods");
    expect(plural(3, "pod")).toBe("3 pods");
  });
});

describe("drift entries", () => {
  it("name the variable or file, its kind and the reason in words", () => {
    expect(formatDrift(differs)).toBe("APP_MODE (env) differs");
    expect(formatDrift({ kind: "file", name: "etc/app.yaml", reason: "changed_since_start" })).toBe(
      "etc/app.yaml (file) changed since start",
    );
    expect(formatDrift({ kind: "file", name: "/etc/a.yaml", reason: "no_majority" })).toBe("/etc/a.yaml (file) no majority");
    expect(formatDrift({ kind: "env", name: "APP_DEBUG", reason: "extra" })).toBe("APP_DEBUG (env) extra");
    expect(formatDrift({ kind: "env", name: "APP_X", reason: "missing" })).toBe("APP_X (env) missing");
  });

  it("say an unknown reason as it is, underscores as spaces", () => {
    expect(driftReason("some_new_reason")).toBe("some new reason");
    expect(driftExplanation("some_new_reason")).toBe("some new reason");
  });

  it("explain every known reason", () => {
    for (const reason of ["differs", "missing", "extra", "no_majority", "changed_since_start"]) {
      expect(driftExplanation(reason).length).toBeGreaterThan(driftReason(reason).length);
    }
  });
});

describe("sortPods", () => {
  it("puts drift first, then running, stale, stopped, then names in numeric order", () => {
    const pods = [
      pod("cart-10"),
      pod("cart-2"),
      pod("cart-9", { status: "stopped" }),
      pod("cart-5", { status: "stale" }),
      pod("cart-7", { drift: [differs] }),
      pod("cart-1", { status: "stopped", drift: [differs] }),
    ];
    expect(sortPods(pods).map((p) => p.pod)).toEqual(["cart-7", "cart-1", "cart-2", "cart-10", "cart-5", "cart-9"]);
    expect(pods[0].pod).toBe("cart-10"); // the given array is left as it was
  });

  it("orders the same pod name by namespace", () => {
    const sorted = sortPods([pod("api", { namespace: "prod" }), pod("api", { namespace: null }), pod("api", { namespace: "dev" })]);
    expect(sorted.map((p) => p.namespace)).toEqual([null, "dev", "prod"]);
  });
});

describe("images", () => {
  it("shorten a digest to 12 hex digits without its algorithm", () => {
    expect(shortDigest("sha256:80aa035d32aece5c1f0e2d3c4b5a69788796a5b4c3d2e1f0")).toBe("80aa035d32ae");
    expect(shortDigest("abcdef0123456789")).toBe("abcdef012345");
    expect(shortDigest(null)).toBe("");
  });

  it("show tag and short digest, whichever there is", () => {
    const c = { name: "app", image: "registry.example/cart", tag: "v1", digest: "sha256:0123456789abcdef0123" };
    expect(imageLabel(c)).toBe("v1 @ 0123456789ab");
    expect(imageLabel({ ...c, digest: null })).toBe("v1");
    expect(imageLabel({ ...c, tag: null })).toBe("0123456789ab");
    expect(imageLabel({ name: null, image: null, tag: null, digest: null })).toBe("—");
    expect(imageReference(c)).toBe("registry.example/cart:v1@sha256:0123456789abcdef0123");
    expect(imageReference({ ...c, tag: null, digest: null })).toBe("registry.example/cart");
  });
});

describe("last exits", () => {
  const exit = { container: "app", reason: "OOMKilled", exit_code: 137, restart_count: 2, at: "2026-01-01T12:00:00Z" };
  it("say why and with which code, and whether it failed", () => {
    expect(formatExit(exit)).toBe("OOMKilled (137)");
    expect(exitFailed(exit)).toBe(true);
    const done = { ...exit, reason: "Completed", exit_code: 0 };
    expect(formatExit(done)).toBe("Completed (0)");
    expect(exitFailed(done)).toBe(false);
    expect(formatExit({ ...exit, reason: null, exit_code: null })).toBe("exited");
    expect(formatExit(null)).toBe("—");
    expect(formatExit(undefined)).toBe("—");
    expect(exitFailed(null)).toBe(false);
  });
});

describe("rates and ages", () => {
  it("formats an error rate per second without exponents", () => {
    expect(formatRate(0)).toBe("0/s");
    expect(formatRate(Number.NaN)).toBe("0/s");
    expect(formatRate(1 / 300)).toBe("0.0033/s");
    expect(formatRate(0.00001)).toBe("<0.0001/s");
    expect(formatRate(1.5)).toBe("1.5/s");
    expect(formatRate(12.34)).toBe("12/s");
    expect(formatRate(250.4)).toBe("250/s");
  });

  it("says how long ago a time was", () => {
    const now = Date.parse("2026-01-01T12:00:00Z");
    expect(ago("2026-01-01T12:00:00Z", now)).toBe("just now");
    expect(ago("2026-01-01T12:00:05Z", now)).toBe("just now"); // a clock ahead of ours
    expect(ago("2026-01-01T11:59:56.500Z", now)).toBe("3 s ago");
    expect(ago("2026-01-01T11:57:00Z", now)).toBe("3 min ago");
    expect(ago("2026-01-01T10:00:00Z", now)).toBe("2 h ago");
    expect(ago("2025-12-27T12:00:00Z", now)).toBe("5 d ago");
    expect(ago(null, now)).toBe("—");
    expect(ago("not a time", now)).toBe("—");
  });
});

describe("podLogsHref", () => {
  it("opens the logs view filtered to the pod and its namespace", () => {
    const href = podLogsHref(pod("cart-1"));
    expect(href).toBe("/logs?namespace=shop&pod=cart-1");
    const state = parseLogs(new URLSearchParams(href.slice("/logs?".length)));
    expect(state).toMatchObject({ pod: "cart-1", namespace: "shop", q: "", service: "" });
  });

  it("leaves the namespace out when the pod has none", () => {
    expect(podLogsHref({ namespace: null, pod: "a b" })).toBe("/logs?pod=a+b");
  });
});
