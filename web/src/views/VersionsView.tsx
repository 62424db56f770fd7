// A service's versions side by side (GET /api/v1/versions): pods, first/last seen, error
// logs, span error rate and p99, with a timeline of when each version ran, so "v2 broke it
// at 14:02" is one look.

import { useEffect, useState } from "react";
import { api, qs, sql } from "../api";
import { LinkList } from "../components/LinkList";
import { SearchRow } from "../components/SearchRow";
import { ErrorNote, Loading } from "../components/Status";
import { formatTimestamp } from "../format";
import { linkClick, navigate } from "../router";
import { DEFAULT_LOGS, logsQuery } from "../state";
import { parseDuration, toRfc3339 } from "../time";
import { useRequest } from "../useRequest";

interface VersionSummary {
  version: string;
  pods: number;
  first_seen: string | null;
  last_seen: string | null;
  logs: number;
  error_logs: number;
  error_log_rate: number;
  spans: number;
  span_errors: number;
  span_error_rate: number | null;
  p99_latency_seconds: number | null;
}

interface Versions {
  service: string;
  start: string;
  end: string;
  versions: VersionSummary[];
}

const RANGES = ["1h", "6h", "24h", "7d"] as const;

/** The page is watched during a rollout: a new version's pods and errors appear by themselves. */
const REFRESH_MS = 10_000;

export function versionsQuery(service: string, since: string): string {
  const query = qs({ service, since: since === "24h" ? "" : since });
  return query ? `?${query}` : "";
}

export function parseVersions(params: URLSearchParams): { service: string; since: string } {
  const since = params.get("since") ?? "24h";
  return { service: params.get("service") ?? "", since: (RANGES as readonly string[]).includes(since) ? since : "24h" };
}

/** The logs view of one version's errors over the page's range (a version's link). */
export function versionLogsHref(service: string, version: string, since: string): string {
  return `/logs${logsQuery({ ...DEFAULT_LOGS, service, version, severity: "ERROR", from: `now-${since}` })}`;
}

/** The services that logged or traced in the last `since`, for the page without a service. */
export function servicesSql(since: string, nowMs: number): string {
  const start = toRfc3339(nowMs - (parseDuration(since) ?? 86_400_000));
  const of = (table: string) => `SELECT service AS v FROM ${table} WHERE timestamp >= '${start}' AND service IS NOT NULL`;
  return `${of("logs")} UNION ${of("spans")} ORDER BY v LIMIT 500`;
}

const percent = (v: number | null) => (v === null ? "—" : `${(v * 100).toFixed(1)}%`);
const seconds = (v: number | null) => (v === null ? "—" : v < 1 ? `${(v * 1000).toFixed(0)} ms` : `${v.toFixed(2)} s`);

export function VersionsView({ params }: { params: URLSearchParams }) {
  const state = parseVersions(params);
  const [draft, setDraft] = useState(state.service);
  const [refresh, setRefresh] = useState(0);
  useEffect(() => setDraft(state.service), [state.service]);
  useEffect(() => {
    const timer = window.setInterval(() => setRefresh((n) => n + 1), REFRESH_MS);
    return () => window.clearInterval(timer);
  }, []);
  const key = state.service ? `${state.service}|${state.since}#${refresh}` : null;
  const result = useRequest<Versions>(key, (signal) =>
    api(`/api/v1/versions?${qs({ service: state.service, start: `now-${state.since}` })}`, {}, signal),
  );
  // Without a service, the page lists the ones in range to pick from (and suggests them).
  const services = useRequest<string[]>(`services|${state.since}#${state.service ? 0 : refresh}`, (signal) =>
    sql<{ v: string }>(servicesSql(state.since, Date.now()), signal).then((r) => r.rows.map((row) => row.v)),
  );
  const go = (service: string, since: string) => navigate(`/versions${versionsQuery(service, since)}`);
  const data = result.data;
  const start = data ? Date.parse(data.start) : 0;
  const span = data ? Math.max(1, Date.parse(data.end) - start) : 1;
  const offset = (t: string | null) => (t ? Math.min(100, Math.max(0, ((Date.parse(t) - start) / span) * 100)) : 0);
  return (
    <section className="view versions-view" aria-label="Versions">
      <form
        className="search-form"
        onSubmit={(e) => {
          e.preventDefault();
          go(draft.trim(), state.since);
        }}
      >
        <SearchRow
          label="Service"
          placeholder="Service (service.name), e.g. checkout  (press / to focus)"
          value={draft}
          onChange={setDraft}
          submit="Compare"
          list="service-names"
        >
          <datalist id="service-names">
            {(services.data ?? []).map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
          <label>
            <span className="sr-only">Range</span>
            <select aria-label="Range" value={state.since} onChange={(e) => go(state.service, e.target.value)}>
              {RANGES.map((r) => (
                <option key={r} value={r}>
                  last {r}
                </option>
              ))}
            </select>
          </label>
        </SearchRow>
        <ErrorNote message={result.error} testId="query-error" />
      </form>
      <Loading when={result.loading} what="versions" />
      {!state.service && services.data && (
        <LinkList
          testId="service-picker"
          linkTestId="service-link"
          label={`Services in the last ${state.since}: `}
          empty={`No service logged or traced in the last ${state.since}.`}
          links={services.data.map((s) => ({ text: s, href: `/versions${versionsQuery(s, state.since)}` }))}
        />
      )}
      <ErrorNote message={state.service ? null : services.error} testId="services-error" />
      {data && data.versions.length === 0 && <p className="empty">No versions of {data.service} in this range.</p>}
      {data && data.versions.length > 0 && (
        <div className="table-wrap">
          <table className="data-table" data-testid="versions">
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Pods</th>
                <th scope="col">First seen</th>
                <th scope="col">Last seen</th>
                <th scope="col">Error logs</th>
                <th scope="col">Span errors</th>
                <th scope="col">p99</th>
                <th scope="col">Timeline</th>
              </tr>
            </thead>
            <tbody>
              {data.versions.map((v) => {
                const left = offset(v.first_seen);
                const width = Math.max(0.5, offset(v.last_seen) - left);
                return (
                  <tr key={v.version} data-testid="version-row">
                    <td>
                      <a
                        href={versionLogsHref(data.service, v.version, state.since)}
                        onClick={linkClick}
                        title={`Error logs of ${data.service} ${v.version}`}
                        data-testid="version-logs-link"
                      >
                        {v.version}
                      </a>
                    </td>
                    <td data-testid="pods">{v.pods}</td>
                    <td>{v.first_seen ? formatTimestamp(v.first_seen) : "—"}</td>
                    <td>{v.last_seen ? formatTimestamp(v.last_seen) : "—"}</td>
                    <td data-testid="error-logs" className={v.error_logs > 0 ? "bad" : undefined}>
                      {v.error_logs} of {v.logs}
                    </td>
                    <td data-testid="span-errors" className={(v.span_error_rate ?? 0) > 0 ? "bad" : undefined}>
                      {percent(v.span_error_rate)} of {v.spans}
                    </td>
                    <td data-testid="p99">{seconds(v.p99_latency_seconds)}</td>
                    <td className="timeline" aria-label={`${v.version} ran from ${v.first_seen ?? "?"} to ${v.last_seen ?? "?"}`}>
                      <div className="timeline-track">
                        <div className="timeline-bar" style={{ left: `${left}%`, width: `${width}%` }} />
                      </div>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
