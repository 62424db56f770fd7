// One trace as a waterfall; the selected span (in the URL) shows its details.

import { useMemo } from "react";
import { api, type Span } from "../api";
import { ErrorNote, Loading } from "../components/Status";
import { formatDuration, formatTimestamp, formatValue } from "../format";
import { linkClick, navigate } from "../router";
import { logsQuery, DEFAULT_LOGS, parseTrace, traceQuery } from "../state";
import { toRfc3339 } from "../time";
import { useRequest } from "../useRequest";
import { buildWaterfall } from "../waterfall";

/** A bar ending past this fraction of the track has its duration inside its end, not after it. */
const LABEL_INSIDE_AFTER = 0.85;

/** Where the duration of a bar ending at `end` (a fraction of the track) is drawn. */
function durationPlacement(end: number): { className: string; style: { left: string } | { right: string } } {
  return end > LABEL_INSIDE_AFTER
    ? { className: "wf-duration inside", style: { right: `${(1 - end) * 100}%` } }
    : { className: "wf-duration", style: { left: `${end * 100}%` } };
}

export function TraceView({ traceId, params }: { traceId: string; params: URLSearchParams }) {
  const state = parseTrace(params);
  const trace = useRequest<{ trace_id: string; spans: Span[]; span_count: number; truncated: boolean }>(traceId, (signal) =>
    api(`/api/v1/traces/${encodeURIComponent(traceId)}`, {}, signal),
  );
  const waterfall = useMemo(() => buildWaterfall(trace.data?.spans ?? []), [trace.data]);
  const selected = waterfall.rows.find((r) => r.span.span_id === state.span)?.span ?? null;
  const select = (spanId: string) =>
    navigate(`/traces/${traceId}${traceQuery({ span: spanId === state.span ? "" : spanId })}`, true);
  const errors = waterfall.rows.filter((r) => r.error).length;
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return (
    <section className="view trace-view" aria-label="Trace">
      <p className="crumbs">
        <a href="/traces" onClick={linkClick}>
          Traces
        </a>{" "}
        / <code>{traceId}</code>
      </p>
      <Loading when={trace.loading} what="trace" />
      <ErrorNote message={trace.error} />
      {trace.data && (
        <>
          <p className="summary">
            <span data-testid="span-count">{waterfall.rows.length}</span> {waterfall.rows.length === 1 ? "span" : "spans"} ·{" "}
            <span className={errors ? "error-count" : ""}>
              {errors} {errors === 1 ? "error" : "errors"}
            </span> · {formatDuration(waterfall.durationNs)} ·{" "}
            {/* The bare id: the trace's records and the lines that print it. */}
            <a href={`/logs${logsQuery({ ...DEFAULT_LOGS, q: traceId, from: "now-7d" })}`} onClick={linkClick}>
              logs of this trace
            </a>
          </p>
          {trace.data.truncated && (
            <p className="hint" data-testid="trace-truncated">
              The trace has {trace.data.span_count} spans; these are the earliest {trace.data.spans.length}. Query the rest with SQL over the
              spans table.
            </p>
          )}
          <div className="waterfall" data-testid="waterfall" role="tree" aria-label="Spans by parent">
            <div className="wf-axis" aria-hidden="true">
              <div className="wf-label" />
              <div className="wf-track">
                {ticks.map((t) => (
                  <span key={t} style={{ left: `${t * 100}%` }}>
                    {formatDuration(t * waterfall.durationNs)}
                  </span>
                ))}
              </div>
            </div>
            {waterfall.rows.map((row) => (
              <div
                key={row.span.span_id}
                role="treeitem"
                aria-level={row.depth + 1}
                aria-selected={row.span.span_id === state.span}
                tabIndex={0}
                data-testid="span-row"
                className={`wf-row${row.error ? " error" : ""}${row.span.span_id === state.span ? " selected" : ""}`}
                onClick={() => select(row.span.span_id)}
                onKeyDown={(e) => {
                  if (e.key === "Enter" || e.key === " ") {
                    e.preventDefault();
                    select(row.span.span_id);
                  }
                }}
              >
                <div className="wf-label" style={{ paddingLeft: `${row.depth * 14 + 4}px` }}>
                  {row.error && <span className="err-mark" aria-label="error">!</span>}
                  <span className="wf-service">{row.span.service}</span> {row.span.name}
                </div>
                <div className="wf-track">
                  <div
                    className="wf-bar"
                    style={{ left: `${row.offset * 100}%`, width: `max(${row.width * 100}%, 2px)` }}
                    title={formatDuration(row.span.duration_ns)}
                  />
                  <span {...durationPlacement(row.offset + row.width)}>
                    {formatDuration(row.span.duration_ns)}
                  </span>
                </div>
              </div>
            ))}
          </div>
          {selected && <SpanDetails span={selected} />}
        </>
      )}
    </section>
  );
}

/** Attributes as OTLP/JSON writes them: `[{"key": …, "value": {"stringValue": …}}]`. */
type OtlpKeyValues = { key: string; value: Record<string, unknown> }[];

interface OtlpEvent {
  name?: string;
  timeUnixNano?: string;
  attributes?: OtlpKeyValues;
}

interface OtlpLink {
  traceId?: string;
  spanId?: string;
  attributes?: OtlpKeyValues;
}

/** An event's or link's attributes (OTLP/JSON key-values), each on a line of its own. */
function OtlpAttributes({ attributes }: { attributes?: OtlpKeyValues }) {
  return (
    <>
      {(attributes ?? []).map((a) => (
        <span key={a.key} className="event-attr">
          {" "}
          {a.key}={otlpValue(a.value)}
        </span>
      ))}
    </>
  );
}

function otlpValue(value: Record<string, unknown>): string {
  const [kind, inner] = Object.entries(value)[0] ?? ["", ""];
  if (kind === "arrayValue" || kind === "kvlistValue") return JSON.stringify(inner);
  return formatValue(inner);
}

function SpanDetails({ span }: { span: Span }) {
  const startMs = Date.parse(span.start_time);
  const endMs = startMs + span.duration_ns / 1e6;
  const logsHref = (q: string) =>
    `/logs${logsQuery({ ...DEFAULT_LOGS, q, from: toRfc3339(startMs - 15 * 60_000), to: toRfc3339(endMs + 15 * 60_000) })}`;
  const events = (span.events ?? []) as OtlpEvent[];
  // A link names a span of another trace (or this one): the batch a consumer span
  // processed, the request that started a job.
  const links = ((span.links ?? []) as OtlpLink[]).filter((link) => link.traceId);
  return (
    <aside className="span-details" data-testid="span-details" aria-label={`Span ${span.name}`}>
      <h2>
        {span.name} <span className={`status status-${span.status_code.toLowerCase()}`}>{span.status_code}</span>
      </h2>
      <p>
        {/* The logs API searches trace ids (span ids are not indexed), so this opens the
            trace's logs in a window around the span. The bare id finds the records of the
            trace and the lines that print it (an app logging `trace_id=…` to stdout). */}
        <a href={logsHref(span.trace_id)} onClick={linkClick} data-testid="span-logs-link">
          Logs around this span
        </a>
      </p>
      <table className="attrs">
        <tbody>
          {(
            [
              ["span_id", span.span_id],
              ["parent_span_id", span.parent_span_id],
              ["service", span.service],
              ["kind", span.kind],
              ["start", formatTimestamp(span.start_time)],
              ["duration", formatDuration(span.duration_ns)],
              ["status", span.status_code],
              ["status message", span.status_message],
              ["pod", span.pod],
              ["version", span.version],
            ] as [string, unknown][]
          )
            .filter(([, v]) => v !== null && v !== undefined && v !== "")
            .map(([k, v]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td>{formatValue(v)}</td>
              </tr>
            ))}
        </tbody>
      </table>
      <h3>Attributes</h3>
      <AttrTable values={span.attributes ?? {}} />
      {events.length > 0 && (
        <>
          <h3>Events</h3>
          <ul className="events" data-testid="span-events">
            {events.map((event, i) => (
              <li key={i}>
                <strong>{event.name}</strong>{" "}
                {event.timeUnixNano && <time>{formatTimestamp(new Date(Number(BigInt(event.timeUnixNano) / 1_000_000n)).toISOString())}</time>}
                <OtlpAttributes attributes={event.attributes} />
              </li>
            ))}
          </ul>
        </>
      )}
      {links.length > 0 && (
        <>
          <h3>Links</h3>
          <ul className="events" data-testid="span-links">
            {links.map((link, i) => (
              <li key={i}>
                <a href={`/traces/${link.traceId}${traceQuery({ span: link.spanId ?? "" })}`} onClick={linkClick}>
                  trace {link.traceId}
                </a>
                {link.spanId && <> span <code>{link.spanId}</code></>}
                <OtlpAttributes attributes={link.attributes} />
              </li>
            ))}
          </ul>
        </>
      )}
      <h3>Resource</h3>
      <AttrTable values={span.resource_attributes ?? {}} />
    </aside>
  );
}

function AttrTable({ values }: { values: Record<string, unknown> }) {
  const entries = Object.entries(values).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return <p className="empty">none</p>;
  return (
    <table className="attrs">
      <tbody>
        {entries.map(([k, v]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td>{formatValue(v)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
