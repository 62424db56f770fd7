// The shell: navigation, the token box after a 401, the `/` shortcut, and the current view.

import { useEffect, useState } from "react";
import { getToken, onUnauthorized, setToken } from "./api";
import { linkClick, navigate, useLocation } from "./router";
import { parseRoute } from "./state";
import { AlertsView } from "./views/AlertsView";
import { InventoryView } from "./views/InventoryView";
import { LogsView } from "./views/LogsView";
import { MetricsView } from "./views/MetricsView";
import { SnapshotView } from "./views/SnapshotView";
import { TraceView } from "./views/TraceView";
import { TracesView } from "./views/TracesView";
import { VersionsView } from "./views/VersionsView";

const NAV = [
  ["/logs", "Logs", "logs"],
  ["/traces", "Traces", "traces"],
  ["/graph", "Metrics", "metrics"],
  ["/versions", "Versions", "versions"],
  ["/inventory", "Inventory", "inventory"],
  ["/alerts", "Alerts", "alerts"],
] as const;

export function App() {
  const { pathname, params } = useLocation();
  const route = parseRoute(pathname);
  const [needsToken, setNeedsToken] = useState(false);
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    if (pathname === "/" || pathname === "") navigate(`/logs${window.location.search}`, true);
  }, [pathname]);
  useEffect(() => onUnauthorized(() => setNeedsToken(true)), []);
  useEffect(() => {
    const focusSearch = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement;
      const typing = target.closest("input, textarea, select, [contenteditable=true]");
      if (e.key !== "/" || typing || e.ctrlKey || e.metaKey || e.altKey) return;
      const box = document.querySelector<HTMLInputElement>("[data-search]");
      if (box) {
        e.preventDefault();
        box.focus();
        box.select();
      }
    };
    document.addEventListener("keydown", focusSearch);
    return () => document.removeEventListener("keydown", focusSearch);
  }, []);

  // A trace is part of Traces, a pod's snapshot part of Inventory (where it is taken).
  const current = route.view === "trace" ? "traces" : route.view === "snapshot" ? "inventory" : route.view;
  return (
    <div className="app">
      <header className="top">
        <a className="brand" href="/logs" onClick={linkClick}>
          Porthole
        </a>
        <nav aria-label="Views">
          {NAV.map(([href, label, view]) => (
            <a key={href} href={href} onClick={linkClick} aria-current={current === view ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
      </header>
      {needsToken && (
        <TokenBox
          onSaved={() => {
            setNeedsToken(false);
            setGeneration((n) => n + 1);
          }}
        />
      )}
      <main key={generation}>
        {route.view === "logs" && <LogsView params={params} />}
        {route.view === "traces" && <TracesView params={params} />}
        {route.view === "trace" && <TraceView traceId={route.traceId} params={params} />}
        {route.view === "metrics" && <MetricsView params={params} />}
        {route.view === "alerts" && <AlertsView params={params} />}
        {route.view === "versions" && <VersionsView params={params} />}
        {route.view === "inventory" && <InventoryView params={params} />}
        {route.view === "snapshot" && <SnapshotView snapshotId={route.snapshotId} params={params} />}
      </main>
    </div>
  );
}

function TokenBox({ onSaved }: { onSaved: () => void }) {
  const [value, setValue] = useState(getToken());
  return (
    <form
      className="token-box"
      role="dialog"
      aria-label="API token required"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(value.trim());
        onSaved();
      }}
    >
      <p>This server needs a token (401). It is kept in this browser's local storage and sent as a bearer token.</p>
      <label>
        <span>Token</span>
        <input type="password" aria-label="API token" value={value} onChange={(e) => setValue(e.target.value)} autoFocus />
      </label>
      <button type="submit">Save token</button>
    </form>
  );
}
