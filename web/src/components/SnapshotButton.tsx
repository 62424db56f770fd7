// Takes a snapshot of one pod (POST /api/v1/snapshots) and opens it; while the collector
// answers (up to ~15 s) the button says so, and a refusal (404: no collector of the pod is
// connected, 504: it did not answer) shows the API's message beside it.

import { useEffect, useRef, useState } from "react";
import { api } from "../api";
import { navigate } from "../router";
import { snapshotHref, snapshotRequest, type SnapshotRecord } from "../snapshot";
import { ErrorNote } from "./Status";

export function SnapshotButton({
  pod,
  label = "Snapshot",
}: {
  pod: { namespace: string | null; pod: string };
  label?: string;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  const take = async () => {
    setBusy(true);
    setError(null);
    try {
      const record = await api<SnapshotRecord>("/api/v1/snapshots", {
        method: "POST",
        body: snapshotRequest(pod),
        headers: { "Content-Type": "application/json" },
      });
      // Left the page meanwhile: the snapshot is stored and listed, but do not jump to it.
      if (mounted.current) navigate(snapshotHref(record.id));
    } catch (e) {
      if (mounted.current) setError(e instanceof Error ? e.message : String(e));
    } finally {
      if (mounted.current) setBusy(false);
    }
  };
  return (
    <div className="snapshot-take">
      <button
        type="button"
        data-testid="snapshot-button"
        onClick={take}
        disabled={busy}
        aria-busy={busy}
        title={`Processes, sockets and environments of ${pod.pod}, read by its collector now`}
      >
        {busy ? "Taking snapshot…" : label}
      </button>
      <ErrorNote message={error} testId="snapshot-take-error" />
    </div>
  );
}
