// PromQL range queries drawn as lines, with a legend that shows values under the cursor.

import { useEffect, useMemo, useState } from "react";
import uPlot from "uplot";
import { api, qs } from "../api";
import { Chart } from "../components/Chart";
import { LinkList } from "../components/LinkList";
import { ErrorNote, Loading } from "../components/Status";
import { TimePicker } from "../components/TimePicker";
import { seriesLabel } from "../format";
import { navigate } from "../router";
import { metricsQuery, parseMetrics, type MetricsState } from "../state";
import { metricsStepSeconds } from "../step";
import { resolveRange, toRfc3339 } from "../time";
import { useRequest } from "../useRequest";
import { alignSeries, type Matrix } from "../series";
import { SearchRow } from "../components/SearchRow";

const COLOURS = ["#4c84ff", "#e5534b", "#57ab5a", "#c69026", "#986ee2", "#39c5cf", "#e0823d", "#d16d9e"];

/** Metric names listed on the page without a query; the query box suggests every one. */
const MAX_LISTED = 200;

export function MetricsView({ params }: { params: URLSearchParams }) {
  const state = parseMetrics(params);
  const urlQuery = metricsQuery(state);
  const [draft, setDraft] = useState(state);
  const [runs, setRuns] = useState(0);
  useEffect(() => setDraft(parseMetrics(new URLSearchParams(urlQuery))), [urlQuery]);
  const run = (next: MetricsState) => {
    const href = `/graph${metricsQuery(next)}`;
    if (href === window.location.pathname + window.location.search) setRuns((n) => n + 1);
    else navigate(href);
  };
  const resolved = useMemo(() => resolveRange(state, Date.now()), [urlQuery, runs]); // eslint-disable-line react-hooks/exhaustive-deps
  const step = "error" in resolved ? 0 : state.step ? Number(state.step) : metricsStepSeconds(resolved.endMs - resolved.startMs);
  const request =
    "error" in resolved || !state.query.trim()
      ? null
      : qs({ query: state.query, start: resolved.startMs / 1000, end: resolved.endMs / 1000, step });
  const result = useRequest<Matrix>(request === null ? null : `${request}#${runs}`, (signal) =>
    api(`/api/v1/metrics/query_range?${request}`, {}, signal),
  );
  const names = useRequest<{ data: string[] }>("names", (signal) => api("/api/v1/metrics/label/__name__/values", {}, signal));

  const series = result.data?.data.result ?? [];
  const xRange: uPlot.Range.MinMax = "error" in resolved ? [0, 1] : [resolved.startMs / 1000, resolved.endMs / 1000];
  const data = useMemo(() => alignSeries(series) as uPlot.AlignedData, [result.data]); // eslint-disable-line react-hooks/exhaustive-deps
  const options = useMemo<Omit<uPlot.Options, "width">>(
    () => ({
      height: 320,
      // The queried range, not the data's: one sample alone would stretch the axis to years.
      scales: { x: { time: true, range: (): uPlot.Range.MinMax => xRange } },
      legend: { live: true },
      axes: [{}, { size: 60 }],
      series: [
        { label: "time" },
        ...series.map((s, i) => ({
          label: seriesLabel(s.metric),
          stroke: COLOURS[i % COLOURS.length],
          width: 1.5,
          spanGaps: false,
          points: { show: s.values.length < 3 },
        })),
      ],
    }),
    [result.data], // eslint-disable-line react-hooks/exhaustive-deps
  );
  const error = "error" in resolved ? resolved.error : result.error;
  return (
    <section className="view metrics-view" aria-label="Metrics">
      <form
        className="search-form"
        onSubmit={(e) => {
          e.preventDefault();
          run(draft);
        }}
      >
        <SearchRow
          label="PromQL query"
          placeholder="PromQL: sum by (job) (rate(http_requests_total[5m]))  (press / to focus)"
          value={draft.query}
          onChange={(query) => setDraft({ ...draft, query })}
          submit="Run"
          list="metric-names"
        >
          <datalist id="metric-names">
            {(names.data?.data ?? []).map((n) => (
              <option key={n} value={n} />
            ))}
          </datalist>
        </SearchRow>
        <ErrorNote message={error} testId="query-error" />
        <div className="filters">
          <label>
            <span>Step (s)</span>
            <input aria-label="Step in seconds" value={draft.step} placeholder={`auto (${step || "–"}s)`} onChange={(e) => setDraft({ ...draft, step: e.target.value })} />
          </label>
          <TimePicker value={draft} onChange={(range, commit) => (commit ? run({ ...draft, ...range }) : setDraft({ ...draft, ...range }))} />
        </div>
      </form>
      <Loading when={result.loading} what="series" />
      {!state.query.trim() && names.data && (
        <LinkList
          testId="metric-picker"
          linkTestId="metric-link"
          label="Metrics stored: "
          empty="No metrics stored yet."
          links={names.data.data.slice(0, MAX_LISTED).map((n) => ({ text: n, href: `/graph${metricsQuery({ ...state, query: n })}` }))}
          more={names.data.data.length > MAX_LISTED ? `and ${names.data.data.length - MAX_LISTED} more (the query box suggests them)` : undefined}
        />
      )}
      {result.data && (
        <p className="summary">
          <span data-testid="series-count">{series.length}</span> series · step {step}s · {toRfc3339("error" in resolved ? 0 : resolved.startMs)} →{" "}
          {toRfc3339("error" in resolved ? 0 : resolved.endMs)}
        </p>
      )}
      {result.data && series.length === 0 && <p className="empty">The query returned no series in this range.</p>}
      {result.data && series.length > 0 && (
        <div data-testid="metrics-chart">
          <Chart
            options={options}
            data={data}
            label={`Chart of ${state.query}`}
            onSelectX={(min, max) => navigate(`/graph${metricsQuery({ ...state, from: toRfc3339(min * 1000), to: toRfc3339(max * 1000) })}`)}
          />
        </div>
      )}
    </section>
  );
}
