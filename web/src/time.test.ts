import { describe, expect, it } from "vitest";
import {
  describeRange,
  formatDurationText,
  parseDuration,
  parseTime,
  resolveRange,
  rfc3339ToNanos,
  toRfc3339,
} from "./time";
import { chooseStepMs, histogramStepMs, metricsStepSeconds } from "./step";

const NOW = Date.parse("2026-12-03T12:00:00Z");

describe("durations", () => {
  it("parses units and compounds", () => {
    expect(parseDuration("15m")).toBe(900_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("7d")).toBe(604_800_000);
    expect(parseDuration("1.5s")).toBe(1_500);
  });

  it("refuses what is not a duration", () => {
    for (const bad of ["", "m", "15", "15x", "1h-2m", "-5m", "5 m"]) {
      expect(parseDuration(bad), bad).toBeNull();
    }
  });

  it("formats the shortest form", () => {
    expect(formatDurationText(3_600_000)).toBe("1h");
    expect(formatDurationText(90_000)).toBe("90s");
    expect(formatDurationText(1_500)).toBe("1500ms");
  });
});

describe("time expressions", () => {
  it("resolves relative times against now", () => {
    expect(parseTime("now", NOW)).toBe(NOW);
    expect(parseTime("now-15m", NOW)).toBe(NOW - 900_000);
    expect(parseTime("now - 1h", NOW)).toBe(NOW - 3_600_000);
    expect(parseTime("now+1d", NOW)).toBe(NOW + 86_400_000);
  });

  it("parses absolute RFC 3339 times with zones and fractions", () => {
    expect(parseTime("2026-12-03T10:00:00Z", NOW)).toBe(Date.parse("2026-12-03T10:00:00Z"));
    expect(parseTime("2026-12-03T10:00:00.250+01:00", NOW)).toBe(Date.parse("2026-12-03T09:00:00.250Z"));
  });

  it("refuses anything else", () => {
    for (const bad of ["", "yesterday", "now-", "now-abc", "2026-12-03", "2026-13-45T99:00:00Z", "12:00"]) {
      expect(parseTime(bad, NOW), bad).toBeNull();
    }
  });

  it("resolves a range and says which end is wrong", () => {
    expect(resolveRange({ from: "now-1h", to: "now" }, NOW)).toEqual({ startMs: NOW - 3_600_000, endMs: NOW });
    expect(resolveRange({ from: "soon", to: "now" }, NOW)).toEqual({ error: expect.stringContaining("from") });
    expect(resolveRange({ from: "now", to: "later" }, NOW)).toEqual({ error: expect.stringContaining("to") });
    expect(resolveRange({ from: "now", to: "now-1h" }, NOW)).toEqual({ error: "from must be before to" });
  });

  it("formats RFC 3339 and describes ranges", () => {
    expect(toRfc3339(NOW)).toBe("2026-12-03T12:00:00Z");
    expect(toRfc3339(NOW + 5)).toBe("2026-12-03T12:00:00.005Z");
    expect(describeRange({ from: "now-15m", to: "now" })).toBe("last 15m");
    expect(describeRange({ from: "2026-12-03T10:00:00Z", to: "now" })).toBe("2026-12-03T10:00:00Z → now");
  });

  it("reads nanosecond timestamps exactly", () => {
    expect(rfc3339ToNanos("2026-12-03T12:21:32.443806208Z")).toBe(1796300492443806208n);
    expect(rfc3339ToNanos("1970-01-01T00:00:01Z")).toBe(1_000_000_000n);
    expect(rfc3339ToNanos("1970-01-01T00:00:00.5Z")).toBe(500_000_000n);
    expect(rfc3339ToNanos("not a time")).toBeNull();
  });
});

describe("steps", () => {
  it("picks the smallest nice step giving at most the wanted points", () => {
    expect(chooseStepMs(3_600_000, 250)).toBe(15_000);
    expect(chooseStepMs(60_000, 60)).toBe(1_000);
    expect(chooseStepMs(1_000, 1_000)).toBe(1);
    expect(chooseStepMs(100 * 604_800_000, 10)).toBe(10 * 604_800_000);
  });

  it("keeps metrics near 250 points and at least a second", () => {
    for (const range of [300_000, 3_600_000, 86_400_000, 604_800_000]) {
      const step = metricsStepSeconds(range);
      const points = range / (step * 1_000);
      expect(points).toBeLessThanOrEqual(250);
      expect(points).toBeGreaterThan(80);
    }
    expect(metricsStepSeconds(10_000)).toBe(1);
  });

  it("gives histograms about 60 bars", () => {
    expect(histogramStepMs(3_600_000)).toBe(60_000);
    expect(histogramStepMs(86_400_000)).toBe(1_800_000);
  });
});
