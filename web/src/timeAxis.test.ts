import { describe, expect, it } from "vitest";
import uPlot from "uplot";
import { TIME_AXIS_VALUES, formatLegendTime, withTimeAxis } from "./timeAxis";

describe("time axes", () => {
  const at = new Date(2026, 11, 7, 23, 15, 42, 250);

  it("label ticks on a 24-hour clock with ISO dates, as rows read", () => {
    const labels = TIME_AXIS_VALUES.map((row) => uPlot.fmtDate(String(row[1]))(at));
    expect(labels).toEqual(["2026", "2026-12", "12-07", "23:15", "23:15", "23:15:42", "23:15:42.250"]);
    const dayChange = TIME_AXIS_VALUES.map((row) => row[2]).filter((t) => t);
    expect(dayChange.map((t) => uPlot.fmtDate(String(t))(at))).toContain("\n2026-12-07");
    expect(labels.join(" ")).not.toMatch(/am|pm|\//);
  });

  it("show the cursor's time in the legend as rows print it", () => {
    expect(formatLegendTime(at.getTime() / 1000)).toBe("2026-12-07 23:15:42");
    expect(formatLegendTime(null)).toBe("");
  });

  it("are added where a chart says nothing, and leave what it says", () => {
    const options = withTimeAxis({ height: 1, axes: [{ space: 70 }, { size: 40 }], series: [{}, { label: "n" }] });
    expect(options.axes?.[0]).toMatchObject({ space: 70, values: TIME_AXIS_VALUES });
    expect(options.axes?.[1]).toEqual({ size: 40 });
    expect(options.series[1]).toEqual({ label: "n" });
    const value = options.series[0].value as (u: unknown, v: number) => string;
    expect(value(null, at.getTime() / 1000)).toBe("2026-12-07 23:15:42");
    const own = withTimeAxis({ height: 1, series: [{ value: "x" }], axes: [{ values: ["a"] }] });
    expect(own.axes?.[0].values).toEqual(["a"]);
    expect(own.series[0].value).toBe("x");
    const numeric = withTimeAxis({ height: 1, series: [{}], scales: { x: { time: false } } });
    expect(numeric.axes).toBeUndefined();
  });
});
