// Spans nested by parent, in start order, with their offset on the trace's time axis.

import type { Span } from "./api";

export interface WaterfallRow {
  span: Span;
  depth: number;
  /** Start and width as fractions of the trace's duration. */
  offset: number;
  width: number;
  error: boolean;
}

const nanos = (text: string): number => {
  const ms = Date.parse(text);
  const fraction = /\.(\d+)/.exec(text)?.[1] ?? "";
  // Date.parse keeps milliseconds; add the digits below them.
  const below = Number(fraction.padEnd(9, "0").slice(3, 9));
  return Math.floor(ms) * 1e6 + (Number.isNaN(below) ? 0 : below);
};

export function buildWaterfall(spans: Span[]): { rows: WaterfallRow[]; startNs: number; durationNs: number } {
  if (spans.length === 0) return { rows: [], startNs: 0, durationNs: 0 };
  const ids = new Set(spans.map((s) => s.span_id));
  const children = new Map<string | null, Span[]>();
  for (const span of spans) {
    // A parent that was not stored makes its children roots rather than hiding them.
    const parent = span.parent_span_id && ids.has(span.parent_span_id) ? span.parent_span_id : null;
    const list = children.get(parent) ?? [];
    list.push(span);
    children.set(parent, list);
  }
  for (const list of children.values()) list.sort((a, b) => nanos(a.start_time) - nanos(b.start_time));
  const startNs = Math.min(...spans.map((s) => nanos(s.start_time)));
  const endNs = Math.max(...spans.map((s) => nanos(s.start_time) + s.duration_ns));
  const durationNs = Math.max(endNs - startNs, 1);
  const rows: WaterfallRow[] = [];
  const seen = new Set<string>();
  const visit = (span: Span, depth: number) => {
    if (seen.has(span.span_id)) return;
    seen.add(span.span_id);
    rows.push({
      span,
      depth,
      offset: (nanos(span.start_time) - startNs) / durationNs,
      width: Math.max(span.duration_ns / durationNs, 0),
      error: span.status_code === "ERROR",
    });
    for (const child of children.get(span.span_id) ?? []) visit(child, depth + 1);
  };
  for (const root of children.get(null) ?? []) visit(root, 0);
  // Spans in a parent cycle have no root; show them rather than drop them.
  for (const span of spans) visit(span, 0);
  return { rows, startNs, durationNs };
}
