import { describe, expect, it } from "vitest";
import { volume } from "./volume";

const histogram = (buckets: { start: string; count: number; by?: Record<string, number> }[]) => ({
  step_seconds: 60,
  total: buckets.reduce((a, b) => a + b.count, 0),
  buckets,
});

describe("volume", () => {
  it("stacks each bucket's levels from errors up, the rest of its count as other", () => {
    const v = volume(
      histogram([
        { start: "2026-12-07T10:00:00Z", count: 6, by: { ERROR: 2, INFO: 3 } },
        { start: "2026-12-07T10:01:00Z", count: 4, by: { warning: 1, WARN: 1, Error: 2 } },
        { start: "2026-12-07T10:02:00Z", count: 0, by: {} },
      ]),
    );
    expect(v.times).toEqual([1796637600, 1796637660, 1796637720]);
    expect(v.layers.map((l) => [l.level, l.counts, l.tops, l.total])).toEqual([
      ["ERROR", [2, 2, 0], [2, 2, 0], 4],
      ["WARN", [0, 2, 0], [2, 4, 0], 2],
      ["INFO", [3, 0, 0], [5, 4, 0], 3],
      ["other", [1, 0, 0], [6, 4, 0], 1],
    ]);
  });

  it("puts a severity of no level, and a histogram without groups, under other", () => {
    expect(volume(histogram([{ start: "2026-12-07T10:00:00Z", count: 3, by: { VERBOSE: 1 } }])).layers).toEqual([
      { level: "other", counts: [3], tops: [3], total: 3 },
    ]);
    expect(volume(histogram([{ start: "2026-12-07T10:00:00Z", count: 2 }])).layers).toEqual([
      { level: "other", counts: [2], tops: [2], total: 2 },
    ]);
    expect(volume(histogram([])).layers).toEqual([]);
  });
});
