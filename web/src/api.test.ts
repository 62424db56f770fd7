import { describe, expect, it } from "vitest";
import { droppedMessage, errorMessage, parseSseEvent, qs, whyRefused } from "./api";

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

describe("refused live tails", () => {
  it("show the server's reason, read once more with fetch", async () => {
    const body = { error: { code: "overloaded", message: "as many live tails open as --max-tails allows (256)" } };
    const requests: string[] = [];
    const refusing = (async (input: RequestInfo | URL) => {
      requests.push(String(input));
      return new Response(JSON.stringify(body), { status: 503, statusText: "Service Unavailable" });
    }) as typeof fetch;
    expect(await whyRefused("/api/v1/logs/tail?q=x", refusing)).toBe("as many live tails open as --max-tails allows (256)");
    expect(requests).toEqual(["/api/v1/logs/tail?q=x"]);
    const bare = (async () => new Response("", { status: 502, statusText: "Bad Gateway" })) as typeof fetch;
    expect(await whyRefused("/t", bare)).toBe("502 Bad Gateway");
  });

  it("close a stream that opens the second time, and survive a network error", async () => {
    let signal: AbortSignal | undefined;
    const opening = (async (_input: RequestInfo | URL, init?: RequestInit) => {
      signal = init?.signal ?? undefined;
      return new Response(new ReadableStream(), { status: 200, headers: { "content-type": "text/event-stream" } });
    }) as typeof fetch;
    expect(await whyRefused("/t", opening)).toBe("live tail closed by the server");
    expect(signal?.aborted).toBe(true);
    const failing = (async () => {
      throw new TypeError("network error");
    }) as typeof fetch;
    expect(await whyRefused("/t", failing)).toBe("live tail closed by the server");
  });
});
