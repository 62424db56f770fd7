// Spans nested by parent, in start order, with their offset on the trace's time axis.

import type { Span } from "./api";
import { rfc3339ToNanos } from "./time";

export interface WaterfallRow {
  span: Span;
  depth: number;
  /** Start and width as fractions of the trace's duration. */
  offset: number;
  width: number;
  error: boolean;
}

// Unix nanoseconds overflow a double's exact range, so times are BigInt until they are
// made relative to the trace's start.
const nanos = (text: string): bigint => rfc3339ToNanos(text) ?? BigInt(Date.parse(text) || 0) * 1_000_000n;

export function buildWaterfall(spans: Span[]): { rows: WaterfallRow[]; durationNs: number } {
  if (spans.length === 0) return { rows: [], durationNs: 0 };
  const ids = new Set(spans.map((s) => s.span_id));
  const children = new Map<string | null, Span[]>();
  for (const span of spans) {
    // A parent that was not stored makes its children roots rather than hiding them.
    const parent = span.parent_span_id && ids.has(span.parent_span_id) ? span.parent_span_id : null;
    const list = children.get(parent) ?? [];
    list.push(span);
    children.set(parent, list);
  }
  const base = spans.map((s) => nanos(s.start_time)).reduce((a, b) => (b < a ? b : a));
  const relative = new Map(spans.map((s) => [s.span_id, Number(nanos(s.start_time) - base)]));
  const at = (span: Span) => relative.get(span.span_id) ?? 0;
  for (const list of children.values()) list.sort((a, b) => at(a) - at(b));
  const endNs = spans.reduce((end, s) => Math.max(end, at(s) + s.duration_ns), -Infinity);
  const durationNs = Math.max(endNs, 1);
  const rows: WaterfallRow[] = [];
  const seen = new Set<string>();
  // Depth first, children by start time, with a stack of its own: a chain of thousands of
  // spans, each the parent of the next, would overflow the call stack.
  const visit = (root: Span) => {
    const stack: [Span, number][] = [[root, 0]];
    for (let next = stack.pop(); next; next = stack.pop()) {
      const [span, depth] = next;
      if (seen.has(span.span_id)) continue;
      seen.add(span.span_id);
      rows.push({
        span,
        depth,
        offset: at(span) / durationNs,
        width: Math.max(span.duration_ns / durationNs, 0),
        error: span.status_code === "ERROR",
      });
      const kids = children.get(span.span_id) ?? [];
      for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1]);
    }
  };
  for (const root of children.get(null) ?? []) visit(root);
  // Spans in a parent cycle have no root; show them rather than drop them.
  for (const span of spans) visit(span);
  return { rows, durationNs };
}
