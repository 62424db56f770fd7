import { describe, expect, it } from "vitest";
import {
  answeredIn,
  clip,
  commandLine,
  envEntries,
  formatCpu,
  formatRss,
  ofPod,
  parseProcessSort,
  podSnapshotsPath,
  processSortQuery,
  processState,
  REDACTED,
  snapshotHref,
  snapshotRequest,
  sortProcesses,
  summariseSnapshot,
  type Snapshot,
  type SnapshotProcess,
} from "./snapshot";
import { parseRoute } from "./state";

function proc(pid: number, extra: Partial<SnapshotProcess> = {}): SnapshotProcess {
  return {
    pid,
    ppid: 1,
    command: "app",
    cmdline: "/usr/bin/app --port 80",
    state: "S",
    threads: 1,
    rss_bytes: 0,
    cpu_seconds: 0,
    open_fds: 3,
    env: {},
    ...extra,
  };
}

function snap(processes: SnapshotProcess[], extra: Partial<Snapshot> = {}): Snapshot {
  return {
    taken_at: "2026-01-01T00:00:00.000Z",
    processes,
    processes_truncated: false,
    sockets: { listening: [], established: [] },
    note: null,
    ...extra,
  };
}

describe("the snapshot route", () => {
  it("opens /snapshots/<id>, with or without a trailing slash", () => {
    expect(parseRoute("/snapshots/0af3")).toEqual({ view: "snapshot", snapshotId: "0af3" });
    expect(parseRoute("/snapshots/0af3/")).toEqual({ view: "snapshot", snapshotId: "0af3" });
  });

  it("leaves /snapshots alone and other paths as they were", () => {
    expect(parseRoute("/snapshots")).toEqual({ view: "logs" });
    expect(parseRoute("/snapshots/a/b")).toEqual({ view: "logs" });
    expect(parseRoute("/inventory")).toEqual({ view: "inventory" });
  });

  it("links to a snapshot by its id", () => {
    expect(snapshotHref("9f0c")).toBe("/snapshots/9f0c");
    expect(parseRoute(snapshotHref("9f0c"))).toEqual({ view: "snapshot", snapshotId: "9f0c" });
  });
});

describe("requests", () => {
  it("asks for the pod in its namespace, saying the web UI asked", () => {
    expect(JSON.parse(snapshotRequest({ namespace: "shop", pod: "cart-1" }))).toEqual({
      namespace: "shop",
      pod: "cart-1",
      requested_by: "web UI",
    });
    // A collector without a namespace is asked for with an empty one, as the API takes it.
    expect(JSON.parse(snapshotRequest({ namespace: null, pod: "cart-1" })).namespace).toBe("");
  });

  it("lists the pod's snapshots in its namespace only, the empty one too", () => {
    const url = new URL(podSnapshotsPath({ namespace: "shop", pod: "cart 1" }), "http://x");
    expect(url.pathname).toBe("/api/v1/snapshots");
    expect(url.searchParams.get("namespace")).toBe("shop");
    expect(url.searchParams.get("pod")).toBe("cart 1");
    expect(url.searchParams.has("limit")).toBe(false);
    const listed = [
      { id: "1", namespace: "shop", pod: "cart-1" },
      { id: "2", namespace: "", pod: "cart-1" },
      { id: "3", namespace: "shop", pod: "cart-2" },
      { id: "4", namespace: "other", pod: "cart-1" },
    ];
    expect(ofPod(listed, { namespace: "shop", pod: "cart-1" }).map((s) => s.id)).toEqual(["1"]);
    expect(ofPod(listed, { namespace: null, pod: "cart-1" }).map((s) => s.id)).toEqual(["2"]);
    expect(ofPod(listed, { namespace: "", pod: "cart-1" }).map((s) => s.id)).toEqual(["2"]);
  });
});

describe("process order", () => {
  const a = proc(30, { rss_bytes: 100, cpu_seconds: 9 });
  const b = proc(4, { rss_bytes: 500, cpu_seconds: 1 });
  const c = proc(17, { rss_bytes: 500, cpu_seconds: 3 });

  it("is by pid unless asked, else the largest RSS or CPU first, ties by pid", () => {
    expect(sortProcesses([a, b, c], "pid").map((p) => p.pid)).toEqual([4, 17, 30]);
    expect(sortProcesses([a, b, c], "rss").map((p) => p.pid)).toEqual([4, 17, 30]);
    expect(sortProcesses([a, b, c], "cpu").map((p) => p.pid)).toEqual([30, 17, 4]);
  });

  it("leaves the given list as it was", () => {
    const list = [a, b, c];
    sortProcesses(list, "rss");
    expect(list.map((p) => p.pid)).toEqual([30, 4, 17]);
  });

  it("is in the URL as ?sort=, a bad value falling back to pid", () => {
    expect(parseProcessSort(new URLSearchParams("sort=rss"))).toBe("rss");
    expect(parseProcessSort(new URLSearchParams("sort=cpu"))).toBe("cpu");
    expect(parseProcessSort(new URLSearchParams("sort=RSS"))).toBe("pid");
    expect(parseProcessSort(new URLSearchParams(""))).toBe("pid");
    expect(processSortQuery("pid")).toBe("");
    for (const sort of ["rss", "cpu"] as const) {
      expect(parseProcessSort(new URLSearchParams(processSortQuery(sort)))).toBe(sort);
    }
  });
});

describe("formatting", () => {
  it("shows RSS in binary units", () => {
    expect(formatRss(0)).toBe("0 B");
    expect(formatRss(4096)).toBe("4.00 KiB");
    expect(formatRss(12 * 1024 * 1024 + 300 * 1024)).toBe("12.3 MiB");
    expect(formatRss(3 * 1024 ** 3)).toBe("3.00 GiB");
    expect(formatRss(null)).toBe("–");
  });

  it("shows CPU time in seconds, then minutes, then hours", () => {
    expect(formatCpu(0)).toBe("0 s");
    expect(formatCpu(0.04)).toBe("0.04 s");
    expect(formatCpu(12.345)).toBe("12.3 s");
    expect(formatCpu(59.9)).toBe("59.9 s");
    expect(formatCpu(125)).toBe("2m 05s");
    expect(formatCpu(3 * 3600 + 4 * 60 + 10)).toBe("3h 04m");
    expect(formatCpu(-1)).toBe("–");
    expect(formatCpu(Number.NaN)).toBe("–");
  });

  it("names process states", () => {
    expect(processState("S")).toBe("sleeping");
    expect(processState("Z")).toBe("zombie");
    expect(processState("?")).toBe("?");
  });

  it("shows the command line, or the short command when there is none", () => {
    expect(commandLine(proc(1))).toBe("/usr/bin/app --port 80");
    expect(commandLine(proc(2, { command: "kworker/0:1", cmdline: "" }))).toBe("kworker/0:1");
    expect(commandLine(proc(3, { command: "app", cmdline: null }))).toBe("app");
  });

  it("clips a long command line for its table cell", () => {
    expect(clip("short")).toBe("short");
    expect(clip("x".repeat(200))).toBe("x".repeat(200));
    expect(clip("x".repeat(201))).toBe(`${"x".repeat(200)}…`);
    expect(clip("abcdef", 3)).toBe("abc…");
  });

  it("says how long the collector took", () => {
    expect(answeredIn("2026-01-01T00:00:00.000000000Z", "2026-01-01T00:00:00.084000000Z")).toBe("84 ms");
    expect(answeredIn("2026-01-01T00:00:00Z", "2026-01-01T00:00:02.340Z")).toBe("2.3 s");
    expect(answeredIn("nonsense", "2026-01-01T00:00:00Z")).toBe("");
  });
});

describe("environments", () => {
  it("are sorted by name with the collector's redactions marked", () => {
    expect(envEntries({ PATH: "/bin", API_TOKEN: REDACTED, APP_MODE: "fast" })).toEqual([
      { name: "API_TOKEN", value: REDACTED, redacted: true },
      { name: "APP_MODE", value: "fast", redacted: false },
      { name: "PATH", value: "/bin", redacted: false },
    ]);
  });

  it("are null when unreadable, and empty when empty", () => {
    expect(envEntries(null)).toBeNull();
    expect(envEntries({})).toEqual([]);
  });

  it("mark only the exact placeholder, not a value that mentions it", () => {
    expect(envEntries({ NOTE: "was [redacted] before" })?.[0].redacted).toBe(false);
  });
});

describe("summariseSnapshot", () => {
  it("adds up threads, memory, CPU, sockets and redactions", () => {
    const totals = summariseSnapshot(
      snap(
        [
          proc(1, { threads: 4, rss_bytes: 1000, cpu_seconds: 1.5, env: { A: "1", SECRET: REDACTED, TOKEN: REDACTED } }),
          proc(2, { threads: 1, rss_bytes: 24, cpu_seconds: 0.5, env: null }),
        ],
        { sockets: { listening: [{ local: "0.0.0.0:80" }], established: [{ local: "10.0.0.1:80", remote: "10.0.0.2:5000" }] } },
      ),
    );
    expect(totals).toEqual({
      processes: 2,
      threads: 5,
      rssBytes: 1024,
      cpuSeconds: 2,
      listening: 1,
      established: 1,
      redacted: 2,
      unreadableEnv: 1,
    });
  });

  it("counts nothing in an empty pod", () => {
    const totals = summariseSnapshot(snap([]));
    expect(totals.processes).toBe(0);
    expect(totals.rssBytes).toBe(0);
    expect(totals.listening + totals.established).toBe(0);
  });
});
