import { describe, expect, it } from "vitest";
import { droppedMessage, errorMessage, follow, parseSseEvent, qs } from "./api";

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
    expect(parseSseEvent("id: 5.1\ndata: {\"a\":1}")).toEqual({ event: "message", data: '{"a":1}', id: "5.1" });
    expect(parseSseEvent("event: dropped\ndata: slow\ndata: again")).toEqual({ event: "dropped", data: "slow\nagain", id: null });
    expect(parseSseEvent(": keep-alive")).toEqual({ event: "message", data: "", id: null });
  });
});

describe("dropped live tails", () => {
  it("show the server's message, once", () => {
    const data = JSON.stringify({ message: "live tail stopped: the server is shutting down" });
    expect(droppedMessage(data)).toBe("live tail stopped: the server is shutting down");
    expect(droppedMessage("slow")).toBe("live tail stopped: slow");
    expect(droppedMessage("")).toBe("live tail stopped");
  });
});

describe("the live tail", () => {
  /** A fetch that answers from `answers` in turn (the last one again when they run out),
   * and the requests it was given. */
  function serving(...answers: (() => Response)[]) {
    const requests: { url: string; lastEventId: string | null }[] = [];
    const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const headers = new Headers(init?.headers);
      requests.push({ url: String(input), lastEventId: headers.get("Last-Event-ID") });
      return answers[Math.min(requests.length, answers.length) - 1]();
    }) as typeof fetch;
    return { fetchImpl, requests };
  }
  const stream = (text: string) => () => new Response(text, { status: 200, headers: { "content-type": "text/event-stream" } });
  const refusal = (status: number, message: string) => () =>
    new Response(JSON.stringify({ error: { code: "x", message } }), { status, statusText: "No" });
  function recorder() {
    const seen: string[] = [];
    const handlers = {
      onRecord: (row: unknown) => seen.push(`record ${(row as { body: string }).body}`),
      onOpen: () => seen.push("open"),
      onError: (message: string) => seen.push(`error ${message}`),
      onNotice: (message: string, from?: string) => seen.push(`notice ${message}${from ? ` from ${from}` : ""}`),
    };
    return { seen, handlers };
  }
  const until = async (what: () => boolean) => {
    for (let i = 0; i < 200 && !what(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(what()).toBe(true);
  };

  it("says why the server refused it, and does not retry", async () => {
    const { fetchImpl, requests } = serving(refusal(503, "as many live tails open as --max-tails allows (4)"));
    const { seen, handlers } = recorder();
    const stop = follow("/api/v1/logs/tail?q=x", handlers, fetchImpl);
    await until(() => seen.length > 0);
    await new Promise((resolve) => setTimeout(resolve, 600));
    stop();
    expect(seen).toEqual(["error as many live tails open as --max-tails allows (4)"]);
    expect(requests).toEqual([{ url: "/api/v1/logs/tail?q=x", lastEventId: null }]);
  });

  it("reconnects after the last record it received, through a restart's errors", async () => {
    const { fetchImpl, requests } = serving(
      stream('id: 5.0\n\nid: 10.1\ndata: {"body":"a"}\n\n: keep-alive\n\nid: 20.2\ndata: {"body":"b"}\n\nevent: dropped\ndata: {"message":"live tail stopped: the server is shutting down"}\n\n'),
      refusal(503, "storage is unavailable"),
      stream('id: 30.3\r\ndata: {"body":"c"}\r\n\r\nevent: missed\ndata: {"message":"more were committed","from":"2026-12-07T10:00:00.5Z"}\n\n'),
      refusal(400, "Last-Event-ID is wrong"),
    );
    const { seen, handlers } = recorder();
    const stop = follow("/t", handlers, fetchImpl);
    await until(() => seen.includes("error Last-Event-ID is wrong"));
    stop();
    expect(seen).toEqual([
      "open",
      "record a",
      "record b",
      "error live tail stopped: the server is shutting down; reconnecting in 0.5 s…",
      "error storage is unavailable; reconnecting in 1 s…",
      "open",
      "record c",
      "notice more were committed from 2026-12-07T10:00:00.5Z",
      "error live tail closed by the server; reconnecting in 0.5 s…",
      "error Last-Event-ID is wrong",
    ]);
    expect(requests.map((r) => r.lastEventId)).toEqual([null, "20.2", "20.2", "30.3"]);
  });

  it("resumes from the stream's start when no record came before it ended", async () => {
    const { fetchImpl, requests } = serving(stream("id: 5.0\n\n"), refusal(400, "enough"));
    const { seen, handlers } = recorder();
    follow("/t", handlers, fetchImpl);
    await until(() => seen.includes("error enough"));
    expect(requests.map((r) => r.lastEventId)).toEqual([null, "5.0"]);
  });

  it("stops reconnecting once it is closed", async () => {
    const { fetchImpl, requests } = serving(stream('data: {"body":"a"}\n\n'));
    const { seen, handlers } = recorder();
    const stop = follow("/t", handlers, fetchImpl);
    await until(() => seen.some((s) => s.startsWith("error")));
    stop();
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(requests.length).toBe(1);
  });
});
