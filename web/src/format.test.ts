import { describe, expect, it } from "vitest";
import {
  exceptionType,
  isClockTime,
  bodyFields,
  logfmtFields,
  formatBytes,
  formatDuration,
  formatValue,
  normalizeSeverity,
  seriesLabel,
  severityClass,
  traceOf,
  tracePath,
} from "./format";

describe("formatDuration", () => {
  it("picks a unit per magnitude", () => {
    expect(formatDuration(12)).toBe("12 ns");
    expect(formatDuration(3_400)).toBe("3.40 µs");
    expect(formatDuration(250_000_000)).toBe("250 ms");
    expect(formatDuration(1_500_000_000)).toBe("1.50 s");
    expect(formatDuration(125_000_000_000)).toBe("2m 5s");
    expect(formatDuration(3_720_000_000_000)).toBe("1h 2m");
  });

  it("shows a dash for nonsense", () => {
    expect(formatDuration(-1)).toBe("–");
    expect(formatDuration(Number.NaN)).toBe("–");
  });
});

describe("formatBytes", () => {
  it("uses binary units", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.50 KiB");
    expect(formatBytes(3 * 1024 * 1024)).toBe("3.00 MiB");
    expect(formatBytes(128 * 1024 ** 3)).toBe("128 GiB");
    expect(formatBytes(-3)).toBe("–");
  });
});

describe("severities", () => {
  it("normalises names and numbered variants", () => {
    expect(normalizeSeverity("error")).toBe("ERROR");
    expect(normalizeSeverity("WARN2")).toBe("WARN");
    expect(normalizeSeverity("Warning")).toBe("WARN");
    expect(normalizeSeverity("critical")).toBe("FATAL");
    expect(normalizeSeverity("")).toBeNull();
    expect(normalizeSeverity(null)).toBeNull();
    expect(normalizeSeverity("loud")).toBeNull();
  });

  it("maps to colour classes", () => {
    expect(severityClass("ERROR")).toBe("sev-error");
    expect(severityClass("info")).toBe("sev-info");
    expect(severityClass(undefined)).toBe("sev-unknown");
  });
});

describe("labels and values", () => {
  it("writes series labels sorted, name first", () => {
    expect(seriesLabel({ region: "us", __name__: "orders_total", job: "checkout" })).toBe(
      'orders_total{job="checkout", region="us"}',
    );
    expect(seriesLabel({ region: "eu" })).toBe('{region="eu"}');
  });

  it("formats attribute values", () => {
    expect(formatValue("x")).toBe("x");
    expect(formatValue(3)).toBe("3");
    expect(formatValue({ a: [1] })).toBe('{"a":[1]}');
    expect(formatValue(null)).toBe("");
  });
});

describe("exceptionType", () => {
  it("names a record's exception by its type, else says there is one", () => {
    expect(exceptionType({ "exception.type": "ZeroDivisionError", "exception.message": "division by zero" })).toBe("ZeroDivisionError");
    expect(exceptionType({ "exception.stacktrace": "Traceback ..." })).toBe("exception");
    expect(exceptionType({ "exception.type": "", "exception.message": "disk full" })).toBe("exception");
    expect(exceptionType({ "exception.type": 3 })).toBeNull();
    expect(exceptionType({ status: 500 })).toBeNull();
    expect(exceptionType(null)).toBeNull();
  });
});

describe("bodyFields", () => {
  it("flattens a JSON object body to dotted keys, and nothing else", () => {
    expect(bodyFields('{"level":"error","http":{"route":"/pay","code":502},"tags":["a"],"n":null}')).toEqual([
      ["level", "error"],
      ["http.route", "/pay"],
      ["http.code", 502],
      ["tags", ["a"]],
      ["n", null],
    ]);
    expect(bodyFields("plain line")).toEqual([]);
    expect(bodyFields("{not json")).toEqual([]);
    expect(bodyFields('{"a":1} b=2')).toEqual([]);
    expect(bodyFields("[1,2]")).toEqual([]);
    expect(bodyFields(null)).toEqual([]);
  });
  it("lists a plain line's key=value pairs as the server indexes them", () => {
    expect(bodyFields("2026-12-07T10:00:00Z INFO POST /pay status=503 duration_ms=1840.5 user=u1 http.route=/pay")).toEqual([
      ["status", 503],
      ["duration_ms", 1840.5],
      ["user", "u1"],
      ["http.route", "/pay"],
    ]);
    // The same lines as storage/src/logfmt.rs's tests, with the same answers.
    expect(logfmtFields('time=2026-12-07T10:00:00.123Z level=ERROR msg="payment failed: \\"card\\" declined" attempt=2')).toEqual([
      ["time", "2026-12-07T10:00:00.123Z"],
      ["level", "ERROR"],
      ["msg", 'payment failed: "card" declined'],
      ["attempt", 2],
    ]);
    for (const line of ["", "connection refused", "a == b", "=value", "GET /search?q=shoes&page=2 200", "1x=2 -a=3 é=4", 'empty= values=""']) {
      expect(logfmtFields(line), line).toEqual([]);
    }
    expect(logfmtFields("f(x=1) y=2")).toEqual([["y", 2]]);
    expect(
      Object.fromEntries(logfmtFields("a=0 b=-7 c=1.25 d=007 e=1e5 f=12345678901234567890 g=9007199254740993 h=1. i=.5 j=0x1f k=true l=2.0.1 m=-")),
    ).toEqual({ a: 0, b: -7, c: 1.25, d: "007", e: "1e5", f: "12345678901234567890", g: "9007199254740993", h: "1.", i: ".5", j: "0x1f", k: "true", l: "2.0.1", m: "-" });
    expect(Object.fromEntries(logfmtFields('msg="naïve café \\\\ done\\n" next=1 last="no end'))).toEqual({ msg: "naïve café \\ done\n", next: 1, last: "no end" });
    expect(logfmtFields('k="a" k=b')).toEqual([["k", "b"]]);
    expect(logfmtFields('k="\\')).toEqual([["k", "\\"]]);
  });
  it("knows a clock time", () => {
    expect(isClockTime("2026-12-07T10:00:00Z")).toBe(true);
    expect(isClockTime("2026-12-07 10:00:00,123")).toBe(true);
    expect(isClockTime("2026-12-07")).toBe(false);
  });
});

describe("traceOf", () => {
  const row = (over: Partial<Parameters<typeof traceOf>[0]>) => ({ trace_id: null, span_id: null, body: null, attributes: null, ...over });
  const id = "4BF92F3577B34DA6A3CE929D0E0E4736";
  it("takes the record's own ids first", () => {
    expect(traceOf(row({ trace_id: "ab".repeat(16), span_id: "cd".repeat(8), body: `trace_id=${id}` }))).toEqual({
      traceId: "ab".repeat(16),
      spanId: "cd".repeat(8),
    });
  });
  it("finds ids the app printed in a logfmt or JSON line, or put in an attribute", () => {
    expect(traceOf(row({ body: `INFO POST /checkout status=504 trace_id=${id} span_id=00f067aa0ba902b7` }))).toEqual({
      traceId: id.toLowerCase(),
      spanId: "00f067aa0ba902b7",
    });
    expect(traceOf(row({ body: JSON.stringify({ msg: "x", traceId: id }) }))).toEqual({ traceId: id.toLowerCase(), spanId: null });
    expect(traceOf(row({ body: JSON.stringify({ otel: { trace_id: id, span_id: "00f067aa0ba902b7" } }) }))?.spanId).toBe("00f067aa0ba902b7");
    expect(traceOf(row({ attributes: { "trace.id": id } }))?.traceId).toBe(id.toLowerCase());
    expect(tracePath({ traceId: "ab", spanId: "cd" })).toBe("/traces/ab?span=cd");
    expect(tracePath({ traceId: "ab", spanId: null })).toBe("/traces/ab");
  });
  it("takes no value that is not an id", () => {
    for (const body of [`trace_id=${id}0`, "trace_id=xyz", `trace_id=${"0".repeat(32)}`, `request_id=${id}`, JSON.stringify({ trace_id: 42 })]) {
      expect(traceOf(row({ body }))).toBeNull();
    }
    expect(traceOf(row({ body: `trace_id=${id} span_id=123` }))).toEqual({ traceId: id.toLowerCase(), spanId: null });
  });
});
