// The log histogram's bars by severity, as Grafana's log volume shows them: each bucket's
// count split by level, errors at the bottom where a rise is seen first.

import type { Histogram } from "./api";
import { normalizeSeverity, type Severity } from "./format";

/** A level of the stacked bars: a severity, or records with none (or one of no level). */
export type Level = Severity | "other";

/** Bottom to top. */
export const LEVELS: readonly Level[] = ["FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE", "other"];

/** Each level's colour, as the rows' severities are coloured (styles.css). */
export const LEVEL_COLOURS: Record<Level, string> = {
  FATAL: "#ff3d7f",
  ERROR: "#e5534b",
  WARN: "#d9a13b",
  INFO: "#57ab5a",
  DEBUG: "#7d8ca3",
  TRACE: "#5c677a",
  other: "#4c84ff",
};

export interface Volume {
  /** Bucket starts, unix seconds. */
  times: number[];
  /** The levels that have records, bottom to top, each with its count per bucket and
   * the running sum of its own and every level below it (the top of its bar). */
  layers: { level: Level; counts: number[]; tops: number[]; total: number }[];
}

/** The histogram's buckets split by level. Severities are read as the rows' are (`warning`
 * is WARN); what a bucket's `by` leaves of its count has no severity and is `other`. */
export function volume(histogram: Histogram): Volume {
  const times = histogram.buckets.map((b) => Date.parse(b.start) / 1000);
  const counts = new Map<Level, number[]>(LEVELS.map((level) => [level, histogram.buckets.map(() => 0)]));
  histogram.buckets.forEach((bucket, i) => {
    let known = 0;
    for (const [text, n] of Object.entries(bucket.by ?? {})) {
      const level = normalizeSeverity(text) ?? "other";
      counts.get(level)![i] += n;
      known += n;
    }
    counts.get("other")![i] += Math.max(bucket.count - known, 0);
  });
  const running = histogram.buckets.map(() => 0);
  const layers: Volume["layers"] = [];
  for (const level of LEVELS) {
    const levelCounts = counts.get(level)!;
    const total = levelCounts.reduce((a, b) => a + b, 0);
    if (total === 0) continue;
    levelCounts.forEach((n, i) => (running[i] += n));
    layers.push({ level, counts: levelCounts, tops: [...running], total });
  }
  return { times, layers };
}
