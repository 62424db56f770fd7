// Display helpers shared by the views.

/** Nanoseconds as a short duration: `12 ns`, `3.4 µs`, `250 ms`, `1.50 s`, `2m 5s`. */
export function formatDuration(ns: number): string {
  if (!Number.isFinite(ns) || ns < 0) return "–";
  if (ns < 1_000) return `${Math.round(ns)} ns`;
  if (ns < 1_000_000) return `${trim(ns / 1_000)} µs`;
  if (ns < 1_000_000_000) return `${trim(ns / 1_000_000)} ms`;
  const s = ns / 1_000_000_000;
  if (s < 60) return `${trim(s)} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes}m ${Math.round(s - minutes * 60)}s`;
  const hours = Math.floor(minutes / 60);
  return `${hours}h ${minutes - hours * 60}m`;
}

function trim(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/** Bytes in binary units: `512 B`, `1.5 KiB`, `3.00 MiB`. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${trim(value)} ${units[unit]}`;
}

export const SEVERITIES = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] as const;
export type Severity = (typeof SEVERITIES)[number];

/** A record's severity text (any case, OTel's `WARN2`, syslog's `WARNING`…) as one of
 * [`SEVERITIES`], or null when it is none of them. */
export function normalizeSeverity(text: string | null | undefined): Severity | null {
  if (!text) return null;
  const upper = text.trim().toUpperCase().replace(/\d+$/, "");
  const aliases: Record<string, Severity> = {
    WARNING: "WARN",
    ERR: "ERROR",
    CRITICAL: "FATAL",
    CRIT: "FATAL",
    EMERG: "FATAL",
    ALERT: "FATAL",
    PANIC: "FATAL",
    NOTICE: "INFO",
    INFORMATION: "INFO",
  };
  if ((SEVERITIES as readonly string[]).includes(upper)) return upper as Severity;
  return aliases[upper] ?? null;
}

/** The CSS class colouring a severity. */
export function severityClass(text: string | null | undefined): string {
  const severity = normalizeSeverity(text);
  return severity ? `sev-${severity.toLowerCase()}` : "sev-unknown";
}

/** An RFC 3339 timestamp for a row: local date and time with milliseconds. */
export function formatTimestamp(text: string): string {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) return text;
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** A Prometheus series' labels as `name{a="1", b="2"}`. */
export function seriesLabel(metric: Record<string, string>): string {
  const { __name__: name, ...labels } = metric;
  const pairs = Object.keys(labels)
    .sort()
    .map((key) => `${key}="${labels[key]}"`);
  return `${name ?? ""}{${pairs.join(", ")}}`;
}

/** Any JSON value as one line of text for attribute tables. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/**
 * The exception a log record carries in OpenTelemetry's attributes (`logger.exception`
 * through an OTel SDK sends the message as the body and the exception beside it): its
 * type, else "exception" when only its message or stack trace is there, else null.
 */
export function exceptionType(attributes: Record<string, unknown> | null | undefined): string | null {
  if (!attributes) return null;
  const type = attributes["exception.type"];
  if (typeof type === "string" && type !== "") return type;
  const other = ["exception.message", "exception.stacktrace"].some((key) => {
    const value = attributes[key];
    return typeof value === "string" && value !== "";
  });
  return other ? "exception" : null;
}

/**
 * The fields search finds in a body, as the server indexes them: those of a JSON object (a
 * JSON log line, or a map body as the API gives it), nested objects flattened to dotted
 * keys, in order; else the `key=value` pairs of a plain text line ({@link logfmtFields}).
 */
export function bodyFields(body: string | null | undefined): [string, unknown][] {
  const text = body?.trim() ?? "";
  if (!text.startsWith("{")) return logfmtFields(body ?? "");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [];
  }
  const fields: [string, unknown][] = [];
  const walk = (value: unknown, path: string) => {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [key, inner] of Object.entries(value)) walk(inner, path ? `${path}.${key}` : key);
    } else if (path) {
      fields.push([path, value]);
    }
  };
  walk(parsed, "");
  return fields;
}

/**
 * The `key=value` pairs of a plain text line (logfmt, also after a timestamp and a level),
 * by the rules the server indexes them with (storage/src/logfmt.rs): a key starts a word
 * with a letter or `_` and holds letters, digits, `_`, `.` and `-`; a value is
 * double-quoted (`\"`, `\\`, `\n`, `\t` escaped; unterminated, to the line's end) or runs
 * to the next whitespace; a value written as an exact number (no leading zero, at most 15
 * digits) is a number. Empty values are left out; a key given twice keeps its last value.
 */
export function logfmtFields(line: string): [string, unknown][] {
  const fields = new Map<string, unknown>();
  const pair = /(?:^|[ \t\n\f\r])([A-Za-z_][A-Za-z0-9_.-]*)=(?:"((?:[^"\\]|\\[\s\S])*\\?)(?:"|$)|([^ \t\n\f\r]*))/g;
  for (const [, key, quoted, bare] of line.matchAll(pair)) {
    const value =
      quoted !== undefined
        ? quoted.replace(/\\([\s\S])/g, (_, c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : c))
        : logfmtValue(bare ?? "");
    if (value !== "") fields.set(key, value);
  }
  return [...fields];
}

/** An unquoted logfmt value: a number when written as an exact one, else its text. */
function logfmtValue(text: string): string | number {
  const number = /^-?(0|[1-9]\d*)(?:\.(\d+))?$/.exec(text);
  if (number && number[1].length + (number[2]?.length ?? 0) <= 15) return Number(text);
  return text;
}

/** Whether a string is a date and time (a JSON line's `ts`), which search does not index as a field. */
export function isClockTime(text: string): boolean {
  return /^\d{4}-\d\d-\d\d[Tt ]\d\d:/.test(text);
}

/** The field names apps print a trace's and a span's ids under (logfmt, JSON, attributes). */
const TRACE_ID_NAMES = new Set(["trace_id", "traceid", "trace.id", "trace-id", "otel.trace_id", "logging.googleapis.com/trace"]);
const SPAN_ID_NAMES = new Set(["span_id", "spanid", "span.id", "span-id", "otel.span_id"]);

/**
 * The trace a log record belongs to: its OTLP trace and span ids, else ids the app printed
 * in its line (`trace_id=…` of a logfmt line, a JSON line's `traceId`) or put in an
 * attribute, as Loki's derived fields link a line to its trace. A trace id is 32 hex
 * digits, a span id 16 (any case, shown lowercase); other values are not ids.
 */
export function traceOf(row: {
  trace_id: string | null;
  span_id: string | null;
  body: string | null;
  attributes: Record<string, unknown> | null;
}): { traceId: string; spanId: string | null } | null {
  if (row.trace_id) return { traceId: row.trace_id, spanId: row.span_id };
  const fields = [...Object.entries(row.attributes ?? {}), ...bodyFields(row.body)];
  const find = (names: Set<string>, digits: number) => {
    const pattern = new RegExp(`^[0-9a-fA-F]{${digits}}$`);
    for (const [name, value] of fields) {
      if (names.has(name.toLowerCase()) && typeof value === "string" && pattern.test(value) && !/^0+$/.test(value)) {
        return value.toLowerCase();
      }
    }
    return null;
  };
  const traceId = find(TRACE_ID_NAMES, 32);
  return traceId ? { traceId, spanId: find(SPAN_ID_NAMES, 16) } : null;
}

/** The trace view's path for `trace`, with its span selected when there is one. */
export function tracePath(trace: { traceId: string; spanId: string | null }): string {
  return `/traces/${trace.traceId}${trace.spanId ? `?span=${trace.spanId}` : ""}`;
}
