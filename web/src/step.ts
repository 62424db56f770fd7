// Steps for range queries and histogram buckets: a "nice" width so a range gives about the
// wanted number of points.

const NICE_STEPS_MS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500,
  1_000, 2_000, 5_000, 10_000, 15_000, 30_000,
  60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000,
  3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000,
  86_400_000, 172_800_000, 604_800_000,
];

/** The smallest nice step (ms) that keeps a range of `rangeMs` at most `points` points. */
export function chooseStepMs(rangeMs: number, points: number, minStepMs = 1): number {
  const wanted = Math.max(rangeMs / Math.max(points, 1), minStepMs);
  for (const step of NICE_STEPS_MS) {
    if (step >= wanted) return step;
  }
  const week = NICE_STEPS_MS[NICE_STEPS_MS.length - 1];
  return Math.ceil(wanted / week) * week;
}

/** PromQL range queries: ~250 points, at least one second. */
export function metricsStepSeconds(rangeMs: number): number {
  return chooseStepMs(rangeMs, 250, 1_000) / 1_000;
}

/** Log histogram buckets: ~60 bars, at least 1ms (the API's minimum). */
export function histogramStepMs(rangeMs: number): number {
  return chooseStepMs(rangeMs, 60, 1);
}
