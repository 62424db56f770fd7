// Log search: query and filters, time range, histogram (drag to zoom), a virtualised list
// with infinite scroll, expandable rows with context, and live tail over SSE.

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import uPlot from "uplot";
import { api, follow, qs, sql, type Histogram, type LogRow, type LogsPage } from "../api";
import { Chart } from "../components/Chart";
import { ErrorNote, Loading } from "../components/Status";
import { TimePicker } from "../components/TimePicker";
import { SEVERITIES, exceptionType, formatTimestamp, formatValue, isClockTime, bodyFields as searchedBodyFields, severityClass, traceOf, tracePath } from "../format";
import { linkClick, navigate } from "../router";
import { LOG_FILTERS, andQuery, attributeClause, logsQuery, missedSearch, parseLogs, type LogsState } from "../state";
import { histogramStepMs } from "../step";
import { LEVEL_COLOURS, volume } from "../volume";
import { formatDurationText, resolveRange, rfc3339ToNanos, toRfc3339 } from "../time";
import { useRequest } from "../useRequest";
import { SearchRow } from "../components/SearchRow";

const PAGE_SIZE = 200;
const LIVE_MAX = 5_000;

interface Keyed {
  id: number;
  row: LogRow;
}

let nextRowId = 1;
const keyed = (rows: LogRow[]): Keyed[] => rows.map((row) => ({ id: nextRowId++, row }));

function filterParams(state: LogsState) {
  return {
    q: state.q,
    service: state.service,
    namespace: state.namespace,
    pod: state.pod,
    version: state.version,
    severity: state.severity,
  };
}

export function LogsView({ params }: { params: URLSearchParams }) {
  const state = parseLogs(params);
  const urlQuery = logsQuery(state);
  const [draft, setDraft] = useState(state);
  const [runs, setRuns] = useState(0);
  useEffect(() => setDraft(parseLogs(new URLSearchParams(urlQuery))), [urlQuery]);

  const run = (next: LogsState) => {
    const href = `/logs${logsQuery(next)}`;
    if (href === window.location.pathname + window.location.search) setRuns((n) => n + 1);
    else navigate(href);
  };

  // Relative ranges are resolved once per run, so the histogram and every page of the
  // search (and its cursor) see the same range.
  const resolved = useMemo(() => resolveRange(state, Date.now()), [urlQuery, runs]); // eslint-disable-line react-hooks/exhaustive-deps
  const rangeError = "error" in resolved ? resolved.error : null;
  const search =
    "error" in resolved
      ? null
      : { ...filterParams(state), start: toRfc3339(resolved.startMs), end: toRfc3339(resolved.endMs) };
  const direction = state.oldestFirst ? "forward" : "backward";
  const searchKey = search && !state.live ? `${qs(search)}#${direction}#${runs}` : null;

  const histogramStep = "error" in resolved ? 1000 : histogramStepMs(resolved.endMs - resolved.startMs);
  const histogram = useRequest<Histogram>(searchKey, (signal) =>
    api(`/api/v1/logs/histogram?${qs({ ...search!, step: formatDurationText(histogramStep), by: "severity" })}`, {}, signal),
  );
  // Pages in the chosen order; the histogram is in time order either way.
  const results = useLogPages(searchKey, search && { ...search, direction });
  const live = useLive(state.live ? qs(filterParams(state)) : null);

  const zoom = useCallback(
    (minSeconds: number, maxSeconds: number) => {
      const from = toRfc3339(Math.floor(minSeconds * 1000));
      const to = toRfc3339(Math.ceil(maxSeconds * 1000));
      navigate(`/logs${logsQuery({ ...state, from, to })}`);
    },
    [urlQuery], // eslint-disable-line react-hooks/exhaustive-deps
  );

  const queryError = rangeError ?? histogram.error ?? results.error;
  const addFilter = (clause: string) => run({ ...state, q: andQuery(state.q, clause) });

  return (
    <section className="view logs-view" aria-label="Logs">
      <form
        className="search-form"
        onSubmit={(e) => {
          e.preventDefault();
          run(draft);
        }}
      >
        <SearchRow
          label="Log query"
          placeholder='Search logs: error AND service:checkout, "connection refused", status:>=500  (press / to focus)'
          value={draft.q}
          onChange={(q) => setDraft({ ...draft, q })}
          submit="Search"
        >
          <button
            type="button"
            className={state.live ? "live on" : "live"}
            aria-pressed={state.live}
            onClick={() => run({ ...draft, live: !state.live })}
          >
            {state.live ? "● Live" : "Live"}
          </button>
          <button
            type="button"
            className={state.oldestFirst ? "order on" : "order"}
            aria-pressed={state.oldestFirst}
            disabled={state.live}
            title="Newest first, or oldest first from the start of the range"
            onClick={() => run({ ...draft, oldestFirst: !state.oldestFirst })}
          >
            Oldest first
          </button>
        </SearchRow>
        <ErrorNote message={queryError} testId="query-error" />
        <div className="filters">
          {LOG_FILTERS.map((field) => (
            <FilterInput
              key={field}
              field={field}
              value={draft[field]}
              range={search ? { start: search.start, end: search.end } : null}
              onChange={(value) => setDraft({ ...draft, [field]: value })}
            />
          ))}
          <label>
            <span>Severity</span>
            <select
              aria-label="Severity"
              value={draft.severity}
              onChange={(e) => run({ ...draft, severity: e.target.value as LogsState["severity"] })}
            >
              <option value="">any</option>
              {SEVERITIES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
          <TimePicker
            value={draft}
            onChange={(range, commit) => (commit ? run({ ...draft, ...range }) : setDraft({ ...draft, ...range }))}
          />
        </div>
      </form>

      {state.live ? (
        <>
          <p className="summary" role="status" data-testid="live-status">
            {live.connected ? "Live: following new records" : "Live: connecting…"} · {live.rows.length} received
          </p>
          <ErrorNote message={live.error} testId="live-error" />
          {live.missedFrom && (
            <p className="summary" data-testid="live-missed">
              <a href={`/logs${missedSearch(state, live.missedFrom)}`} onClick={linkClick}>
                Search the records the live view missed, oldest first
              </a>
            </p>
          )}
          <LogList rows={live.rows} hasMore={false} loadingMore={false} loadMore={() => {}} onFilter={addFilter} />
        </>
      ) : (
        <>
          <HistogramChart histogram={histogram.data} loading={histogram.loading} onZoom={zoom} />
          <Loading when={results.loading && results.rows.length === 0} what="logs" />
          {!results.loading && !results.error && results.rows.length === 0 && searchKey && (
            <p className="empty">No records match in this range.</p>
          )}
          <LogList
            rows={results.rows}
            hasMore={results.cursor !== null}
            loadingMore={results.loading}
            loadMore={results.loadMore}
            onFilter={addFilter}
          />
        </>
      )}
    </section>
  );
}

/** Narrows the search to a clause (a record's attribute or field, clicked in its details). */
type OnFilter = (clause: string) => void;

/** A button that narrows the search to `key` with `value`, when the query language can say it. */
function FilterButton({ name, value, onFilter }: { name: string; value: unknown; onFilter: OnFilter }) {
  const clause = attributeClause(name, value);
  if (clause === null) return null;
  return (
    <button type="button" className="filter-for" title={`Search ${clause}`} aria-label={`Filter by ${name}`} onClick={() => onFilter(clause)}>
      +
    </button>
  );
}

function useLogPages(key: string | null, search: Record<string, string> | null) {
  const [rows, setRows] = useState<Keyed[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const controller = useRef<AbortController | null>(null);
  const searchRef = useRef(search);
  searchRef.current = search;

  const fetchPage = useCallback((after: string | null) => {
    const current = searchRef.current;
    if (!current) return;
    controller.current?.abort();
    const abort = new AbortController();
    controller.current = abort;
    setLoading(true);
    setError(null);
    api<LogsPage>(`/api/v1/logs?${qs({ ...current, limit: PAGE_SIZE, cursor: after })}`, {}, abort.signal).then(
      (page) => {
        if (abort.signal.aborted) return;
        setRows((previous) => (after ? [...previous, ...keyed(page.rows)] : keyed(page.rows)));
        setCursor(page.next_cursor);
        setLoading(false);
      },
      (e: Error) => {
        if (abort.signal.aborted) return;
        setError(e.message);
        setLoading(false);
      },
    );
  }, []);

  useEffect(() => {
    setRows([]);
    setCursor(null);
    if (key === null) {
      controller.current?.abort();
      setLoading(false);
      setError(null);
      return;
    }
    fetchPage(null);
    return () => controller.current?.abort();
  }, [key, fetchPage]);

  const loadMore = useCallback(() => {
    if (cursor && !loading) fetchPage(cursor);
  }, [cursor, loading, fetchPage]);
  return { rows, cursor, loading, error, loadMore };
}

function useLive(filterQuery: string | null) {
  const [rows, setRows] = useState<Keyed[]>([]);
  const [connected, setConnected] = useState(false);
  const [error, setError] = useState<string | null>(null);
  /** Where the records a resumed tail did not send start, when it said so. */
  const [missedFrom, setMissedFrom] = useState<string | null>(null);
  useEffect(() => {
    setRows([]);
    setConnected(false);
    setError(null);
    setMissedFrom(null);
    if (filterQuery === null) return;
    return follow(`/api/v1/logs/tail?${filterQuery}`, {
      onOpen: () => {
        setConnected(true);
        setError(null);
      },
      onRecord: (row) => setRows((previous) => [...keyed([row as LogRow]), ...previous].slice(0, LIVE_MAX)),
      onError: (message) => {
        setConnected(false);
        setError(message);
      },
      onNotice: (message, from) => {
        setError(message);
        setMissedFrom(from ?? null);
      },
    });
  }, [filterQuery]);
  return { rows, connected, error, missedFrom };
}

function FilterInput({
  field,
  value,
  range,
  onChange,
}: {
  field: (typeof LOG_FILTERS)[number];
  value: string;
  range: { start: string; end: string } | null;
  onChange: (value: string) => void;
}) {
  const [suggestions, setSuggestions] = useState<string[]>([]);
  const loadedFor = useRef("");
  const load = () => {
    if (!range) return;
    const key = `${range.start}|${range.end}`;
    if (loadedFor.current === key) return;
    loadedFor.current = key;
    // Promoted columns, so this reads only one column of the files in range.
    sql<{ v: string }>(
      `SELECT DISTINCT ${field} AS v FROM logs WHERE timestamp >= '${range.start}' AND timestamp < '${range.end}' AND ${field} IS NOT NULL ORDER BY v LIMIT 200`,
    ).then(
      (result) => setSuggestions(result.rows.map((r) => r.v)),
      () => {
        loadedFor.current = "";
        setSuggestions([]);
      },
    );
  };
  const listId = `suggest-${field}`;
  return (
    <label>
      <span>{field[0].toUpperCase() + field.slice(1)}</span>
      <input
        aria-label={`Filter by ${field}`}
        list={listId}
        value={value}
        placeholder="any"
        onFocus={load}
        onChange={(e) => onChange(e.target.value)}
      />
      <datalist id={listId} data-testid={listId}>
        {suggestions.map((s) => (
          <option key={s} value={s} />
        ))}
      </datalist>
    </label>
  );
}

function HistogramChart({
  histogram,
  loading,
  onZoom,
}: {
  histogram: Histogram | null;
  loading: boolean;
  onZoom: (min: number, max: number) => void;
}) {
  const levels = useMemo(() => histogram && volume(histogram), [histogram]);
  // Stacked bars: each level's bar reaches the top of its stack, drawn from the top level
  // down so each level's colour shows over its own part; a level with no records in a
  // bucket draws nothing there (not a line at 0).
  const data = useMemo<uPlot.AlignedData | null>(
    () =>
      levels && [
        levels.times,
        ...[...levels.layers].reverse().map((layer) => layer.tops.map((top, i) => (layer.counts[i] ? top : null))),
      ],
    [levels],
  );
  const options = useMemo<Omit<uPlot.Options, "width">>(
    () => ({
      height: 120,
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: false } },
      // From 0: the bars' tops are sums, and empty buckets are no points.
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(max, 1)] } },
      axes: [{ space: 70 }, { size: 40 }],
      series: [
        {},
        ...[...(levels?.layers ?? [])].reverse().map((layer) => ({
          label: layer.level,
          fill: LEVEL_COLOURS[layer.level],
          stroke: LEVEL_COLOURS[layer.level],
          paths: uPlot.paths.bars!({ size: [0.9, 64], align: 1 }),
          points: { show: false },
        })),
      ],
    }),
    [levels],
  );
  return (
    <div className="histogram" data-testid="histogram">
      <p className="summary">
        {histogram ? (
          <>
            <span data-testid="histogram-total">{histogram.total}</span> matching {histogram.total === 1 ? "record" : "records"}
            {levels && levels.layers.length > 1 && (
              <span className="levels" data-testid="histogram-levels">
                {levels.layers.map((layer) => (
                  <span key={layer.level} className="level" data-level={layer.level}>
                    <i style={{ background: LEVEL_COLOURS[layer.level] }} /> {layer.total} {layer.level}
                  </span>
                ))}
              </span>
            )}
            <span className="hint"> · drag on the chart to zoom</span>
          </>
        ) : loading ? (
          "Counting…"
        ) : (
          " "
        )}
      </p>
      {data && <Chart options={options} data={data} label="Matching records over time, stacked by level" onSelectX={onZoom} />}
    </div>
  );
}

function LogList({
  rows,
  hasMore,
  loadingMore,
  loadMore,
  onFilter,
}: {
  rows: Keyed[];
  hasMore: boolean;
  loadingMore: boolean;
  loadMore: () => void;
  onFilter: OnFilter;
}) {
  const scroller = useRef<HTMLDivElement>(null);
  const [expanded, setExpanded] = useState<Set<number>>(new Set());
  const virtualizer = useVirtualizer({
    count: rows.length + (hasMore ? 1 : 0),
    getScrollElement: () => scroller.current,
    estimateSize: () => 30,
    overscan: 12,
    getItemKey: (index) => rows[index]?.id ?? "more",
  });
  const items = virtualizer.getVirtualItems();
  const last = items[items.length - 1];
  useEffect(() => {
    if (hasMore && !loadingMore && last && last.index >= rows.length - 10) loadMore();
  }, [hasMore, loadingMore, last?.index, rows.length, loadMore]); // eslint-disable-line react-hooks/exhaustive-deps

  const toggle = (id: number) =>
    setExpanded((previous) => {
      const next = new Set(previous);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  return (
    <div className="log-list" ref={scroller} role="list" aria-label="Log records" data-testid="log-list">
      <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
        {items.map((item) => {
          const entry = rows[item.index];
          return (
            <div
              key={item.key}
              data-index={item.index}
              ref={virtualizer.measureElement}
              className="log-item"
              style={{ transform: `translateY(${item.start}px)` }}
              role="listitem"
            >
              {entry ? (
                <LogRowView row={entry.row} expanded={expanded.has(entry.id)} onToggle={() => toggle(entry.id)} onFilter={onFilter} />
              ) : (
                <div className="more">{loadingMore ? "Loading more…" : "Scroll for more"}</div>
              )}
            </div>
          );
        })}
      </div>
    </div>
  );
}

function LogRowView({ row, expanded, onToggle, onFilter }: { row: LogRow; expanded: boolean; onToggle: () => void; onFilter: OnFilter }) {
  const sev = severityClass(row.severity);
  const exception = exceptionType(row.attributes);
  const trace = useMemo(() => traceOf(row), [row]);
  return (
    <div className={`log-row ${sev}${expanded ? " expanded" : ""}`} data-testid="log-row">
      <div
        className="log-line"
        role="button"
        tabIndex={0}
        aria-expanded={expanded}
        aria-label={`Log record ${row.timestamp}: ${row.body ?? ""}`}
        onClick={onToggle}
        onKeyDown={(e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            onToggle();
          }
        }}
      >
        <time dateTime={row.timestamp}>{formatTimestamp(row.timestamp)}</time>
        <span className={`sev ${sev}`}>{row.severity ?? "—"}</span>
        <span className="svc">{row.service}</span>
        <span className="body">{row.body}</span>
        {exception && (
          <span className="exception-type" title="This record carries an exception: expand it for the stack trace">
            {exception}
          </span>
        )}
        {trace && (
          <a
            className="trace-link"
            href={tracePath(trace)}
            onClick={(e) => {
              e.stopPropagation();
              linkClick(e);
            }}
            aria-label={`Open trace ${trace.traceId}`}
          >
            trace
          </a>
        )}
      </div>
      {expanded && <LogDetails row={row} onFilter={onFilter} />}
    </div>
  );
}

function LogDetails({ row, onFilter }: { row: LogRow; onFilter: OnFilter }) {
  const [context, setContext] = useState<{ before: LogRow[]; after: LogRow[] } | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const fields: [string, unknown][] = [
    ["timestamp", row.timestamp],
    ["severity", row.severity],
    ["service", row.service],
    ["namespace", row.namespace],
    ["pod", row.pod],
    ["container", row.container],
    ["version", row.version],
    ["image_digest", row.image_digest],
    ["trace_id", row.trace_id],
    ["span_id", row.span_id],
  ];
  const attributes = Object.entries(row.attributes ?? {}).sort(([a], [b]) => a.localeCompare(b));
  // A JSON log line's (or a map body's) fields, or a plain line's `key=value` pairs:
  // searched as attributes are.
  const bodyFields = searchedBodyFields(row.body);
  const trace = traceOf(row);

  const showContext = () => {
    const at = rfc3339ToNanos(row.timestamp);
    if (at === null || !row.pod) return;
    const window = 3_600_000_000_000n;
    setLoading(true);
    setError(null);
    const base = { pod: row.pod, limit: 10 };
    // With the row's cursor, the searches start right beside it, ties included; a row
    // from a server that gives none is placed by its time.
    const around = row.cursor
      ? {
          before: { ...base, cursor: row.cursor, start: String(at - window) },
          after: { ...base, cursor: row.cursor, direction: "forward", end: String(at + window) },
        }
      : {
          before: { ...base, start: String(at - window), end: String(at) },
          after: { ...base, direction: "forward", start: String(at + 1n), end: String(at + window) },
        };
    Promise.all([
      api<LogsPage>(`/api/v1/logs?${qs(around.before)}`),
      // Oldest first from the record: the lines right after it, however many follow
      // within the window (newest first, a busy pod's newest were not those).
      api<LogsPage>(`/api/v1/logs?${qs(around.after)}`),
    ]).then(
      ([before, after]) => {
        // A search starts at a whole microsecond: without a cursor it may give the row back.
        const later = after.rows.filter((r) => row.cursor || r.timestamp > row.timestamp);
        setContext({ before: before.rows.slice().reverse(), after: later });
        setLoading(false);
      },
      (e: Error) => {
        setError(e.message);
        setLoading(false);
      },
    );
  };

  return (
    <div className="log-details" data-testid="log-details">
      <table className="attrs">
        <tbody>
          {fields
            .filter(([, value]) => value !== null && value !== undefined && value !== "")
            .map(([name, value]) => (
              <tr key={name}>
                <th scope="row">{name}</th>
                <td>
                  {name === "trace_id" ? (
                    <a href={`/traces/${value}`} onClick={linkClick}>
                      {String(value)}
                    </a>
                  ) : (
                    formatValue(value)
                  )}
                </td>
              </tr>
            ))}
          {attributes.map(([name, value]) => (
            <tr key={`attr-${name}`} data-testid="log-attribute">
              <th scope="row">{name}</th>
              <td>
                {formatValue(value)} <FilterButton name={name} value={value} onFilter={onFilter} />
              </td>
            </tr>
          ))}
          {bodyFields.map(([name, value]) => (
            <tr key={`field-${name}`} data-testid="log-body-field">
              <th scope="row">
                body <span className="field-name">{name}</span>
              </th>
              <td>
                {formatValue(value)}{" "}
                {!(typeof value === "string" && isClockTime(value)) && <FilterButton name={name} value={value} onFilter={onFilter} />}
              </td>
            </tr>
          ))}
          <tr>
            <th scope="row">body</th>
            <td className="full-body">{row.body}</td>
          </tr>
        </tbody>
      </table>
      <div className="detail-actions">
        {row.pod && (
          <button type="button" onClick={showContext} disabled={loading}>
            Show context (pod {row.pod})
          </button>
        )}
        {trace && (
          <a href={tracePath(trace)} onClick={linkClick}>
            Open trace
          </a>
        )}
      </div>
      <Loading when={loading} what="context" />
      <ErrorNote message={error} />
      {context && (
        <ol className="context" data-testid="log-context" aria-label="Lines around this record from the same pod">
          {context.before.map((r, i) => (
            <ContextLine key={`b${i}`} row={r} />
          ))}
          <ContextLine row={row} current />
          {context.after.map((r, i) => (
            <ContextLine key={`a${i}`} row={r} />
          ))}
        </ol>
      )}
    </div>
  );
}

function ContextLine({ row, current }: { row: LogRow; current?: boolean }) {
  return (
    <li className={`${severityClass(row.severity)}${current ? " current" : ""}`}>
      <time dateTime={row.timestamp}>{formatTimestamp(row.timestamp)}</time> <span className="sev">{row.severity}</span>{" "}
      {row.body}
    </li>
  );
}
