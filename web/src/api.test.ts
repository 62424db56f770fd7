import { describe, expect, it } from "vitest";
import { droppedMessage, errorMessage, parseSseEvent, qs } from "./api";

describe("error messages", () => {
  it("reads Porthole's and Prometheus's error bodies", () => {
    expect(errorMessage(400, { error: { code: "bad_request", message: "query \"(((\": expected word at position 3" } }, "Bad Request")).toBe(
      'query "(((": expected word at position 3',
    );
    expect(errorMessage(400, { status: "error", errorType: "bad_data", error: "unclosed left parenthesis" }, "Bad Request")).toBe(
      "unclosed left parenthesis",
    );
    expect(errorMessage(502, null, "Bad Gateway")).toBe("502 Bad Gateway");
  });
});

describe("query strings", () => {
  it("leaves out empty values", () => {
    expect(qs({ q: "a b", service: "", limit: 100, cursor: null })).toBe("q=a+b&limit=100");
  });
});

describe("server-sent events", () => {
  it("parses event names and multi-line data", () => {
    expect(parseSseEvent("data: {\"a\":1}")).toEqual({ event: "message", data: '{"a":1}' });
    expect(parseSseEvent("event: dropped\ndata: slow\ndata: again")).toEqual({ event: "dropped", data: "slow\nagain" });
    expect(parseSseEvent(": keep-alive")).toEqual({ event: "message", data: "" });
  });
});

describe("dropped live tails", () => {
  it("show the server's message, once", () => {
    const data = JSON.stringify({ message: "live tail stopped: the server is shutting down; reconnect to resume" });
    expect(droppedMessage(data)).toBe("live tail stopped: the server is shutting down; reconnect to resume");
    expect(droppedMessage("slow")).toBe("live tail stopped: slow");
    expect(droppedMessage("")).toBe("live tail stopped");
  });
});
