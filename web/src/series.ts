// Prometheus matrix results as columns on one shared time axis (uPlot's aligned data).

export interface Matrix {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; values: [number, string][] }[] };
}

/** Series on one shared x axis (uPlot's aligned data), gaps as null. */
export function alignSeries(result: Matrix["data"]["result"]): (number | null)[][] {
  const times = [...new Set(result.flatMap((s) => s.values.map(([t]) => t)))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const columns = result.map((s) => {
    const column: (number | null)[] = new Array(times.length).fill(null);
    for (const [t, v] of s.values) column[index.get(t)!] = Number(v);
    return column;
  });
  return [times, ...columns];
}
