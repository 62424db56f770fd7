// What the snapshot page (GET /api/v1/snapshots/{id}) shows, without React: the record's
// shape, process order, sizes and CPU time in words, a process's environment with the
// collector's redactions marked, the totals line, and the URLs of a pod's snapshots.

import { formatBytes } from "./format";

/** What the collector puts in place of a secret-looking variable's value. */
export const REDACTED = "[redacted]";

export interface SnapshotProcess {
  pid: number;
  ppid: number;
  /** The kernel's short name (`comm`, at most 15 bytes). */
  command: string;
  /** The whole command line, secret-looking flags redacted; null when unreadable, empty for
   * kernel threads. */
  cmdline: string | null;
  /** One letter: `R` running, `S` sleeping, `D` disk wait, `Z` zombie, … */
  state: string;
  threads: number;
  rss_bytes: number;
  cpu_seconds: number;
  open_fds: number | null;
  /** Name → value, secret-looking values as `[redacted]`; null when unreadable. */
  env: Record<string, string> | null;
}

export interface SnapshotSockets {
  listening: { local: string }[];
  established: { local: string; remote: string }[];
}

/** The collector's view of its pod. */
export interface Snapshot {
  taken_at: string;
  processes: SnapshotProcess[];
  processes_truncated: boolean;
  sockets: SnapshotSockets;
  note?: string | null;
}

export interface SnapshotRecord {
  id: string;
  namespace: string;
  pod: string;
  tenant: string | null;
  requested_by: string | null;
  requested_at: string;
  answered_at: string;
  /** Null when the collector could not take it (then `error` says why). */
  snapshot: Snapshot | null;
  error: string | null;
}

export interface SnapshotSummary {
  id: string;
  namespace: string;
  pod: string;
  requested_by: string | null;
  requested_at: string;
  ok: boolean;
}

export interface SnapshotList {
  snapshots: SnapshotSummary[];
}

/** The page of one snapshot. */
export function snapshotHref(id: string): string {
  return `/snapshots/${encodeURIComponent(id)}`;
}

/** `GET /api/v1/snapshots` for one pod (the newest 50, the API's default). The server
 * drops an empty parameter, so a pod without a namespace is listed in every namespace:
 * [`ofPod`] keeps its own. (No `limit`: the server refuses any value, `expected usize`.) */
export function podSnapshotsPath(pod: { namespace: string | null; pod: string }): string {
  const params = new URLSearchParams({ namespace: pod.namespace ?? "", pod: pod.pod });
  return `/api/v1/snapshots?${params}`;
}

/** The listed snapshots of exactly this pod: its name in its namespace. */
export function ofPod<T extends Pick<SnapshotSummary, "namespace" | "pod">>(
  snapshots: readonly T[],
  pod: { namespace: string | null; pod: string },
): T[] {
  return snapshots.filter((s) => s.pod === pod.pod && s.namespace === (pod.namespace ?? ""));
}

/** The body of `POST /api/v1/snapshots`. */
export function snapshotRequest(pod: { namespace: string | null; pod: string }, requestedBy = "web UI"): string {
  return JSON.stringify({ namespace: pod.namespace ?? "", pod: pod.pod, requested_by: requestedBy });
}

export type ProcessSort = "pid" | "rss" | "cpu";

/** The page's URL state: `?sort=rss|cpu`; by pid unless given (or given wrong). */
export function parseProcessSort(params: URLSearchParams): ProcessSort {
  const sort = params.get("sort");
  return sort === "rss" || sort === "cpu" ? sort : "pid";
}

export function processSortQuery(sort: ProcessSort): string {
  return sort === "pid" ? "" : `?sort=${sort}`;
}

/** By pid ascending, or by RSS or CPU time descending (ties by pid). A new array. */
export function sortProcesses<T extends Pick<SnapshotProcess, "pid" | "rss_bytes" | "cpu_seconds">>(
  processes: readonly T[],
  by: ProcessSort,
): T[] {
  const key = (p: T) => (by === "rss" ? p.rss_bytes : by === "cpu" ? p.cpu_seconds : 0);
  return [...processes].sort((a, b) => key(b) - key(a) || a.pid - b.pid);
}

/** Resident memory in binary units (`12.3 MiB`); `–` when missing. */
export function formatRss(bytes: number | null | undefined): string {
  return typeof bytes === "number" ? formatBytes(bytes) : "–";
}

/** CPU time (user + system): `0 s`, `0.04 s`, `12.5 s`, `2m 05s`, `3h 04m`. */
export function formatCpu(seconds: number | null | undefined): string {
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) return "–";
  if (seconds === 0) return "0 s";
  if (seconds < 60) return `${Number(seconds.toPrecision(3))} s`;
  const whole = Math.round(seconds);
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) return `${minutes}m ${String(whole % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, "0")}m`;
}

const STATES: Record<string, string> = {
  R: "running",
  S: "sleeping",
  D: "waiting on disk",
  Z: "zombie",
  T: "stopped",
  t: "stopped by a tracer",
  X: "dead",
  I: "idle",
  P: "parked",
  W: "paging",
  K: "wakekill",
};

/** A process state letter in words, for a tooltip: `S` → `sleeping`. */
export function processState(letter: string): string {
  return STATES[letter] ?? letter;
}

/** The command line to show: the whole line when there is one, else the short command
 * (kernel threads and unreadable command lines). */
export function commandLine(process: Pick<SnapshotProcess, "command" | "cmdline">): string {
  const line = process.cmdline?.trim();
  return line ? line : process.command;
}

/** At most `max` characters, else that many and `…`: a long command line in a table cell. */
export function clip(text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

export interface EnvEntry {
  name: string;
  value: string;
  redacted: boolean;
}

/** A process's environment by name, each redacted value marked; null when unreadable. */
export function envEntries(env: Record<string, string> | null | undefined): EnvEntry[] | null {
  if (!env) return null;
  return Object.keys(env)
    .sort()
    .map((name) => ({ name, value: env[name], redacted: env[name] === REDACTED }));
}

export interface SnapshotTotals {
  processes: number;
  threads: number;
  rssBytes: number;
  cpuSeconds: number;
  listening: number;
  established: number;
  /** Environment values the collector redacted, over every process. */
  redacted: number;
  /** Processes whose environment could not be read. */
  unreadableEnv: number;
}

export function summariseSnapshot(snapshot: Snapshot): SnapshotTotals {
  const totals: SnapshotTotals = {
    processes: snapshot.processes.length,
    threads: 0,
    rssBytes: 0,
    cpuSeconds: 0,
    listening: snapshot.sockets?.listening?.length ?? 0,
    established: snapshot.sockets?.established?.length ?? 0,
    redacted: 0,
    unreadableEnv: 0,
  };
  for (const process of snapshot.processes) {
    totals.threads += process.threads;
    totals.rssBytes += process.rss_bytes;
    totals.cpuSeconds += process.cpu_seconds;
    if (process.env === null) totals.unreadableEnv += 1;
    else for (const value of Object.values(process.env)) if (value === REDACTED) totals.redacted += 1;
  }
  return totals;
}

/** How long the collector took, from the request to the answer: `84 ms`, `2.3 s`; empty
 * when a time does not parse. */
export function answeredIn(requestedAt: string, answeredAt: string): string {
  const ms = Date.parse(answeredAt) - Date.parse(requestedAt);
  if (!Number.isFinite(ms) || ms < 0) return "";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${Number((ms / 1000).toPrecision(2))} s`;
}
