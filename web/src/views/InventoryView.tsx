// What is running now (GET /api/v1/inventory): services → versions → pods, each pod with
// its image, when it started and last reported, its health from its logs, and its config
// drift (a watched file or variable that differs from its siblings', by name only). From
// the collectors' inventory reports; refreshed every 10 s. A running pod's Snapshot button
// asks its collector for its processes, sockets and environments now.

import { useEffect, useState } from "react";
import { api, qs } from "../api";
import { SearchRow } from "../components/SearchRow";
import { SnapshotButton } from "../components/SnapshotButton";
import { ErrorNote, Loading } from "../components/Status";
import { formatTimestamp } from "../format";
import {
  ago,
  driftExplanation,
  exitFailed,
  formatDrift,
  formatExit,
  formatRate,
  imageLabel,
  imageReference,
  plural,
  podLogsHref,
  sortPods,
  summarise,
  type Inventory,
  type InventoryPod,
} from "../inventory";
import { linkClick, navigate } from "../router";
import { inventoryQuery, parseInventory, type InventoryState } from "../state";
import { useRequest } from "../useRequest";

const REFRESH_MS = 10_000;

export function InventoryView({ params }: { params: URLSearchParams }) {
  const state = parseInventory(params);
  const [draft, setDraft] = useState(state.service);
  const [refresh, setRefresh] = useState(0);
  useEffect(() => setDraft(state.service), [state.service]);
  useEffect(() => {
    const timer = window.setInterval(() => setRefresh((n) => n + 1), REFRESH_MS);
    return () => window.clearInterval(timer);
  }, []);
  const query = qs({ service: state.service, status: state.all ? "all" : "" });
  const result = useRequest<Inventory>(`${query}#${refresh}`, (signal) => api(`/api/v1/inventory?${query}`, {}, signal));
  const go = (next: InventoryState) => {
    navigate(`/inventory${inventoryQuery(next)}`);
    setRefresh((n) => n + 1);
  };
  const data = result.data;
  const summary = data ? summarise(data) : null;
  const now = Date.now();
  return (
    <section className="view inventory-view" aria-label="Inventory">
      <form
        className="search-form"
        onSubmit={(e) => {
          e.preventDefault();
          go({ ...state, service: draft.trim() });
        }}
      >
        <SearchRow
          label="Service"
          placeholder="Service (service.name, exact), empty for every service  (press / to focus)"
          value={draft}
          onChange={setDraft}
          submit="Filter"
        >
          <label className="check">
            <input type="checkbox" checked={state.all} onChange={(e) => go({ ...state, all: e.target.checked })} />
            <span>Show stopped and stale pods</span>
          </label>
        </SearchRow>
        <ErrorNote message={result.error} testId="query-error" />
      </form>
      <Loading when={result.loading && !data} what="inventory" />
      {data && summary && summary.pods > 0 && (
        <p className="summary" role="status" data-testid="inventory-summary">
          <span data-testid="running-count">{summary.running}</span> {summary.running === 1 ? "pod" : "pods"} running
          {" · "}
          <span data-testid="drift-count">{summary.drifted}</span> with drift
          {state.all && ` · ${summary.notRunning} stopped or stale`}
          <span className="hint"> · reports since {formatTimestamp(data.start)}, refreshed every 10 s</span>
        </p>
      )}
      {data?.truncated && <p className="hint">More pods reported than the API lists; filter by service to see them all.</p>}
      {data && data.services.length === 0 && (
        <div className="empty" data-testid="inventory-empty">
          <p>
            No collectors are reporting inventory{state.service ? ` for ${state.service}` : ""}
            {state.all ? "" : " (running pods only)"}.
          </p>
          <p className="hint">
            Every porthole-collector sidecar reports its pod's identity and config fingerprints each{" "}
            <code>inventory.interval</code> (60 s by default), unless its config sets <code>inventory.enabled: false</code>, so
            a pod shows up here soon after its collector starts.
          </p>
        </div>
      )}
      {data?.services.map((service) => (
        <section key={service.service} className="inventory-service" data-testid="inventory-service" aria-label={service.service}>
          <h2>
            {service.service}{" "}
            <a className="hint-link" href={`/versions?${qs({ service: service.service })}`} onClick={linkClick}>
              compare versions
            </a>
          </h2>
          {service.versions.map((version) => (
            <div key={version.version} className="inventory-version">
              <h3>
                {version.version}{" "}
                <span className="hint">
                  · {plural(version.pods.length, "pod")}
                  {version.first_seen && ` · first started ${formatTimestamp(version.first_seen)}`}
                </span>
              </h3>
              <div className="table-wrap">
                <table className="data-table" data-testid="inventory-pods">
                  <thead>
                    <tr>
                      <th scope="col">Pod</th>
                      <th scope="col">Namespace</th>
                      <th scope="col">Node</th>
                      <th scope="col">Image</th>
                      <th scope="col">Started</th>
                      <th scope="col">Last report</th>
                      <th scope="col">Status</th>
                      <th scope="col">Logs</th>
                      <th scope="col">Error logs</th>
                      <th scope="col">Error rate</th>
                      <th scope="col">Last log</th>
                      <th scope="col">Last exit</th>
                      <th scope="col">Drift</th>
                      {/* Named for screen readers; not .sr-only, whose absolute position
                          would escape the table's scrolling box on a narrow screen. */}
                      <th scope="col" aria-label="Snapshot" />
                    </tr>
                  </thead>
                  <tbody>
                    {sortPods(version.pods).map((pod) => (
                      <PodRow key={`${pod.namespace ?? ""}/${pod.pod}`} pod={pod} now={now} />
                    ))}
                  </tbody>
                </table>
              </div>
            </div>
          ))}
        </section>
      ))}
    </section>
  );
}

function PodRow({ pod, now }: { pod: InventoryPod; now: number }) {
  const drifted = pod.drift.length > 0;
  return (
    <tr data-testid="pod-row" data-pod={pod.pod} className={drifted ? "drifted" : undefined}>
      <td>
        <a href={podLogsHref(pod)} onClick={linkClick} title={`Logs of ${pod.pod}`}>
          {pod.pod}
        </a>
      </td>
      <td>{pod.namespace ?? "—"}</td>
      <td>{pod.node ?? "—"}</td>
      <td className="labels">
        {pod.containers.length === 0 && "—"}
        {pod.containers.map((c, i) => (
          <div key={i} title={imageReference(c)}>
            {pod.containers.length > 1 && c.name ? `${c.name}: ` : ""}
            {imageLabel(c)}
          </div>
        ))}
      </td>
      <td>{pod.started_at ? formatTimestamp(pod.started_at) : "—"}</td>
      <td title={formatTimestamp(pod.last_report)}>{ago(pod.last_report, now)}</td>
      <td>
        <span className={`badge pod-${pod.status}`} data-testid="pod-status">
          {pod.status}
        </span>
      </td>
      <td data-testid="pod-logs">{pod.logs}</td>
      <td data-testid="pod-error-logs" className={pod.error_logs > 0 ? "bad" : undefined}>
        {pod.error_logs}
      </td>
      <td className={pod.error_log_rate > 0 ? "bad" : undefined}>{formatRate(pod.error_log_rate)}</td>
      <td title={pod.last_log ? formatTimestamp(pod.last_log) : undefined}>{ago(pod.last_log, now)}</td>
      <td
        data-testid="pod-last-exit"
        className={exitFailed(pod.last_exit) ? "bad" : undefined}
        title={
          pod.last_exit
            ? `${pod.last_exit.container ?? "a container"} ended ${formatTimestamp(pod.last_exit.at)}` +
              (pod.last_exit.restart_count != null ? `, restart ${pod.last_exit.restart_count}` : "")
            : undefined
        }
      >
        {formatExit(pod.last_exit)}
        {pod.last_exit && <div className="hint">{ago(pod.last_exit.at, now)}</div>}
      </td>
      <td data-testid="drift">
        {drifted ? (
          <>
            <span className="badge drift">drift</span>
            <ul className="drift-list">
              {pod.drift.map((d, i) => (
                <li key={i} title={driftExplanation(d.reason)}>
                  {formatDrift(d)}
                </li>
              ))}
            </ul>
          </>
        ) : (
          <span className="hint">none</span>
        )}
      </td>
      <td data-testid="pod-snapshot">{pod.status === "running" && <SnapshotButton pod={pod} />}</td>
    </tr>
  );
}
