// Browser tests of the UI against a real `porthole serve` fed by the OpenTelemetry Python
// SDK (e2e/feed.py), driven by playwright-core with Debian's Chromium.
//
// Env: PORTHOLE_BIN (default ../target/debug/porthole), PORTHOLE_COLLECTOR_BIN (default
// ../target/debug/porthole-collector; the inventory test runs three as simulated pods, the
// snapshot test one),
// PORTHOLE_PYTHON (default ../.venv/bin/python), PORTHOLE_WEB_DIR (passed as --web-dir when set), PORTHOLE_UI_URL
// (open the UI at this origin instead of the server's own address, e.g. `vite preview`
// proxying /api to the server; fix the server's address for that proxy with
// PORTHOLE_HTTP_ADDR), CHROMIUM (default /usr/bin/chromium).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { TIMEOUT, artifacts, bin, collectorBin, launchPage, requireFiles, until, webDir } from "./common.mjs";

const python = path.resolve(webDir, process.env.PORTHOLE_PYTHON ?? "../.venv/bin/python");
const word = `zq${Date.now().toString(36)}`;
const liveWord = `${word}live`;

requireFiles([
  ["the Python venv with the OpenTelemetry SDK", python, "create it from tests/python/requirements.txt or set PORTHOLE_PYTHON"],
]);

let server;
let addrs;
let browser;
let page;
let sent;
let uiBase;
/** Running porthole-collector processes; the inventory test stops its own, after() any left. */
const collectors = new Set();
const temp = mkdtempSync(path.join(tmpdir(), "porthole-ui-"));

/** `porthole serve` on a data directory of its own; on `at` (its `listening` event's
 * addresses) when given, as a restarted server. */
function startServer(at = null) {
  const rules = path.join(temp, "rules");
  mkdirSync(rules, { recursive: true });
  writeFileSync(
    path.join(rules, "ui.yml"),
    [
      "groups:",
      "  - name: ui-test",
      "    interval: 1s",
      "    rules:",
      `      - alert: WordLogged`,
      `        logs: '${word}'`,
      "        window: 5m",
      "        condition: count > 0",
      "        labels: {severity: page}",
      "        annotations: {summary: 'logged {{ $value }} times'}",
      "        action: {kind: rollout_restart, target: {namespace: shop, deployment: checkout}, dry_run: true}",
      "",
    ].join("\n"),
  );
  const args = [
    "serve",
    "--data-dir", path.join(temp, "data"),
    "--http-addr", at?.http ?? process.env.PORTHOLE_HTTP_ADDR ?? "127.0.0.1:0",
    "--otlp-grpc-addr", at?.otlp_grpc ?? "127.0.0.1:0",
    "--otlp-http-addr", at?.otlp_http ?? "127.0.0.1:0",
    "--batch-window", "200ms",
    "--rules", rules,
    "--compaction-interval", "0s",
    // Few, so the refused-Live test can take them all.
    "--max-tails", "4",
  ];
  if (process.env.PORTHOLE_WEB_DIR) args.push("--web-dir", path.resolve(webDir, process.env.PORTHOLE_WEB_DIR));
  const started = startPorthole(args);
  server = started.child;
  return started.listening;
}

/** A porthole process with `args`; its `listening` event once it prints it. */
function startPorthole(args) {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stderr.on("data", (chunk) => {
    log = (log + chunk).slice(-20_000);
  });
  const listening = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`porthole ${args[0]} did not print its listening line in 30 s:\n${log}`)), 30_000);
    child.on("exit", (code) => reject(new Error(`porthole ${args[0]} exited (${code}) before listening:\n${log}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        const event = JSON.parse(line);
        if (event.event === "listening") {
          clearTimeout(timer);
          resolve(event);
        }
      } catch {
        // other stdout lines are not ours to read
      }
    });
  });
  return { child, listening };
}

/** SIGTERM, as Kubernetes stops a pod (SIGKILL 10 s later, as its grace period ends);
 * resolves with the exit code. */
function terminate(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", (code) => {
      clearTimeout(force);
      resolve(code);
    });
    child.kill("SIGTERM");
  });
}

/** A porthole-collector as one simulated pod: its own working directory (so `etc/app.yaml`
 * is the same path in every pod, as in containers of one image) holding that file, the
 * pod's identity in its environment (as the downward API gives it), inventory reported
 * every 2 s, and `config` lines added to its config. Resolves once it says it is running. */
function startCollector(name, env, config = []) {
  const dir = path.join(temp, "pods", name);
  mkdirSync(path.join(dir, "etc"), { recursive: true });
  writeFileSync(path.join(dir, "etc", "app.yaml"), "listen: 8080\nretries: 3\n");
  const configFile = path.join(dir, "collector.yaml");
  writeFileSync(
    configFile,
    [
      `endpoint: http://${addrs.otlp_grpc}`,
      "http_addr: 127.0.0.1:0",
      "otlp: {grpc_addr: 127.0.0.1:0, http_addr: null}",
      "cgroup: {enabled: false}",
      `buffer: {dir: '${path.join(dir, "buffer")}', max_bytes: 67108864, segment_bytes: 1048576}`,
      "shutdown_timeout: 5s",
      "inventory: {interval: 2s, check_interval: 200ms, watch_files: ['etc/*.yaml'], env: ['APP_*']}",
      ...config,
      "",
    ].join("\n"),
  );
  // Only what the test gives it, so nothing of this shell's environment is fingerprinted.
  const child = spawn(collectorBin, ["--config", configFile], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1", RUST_LOG: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  collectors.add(child);
  let log = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`porthole-collector ${name} did not start in 30 s:\n${log}`)), 30_000);
    child.on("exit", (code, signal) => {
      collectors.delete(child);
      clearTimeout(timer);
      reject(new Error(`porthole-collector ${name} exited (${code ?? signal}) before running:\n${log}`));
    });
    const read = (chunk) => {
      log = (log + chunk).slice(-20_000);
      if (log.includes("collector running")) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout.on("data", read);
    child.stderr.on("data", read);
  });
}

/** SIGTERM, as Kubernetes stops a pod: the collector reports `stopped` and exits. */
const stopCollector = terminate;

function feed(args) {
  return new Promise((resolve, reject) => {
    execFile(python, [path.join(webDir, "e2e", "feed.py"), ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`feed.py ${args.join(" ")} failed: ${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split("\n").pop()));
    });
  });
}

async function apiJson(pathAndQuery, init = {}) {
  const response = await fetch(`http://${addrs.http}${pathAndQuery}`, init);
  return response.json();
}

async function shot(name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

const rowWith = (text) => page.locator('[data-testid="log-row"]', { hasText: text });
// By its whole name, on or off: a log row's name holds its body, and the Live tests' bodies
// hold the word "live".
const liveButton = () => page.getByRole("button", { name: /^(● )?Live$/ });

async function searchLogs(query) {
  const box = page.getByLabel("Log query");
  await box.fill(query);
  await box.press("Enter");
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  addrs = await startServer();
  uiBase = process.env.PORTHOLE_UI_URL ?? `http://${addrs.http}`;
  sent = await feed(["--endpoint", `http://${addrs.otlp_grpc}`, "--word", word, "--json-infos"]);
  // Every SPA path must answer the app's index.html; without a UI no test can say more.
  for (const route of ["/", "/logs", `/traces/${sent.trace_id}`, "/graph", "/alerts", "/inventory"]) {
    const response = await fetch(`${uiBase}${route}`);
    const body = await response.text();
    if (!response.ok || !body.includes('<div id="root">')) {
      throw new Error(
        `${uiBase}${route} is not the UI (${response.status}): build porthole with web/ in it, ` +
          "or run npm run build and set PORTHOLE_WEB_DIR=dist",
      );
    }
  }
  ({ browser, page } = await launchPage());
});

after(async () => {
  for (const child of collectors) child.kill("SIGKILL");
  await browser?.close();
  server?.kill("SIGTERM");
  rmSync(temp, { recursive: true, force: true });
});

describe("the UI against a real porthole", () => {
  test("/ opens the logs view, and / focuses the search box", async () => {
    await page.goto(`${uiBase}/`);
    await page.waitForURL(/\/logs/);
    await page.locator("body").press("/");
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("aria-label")), "Log query");
  });

  test("a search finds the sent records and the histogram counts all of them", async () => {
    await page.goto(`${uiBase}/logs`);
    await searchLogs(word);
    await rowWith(sent.error_bodies[4]).waitFor();
    await rowWith(sent.info_bodies[0]).waitFor();
    await page.waitForFunction(
      (n) => document.querySelector('[data-testid="histogram-total"]')?.textContent === String(n),
      sent.logs,
    ).catch(async () => {
      const shown = await page.locator('[data-testid="histogram-total"]').textContent().catch(() => null);
      assert.fail(`histogram total ${shown}, sent ${sent.logs}`);
    });
    assert.equal(await page.locator('[data-testid="log-row"]').count(), sent.logs, "every sent record is listed");
    assert.ok(await page.locator('[data-testid="histogram"] canvas').count(), "the histogram is drawn");
    // Its bars are stacked by severity, counted as the API counts them, errors first.
    assert.deepEqual(
      (await page.locator('[data-testid="histogram-levels"] .level').allInnerTexts()).map((text) => text.trim()),
      [`${sent.errors} ERROR`, `${sent.logs - sent.errors} INFO`],
    );
    const errorColour = await page.evaluate(() => {
      const canvas = document.querySelector('[data-testid="histogram"] canvas');
      const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
      for (let i = 0; i < data.length; i += 4) {
        // The ERROR bar's colour, #e5534b.
        if (Math.abs(data[i] - 0xe5) < 8 && Math.abs(data[i + 1] - 0x53) < 8 && Math.abs(data[i + 2] - 0x4b) < 8) return true;
      }
      return false;
    });
    assert.ok(errorColour, "the errors' part of a bar is drawn in the ERROR colour");
    assert.match(page.url(), new RegExp(`[?&]q=${word}`));
    await shot("logs");
  });

  test("dragging over the histogram zooms the time range", async () => {
    const over = page.locator('[data-testid="histogram"] .u-over');
    const box = await over.boundingBox();
    // From the middle of the hour to the right edge: the records sent a moment ago.
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width - 1, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.waitForURL((u) => /^\d{4}-/.test(u.searchParams.get("from") ?? "") && /^\d{4}-/.test(u.searchParams.get("to") ?? ""));
    const url = new URL(page.url());
    const span = Date.parse(url.searchParams.get("to")) - Date.parse(url.searchParams.get("from"));
    assert.ok(span > 0 && span < 40 * 60_000, `the range shrank to about half an hour: ${span} ms`);
    // The URL changes first; the picker shows it on the next render.
    const from = url.searchParams.get("from");
    await page.waitForFunction((v) => document.querySelector('input[aria-label="From"]')?.value === v, from, { timeout: 5000 });
    assert.equal(await page.getByLabel("From").inputValue(), from);
    await page.waitForFunction(
      (n) => document.querySelector('[data-testid="histogram-total"]')?.textContent === String(n),
      sent.logs,
    );
    await page.goBack();
    await page.waitForURL((u) => !u.searchParams.has("from"));
    await rowWith(sent.error_bodies[4]).waitFor();
  });

  test("clicking a row shows every attribute", async () => {
    const row = rowWith(sent.error_bodies[4]);
    // The line names the exception the record carries.
    assert.equal(await row.locator(".log-line .exception-type").innerText(), "ConnectionRefusedError");
    const plain = rowWith(sent.traced_bodies[0]);
    await plain.waitFor();
    assert.equal(await plain.locator(".exception-type").count(), 0);
    await row.locator(".log-line").click();
    const details = row.locator('[data-testid="log-details"]');
    await details.waitFor();
    const text = await details.innerText();
    for (const expected of ["feed.word", word, "http.status", "502", "order.id", sent.pod, sent.version, sent.namespace]) {
      assert.ok(text.includes(expected), `details show ${expected}:\n${text}`);
    }
    // The logged exception's stack trace keeps its lines (it ran together on one before).
    assert.match(text, /Traceback \(most recent call last\):\n +File ".*feed\.py"/, text);
    assert.match(text, /\nConnectionRefusedError: upstream closed order 4/, text);
    await details.getByRole("button", { name: /Show context/ }).click();
    const context = details.locator('[data-testid="log-context"]');
    await context.waitFor();
    assert.ok((await context.locator("li").count()) > 1, "context shows lines around the record");
    await shot("logs-expanded");
  });

  test("an attribute's, a JSON line's field or a key=value pair narrows the search with a click", async () => {
    await searchLogs(word);
    const info = rowWith(sent.info_bodies[3]);
    await info.locator(".log-line").click();
    const details = info.locator('[data-testid="log-details"]');
    await details.waitFor();
    // The JSON line's fields are listed, nested ones by dotted path.
    const fields = details.locator('[data-testid="log-body-field"]');
    assert.ok((await fields.allInnerTexts()).some((t) => t.includes("http.code") && t.includes("200")));
    // The `+` beside a value narrows the search to it: the URL's query says so, and the
    // histogram counts the records that match.
    const narrows = async (scope, name, clause, total) => {
      await scope.getByRole("button", { name: `Filter by ${name}`, exact: true }).click();
      await page.waitForURL((u) => u.searchParams.get("q") === `${word} AND ${clause}`);
      await page.waitForFunction(
        (n) => document.querySelector('[data-testid="histogram-total"]')?.textContent === String(n),
        total,
      );
    };
    await narrows(details, "route", 'route:"/cart"', sent.infos);
    // An attribute the same way, from an error record.
    await searchLogs(word);
    const error = rowWith(sent.error_bodies[4]);
    await error.locator(".log-line").click();
    await narrows(error, "http.status", "http.status:502", sent.errors);
    // A plain line's `key=value` pair the same way: the error lines say `order=N`.
    await searchLogs(word);
    const plain = rowWith(sent.error_bodies[4]);
    await plain.locator(".log-line").click();
    await narrows(plain, "order", "order:4", 1);
    await searchLogs(word);
  });

  test("a bad log query shows the API's message next to the box", async () => {
    const api = await apiJson(`/api/v1/logs?q=${encodeURIComponent("(((")}`);
    await searchLogs("(((");
    const error = page.locator('[data-testid="query-error"]');
    await error.waitFor();
    assert.equal(await error.innerText(), api.error.message);
  });

  test("a log row's trace link opens the waterfall with every span", async () => {
    await searchLogs(`${word} AND traced`);
    const row = rowWith(sent.traced_bodies[0]);
    await row.waitFor();
    await row.locator("a.trace-link").click();
    await page.waitForURL(new RegExp(`/traces/${sent.trace_id}`));
    await page.locator('[data-testid="waterfall"]').waitFor();
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="span-row"]').length === n, sent.spans);
    assert.equal(await page.locator('[data-testid="span-count"]').innerText(), String(sent.spans));
    const errors = page.locator('[data-testid="span-row"].error');
    assert.equal(await errors.count(), 1, "exactly the one error span is marked");
    assert.ok((await errors.innerText()).includes(sent.error_span_name));
    // The link carried the log's span, so its details are open.
    const details = page.locator('[data-testid="span-details"]');
    await details.waitFor();
    assert.ok((await details.innerText()).includes(`${word} payment declined`), "the span's status message is shown");
    // The exception it recorded, with its stack trace on lines of its own.
    assert.match(await details.locator('[data-testid="span-events"]').innerText(), /exception\.stacktrace=Traceback \(most recent call last\):\n +File /);
    // Its link to another trace's span is shown and opens that trace at that span.
    const link = details.locator('[data-testid="span-links"] a');
    assert.equal(await link.getAttribute("href"), `/traces/${sent.linked_trace_id}?span=${sent.linked_span_id}`);
    assert.ok((await details.locator('[data-testid="span-links"]').innerText()).includes("link.kind=producer"));
    await shot("trace");
    await details.locator('[data-testid="span-logs-link"]').click();
    await page.waitForURL(/\/logs\?/);
    // The bare id: the trace's records and the lines that print it.
    assert.equal(await page.getByLabel("Log query").inputValue(), sent.trace_id);
    await page.waitForFunction(
      (n) => document.querySelector('[data-testid="histogram-total"]')?.textContent === String(n),
      sent.traced_bodies.length,
    );
  });

  test("a line that prints its trace id links to the trace, as the record's own ids do", async () => {
    // As an app that logs to stdout writes it: the ids are in the text, not in the record's
    // OTLP fields (the collector tailing a file knows no trace).
    // Its own word: the other tests count the records of `word`.
    const body = `${word}derived checkout failed trace_id=${sent.trace_id.toUpperCase()} span_id=${sent.error_span_id}`;
    const nowNanos = `${BigInt(Date.now()) * 1_000_000n}`;
    const response = await fetch(`http://${addrs.otlp_http}/v1/logs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        resourceLogs: [{
          resource: { attributes: [{ key: "service.name", value: { stringValue: "checkout" } }] },
          scopeLogs: [{ logRecords: [{ timeUnixNano: nowNanos, severityText: "ERROR", body: { stringValue: body } }] }],
        }],
      }),
    });
    assert.equal(response.status, 200, await response.text());
    await page.goto(`${uiBase}/logs`);
    await searchLogs(`${word}derived`);
    const row = rowWith(body);
    await row.waitFor();
    const link = row.locator("a.trace-link");
    assert.equal(await link.getAttribute("href"), `/traces/${sent.trace_id}?span=${sent.error_span_id}`);
    await link.click();
    await page.waitForURL(new RegExp(`/traces/${sent.trace_id}`));
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="span-row"]').length === n, sent.spans);
    // And back: the span's logs are the trace's records and this line.
    await page.locator('[data-testid="span-logs-link"]').click();
    await page.waitForURL(/\/logs\?/);
    await rowWith(body).waitFor();
    await rowWith(sent.traced_bodies[0]).waitFor();
  });

  test("the trace search lists the trace", async () => {
    await page.goto(`${uiBase}/traces?service=${sent.service}&status=ERROR`);
    const list = page.locator('[data-testid="trace-list"]');
    await list.waitFor();
    const link = list.getByRole("link", { name: new RegExp(sent.root_name) });
    await link.waitFor();
    assert.equal(await page.getByLabel("Service").inputValue(), sent.service);
    await shot("traces");
    await link.click();
    await page.waitForURL(new RegExp(`/traces/${sent.trace_id}`));
  });

  test("a trace past the API's 10 000 spans shows the earliest and says how many there are", async () => {
    const traceId = "77".repeat(16);
    const start = BigInt(Date.now() - 60_000) * 1_000_000n;
    const spans = Array.from({ length: 10_001 }, (_, i) => ({
      traceId,
      spanId: (i + 1).toString(16).padStart(16, "0"),
      parentSpanId: i ? Math.floor((i - 1) / 2 + 1).toString(16).padStart(16, "0") : "",
      name: `wide-${i}`,
      startTimeUnixNano: String(start + BigInt(i) * 1000n),
      endTimeUnixNano: String(start + BigInt(i) * 1000n + 500n),
    }));
    const body = {
      resourceSpans: [
        {
          resource: { attributes: [{ key: "service.name", value: { stringValue: "wide-trace" } }] },
          scopeSpans: [{ spans }],
        },
      ],
    };
    const sentTrace = await fetch(`http://${addrs.otlp_http}/v1/traces`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    assert.equal(sentTrace.status, 200, await sentTrace.text());
    await page.goto(`${uiBase}/traces/${traceId}`);
    const note = page.locator('[data-testid="trace-truncated"]');
    await note.waitFor();
    assert.equal(await note.innerText(), "The trace has 10001 spans; these are the earliest 10000. Query the rest with SQL over the spans table.");
    assert.equal(await page.locator('[data-testid="span-count"]').innerText(), "10000");
  });

  test("reloading a copied URL restores the view", async () => {
    await page.goto(`${uiBase}/logs`);
    await searchLogs(word);
    await page.getByLabel("Severity").selectOption("ERROR");
    await page.waitForFunction(
      (n) => document.querySelector('[data-testid="histogram-total"]')?.textContent === String(n),
      sent.errors,
    );
    const url = page.url();
    const fresh = await page.context().newPage();
    try {
      await fresh.goto(url);
      assert.equal(await fresh.getByLabel("Log query").inputValue(), word);
      assert.equal(await fresh.getByLabel("Severity").inputValue(), "ERROR");
      await fresh.waitForFunction(
        (n) => document.querySelector('[data-testid="histogram-total"]')?.textContent === String(n),
        sent.errors,
      );
      await fresh.waitForFunction((n) => document.querySelectorAll('[data-testid="log-row"]').length === n, sent.errors);
    } finally {
      await fresh.close();
    }
  });

  test("Live shows a record sent after it was switched on", async () => {
    await page.goto(`${uiBase}/logs`);
    await searchLogs(liveWord);
    await liveButton().click();
    await page.waitForURL(/live=1/);
    await page.waitForFunction(() => document.querySelector('[data-testid="live-status"]')?.textContent?.includes("following"));
    const live = await feed([
      "--endpoint", `http://${addrs.otlp_http}`, "--protocol", "http", "--word", liveWord,
      "--errors", "1", "--infos", "2", "--no-trace", "--no-metrics",
    ]);
    await rowWith(live.error_bodies[0]).waitFor();
    await rowWith(live.info_bodies[1]).waitFor();
    assert.equal(await page.locator('[data-testid="log-row"]').count(), live.logs, "only the records sent after");
    await shot("logs-live");
    await liveButton().click();
    await page.waitForURL((u) => !u.search.includes("live=1"));
  });

  test("Live that the server refuses says why", async () => {
    // Take every live-tail place (--max-tails 4) from here, whatever earlier tests still
    // hold until the server notices they went.
    const held = [];
    try {
      await until("every live-tail place taken", async () => {
        const controller = new AbortController();
        const response = await fetch(`http://${addrs.http}/api/v1/logs/tail?q=${liveWord}`, {
          headers: { Accept: "text/event-stream" },
          signal: controller.signal,
        });
        if (response.ok) {
          held.push(controller);
          return false;
        }
        await response.body?.cancel();
        return response.status === 503;
      });
      await page.goto(`${uiBase}/logs`);
      await searchLogs(liveWord);
      await liveButton().click();
      const error = page.locator('[data-testid="live-error"]');
      await error.waitFor();
      const text = await error.innerText();
      assert.ok(text.includes("--max-tails allows (4)"), `the server's reason is shown: ${text}`);
      await shot("logs-live-refused");
      await liveButton().click();
    } finally {
      held.forEach((controller) => controller.abort());
    }
  });

  test("filters suggest the values in the data and narrow the search", async () => {
    await page.goto(`${uiBase}/logs`);
    await searchLogs(word);
    await page.getByLabel("Filter by service").focus();
    await page.locator('[data-testid="suggest-service"] option[value="checkout"]').waitFor({ state: "attached" });
    await page.getByLabel("Filter by pod").focus();
    await page.locator('[data-testid="suggest-pod"] option[value="checkout-7d9f"]').waitFor({ state: "attached" });
    await page.getByLabel("Filter by service").fill("nobody-sends-this");
    await page.getByLabel("Log query").press("Enter");
    await page.waitForURL(/service=nobody-sends-this/);
    await page.locator('[data-testid="histogram-total"]', { hasText: /^0$/ }).waitFor();
    await page.getByLabel("Filter by service").fill("checkout");
    await page.getByLabel("Log query").press("Enter");
    await page.locator('[data-testid="histogram-total"]', { hasText: String(sent.logs) }).waitFor();
  });

  test("scrolling to the end loads the older pages by cursor", async () => {
    const word = `scroll${Date.now().toString(36)}`;
    const many = await feed([
      "--endpoint", `http://${addrs.otlp_grpc}`, "--word", word,
      "--errors", "0", "--infos", "450", "--no-trace", "--no-metrics",
    ]);
    const pages = [];
    const onRequest = (request) => {
      const url = new URL(request.url());
      if (url.pathname === "/api/v1/logs" && url.searchParams.get("q") === word) pages.push(url.searchParams.get("cursor"));
    };
    page.on("request", onRequest);
    await page.goto(`${uiBase}/logs`);
    await searchLogs(word);
    await page.locator('[data-testid="histogram-total"]', { hasText: String(many.logs) }).waitFor();
    // The newest page holds 200 of 450; the oldest record appears only once two more
    // pages have been fetched with the cursor each page ends with.
    const oldest = rowWith(many.info_bodies[0]);
    for (let i = 0; i < 40 && !(await oldest.count()); i++) {
      await page.locator('[data-testid="log-list"]').evaluate((el) => el.scrollTo(0, el.scrollHeight));
      await new Promise((r) => setTimeout(r, 250));
    }
    page.off("request", onRequest);
    await oldest.waitFor();
    const cursors = pages.filter((c) => c);
    assert.ok(cursors.length >= 2, `pages fetched by cursor: ${JSON.stringify(pages)}`);
    assert.equal(new Set(cursors).size, cursors.length, "each page asked once");
  });

  test("Oldest first lists the range from its start, and a row's context is the lines right after it", async () => {
    // 600 lines of one pod: more than the 500 the context once read newest first, whose
    // oldest ten were then not the lines after the record.
    const word = `oldest${Date.now().toString(36)}`;
    const pod = `${word}-pod`;
    const many = await feed([
      "--endpoint", `http://${addrs.otlp_grpc}`, "--word", word, "--pod", pod,
      "--errors", "0", "--infos", "600", "--no-trace", "--no-metrics",
    ]);
    const directions = [];
    const onRequest = (request) => {
      const url = new URL(request.url());
      if (url.pathname === "/api/v1/logs" && url.searchParams.get("q") === word) directions.push(url.searchParams.get("direction"));
    };
    page.on("request", onRequest);
    await page.goto(`${uiBase}/logs`);
    await searchLogs(word);
    await page.locator('[data-testid="histogram-total"]', { hasText: String(many.logs) }).waitFor();
    const firstRow = page.locator('[data-testid="log-row"]').first();
    assert.ok((await firstRow.innerText()).includes(many.info_bodies[599]), "newest first by default");
    await page.getByRole("button", { name: "Oldest first" }).click();
    await page.waitForURL((u) => u.searchParams.get("direction") === "forward");
    await page.waitForFunction(
      (body) => document.querySelector('[data-testid="log-row"]')?.textContent?.includes(body),
      many.info_bodies[0],
    );
    page.off("request", onRequest);
    assert.deepEqual([...new Set(directions)], ["backward", "forward"]);
    await firstRow.locator(".log-line").click();
    const details = firstRow.locator('[data-testid="log-details"]');
    await details.getByRole("button", { name: /Show context/ }).click();
    const context = details.locator('[data-testid="log-context"]');
    await context.waitFor();
    const lines = await context.locator("li").allInnerTexts();
    const expected = many.info_bodies.slice(0, 11);
    assert.equal(lines.length, expected.length, lines.join("\n"));
    lines.forEach((line, i) => assert.match(line, new RegExp(`${expected[i]}(?!\\d)`), `context line ${i}`));
  });

  test("a metric query draws a chart with a legend of its series", async () => {
    // Without a query the page lists the stored metrics, as the API names them; a name
    // is its own query.
    await page.goto(`${uiBase}/graph`);
    const picker = page.locator('[data-testid="metric-picker"]');
    await picker.waitFor();
    const names = (await apiJson("/api/v1/metrics/label/__name__/values")).data;
    assert.ok(names.includes(`${sent.counter}_total`), JSON.stringify(names));
    assert.deepEqual(await picker.locator('[data-testid="metric-link"]').allInnerTexts(), names);
    await picker.getByRole("link", { name: `${sent.counter}_total`, exact: true }).click();
    await page.waitForURL((u) => u.searchParams.get("query") === `${sent.counter}_total`);
    assert.equal(await picker.count(), 0, "the list gives way to the chart");
    const chart = page.locator('[data-testid="metrics-chart"]');
    await chart.locator("canvas").waitFor();
    assert.equal(await page.locator('[data-testid="series-count"]').innerText(), String(sent.counter_series));
    const legend = await chart.locator(".u-legend").innerText();
    assert.ok(legend.includes('region="eu"') && legend.includes('region="us"'), `legend lists both series:\n${legend}`);
    assert.ok(legend.includes(`${sent.counter}_total`), legend);
    // Hovering shows each series' value in the legend (one sample each: 5 and 3 orders).
    const plot = await chart.locator(".u-over").boundingBox();
    await page.mouse.move(plot.x + plot.width - 2, plot.y + plot.height / 2);
    await page.waitForFunction(() => {
      const values = [...document.querySelectorAll('[data-testid="metrics-chart"] .u-legend .u-series td')].map((td) => td.textContent);
      return values.includes("5") && values.includes("3");
    });
    await shot("metrics");
    // The step came from the range and the range is in the URL.
    await page.reload();
    assert.equal(await page.getByLabel("PromQL query").inputValue(), `${sent.counter}_total`);
    await chart.locator("canvas").waitFor();
  });

  test("a bad PromQL query shows the API's message", async () => {
    const now = Math.floor(Date.now() / 1000);
    const api = await apiJson(`/api/v1/metrics/query_range?query=${encodeURIComponent("sum(")}&start=${now - 60}&end=${now}&step=15`);
    assert.equal(api.status, "error");
    const box = page.getByLabel("PromQL query");
    await box.fill("sum(");
    await box.press("Enter");
    const error = page.locator('[data-testid="query-error"]');
    await error.waitFor();
    assert.equal(await error.innerText(), api.error);
  });

  test("the alerts page lists the rule and its firing alert", async () => {
    await page.goto(`${uiBase}/alerts`);
    await page.locator('[data-testid="rules"]', { hasText: "WordLogged" }).waitFor();
    // The rule evaluates every second; the page refreshes every 10 s.
    const firing = page.locator('[data-testid="active-alerts"] tr', { hasText: "WordLogged" });
    await firing.filter({ hasText: "firing" }).waitFor({ timeout: 30_000 });
    assert.ok((await firing.innerText()).includes(`logged ${sent.logs} times`));
    // The action's decision is an audit event, shown with what it would have sent. The
    // page refreshes every 10 s; reload rather than wait for it.
    const decided = page.locator('[data-testid="alert-events"] tr', { hasText: "WordLogged" });
    for (let i = 0; i < 30 && !(await decided.count()); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      await page.reload();
      await page.locator('[data-testid="rules"]', { hasText: "WordLogged" }).waitFor();
    }
    const row = await decided.first().innerText();
    assert.ok(row.includes("dry_run") && row.includes("checkout"), `audit event row: ${row}`);
    await shot("alerts");
  });

  test("the versions page shows each version of a service as the API counts it", async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    // Without a service the page lists the services that logged or traced in its range,
    // as SQL over both tables finds them.
    await page.goto(`${uiBase}/versions`);
    const picker = page.locator('[data-testid="service-picker"]');
    await picker.waitFor();
    const start = new Date(Date.now() - 86_400_000).toISOString();
    const known = await apiJson("/api/v1/sql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sql: `SELECT DISTINCT service FROM (SELECT service FROM logs WHERE timestamp >= '${start}' UNION ALL SELECT service FROM spans WHERE timestamp >= '${start}') WHERE service IS NOT NULL ORDER BY service` }),
    });
    const services = known.rows.map((r) => r.service);
    assert.ok(services.includes("checkout"), JSON.stringify(known));
    assert.deepEqual(await picker.locator('[data-testid="service-link"]').allInnerTexts(), services);
    await picker.getByRole("link", { name: "checkout", exact: true }).click();
    await page.waitForURL(/service=checkout/);
    const row = page.locator('[data-testid="version-row"]', { hasText: "v2.0.1" });
    await row.waitFor();
    const api = await apiJson(`/api/v1/versions?service=checkout&start=now-24h`);
    const v = api.versions.find((x) => x.version === "v2.0.1");
    assert.ok(v && v.error_logs > 0 && v.spans > 0, JSON.stringify(api));
    assert.equal(await row.locator('[data-testid="pods"]').innerText(), String(v.pods));
    assert.equal(await row.locator('[data-testid="error-logs"]').innerText(), `${v.error_logs} of ${v.logs}`);
    assert.ok((await row.locator('[data-testid="span-errors"]').innerText()).endsWith(`of ${v.spans}`));
    await shot("versions");
    // A version rolled out while the page is open appears by itself, as the API counts it.
    const rolled = await feed([
      "--endpoint", `http://${addrs.otlp_http}`, "--protocol", "http", "--word", "rolledout",
      "--version", "v2.0.2", "--pod", "checkout-v202", "--errors", "2", "--infos", "1", "--no-trace", "--no-metrics",
    ]);
    const newRow = page.locator('[data-testid="version-row"]', { hasText: "v2.0.2" });
    await newRow.waitFor({ timeout: 30_000 });
    assert.equal(await newRow.locator('[data-testid="error-logs"]').innerText(), `2 of ${rolled.logs}`);
    // The URL is the view: reloading keeps it.
    await page.reload();
    await page.locator('[data-testid="version-row"]', { hasText: "v2.0.1" }).waitFor();
    assert.equal(await page.getByLabel("Service").inputValue(), "checkout");
  });

  test("the inventory page lists three real collectors' pods, flags the drifted one by name, and opens a pod's logs", async () => {
    // No pod of a service reports: the page says so and where reports come from.
    await page.goto(`${uiBase}/inventory?service=nobody-reports-this`);
    const empty = page.locator('[data-testid="inventory-empty"]');
    await empty.waitFor();
    assert.ok((await empty.innerText()).includes("No collectors are reporting inventory for nobody-reports-this"));

    const names = ["uicart-1", "uicart-2", "uicart-3"];
    const pods = [];
    try {
      pods.push(
        ...(await Promise.all(
          names.map((name, i) =>
            startCollector(name, {
              SERVICE_NAME: "uicart",
              SERVICE_VERSION: "v1",
              POD_NAMESPACE: "shop",
              POD_NAME: name,
              NODE_NAME: "node-a",
              CONTAINER_NAME: "app",
              CONTAINER_IMAGE: "registry.example/uicart:v1",
              // The third pod's environment differs from its siblings'.
              APP_MODE: i === 2 ? "slow" : "fast",
            }),
          ),
        )),
      );
      const listed = (inventory) => inventory.services.flatMap((s) => s.versions.flatMap((v) => v.pods));
      // Until all three have reported, uicart-3 is compared with fewer siblings.
      const api = await until("the API to list the three pods with uicart-3 drifted", async () => {
        const inventory = await apiJson("/api/v1/inventory?service=uicart");
        const pods = listed(inventory);
        const drifted = pods.filter((p) => p.drift.length > 0).map((p) => p.pod);
        const ok = pods.map((p) => p.pod).sort().join() === names.join() && drifted.join() === "uicart-3";
        return ok && pods.find((p) => p.pod === "uicart-3").drift[0].reason === "differs" ? inventory : null;
      });
      assert.equal(api.drifted_pods, 1);

      await page.goto(`${uiBase}/inventory`);
      await page.getByLabel("Service").fill("uicart");
      await page.getByLabel("Service").press("Enter");
      await page.waitForURL((u) => u.pathname === "/inventory" && u.search === "?service=uicart");
      const rows = page.locator('[data-testid="pod-row"]');
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="pod-row"]').length === 3);
      assert.equal(await page.locator('[data-testid="running-count"]').innerText(), "3");
      assert.equal(await page.locator('[data-testid="drift-count"]').innerText(), "1");
      // The drifted pod comes first, flagged, naming the variable but never its value.
      assert.equal(await rows.first().getAttribute("data-pod"), "uicart-3");
      const drifted = page.locator('[data-testid="pod-row"][data-pod="uicart-3"]');
      assert.equal(await drifted.locator(".badge.drift").innerText(), "drift");
      assert.equal(await drifted.locator('[data-testid="drift"] li').innerText(), "APP_MODE (env) differs");
      for (const clean of ["uicart-1", "uicart-2"]) {
        const row = page.locator(`[data-testid="pod-row"][data-pod="${clean}"]`);
        assert.equal(await row.locator(".badge.drift").count(), 0, `${clean} has no drift`);
        const text = await row.innerText();
        for (const expected of ["shop", "node-a", "v1", "running"]) assert.ok(text.includes(expected), `${clean} shows ${expected}: ${text}`);
      }
      const html = await page.content();
      for (const value of ["slow", "fast"]) assert.ok(!html.includes(value), `the value ${value} is not on the page`);
      await shot("inventory");

      // A pod whose collector stops leaves the running list (the page refreshes every
      // 10 s); "show stopped" (status=all) brings it back as stopped, still flagged.
      await stopCollector(pods[2]);
      await until("the API to list uicart-3 as stopped", async () => {
        const inventory = await apiJson("/api/v1/inventory?service=uicart&status=all");
        return listed(inventory).find((p) => p.pod === "uicart-3")?.status === "stopped";
      });
      await page.waitForFunction(() => document.querySelectorAll('[data-testid="pod-row"]').length === 2);
      assert.equal(await drifted.count(), 0);
      assert.equal(await page.locator('[data-testid="drift-count"]').innerText(), "0");
      await page.getByLabel("Show stopped and stale pods").check();
      await page.waitForURL((u) => u.searchParams.get("status") === "all" && u.searchParams.get("service") === "uicart");
      await drifted.waitFor();
      assert.equal(await drifted.locator('[data-testid="pod-status"]').innerText(), "stopped");
      assert.equal(await drifted.locator('[data-testid="drift"] li').innerText(), "APP_MODE (env) differs");
      // The URL is the view: reloading keeps the filter and the checkbox.
      await page.reload();
      await drifted.waitFor();
      assert.equal(await page.getByLabel("Service").inputValue(), "uicart");
      assert.ok(await page.getByLabel("Show stopped and stale pods").isChecked());
      // Wide tables scroll inside their box; the page itself fits 400 px.
      await page.setViewportSize({ width: 400, height: 800 });
      try {
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 1, `/inventory scrolls sideways by ${overflow}px at 400px`);
        await shot("inventory-narrow");
      } finally {
        await page.setViewportSize({ width: 1280, height: 800 });
      }

      // A pod's name opens the logs view filtered to it (its inventory reports are logs).
      await page.locator('[data-testid="pod-row"][data-pod="uicart-1"] a').click();
      await page.waitForURL((u) => u.pathname === "/logs");
      const url = new URL(page.url());
      assert.equal(url.searchParams.get("pod"), "uicart-1");
      assert.equal(url.searchParams.get("namespace"), "shop");
      assert.equal(await page.getByLabel("Filter by pod").inputValue(), "uicart-1");
      assert.equal(await page.getByLabel("Filter by namespace").inputValue(), "shop");
      await rowWith("uicart").first().waitFor();
    } finally {
      await Promise.all(pods.map(stopCollector));
      for (const child of collectors) child.kill("SIGKILL");
    }
  });

  test("the views fit a narrow screen", async () => {
    await page.setViewportSize({ width: 400, height: 800 });
    for (const [name, href] of [
      ["logs-narrow", `/logs?q=${word}`],
      ["trace-narrow", `/traces/${sent.trace_id}`],
      ["metrics-narrow", `/graph?query=${sent.counter}_total`],
    ]) {
      await page.goto(`${uiBase}${href}`);
      await page.locator('[data-testid="log-row"], [data-testid="span-row"], [data-testid="metrics-chart"] canvas').first().waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${href} scrolls sideways by ${overflow}px at 400px`);
      await shot(name);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test("a pod's Snapshot button opens its real collector's processes, environment redacted, and the pod's snapshots", async () => {
    const secret = "ui-secret-value-77";
    let child;
    try {
      // Every process of this machine is the pod's here (no pod namespace): list them all.
      child = await startCollector(
        "uisnap-1",
        {
          SERVICE_NAME: "uisnap",
          POD_NAMESPACE: "shop",
          POD_NAME: "uisnap-1",
          UI_SNAP_TOKEN: secret,
          UI_SNAP_MODE: "visible-mode",
        },
        ["snapshots: {max_processes: 100000}"],
      );
      await until("the inventory to list uisnap-1 running", async () => {
        const inventory = await apiJson("/api/v1/inventory?service=uisnap");
        return inventory.services.some((s) => s.versions.some((v) => v.pods.some((p) => p.pod === "uisnap-1" && p.status === "running")));
      });
      await page.goto(`${uiBase}/inventory?service=uisnap`);
      const podRow = page.locator('[data-testid="pod-row"][data-pod="uisnap-1"]');
      const button = podRow.locator('[data-testid="snapshot-button"]');
      await button.click();
      await page.waitForURL((u) => /^\/snapshots\/[0-9a-f]+$/.test(u.pathname));
      const id = new URL(page.url()).pathname.split("/").pop();
      assert.equal(await page.locator('nav a[aria-current="page"]').innerText(), "Inventory");

      const record = await apiJson(`/api/v1/snapshots/${id}`);
      assert.equal(record.error, null, JSON.stringify(record.error));
      assert.ok(!JSON.stringify(record).includes(secret), "the secret never left the collector");
      const own = record.snapshot.processes.find((p) => p.pid === child.pid);
      assert.ok(own, `the API's snapshot lists the collector's own pid ${child.pid}`);

      // The header: who, where, who asked, when.
      await page.locator('[data-testid="snapshot-meta"]').waitFor();
      assert.equal(await page.locator('[data-testid="snapshot-pod"]').innerText(), "uisnap-1");
      assert.equal(await page.locator('[data-testid="snapshot-namespace"]').innerText(), "shop");
      assert.equal(await page.locator('[data-testid="snapshot-requested-by"]').innerText(), "web UI");
      assert.ok((await page.locator('[data-testid="snapshot-taken-at"]').innerText()).startsWith(new Date().getFullYear().toString()));
      assert.equal(await page.locator('[data-testid="process-count"]').innerText(), String(record.snapshot.processes.length));
      assert.ok((await page.locator('[data-testid="snapshot-note"]').innerText()).includes("shareProcessNamespace"));

      // The collector's own process, its environment: the plain value shown, the secret
      // one a muted badge.
      const row = page.locator(`[data-testid="process-row"][data-pid="${child.pid}"]`);
      await row.waitFor();
      assert.equal(await row.locator('[data-testid="process-pid"]').innerText(), String(child.pid));
      assert.ok((await row.innerText()).includes("porthole-collector"), await row.innerText());
      await row.locator('[data-testid="env-toggle"]').click();
      const env = page.locator(`[aria-label="Environment of ${child.pid}"]`);
      await env.waitFor();
      assert.equal(await env.locator('[data-env-name="UI_SNAP_MODE"] [data-testid="env-value"]').innerText(), "visible-mode");
      const token = env.locator('[data-env-name="UI_SNAP_TOKEN"] [data-testid="env-value"]');
      assert.equal(await token.locator(".badge.redacted").innerText(), "redacted");
      assert.equal(await token.innerText(), "redacted");
      assert.ok(!(await page.content()).includes(secret), `${secret} is nowhere in the page`);
      await shot("snapshot");

      // Sorted by RSS (in the URL), the largest process comes first.
      await page.locator('[data-testid="sort-rss"]').click();
      await page.waitForURL((u) => u.searchParams.get("sort") === "rss");
      const largest = [...record.snapshot.processes].sort((a, b) => b.rss_bytes - a.rss_bytes || a.pid - b.pid)[0];
      assert.equal(await page.locator('[data-testid="process-row"]').first().getAttribute("data-pid"), String(largest.pid));

      // The pod's snapshots list this one; "Take another" adds a newer one above it.
      const history = page.locator('[data-testid="snapshot-history"]');
      await history.locator(`li[data-snapshot-id="${id}"]`).waitFor();
      await page.locator('.snapshot-head [data-testid="snapshot-button"]').click();
      await page.waitForURL((u) => /^\/snapshots\/[0-9a-f]+$/.test(u.pathname) && !u.pathname.endsWith(id));
      const second = new URL(page.url()).pathname.split("/").pop();
      await history.locator(`li[data-snapshot-id="${second}"]`).waitFor();
      const listed = await history.locator("li").evaluateAll((items) => items.map((li) => li.getAttribute("data-snapshot-id")));
      assert.deepEqual(listed.slice(0, 2), [second, id]);
      // An earlier one opens from the list.
      await history.locator(`li[data-snapshot-id="${id}"] a`).click();
      await page.waitForURL((u) => u.pathname === `/snapshots/${id}`);
      await page.locator(`[data-testid="process-row"][data-pid="${child.pid}"]`).waitFor();

      // The page fits a narrow screen: the process table scrolls inside its box.
      await page.setViewportSize({ width: 400, height: 800 });
      try {
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 1, `/snapshots/${id} scrolls sideways by ${overflow}px at 400px`);
        await shot("snapshot-narrow");
      } finally {
        await page.setViewportSize({ width: 1280, height: 800 });
      }

      // A pod whose collector is gone (killed: it cannot say it stopped, so the page still
      // lists it running): the API's refusal shows beside the button, and the page stays.
      await page.goto(`${uiBase}/inventory?service=uisnap`);
      await button.waitFor();
      await new Promise((resolve) => {
        child.once("exit", resolve);
        child.kill("SIGKILL");
      });
      await button.click();
      const refused = podRow.locator('[data-testid="snapshot-take-error"]');
      await refused.waitFor({ timeout: 30_000 });
      // 404: the collector's poll ended with its connection, so none of the pod is found.
      assert.match(await refused.innerText(), /no collector of pod "uisnap-1" in namespace "shop" is connected/);
      assert.equal(new URL(page.url()).pathname, "/inventory");
      assert.equal(await button.innerText(), "Snapshot");
      await shot("snapshot-refused");
    } finally {
      if (child) await stopCollector(child);
    }
  });

  // Last: it restarts the server (on the same addresses).
  test("Live rides out a server restart and shows what was committed while it was away, once", async () => {
    const words = { before: `${word}before`, away: `${word}away`, after: `${word}after` };
    const few = ["--errors", "1", "--infos", "1", "--no-trace", "--no-metrics"];
    await page.goto(`${uiBase}/logs`);
    await searchLogs(Object.values(words).join(" OR "));
    await liveButton().click();
    const status = page.locator('[data-testid="live-status"]');
    await until("live following", async () => (await status.innerText()).includes("following"));
    const before = await feed(["--endpoint", `http://${addrs.otlp_http}`, "--protocol", "http", "--word", words.before, ...few]);
    await rowWith(before.info_bodies[0]).waitFor();

    assert.equal(await terminate(server), 0);
    const error = page.locator('[data-testid="live-error"]');
    await until("the restart said", async () => /shutting down|reconnecting/.test(await error.innerText().catch(() => "")));
    // Committed by another process while no server answers the page.
    const other = startPorthole([
      "ingest", "--data-dir", path.join(temp, "data"),
      "--http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0",
      "--batch-window", "200ms",
    ]);
    const otherAddrs = await other.listening;
    const away = await feed(["--endpoint", `http://${otherAddrs.otlp_http}`, "--protocol", "http", "--word", words.away, ...few]);
    assert.equal(await terminate(other.child), 0);
    await startServer(addrs);

    await rowWith(away.error_bodies[0]).waitFor({ timeout: 30_000 });
    await rowWith(away.info_bodies[0]).waitFor();
    await until("live following again", async () => (await status.innerText()).includes("following"));
    const after = await feed(["--endpoint", `http://${addrs.otlp_http}`, "--protocol", "http", "--word", words.after, ...few]);
    await rowWith(after.info_bodies[0]).waitFor();
    await shot("logs-live-resumed");
    for (const body of [...before.error_bodies, ...away.error_bodies, ...away.info_bodies, ...after.error_bodies]) {
      assert.equal(await rowWith(body).count(), 1, `${body} is shown once`);
    }
    await liveButton().click();
  });

  test("Live that missed more than a resume sends links to a search for the rest, oldest first", async () => {
    const flood = `${word}flood`;
    await page.goto(`${uiBase}/logs`);
    await searchLogs(flood);
    await liveButton().click();
    const status = page.locator('[data-testid="live-status"]');
    await until("live following", async () => (await status.innerText()).includes("following"));
    assert.equal(await terminate(server), 0);
    // More than the server's 10 000 resent records, committed while it is away.
    const other = startPorthole([
      "ingest", "--data-dir", path.join(temp, "data"),
      "--http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0",
    ]);
    const otherAddrs = await other.listening;
    await feed([
      "--endpoint", `http://${otherAddrs.otlp_grpc}`, "--word", flood,
      "--errors", "0", "--infos", "10100", "--no-trace", "--no-metrics",
    ]);
    assert.equal(await terminate(other.child), 0);
    await startServer(addrs);

    const missed = page.locator('[data-testid="live-missed"] a');
    await missed.waitFor({ timeout: 60_000 });
    assert.match(await page.locator('[data-testid="live-error"]').innerText(), /more than 10000 records were committed/);
    const href = new URL(await missed.getAttribute("href"), uiBase);
    assert.equal(href.searchParams.get("q"), flood);
    assert.equal(href.searchParams.get("direction"), "forward");
    assert.equal(href.searchParams.get("live"), null);
    await missed.click();
    await page.waitForURL(/direction=forward/);
    // The search starts at the first record the live view did not get, the 10 001st (the
    // UI's times are milliseconds: records of the same millisecond before it come first).
    await rowWith(flood).first().waitFor();
    const first = await page.locator('[data-testid="log-row"]').first().innerText();
    const at = Number(/order=(\d+)/.exec(first)?.[1]);
    assert.ok(at > 9_900 && at <= 10_000, `the first row is record ${at}: ${first}`);
  });
});
