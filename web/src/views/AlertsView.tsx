// Active alerts, rule groups with their health, and the audit of every action decision.

import { useEffect, useState } from "react";
import { api } from "../api";
import { ErrorNote, Loading } from "../components/Status";
import { formatTimestamp } from "../format";
import { navigate } from "../router";
import { alertsQuery, parseAlerts } from "../state";
import { useRequest } from "../useRequest";

interface Alert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: string;
  activeAt?: string;
  value?: string;
}

interface Rule {
  name: string;
  query: string;
  type: string;
  state?: string;
  health: string;
  lastError: string;
  lastEvaluation: string;
  duration?: number;
  alerts?: Alert[];
  action?: { kind: string; dry_run?: boolean } | null;
}

interface Group {
  name: string;
  file: string;
  interval: number;
  rules: Rule[];
}

interface AuditEvent {
  time: string;
  rule: string;
  group?: string;
  labels: Record<string, string>;
  decision: string;
  reason?: string | null;
  action?: string;
  target?: Record<string, string> | null;
}

const labelText = (labels: Record<string, string>) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(", ");

export function AlertsView({ params }: { params: URLSearchParams }) {
  const state = parseAlerts(params);
  const [filter, setFilter] = useState(state.filter);
  const [refresh, setRefresh] = useState(0);
  useEffect(() => setFilter(state.filter), [state.filter]);
  useEffect(() => {
    const timer = window.setInterval(() => setRefresh((n) => n + 1), 10_000);
    return () => window.clearInterval(timer);
  }, []);
  const alerts = useRequest<{ data: { alerts: Alert[] } }>(`a${refresh}`, (signal) => api("/api/v1/alerts", {}, signal));
  const rules = useRequest<{ data: { groups: Group[] } }>(`r${refresh}`, (signal) => api("/api/v1/rules", {}, signal));
  const events = useRequest<{ events: AuditEvent[] }>(`e${refresh}`, (signal) => api("/api/v1/alerts/events", {}, signal));
  const needle = state.filter.toLowerCase();
  const matches = (...texts: (string | undefined | null)[]) => !needle || texts.some((t) => t?.toLowerCase().includes(needle));

  return (
    <section className="view alerts-view" aria-label="Alerts">
      <form
        className="search-form"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(`/alerts${alertsQuery({ filter })}`);
          setRefresh((n) => n + 1);
        }}
      >
        <div className="search-row">
          <label className="grow">
            <span className="sr-only">Filter alerts, rules and events</span>
            <input
              data-search
              aria-label="Filter alerts, rules and events"
              className="query-input"
              placeholder="Filter by rule name or label (press / to focus)"
              value={filter}
              onChange={(e) => setFilter(e.target.value)}
            />
          </label>
          <button type="submit">Filter</button>
        </div>
      </form>

      <h2>Active alerts</h2>
      <Loading when={alerts.loading && !alerts.data} what="alerts" />
      <ErrorNote message={alerts.error} />
      {alerts.data && (
        <div className="table-wrap">
          <table className="data-table" data-testid="active-alerts">
            <thead>
              <tr>
                <th scope="col">Alert</th>
                <th scope="col">State</th>
                <th scope="col">Labels</th>
                <th scope="col">Value</th>
                <th scope="col">Active since</th>
                <th scope="col">Summary</th>
              </tr>
            </thead>
            <tbody>
              {alerts.data.data.alerts
                .filter((a) => matches(labelText(a.labels)))
                .map((a, i) => (
                  <tr key={i} className={`state-${a.state}`}>
                    <td>{a.labels.alertname}</td>
                    <td>
                      <span className={`badge state-${a.state}`}>{a.state}</span>
                    </td>
                    <td className="labels">{labelText(a.labels)}</td>
                    <td>{a.value}</td>
                    <td>{a.activeAt ? formatTimestamp(a.activeAt) : ""}</td>
                    <td>{a.annotations.summary ?? a.annotations.description ?? ""}</td>
                  </tr>
                ))}
              {alerts.data.data.alerts.length === 0 && (
                <tr>
                  <td colSpan={6} className="empty">
                    Nothing is firing or pending.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}

      <h2>Rules</h2>
      <Loading when={rules.loading && !rules.data} what="rules" />
      <ErrorNote message={rules.error} />
      {rules.data?.data.groups.length === 0 && <p className="empty">No rules are loaded (start porthole with --rules DIR).</p>}
      {rules.data?.data.groups.map((group) => (
        <div key={`${group.file}/${group.name}`} className="rule-group">
          <h3>
            {group.name} <span className="hint">· every {group.interval}s · {group.file}</span>
          </h3>
          <div className="table-wrap">
            <table className="data-table" data-testid="rules">
              <thead>
                <tr>
                  <th scope="col">Rule</th>
                  <th scope="col">State</th>
                  <th scope="col">Health</th>
                  <th scope="col">Query</th>
                  <th scope="col">Action</th>
                  <th scope="col">Last evaluation</th>
                  <th scope="col">Last error</th>
                </tr>
              </thead>
              <tbody>
                {group.rules
                  .filter((r) => matches(r.name, r.query))
                  .map((rule) => (
                    <tr key={rule.name} className={rule.health !== "ok" ? "unhealthy" : ""}>
                      <td>{rule.name}</td>
                      <td>
                        <span className={`badge state-${rule.state ?? "none"}`}>{rule.state ?? rule.type}</span>
                      </td>
                      <td>
                        <span className={`badge health-${rule.health}`}>{rule.health}</span>
                      </td>
                      <td>
                        <code>{rule.query}</code>
                      </td>
                      <td>{rule.action ? `${rule.action.kind}${rule.action.dry_run ? " (dry run)" : ""}` : ""}</td>
                      <td>{rule.lastEvaluation ? formatTimestamp(rule.lastEvaluation) : ""}</td>
                      <td className="error-text">{rule.lastError}</td>
                    </tr>
                  ))}
              </tbody>
            </table>
          </div>
        </div>
      ))}

      <h2>Action decisions</h2>
      <Loading when={events.loading && !events.data} what="events" />
      <ErrorNote message={events.error} />
      {events.data && (
        <div className="table-wrap">
          <table className="data-table" data-testid="alert-events">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Rule</th>
                <th scope="col">Labels</th>
                <th scope="col">Decision</th>
                <th scope="col">Reason</th>
                <th scope="col">Target</th>
              </tr>
            </thead>
            <tbody>
              {events.data.events
                .filter((e) => matches(e.rule, labelText(e.labels)))
                .map((event, i) => (
                  <tr key={i}>
                    <td>{formatTimestamp(event.time)}</td>
                    <td>{event.rule}</td>
                    <td className="labels">{labelText(event.labels)}</td>
                    <td>
                      <span className={`badge decision-${event.decision}`}>{event.decision}</span>
                    </td>
                    <td>{event.reason ?? ""}</td>
                    <td>
                      {event.action ? `${event.action} ` : ""}
                      {event.target ? labelText(event.target) : ""}
                    </td>
                  </tr>
                ))}
              {events.data.events.length === 0 && (
                <tr>
                  <td colSpan={6} className="empty">
                    No action decisions yet.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
