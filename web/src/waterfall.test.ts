import { describe, expect, it } from "vitest";
import type { Span } from "./api";
import { buildWaterfall } from "./waterfall";

const span = (id: string, parent: string | null, startMs: number, durationMs: number, status = "UNSET"): Span => ({
  trace_id: "t",
  span_id: id,
  parent_span_id: parent,
  name: id,
  kind: "INTERNAL",
  service: "svc",
  start_time: new Date(Date.parse("2026-12-03T12:00:00Z") + startMs).toISOString(),
  end_time: "",
  duration_ns: durationMs * 1e6,
  status_code: status,
  status_message: null,
  attributes: {},
  events: [],
  links: [],
});

describe("waterfall", () => {
  it("nests children under parents in start order, with offsets on the axis", () => {
    const { rows, durationNs } = buildWaterfall([
      span("c2", "root", 50, 10),
      span("root", null, 0, 100),
      span("c1", "root", 10, 20, "ERROR"),
      span("g1", "c1", 15, 5),
    ]);
    expect(rows.map((r) => [r.span.span_id, r.depth])).toEqual([
      ["root", 0],
      ["c1", 1],
      ["g1", 2],
      ["c2", 1],
    ]);
    expect(durationNs).toBe(100e6);
    expect(rows[1].offset).toBeCloseTo(0.1);
    expect(rows[1].width).toBeCloseTo(0.2);
    expect(rows.filter((r) => r.error).map((r) => r.span.span_id)).toEqual(["c1"]);
  });

  it("keeps spans whose parent is missing or cyclic", () => {
    const { rows } = buildWaterfall([span("a", "missing", 0, 1), span("b", "c", 1, 1), span("c", "b", 2, 1)]);
    expect(rows.map((r) => r.span.span_id).sort()).toEqual(["a", "b", "c"]);
  });

  it("lays out a chain of 100 000 spans, each the parent of the next", () => {
    const chain = Array.from({ length: 100_000 }, (_, i) => span(`s${i}`, i ? `s${i - 1}` : null, i, 1));
    const { rows } = buildWaterfall(chain);
    expect(rows).toHaveLength(100_000);
    expect(rows[99_999].span.span_id).toBe("s99999");
    expect(rows[99_999].depth).toBe(99_999);
  });

  it("reads nanosecond digits beyond milliseconds", () => {
    const a = { ...span("a", null, 0, 0), start_time: "2026-12-03T12:00:00.000000100Z", duration_ns: 100 };
    const b = { ...span("b", "a", 0, 0), start_time: "2026-12-03T12:00:00.000000150Z", duration_ns: 50 };
    const { rows, durationNs } = buildWaterfall([a, b]);
    expect(durationNs).toBe(100);
    expect(rows[1].offset).toBeCloseTo(0.5);
  });
});
