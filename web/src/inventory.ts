// What the inventory page (GET /api/v1/inventory) shows, without React: the summary
// counts, a drift entry in words, pods with drift first, short digests, ages and rates,
// and the link from a pod to its logs.

import { DEFAULT_LOGS, logsQuery } from "./state";

export type PodStatus = "running" | "stopped" | "stale";

/** A watched file or environment variable that sets a pod apart (names only, never values). */
export interface Drift {
  kind: string;
  name: string;
  reason: string;
}

export interface Container {
  name: string | null;
  image: string | null;
  tag: string | null;
  digest: string | null;
}

export interface InventoryPod {
  namespace: string | null;
  pod: string;
  node: string | null;
  containers: Container[];
  started_at: string | null;
  last_report: string;
  status: PodStatus | string;
  logs: number;
  error_logs: number;
  /** Error logs per second over the range. */
  error_log_rate: number;
  last_log: string | null;
  /** Why one of its containers last ended in the range, from the pod's status. */
  last_exit?: LastExit | null;
  drift: Drift[];
}

export interface LastExit {
  container: string | null;
  /** The kubelet's reason: `OOMKilled`, `Error`, `Completed`… */
  reason: string | null;
  exit_code: number | null;
  restart_count: number | null;
  at: string;
}

export interface VersionPods {
  version: string;
  first_seen: string | null;
  pods: InventoryPod[];
}

export interface ServiceInventory {
  service: string;
  versions: VersionPods[];
}

export interface Inventory {
  start: string;
  end: string;
  drifted_pods: number;
  truncated: boolean;
  services: ServiceInventory[];
}

export interface InventorySummary {
  /** Every pod listed. */
  pods: number;
  running: number;
  /** Stopped or stale (listed only with `status=all`). */
  notRunning: number;
  /** Listed pods with at least one drift. */
  drifted: number;
}

export function summarise(inventory: Inventory): InventorySummary {
  const summary: InventorySummary = { pods: 0, running: 0, notRunning: 0, drifted: 0 };
  for (const service of inventory.services) {
    for (const version of service.versions) {
      for (const pod of version.pods) {
        summary.pods += 1;
        if (pod.status === "running") summary.running += 1;
        else summary.notRunning += 1;
        if (pod.drift.length > 0) summary.drifted += 1;
      }
    }
  }
  return summary;
}

/** `1 pod`, `3 pods`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

const REASONS: Record<string, [words: string, explanation: string]> = {
  differs: ["differs", "its fingerprint differs from that of most pods of this version"],
  missing: ["missing", "most pods of this version have it; this one has not"],
  extra: ["extra", "this pod has it; most pods of this version have not"],
  no_majority: ["no majority", "the pods of this version disagree and no value is held by more than half"],
  changed_since_start: ["changed since start", "the file changed inside the running container"],
};

/** A drift reason in words: `changed_since_start` → `changed since start`. */
export function driftReason(reason: string): string {
  return REASONS[reason]?.[0] ?? reason.replace(/_/g, " ");
}

/** What a drift reason means, for a tooltip. */
export function driftExplanation(reason: string): string {
  return REASONS[reason]?.[1] ?? driftReason(reason);
}

/** `APP_MODE (env) differs`, `etc/app.yaml (file) changed since start`. */
export function formatDrift(drift: Drift): string {
  return `${drift.name} (${drift.kind}) ${driftReason(drift.reason)}`;
}

const STATUS_ORDER: Record<string, number> = { running: 0, stale: 1, stopped: 2 };

/** Pods with drift first, then running before stale before stopped, then by name
 * (`cart-2` before `cart-10`). A new array; the given one is left as it is. */
export function sortPods<T extends Pick<InventoryPod, "pod" | "namespace" | "status" | "drift">>(pods: readonly T[]): T[] {
  const rank = (status: string) => STATUS_ORDER[status] ?? 3;
  return [...pods].sort(
    (a, b) =>
      Number(b.drift.length > 0) - Number(a.drift.length > 0) ||
      rank(a.status) - rank(b.status) ||
      a.pod.localeCompare(b.pod, undefined, { numeric: true }) ||
      (a.namespace ?? "").localeCompare(b.namespace ?? ""),
  );
}

/** The first 12 hex digits of an image digest, without its algorithm: `sha256:80aa…` →
 * `80aa035d32ae`. */
export function shortDigest(digest: string | null): string {
  if (!digest) return "";
  const hex = digest.includes(":") ? digest.slice(digest.indexOf(":") + 1) : digest;
  return hex.slice(0, 12);
}

/** A container's image in short: its tag and short digest, `v1 @ 80aa035d32ae`; `—` with
 * neither. */
export function imageLabel(container: Container): string {
  const parts = [container.tag, shortDigest(container.digest)].filter((p) => p);
  return parts.length > 0 ? parts.join(" @ ") : "—";
}

/** The whole image reference, for a tooltip: `registry.example/cart:v1@sha256:…`. */
export function imageReference(container: Container): string {
  return `${container.image ?? "?"}${container.tag ? `:${container.tag}` : ""}${container.digest ? `@${container.digest}` : ""}`;
}

/** A container's last exit as `OOMKilled (137)`, `Completed (0)`; `—` for none. */
export function formatExit(exit: LastExit | null | undefined): string {
  if (!exit) return "—";
  const reason = exit.reason || "exited";
  return exit.exit_code == null ? reason : `${reason} (${exit.exit_code})`;
}

/** Whether a last exit was a failure: an exit code other than 0, or none known. */
export function exitFailed(exit: LastExit | null | undefined): boolean {
  return !!exit && exit.exit_code !== 0;
}

/** Error logs per second as `0/s`, `0.0033/s`, `1.5/s`, `120/s`. */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return "0/s";
  if (perSecond < 0.0001) return "<0.0001/s";
  if (perSecond >= 100) return `${perSecond.toFixed(0)}/s`;
  return `${Number(perSecond.toPrecision(2))}/s`;
}

/** How long before `nowMs` an RFC 3339 time was: `just now`, `4 s ago`, `3 min ago`,
 * `2 h ago`, `5 d ago`; `—` for none or a time that does not parse. */
export function ago(time: string | null, nowMs: number): string {
  if (!time) return "—";
  const ms = Date.parse(time);
  if (Number.isNaN(ms)) return "—";
  const seconds = Math.floor((nowMs - ms) / 1000);
  if (seconds < 1) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}

/** The logs view filtered to one pod (and its namespace, so a pod name reused in another
 * namespace is not mixed in). */
export function podLogsHref(pod: Pick<InventoryPod, "namespace" | "pod">): string {
  return `/logs${logsQuery({ ...DEFAULT_LOGS, namespace: pod.namespace ?? "", pod: pod.pod })}`;
}
