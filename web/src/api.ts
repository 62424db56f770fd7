// Same-origin requests to the Porthole API. A bearer token (asked for on the first 401)
// is kept in localStorage and sent with every request.

const TOKEN_KEY = "porthole.token";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

export function getToken(): string {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

export function setToken(token: string): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** The message of an error body: Porthole's `{"error":{"message"}}` or Prometheus's
 * `{"status":"error","error":"…"}`; else the status line. */
export function errorMessage(status: number, body: unknown, fallback: string): string {
  if (body && typeof body === "object" && "error" in body) {
    const error = (body as { error: unknown }).error;
    if (typeof error === "string") return error;
    if (error && typeof error === "object" && "message" in error) {
      const message = (error as { message: unknown }).message;
      if (typeof message === "string") return message;
    }
  }
  return `${status} ${fallback}`.trim();
}

export async function api<T>(path: string, init: RequestInit = {}, signal?: AbortSignal): Promise<T> {
  const headers = { Accept: "application/json", ...authHeaders(), ...(init.headers as Record<string, string> | undefined) };
  let response: Response;
  try {
    response = await fetch(path, { ...init, headers, signal });
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError(0, `cannot reach the server: ${(e as Error).message}`);
  }
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    if (response.status === 401) unauthorizedListeners.forEach((listener) => listener());
    throw new ApiError(response.status, errorMessage(response.status, body, response.statusText || text));
  }
  return body as T;
}

export function sql<T>(query: string, signal?: AbortSignal): Promise<{ columns: string[]; rows: T[]; truncated: boolean }> {
  return api("/api/v1/sql", { method: "POST", body: JSON.stringify({ sql: query }), headers: { "Content-Type": "application/json" } }, signal);
}

export function qs(values: Record<string, string | number | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  return params.toString();
}

/** A log row as the API returns it. */
export interface LogRow {
  timestamp: string;
  severity: string | null;
  body: string | null;
  service: string | null;
  namespace: string | null;
  pod: string | null;
  container: string | null;
  version: string | null;
  image_digest?: string | null;
  trace_id: string | null;
  span_id: string | null;
  attributes: Record<string, unknown> | null;
  /** The record's place in the order: a `cursor` to page on from it (absent from older servers). */
  cursor?: string;
}

export interface LogsPage {
  rows: LogRow[];
  next_cursor: string | null;
}

export interface Histogram {
  step_seconds: number;
  total: number;
  buckets: { start: string; count: number }[];
}

export interface TraceListItem {
  trace_id: string;
  root_name: string | null;
  root_service: string | null;
  start_time: string;
  duration_ns: number;
  span_count: number;
  error_count: number;
  services: string[];
}

export interface Span {
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  name: string;
  kind: string;
  service: string | null;
  namespace?: string | null;
  pod?: string | null;
  container?: string | null;
  version?: string | null;
  start_time: string;
  end_time: string;
  duration_ns: number;
  status_code: string;
  status_message: string | null;
  attributes: Record<string, unknown> | null;
  resource_attributes?: Record<string, unknown> | null;
  events: unknown[];
  links: unknown[];
}

/**
 * Server-Sent Events from `path`, each `message`'s data parsed as JSON. EventSource cannot
 * send headers, so with a token the stream is read with fetch instead.
 */
export function subscribe(
  path: string,
  handlers: { onRecord: (row: unknown) => void; onOpen: () => void; onError: (message: string) => void },
): () => void {
  const token = getToken();
  if (!token) {
    const source = new EventSource(path);
    source.onopen = () => handlers.onOpen();
    source.onmessage = (event) => handlers.onRecord(JSON.parse(event.data));
    source.addEventListener("dropped", (event) => {
      handlers.onError(droppedMessage((event as MessageEvent).data));
      source.close();
    });
    let closed = false;
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) handlers.onError("live tail interrupted; reconnecting…");
      else void whyRefused(path).then((message) => closed || handlers.onError(message));
    };
    return () => {
      closed = true;
      source.close();
    };
  }
  const controller = new AbortController();
  (async () => {
    const response = await fetch(path, { headers: { Accept: "text/event-stream", ...authHeaders() }, signal: controller.signal });
    if (!response.ok || !response.body) {
      const body = await response.json().catch(() => null);
      if (response.status === 401) unauthorizedListeners.forEach((listener) => listener());
      handlers.onError(errorMessage(response.status, body, response.statusText));
      return;
    }
    handlers.onOpen();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = parseSseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event.event === "dropped") {
          handlers.onError(droppedMessage(event.data));
          return;
        }
        if (event.data) handlers.onRecord(JSON.parse(event.data));
      }
    }
    handlers.onError("live tail closed by the server");
  })().catch((e) => {
    if (!(e instanceof DOMException && e.name === "AbortError")) handlers.onError(String(e));
  });
  return () => controller.abort();
}

/**
 * Why the server refused the live tail at `path`. An EventSource closes for good only when
 * the server answers something other than a stream (503 when `--max-tails` are open, 401,
 * 400), and it does not say what: so the request is made once more with fetch, for the
 * server's own message; a stream that opens this time is closed at once.
 */
export async function whyRefused(path: string, fetchImpl: typeof fetch = fetch): Promise<string> {
  const controller = new AbortController();
  try {
    const response = await fetchImpl(path, { headers: { Accept: "text/event-stream" }, signal: controller.signal });
    if (response.ok) return "live tail closed by the server";
    if (response.status === 401) unauthorizedListeners.forEach((listener) => listener());
    const body = await response.json().catch(() => null);
    return errorMessage(response.status, body, response.statusText);
  } catch {
    return "live tail closed by the server";
  } finally {
    controller.abort();
  }
}

/** What a `dropped` event says: its JSON `message` ("live tail stopped: …; reconnect to
 * resume"), else its text as it came. */
export function droppedMessage(data: string): string {
  try {
    const message = (JSON.parse(data) as { message?: unknown }).message;
    if (typeof message === "string" && message) return message;
  } catch {
    // Not JSON: shown as it is.
  }
  return data ? `live tail stopped: ${data}` : "live tail stopped";
}

export function parseSseEvent(block: string): { event: string; data: string } {
  let event = "message";
  const data: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return { event, data: data.join("\n") };
}
