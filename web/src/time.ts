// Time expressions as the API accepts them: `now`, `now-15m` (relative) or RFC 3339
// (absolute). The UI keeps the text in the URL and resolves it to milliseconds per request.

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** `15m`, `1h30m`, `250ms` as milliseconds; null when not a duration. */
export function parseDuration(text: string): number | null {
  const trimmed = text.trim();
  if (!trimmed) return null;
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/y;
  let total = 0;
  let at = 0;
  while (at < trimmed.length) {
    part.lastIndex = at;
    const match = part.exec(trimmed);
    if (!match) return null;
    total += Number(match[1]) * UNIT_MS[match[2]];
    at = part.lastIndex;
  }
  return total;
}

/** The shortest duration text for milliseconds: 90000 → `90s`, 3600000 → `1h`. */
export function formatDurationText(ms: number): string {
  for (const unit of ["w", "d", "h", "m", "s"]) {
    const size = UNIT_MS[unit];
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.round(ms)}ms`;
}

/** A time expression at `nowMs` as epoch milliseconds; null when it is not one. */
export function parseTime(text: string, nowMs: number): number | null {
  const trimmed = text.trim();
  if (trimmed === "now") return nowMs;
  const relative = /^now\s*([-+])\s*(.+)$/.exec(trimmed);
  if (relative) {
    const ms = parseDuration(relative[2]);
    if (ms === null) return null;
    return relative[1] === "-" ? nowMs - ms : nowMs + ms;
  }
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(trimmed)) {
    const ms = Date.parse(trimmed);
    return Number.isNaN(ms) ? null : ms;
  }
  return null;
}

export function isTimeExpression(text: string): boolean {
  return parseTime(text, 0) !== null;
}

export interface TimeRange {
  from: string;
  to: string;
}

/** A range resolved to epoch milliseconds, or a message saying which end is wrong. */
export function resolveRange(
  range: TimeRange,
  nowMs: number,
): { startMs: number; endMs: number } | { error: string } {
  const startMs = parseTime(range.from, nowMs);
  if (startMs === null) return { error: `from: ${JSON.stringify(range.from)} is not a time like now-1h or 2026-01-02T03:04:05Z` };
  const endMs = parseTime(range.to, nowMs);
  if (endMs === null) return { error: `to: ${JSON.stringify(range.to)} is not a time like now or 2026-01-02T03:04:05Z` };
  if (startMs >= endMs) return { error: "from must be before to" };
  return { startMs, endMs };
}

/** Epoch milliseconds as RFC 3339 in UTC, milliseconds kept only when not zero. */
export function toRfc3339(ms: number): string {
  const iso = new Date(ms).toISOString();
  return iso.endsWith(".000Z") ? iso.replace(".000Z", "Z") : iso;
}

/** A label for a range: `last 1h` for `now-1h … now`, else both ends. */
export function describeRange(range: TimeRange): string {
  const relative = /^now-(.+)$/.exec(range.from.trim());
  if (relative && range.to.trim() === "now") return `last ${relative[1]}`;
  return `${range.from} → ${range.to}`;
}

/**
 * An RFC 3339 timestamp with up to nanosecond digits as unix nanoseconds (exact, BigInt),
 * so "context" searches can start right after a record without losing precision.
 */
export function rfc3339ToNanos(text: string): bigint | null {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text.trim());
  if (!match) return null;
  const seconds = Date.parse(`${match[1]}${match[3]}`);
  if (Number.isNaN(seconds)) return null;
  const fraction = BigInt((match[2] ?? "").padEnd(9, "0"));
  return BigInt(seconds) * 1_000_000n + fraction;
}

/** A local `datetime-local` input value for epoch ms, and back. */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fromLocalInput(value: string): number | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value)) return null;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? null : ms;
}
