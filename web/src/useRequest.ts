// One request per key: loading, result and error, the older request aborted when the key
// changes so a slow answer never overwrites a newer one.

import { useEffect, useState } from "react";

export interface RequestState<T> {
  loading: boolean;
  data: T | null;
  error: string | null;
}

export function useRequest<T>(key: string | null, run: (signal: AbortSignal) => Promise<T>): RequestState<T> {
  const [state, setState] = useState<RequestState<T>>({ loading: false, data: null, error: null });
  useEffect(() => {
    if (key === null) {
      setState({ loading: false, data: null, error: null });
      return;
    }
    const controller = new AbortController();
    setState((previous) => ({ loading: true, data: previous.data, error: null }));
    run(controller.signal).then(
      (data) => {
        if (!controller.signal.aborted) setState({ loading: false, data, error: null });
      },
      (e: unknown) => {
        if (!controller.signal.aborted) setState({ loading: false, data: null, error: e instanceof Error ? e.message : String(e) });
      },
    );
    return () => controller.abort();
    // The key names everything `run` depends on.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return state;
}
