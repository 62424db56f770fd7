// Trace search: service, span name, duration bounds, status, query and time range.

import { useEffect, useMemo, useState } from "react";
import { api, qs, type TraceListItem } from "../api";
import { ErrorNote, Loading } from "../components/Status";
import { TimePicker } from "../components/TimePicker";
import { formatDuration, formatTimestamp } from "../format";
import { linkClick, navigate } from "../router";
import { parseTraces, tracesQuery, type TracesState } from "../state";
import { resolveRange, toRfc3339 } from "../time";
import { useRequest } from "../useRequest";
import { SearchRow } from "../components/SearchRow";

export function TracesView({ params }: { params: URLSearchParams }) {
  const state = parseTraces(params);
  const urlQuery = tracesQuery(state);
  const [draft, setDraft] = useState(state);
  const [runs, setRuns] = useState(0);
  useEffect(() => setDraft(parseTraces(new URLSearchParams(urlQuery))), [urlQuery]);
  const run = (next: TracesState) => {
    const href = `/traces${tracesQuery(next)}`;
    if (href === window.location.pathname + window.location.search) setRuns((n) => n + 1);
    else navigate(href);
  };
  const resolved = useMemo(() => resolveRange(state, Date.now()), [urlQuery, runs]); // eslint-disable-line react-hooks/exhaustive-deps
  const request =
    "error" in resolved
      ? null
      : qs({
          q: state.q,
          service: state.service,
          name: state.name,
          status: state.status,
          min_duration: state.minDuration,
          max_duration: state.maxDuration,
          start: toRfc3339(resolved.startMs),
          end: toRfc3339(resolved.endMs),
        });
  const traces = useRequest<{ traces: TraceListItem[] }>(request === null ? null : `${request}#${runs}`, (signal) =>
    api(`/api/v1/traces?${request}`, {}, signal),
  );
  const error = "error" in resolved ? resolved.error : traces.error;
  const text = (name: keyof TracesState, label: string, placeholder: string) => (
    <label>
      <span>{label}</span>
      <input aria-label={label} value={draft[name]} placeholder={placeholder} onChange={(e) => setDraft({ ...draft, [name]: e.target.value })} />
    </label>
  );
  return (
    <section className="view traces-view" aria-label="Traces">
      <form
        className="search-form"
        onSubmit={(e) => {
          e.preventDefault();
          run(draft);
        }}
      >
        <SearchRow
          label="Span query"
          placeholder={'Search span names, attributes and errors: http.route:/pay, "card declined"  (press / to focus)'}
          value={draft.q}
          onChange={(q) => setDraft({ ...draft, q })}
          submit="Search"
        />
        <ErrorNote message={error} testId="query-error" />
        <div className="filters">
          {text("service", "Service", "any")}
          {text("name", "Span name", "any")}
          {text("minDuration", "Min duration", "e.g. 250ms")}
          {text("maxDuration", "Max duration", "e.g. 2s")}
          <label>
            <span>Status</span>
            <select aria-label="Status" value={draft.status} onChange={(e) => run({ ...draft, status: e.target.value as TracesState["status"] })}>
              <option value="">any</option>
              <option value="ERROR">ERROR</option>
              <option value="OK">OK</option>
              <option value="UNSET">UNSET</option>
            </select>
          </label>
          <TimePicker value={draft} onChange={(range, commit) => (commit ? run({ ...draft, ...range }) : setDraft({ ...draft, ...range }))} />
        </div>
      </form>
      <Loading when={traces.loading} what="traces" />
      {traces.data && traces.data.traces.length === 0 && <p className="empty">No traces match in this range.</p>}
      {traces.data && traces.data.traces.length > 0 && (
        <div className="table-wrap">
          <table className="data-table" data-testid="trace-list">
            <thead>
              <tr>
                <th scope="col">Start</th>
                <th scope="col">Root</th>
                <th scope="col">Services</th>
                <th scope="col">Duration</th>
                <th scope="col">Spans</th>
                <th scope="col">Errors</th>
              </tr>
            </thead>
            <tbody>
              {traces.data.traces.map((t) => (
                <tr key={t.trace_id} className={t.error_count > 0 ? "has-error" : ""}>
                  <td>{formatTimestamp(t.start_time)}</td>
                  <td>
                    <a href={`/traces/${t.trace_id}`} onClick={linkClick}>
                      {t.root_service ? `${t.root_service}: ` : ""}
                      {t.root_name ?? t.trace_id}
                    </a>
                  </td>
                  <td>{t.services.join(", ")}</td>
                  <td>{formatDuration(t.duration_ns)}</td>
                  <td>{t.span_count}</td>
                  <td className={t.error_count > 0 ? "error-count" : ""}>{t.error_count}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
