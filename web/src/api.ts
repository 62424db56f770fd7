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
  /** `by` with the request's `by` (per value of that field; records without one are in
   * `count` alone). */
  buckets: { start: string; count: number; by?: Record<string, number> }[];
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

/** What a live tail tells its view. */
export interface TailHandlers {
  onRecord: (row: unknown) => void;
  /** The stream is open (again). */
  onOpen: () => void;
  /** The stream is not open: why, and whether it is being reconnected. */
  onError: (message: string) => void;
  /** Something to know while the stream stays open: records missed while away, and the
   * time (RFC 3339) a search for them starts from. */
  onNotice: (message: string, from?: string) => void;
}

/** The waits between reconnections: 0.5 s, doubling up to 10 s. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 10_000;

/**
 * Follows the Server-Sent Events at `path` (the live tail), each `message`'s data parsed
 * as JSON, as `porthole tail` does: when an open stream ends (a restart of the server, a
 * broken connection, being dropped for falling behind), it says why and reconnects with
 * backoff, sending the id of the last event received as `Last-Event-ID`, so the server
 * first sends what was committed in between, each record once. A first connection that
 * fails, or a refusal (4xx but 429: a bad query, a bad token), ends it with the server's
 * message. Read with fetch rather than EventSource, which can neither send the token nor
 * say why a server refused it.
 */
export function follow(path: string, handlers: TailHandlers, fetchImpl: typeof fetch = fetch): () => void {
  const controller = new AbortController();
  const { signal } = controller;
  let lastId: string | null = null;
  let opened = false;
  let wait = RETRY_FIRST_MS;
  const retry = async (why: string) => {
    handlers.onError(`${why}; reconnecting in ${wait / 1000} s…`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, wait);
      signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });
    wait = Math.min(wait * 2, RETRY_MAX_MS);
  };
  (async () => {
    while (!signal.aborted) {
      let response: Response;
      try {
        const headers: Record<string, string> = { Accept: "text/event-stream", ...authHeaders() };
        if (lastId !== null) headers["Last-Event-ID"] = lastId;
        response = await fetchImpl(path, { headers, signal });
      } catch (e) {
        if (signal.aborted) return;
        if (!opened) return handlers.onError(`live tail: cannot reach the server (${String(e)})`);
        await retry("live tail: cannot reach the server");
        continue;
      }
      if (!response.ok || !response.body) {
        const body = await response.json().catch(() => null);
        if (response.status === 401) unauthorizedListeners.forEach((listener) => listener());
        const message = errorMessage(response.status, body, response.statusText);
        const refused = response.status >= 400 && response.status < 500 && response.status !== 429;
        if (!opened || refused) return handlers.onError(message);
        await retry(message);
        continue;
      }
      opened = true;
      wait = RETRY_FIRST_MS;
      handlers.onOpen();
      const why = await readEvents(response.body, {
        onId: (id) => (lastId = id),
        onRecord: handlers.onRecord,
        onNotice: handlers.onNotice,
      }).catch((e: unknown) => `live tail interrupted (${String(e)})`);
      if (signal.aborted) return;
      await retry(why);
    }
  })().catch((e: unknown) => {
    if (!signal.aborted) handlers.onError(String(e));
  });
  return () => controller.abort();
}

/** Reads one stream of the live tail until it ends; why it ended. */
async function readEvents(
  body: NonNullable<Response["body"]>,
  handlers: Pick<TailHandlers, "onRecord" | "onNotice"> & { onId: (id: string) => void },
): Promise<string> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return "live tail closed by the server";
    buffer += value.replace(/\r\n?/g, "\n");
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseSseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      // The position to resume from, also of an event without data (the stream's start).
      if (event.id !== null) handlers.onId(event.id);
      if (event.event === "dropped") return droppedMessage(event.data);
      if (event.event === "missed") handlers.onNotice(droppedMessage(event.data), missedFrom(event.data));
      else if (event.data) handlers.onRecord(JSON.parse(event.data));
    }
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

/** Where a `missed` event says the records it did not send start (its JSON `from`). */
function missedFrom(data: string): string | undefined {
  try {
    const from = (JSON.parse(data) as { from?: unknown }).from;
    return typeof from === "string" && from ? from : undefined;
  } catch {
    return undefined;
  }
}

export function parseSseEvent(block: string): { event: string; data: string; id: string | null } {
  let event = "message";
  let id: string | null = null;
  const data: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  return { event, data: data.join("\n"), id };
}
