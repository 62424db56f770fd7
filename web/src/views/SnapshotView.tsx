// One stored snapshot (GET /api/v1/snapshots/{id}): who asked and when, the pod's processes
// as its collector read them from /proc (sortable by RSS or CPU; each with its environment,
// secret-looking values redacted by the collector before they left the pod), its listening
// and established sockets, and the pod's other snapshots (GET /api/v1/snapshots?pod=…).

import { Fragment, useState } from "react";
import { api } from "../api";
import { SnapshotButton } from "../components/SnapshotButton";
import { ErrorNote, Loading } from "../components/Status";
import { formatTimestamp } from "../format";
import { podLogsHref } from "../inventory";
import { linkClick, navigate } from "../router";
import {
  answeredIn,
  clip,
  commandLine,
  envEntries,
  formatCpu,
  formatRss,
  parseProcessSort,
  ofPod,
  podSnapshotsPath,
  processSortQuery,
  processState,
  snapshotHref,
  sortProcesses,
  summariseSnapshot,
  type ProcessSort,
  type Snapshot,
  type SnapshotList,
  type SnapshotProcess,
  type SnapshotRecord,
} from "../snapshot";
import { useRequest } from "../useRequest";

export function SnapshotView({ snapshotId, params }: { snapshotId: string; params: URLSearchParams }) {
  const sort = parseProcessSort(params);
  const result = useRequest<SnapshotRecord>(snapshotId, (signal) =>
    api(`/api/v1/snapshots/${encodeURIComponent(snapshotId)}`, {}, signal),
  );
  // While another snapshot loads, the previous one is not shown under this one's id.
  const record = result.data?.id === snapshotId ? result.data : null;
  const historyPath = record ? podSnapshotsPath(record) : null;
  const history = useRequest<SnapshotList>(historyPath && `${historyPath}#${snapshotId}`, (signal) =>
    api(historyPath ?? "", {}, signal),
  );
  const others = history.data && record ? ofPod(history.data.snapshots, record) : null;
  const setSort = (next: ProcessSort) => navigate(`${snapshotHref(snapshotId)}${processSortQuery(next)}`, true);
  return (
    <section className="view snapshot-view" aria-label="Snapshot">
      <p className="crumbs">
        <a href="/inventory" onClick={linkClick}>
          Inventory
        </a>{" "}
        / {record ? record.pod : "…"} / snapshot <code>{snapshotId}</code>
      </p>
      <Loading when={result.loading && !record} what="snapshot" />
      <ErrorNote message={result.error} />
      {record && (
        <>
          <div className="snapshot-head">
            <table className="attrs snapshot-meta" data-testid="snapshot-meta">
              <tbody>
                <tr>
                  <th scope="row">pod</th>
                  <td data-testid="snapshot-pod">
                    <a href={podLogsHref(record)} onClick={linkClick} title={`Logs of ${record.pod}`}>
                      {record.pod}
                    </a>
                  </td>
                </tr>
                <tr>
                  <th scope="row">namespace</th>
                  <td data-testid="snapshot-namespace">{record.namespace || "—"}</td>
                </tr>
                {record.tenant && (
                  <tr>
                    <th scope="row">tenant</th>
                    <td>{record.tenant}</td>
                  </tr>
                )}
                <tr>
                  <th scope="row">requested by</th>
                  <td data-testid="snapshot-requested-by">{record.requested_by || "—"}</td>
                </tr>
                <tr>
                  <th scope="row">requested</th>
                  <td>{formatTimestamp(record.requested_at)}</td>
                </tr>
                <tr>
                  <th scope="row">answered</th>
                  <td>
                    {formatTimestamp(record.answered_at)}
                    {answeredIn(record.requested_at, record.answered_at) && (
                      <span className="hint"> · after {answeredIn(record.requested_at, record.answered_at)}</span>
                    )}
                  </td>
                </tr>
                {record.snapshot && (
                  <tr>
                    <th scope="row">taken</th>
                    <td data-testid="snapshot-taken-at">
                      {formatTimestamp(record.snapshot.taken_at)} <span className="hint">· the collector's clock</span>
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
            <SnapshotButton pod={record} label="Take another" />
          </div>
          <ErrorNote message={record.error && `The collector could not take this snapshot: ${record.error}`} testId="snapshot-error" />
          {record.snapshot && <SnapshotBody snapshot={record.snapshot} sort={sort} setSort={setSort} />}
          <h2>Snapshots of this pod</h2>
          <ErrorNote message={history.error} testId="snapshot-history-error" />
          {others?.length === 0 && <p className="empty">none stored</p>}
          {others && others.length > 0 && (
            <ul className="snapshot-history" data-testid="snapshot-history">
              {others.map((s) => (
                <li key={s.id} data-snapshot-id={s.id}>
                  <a href={snapshotHref(s.id)} onClick={linkClick} aria-current={s.id === snapshotId ? "page" : undefined}>
                    {formatTimestamp(s.requested_at)}
                  </a>{" "}
                  <span className={`badge snapshot-${s.ok ? "ok" : "failed"}`}>{s.ok ? "ok" : "failed"}</span>{" "}
                  <span className="hint">
                    {s.requested_by ? `by ${s.requested_by}` : "by —"}
                    {s.id === snapshotId && " · this one"}
                  </span>
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}

function SnapshotBody({ snapshot, sort, setSort }: { snapshot: Snapshot; sort: ProcessSort; setSort: (sort: ProcessSort) => void }) {
  const [open, setOpen] = useState<ReadonlySet<number>>(new Set());
  const totals = summariseSnapshot(snapshot);
  const processes = sortProcesses(snapshot.processes, sort);
  const toggle = (pid: number) =>
    setOpen((previous) => {
      const next = new Set(previous);
      if (!next.delete(pid)) next.add(pid);
      return next;
    });
  const sortHeader = (by: ProcessSort, label: string, numeric: boolean) => (
    <th scope="col" className={numeric ? "num" : undefined} aria-sort={sort === by ? (by === "pid" ? "ascending" : "descending") : undefined}>
      <button type="button" className={`sort-button${sort === by ? " on" : ""}`} onClick={() => setSort(by)} data-testid={`sort-${by}`}>
        {label}
        {sort === by && <span aria-hidden="true">{by === "pid" ? " ▲" : " ▼"}</span>}
      </button>
    </th>
  );
  return (
    <>
      <p className="summary" role="status" data-testid="snapshot-summary">
        <span data-testid="process-count">{totals.processes}</span> {totals.processes === 1 ? "process" : "processes"}
        {snapshot.processes_truncated && " (the first ones only: the collector's snapshots.max_processes)"}
        {" · "}
        <span>{totals.threads}</span> threads · <span>{formatRss(totals.rssBytes)}</span> resident · <span>{formatCpu(totals.cpuSeconds)}</span> CPU
        {" · "}
        <span>{totals.listening}</span> listening · <span>{totals.established}</span> established
        {totals.redacted > 0 && (
          <>
            {" · "}
            <span>{totals.redacted}</span> environment {totals.redacted === 1 ? "value" : "values"} redacted
          </>
        )}
      </p>
      {snapshot.note && (
        <p className="hint" data-testid="snapshot-note">
          {snapshot.note}
        </p>
      )}
      <h2>Processes</h2>
      <div className="table-wrap">
        <table className="data-table process-table" data-testid="process-table">
          <thead>
            <tr>
              {sortHeader("pid", "PID", true)}
              <th scope="col" className="num">
                PPID
              </th>
              <th scope="col">Command</th>
              <th scope="col">State</th>
              <th scope="col" className="num">
                Threads
              </th>
              {sortHeader("rss", "RSS", true)}
              {sortHeader("cpu", "CPU", true)}
              <th scope="col" className="num">
                Open fds
              </th>
              <th scope="col">Environment</th>
            </tr>
          </thead>
          <tbody>
            {processes.map((process) => (
              <ProcessRow key={process.pid} process={process} open={open.has(process.pid)} toggle={() => toggle(process.pid)} />
            ))}
          </tbody>
        </table>
      </div>
      <div className="sockets">
        <section aria-label="Listening sockets">
          <h2>Listening</h2>
          {snapshot.sockets.listening.length === 0 ? (
            <p className="empty">none</p>
          ) : (
            <ul data-testid="listening-sockets">
              {snapshot.sockets.listening.map((s, i) => (
                <li key={i}>
                  <code>{s.local}</code>
                </li>
              ))}
            </ul>
          )}
        </section>
        <section aria-label="Established sockets">
          <h2>Established</h2>
          {snapshot.sockets.established.length === 0 ? (
            <p className="empty">none</p>
          ) : (
            <ul data-testid="established-sockets">
              {snapshot.sockets.established.map((s, i) => (
                <li key={i}>
                  <code>{s.local}</code> → <code>{s.remote}</code>
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>
    </>
  );
}

function ProcessRow({ process, open, toggle }: { process: SnapshotProcess; open: boolean; toggle: () => void }) {
  const env = envEntries(process.env);
  const line = commandLine(process);
  const envId = `env-${process.pid}`;
  return (
    <Fragment>
      <tr data-testid="process-row" data-pid={process.pid}>
        <td className="num" data-testid="process-pid">
          {process.pid}
        </td>
        <td className="num">{process.ppid}</td>
        <td className="command">
          <code>{process.command}</code>
          {line !== process.command && (
            <div className="cmdline" title={clip(line) !== line ? line : undefined}>
              {clip(line)}
            </div>
          )}
        </td>
        <td title={processState(process.state)}>{process.state}</td>
        <td className="num">{process.threads}</td>
        <td className="num" title={`${process.rss_bytes} bytes`}>
          {formatRss(process.rss_bytes)}
        </td>
        <td className="num" title={`${process.cpu_seconds} s of user and system time`}>
          {formatCpu(process.cpu_seconds)}
        </td>
        <td className="num" title={process.open_fds === null ? "unreadable" : undefined}>
          {process.open_fds ?? "—"}
        </td>
        <td>
          <button type="button" className="env-toggle" aria-expanded={open} aria-controls={envId} onClick={toggle} data-testid="env-toggle">
            {open ? "hide" : "show"} {env === null || env.length === 0 ? "details" : `${env.length} ${env.length === 1 ? "variable" : "variables"}`}
          </button>
        </td>
      </tr>
      {open && (
        <tr className="env-row" id={envId}>
          <td colSpan={9}>
            {process.cmdline && <p className="cmdline full-cmdline">{process.cmdline}</p>}
            {env === null ? (
              <p className="empty">Environment unreadable: another user's process, or the collector lacks the permission.</p>
            ) : env.length === 0 ? (
              <p className="empty">empty environment</p>
            ) : (
              <table className="attrs" data-testid="process-env" aria-label={`Environment of ${process.pid}`}>
                <tbody>
                  {env.map((entry) => (
                    <tr key={entry.name} data-env-name={entry.name}>
                      <th scope="row">{entry.name}</th>
                      <td data-testid="env-value">
                        {entry.redacted ? (
                          <span className="badge redacted" title="the name looks secret: the collector sent no value">
                            redacted
                          </span>
                        ) : (
                          entry.value
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </td>
        </tr>
      )}
    </Fragment>
  );
}
