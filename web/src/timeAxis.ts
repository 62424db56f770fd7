// Time axes read as the rows do: 24-hour clock, ISO dates (uPlot's default is 12-hour
// with US dates: "11:15pm", "12/7/26", beside rows that read "2026-12-07 23:16:23").

import type uPlot from "uplot";
import uPlotLib from "uplot";

/**
 * uPlot's table of tick formats for a time axis: tick step (seconds), the tick's label,
 * then the label added when the year, month, day, hour, minute or second changes, and
 * whether those extras are shown on the first tick only (1 = every change).
 */
export const TIME_AXIS_VALUES: (string | number | null)[][] = [
  [3600 * 24 * 365, "{YYYY}", null, null, null, null, null, null, 1],
  [3600 * 24 * 28, "{YYYY}-{MM}", null, null, null, null, null, null, 1],
  [3600 * 24, "{MM}-{DD}", "\n{YYYY}", null, null, null, null, null, 1],
  [3600, "{HH}:{mm}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
  [60, "{HH}:{mm}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
  [1, "{HH}:{mm}:{ss}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
  [0.001, "{HH}:{mm}:{ss}.{fff}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
];

const legendTime = uPlotLib.fmtDate("{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}");

/** A time x value (seconds) as a legend shows it. */
export function formatLegendTime(seconds: number | null): string {
  return seconds == null ? "" : legendTime(new Date(seconds * 1000));
}

type ChartOptions = Omit<uPlot.Options, "width">;

/** `options` with the 24-hour axis and legend time, where it says nothing of its own. */
export function withTimeAxis(options: ChartOptions): ChartOptions {
  if (options.scales?.x?.time === false) return options;
  const [x = {}, ...axes] = options.axes ?? [{}, {}];
  const [first = {}, ...series] = options.series;
  return {
    ...options,
    axes: [{ values: TIME_AXIS_VALUES, ...x }, ...axes],
    series: [{ value: (_u: uPlot, v: number | null) => formatLegendTime(v), ...first }, ...series],
  };
}
