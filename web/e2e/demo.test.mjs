// A browser walk through `porthole demo`, as a new user would take it: open the UI, find
// checkout v2.0.0 failing on the versions page, click through to its error logs, and open a
// trace from a log row; the example rule's dry-run rollout restart is on the alerts page.
// playwright-core drives Debian's Chromium, as in ui.test.mjs.
//
// Env: PORTHOLE_BIN (default ../target/debug/porthole), PORTHOLE_COLLECTOR_BIN (default
// ../target/debug/porthole-collector; the demo's pods run it), PORTHOLE_WEB_DIR (passed to
// the demo as --web-dir when set), PORTHOLE_UI_URL and PORTHOLE_HTTP_ADDR (as in
// ui.test.mjs: open the UI at another origin that proxies /api to the demo's server, whose
// address PORTHOLE_HTTP_ADDR fixes), CHROMIUM (default /usr/bin/chromium). On failure the
// page's screenshot and the demo's server and collector logs are left in e2e/artifacts.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { TIMEOUT, artifacts, bin, collectorBin, launchPage, requireFiles, until as pollUntil, webDir } from "./common.mjs";

/** How long checkout v2.0.0 may take to roll out (at 5 s) and show its errors. */
const ROLLOUT_TIMEOUT = 60_000;

requireFiles();

const temp = mkdtempSync(path.join(tmpdir(), "porthole-demo-ui-"));
const demoDir = path.join(temp, "demo");
let demo;
let demoLog = "";
let addrs;
let uiBase;
let browser;
let page;
/** What one step found, for the next: the v2.0.0 error log whose trace is opened. */
let picked;

/** `porthole demo` in a process group of its own (its server and collectors join it), so
 * after() can end all of it; resolves with its `{"event":"demo",…}` line. */
function startDemo() {
  const args = [
    "demo",
    "--dir", demoDir,
    "--http-addr", process.env.PORTHOLE_HTTP_ADDR ?? "127.0.0.1:0",
    "--rollout-after", "5s",
    "--collector-bin", collectorBin,
  ];
  if (process.env.PORTHOLE_WEB_DIR) args.push("--web-dir", path.resolve(webDir, process.env.PORTHOLE_WEB_DIR));
  // serve reads PORTHOLE_WEB_DIR itself; only the flag above may choose the UI.
  const { PORTHOLE_WEB_DIR: _ignored, ...env } = process.env;
  demo = spawn(bin, args, { cwd: temp, env: { ...env, NO_COLOR: "1" }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const keep = (chunk) => {
    demoLog = (demoLog + chunk).slice(-20_000);
  };
  demo.stderr.on("data", keep);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`porthole demo did not print its line in 60 s:\n${demoLog}`)), 60_000);
    demo.on("exit", (code, signal) => reject(new Error(`porthole demo exited (${code ?? signal}) before starting:\n${demoLog}`)));
    createInterface({ input: demo.stdout }).on("line", (line) => {
      keep(`${line}\n`);
      try {
        const event = JSON.parse(line);
        if (event.event === "demo") {
          clearTimeout(timer);
          resolve(event);
        }
      } catch {
        // the human lines
      }
    });
  });
}

const exited = (child) => child.exitCode !== null || child.signalCode !== null;

/** SIGTERM, as Ctrl-C would: the demo stops its collectors and its server. After 20 s the
 * whole process group is killed, and any collector still running in a pod directory. */
async function stopDemo() {
  if (demo && !exited(demo)) {
    const gone = new Promise((resolve) => demo.once("exit", resolve));
    demo.kill("SIGTERM");
    let timer;
    const late = new Promise((resolve) => (timer = setTimeout(() => resolve("timeout"), 20_000)));
    const outcome = await Promise.race([gone, late]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      try {
        process.kill(-demo.pid, "SIGKILL");
      } catch {
        // the group is gone already
      }
    }
  }
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (cwd.startsWith(`${demoDir}/`) && cmdline.includes("porthole-collector")) process.kill(Number(pid), "SIGKILL");
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
}

/** As common.mjs's `until`, polling every 500 ms (the demo's pages load slower). */
const until = (what, check, ms = TIMEOUT) => pollUntil(what, check, ms, 500);

async function apiJson(pathAndQuery) {
  const response = await fetch(`http://${addrs.http}${pathAndQuery}`);
  if (!response.ok) throw new Error(`${pathAndQuery}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function shot(name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

/** A test whose failure leaves the page and the demo's logs in e2e/artifacts. */
function step(name, artifact, body) {
  test(name, async (t) => {
    try {
      await body(t);
    } catch (error) {
      await shot(`${artifact}-failed`).catch(() => {});
      saveDemoLogs(artifact);
      throw error;
    }
  });
}

function saveDemoLogs(artifact) {
  const out = path.join(artifacts, `${artifact}-failed-logs`);
  mkdirSync(out, { recursive: true });
  const copy = (from, to) => {
    try {
      copyFileSync(from, path.join(out, to));
    } catch {
      // not written (yet)
    }
  };
  copy(path.join(demoDir, "porthole.log"), "porthole.log");
  try {
    for (const pod of readdirSync(path.join(demoDir, "pods"))) copy(path.join(demoDir, "pods", pod, "collector.log"), `${pod}.collector.log`);
  } catch {
    // no pods yet
  }
}

const nav = (name) => page.getByRole("navigation", { name: "Views" }).getByRole("link", { name, exact: true });
const versionRow = (version) => page.locator('[data-testid="version-row"]', { hasText: version });
/** "32.3% of 124" → {rate: 0.323, of: 124}; "—" (no spans) → rate null. */
function spanErrors(text) {
  const m = /^(?:([\d.]+)%|—) of (\d+)$/.exec(text.trim());
  assert.ok(m, `a span-errors cell reads "<rate>% of <spans>": ${JSON.stringify(text)}`);
  return { rate: m[1] === undefined ? null : Number(m[1]) / 100, of: Number(m[2]) };
}
/** "39 of 164" → {errors: 39, of: 164}. */
function errorLogs(text) {
  const m = /^(\d+) of (\d+)$/.exec(text.trim());
  assert.ok(m, `an error-logs cell reads "<errors> of <logs>": ${JSON.stringify(text)}`);
  return { errors: Number(m[1]), of: Number(m[2]) };
}
const FAILURE = /^payment authorization failed: upstream timeout after (\d+)ms \(order [0-9a-f]{8}\)$/;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  // A failure's artifacts are of the run that failed, not left over from an earlier one.
  for (const name of readdirSync(artifacts)) {
    if (/^demo-.*-failed/.test(name)) rmSync(path.join(artifacts, name), { recursive: true, force: true });
  }
  addrs = await startDemo();
  uiBase = process.env.PORTHOLE_UI_URL ?? `http://${addrs.http}`;
  const response = await fetch(`${uiBase}/versions`);
  const body = await response.text();
  if (!response.ok || !body.includes('<div id="root">')) {
    throw new Error(`${uiBase}/versions is not the UI (${response.status}): build porthole with web/ in it, or set PORTHOLE_WEB_DIR=dist`);
  }
  ({ browser, page } = await launchPage());
});

after(async () => {
  await browser?.close();
  await stopDemo();
  rmSync(temp, { recursive: true, force: true });
});

describe("porthole demo, walked in the browser", () => {
  step("the versions page shows checkout v2.0.0 failing where v1.0.0 did not", "demo-versions", async (t) => {
    await page.goto(`${uiBase}/`);
    await page.waitForURL(/\/logs/);
    await nav("Versions").click();
    await page.waitForURL((u) => u.pathname === "/versions");
    await page.getByLabel("Service").fill("checkout");
    await page.getByLabel("Service").press("Enter");
    await page.waitForURL((u) => u.pathname === "/versions" && u.searchParams.get("service") === "checkout");
    // The page does not refresh itself; reload, as a user would, until v2.0.0 has served
    // enough requests for its rate to mean something (it fails ~35%, v1.0.0 ~0.5%).
    let seen = "";
    const shown = await until(
      "the versions page to show v2.0.0's error rate well above v1.0.0's",
      async () => {
        await page.reload();
        await page.locator('[data-testid="versions"], .empty').first().waitFor();
        seen = await page.locator("section.versions-view").innerText();
        if (!(await versionRow("v2.0.0").count()) || !(await versionRow("v1.0.0").count())) return null;
        const read = async (version) => ({
          spans: spanErrors(await versionRow(version).locator('[data-testid="span-errors"]').innerText()),
          logs: errorLogs(await versionRow(version).locator('[data-testid="error-logs"]').innerText()),
        });
        const v1 = await read("v1.0.0");
        const v2 = await read("v2.0.0");
        // Both measures: span error rate, and error logs per log line.
        const share = (l) => l.errors / Math.max(1, l.of);
        const ok =
          v2.spans.of >= 20 &&
          v2.logs.errors >= 5 &&
          v2.spans.rate >= 0.1 &&
          v2.spans.rate > (v1.spans.rate ?? 0) + 0.05 &&
          share(v2.logs) > share(v1.logs) + 0.05;
        return ok ? { v1, v2 } : null;
      },
      ROLLOUT_TIMEOUT,
    ).catch((e) => assert.fail(`${e.message}\nthe page read:\n${seen}`));
    t.diagnostic(`versions as shown: ${JSON.stringify(shown)}`);
    // The failing numbers are marked, v1.0.0 listed first (oldest first).
    const v2 = versionRow("v2.0.0");
    assert.equal(await v2.locator('[data-testid="span-errors"]').getAttribute("class"), "bad");
    assert.equal(await v2.locator('[data-testid="error-logs"]').getAttribute("class"), "bad");
    const order = await page.locator('[data-testid="version-row"] td:first-child').allInnerTexts();
    assert.deepEqual(order, ["v1.0.0", "v2.0.0"]);
    assert.match(await v2.locator('[data-testid="pods"]').innerText(), /^[12]$/);
    // v2.0.0's failures take ~2 s: its p99 is in seconds, v1.0.0's in milliseconds.
    assert.match(await v2.locator('[data-testid="p99"]').innerText(), /^\d\.\d\d s$/);
    assert.match(await versionRow("v1.0.0").locator('[data-testid="p99"]').innerText(), /^\d+ ms$/);
    await shot("demo-versions");
  });

  step("v2.0.0's link opens its error logs: payment authorization failures, all of v2.0.0", "demo-logs", async () => {
    const firstPage = page.waitForResponse((r) => {
      const url = new URL(r.url());
      return url.pathname === "/api/v1/logs" && url.searchParams.get("version") === "v2.0.0" && !url.searchParams.has("cursor");
    });
    // In-app navigation keeps the page (and this mark) alive.
    await page.evaluate(() => (window.__demoWalk = true));
    await versionRow("v2.0.0").getByRole("link", { name: "v2.0.0" }).click();
    await page.waitForURL((u) => u.pathname === "/logs");
    assert.equal(await page.evaluate(() => window.__demoWalk), true, "the link navigated in the app, without a page load");
    const url = new URL(page.url());
    assert.equal(url.searchParams.get("service"), "checkout");
    assert.equal(url.searchParams.get("version"), "v2.0.0");
    assert.equal(url.searchParams.get("severity"), "ERROR");
    assert.equal(await page.getByLabel("Filter by service").inputValue(), "checkout");
    assert.equal(await page.getByLabel("Filter by version").inputValue(), "v2.0.0");
    assert.equal(await page.getByLabel("Severity").inputValue(), "ERROR");

    // What the page was given to list: only v2.0.0's errors, each a payment failure.
    const listed = await (await firstPage).json();
    assert.ok(listed.rows.length >= 5, `v2.0.0 logged errors: ${listed.rows.length}`);
    for (const row of listed.rows) {
      assert.equal(row.version, "v2.0.0", JSON.stringify(row));
      assert.equal(row.service, "checkout", JSON.stringify(row));
      assert.equal(row.severity, "ERROR", JSON.stringify(row));
      assert.match(row.body, FAILURE);
    }
    // What the page shows: the same rows, newest first.
    const rows = page.locator('[data-testid="log-row"]');
    await rows.first().waitFor();
    const total = Number(await page.locator('[data-testid="histogram-total"]').innerText());
    assert.ok(total >= listed.rows.length, `histogram counts ${total}, listed ${listed.rows.length}`);
    const rendered = await rows.count();
    assert.ok(rendered >= 5, `rendered rows: ${rendered}`);
    for (let i = 0; i < rendered; i++) {
      const row = rows.nth(i);
      assert.match(await row.locator(".body").innerText(), FAILURE);
      assert.equal(await row.locator(".sev").innerText(), "ERROR");
      assert.equal(await row.locator(".svc").innerText(), "checkout");
    }
    assert.equal(await rows.first().locator(".body").innerText(), listed.rows[0].body);
    // A row opened: its version, and the trace it belongs to.
    await rows.first().locator(".log-line").click();
    const details = rows.first().locator('[data-testid="log-details"]');
    await details.waitFor();
    const text = await details.innerText();
    for (const expected of ["v2.0.0", "shop", "error.type", "timeout", listed.rows[0].trace_id, listed.rows[0].span_id]) {
      assert.ok(text.includes(expected), `the details show ${expected}:\n${text}`);
    }
    await shot("demo-logs");
    await rows.first().locator(".log-line").click();
    await details.waitFor({ state: "detached" });
    picked = listed.rows[0];
  });

  step("a log row's trace link opens the trace, with checkout's failing span marked and selected", "demo-trace", async () => {
    assert.ok(picked, "the logs step picked a row");
    // The span and the log reach the server through different pipelines of the collector;
    // wait until the trace has arrived whole (frontend → cart → checkout) before opening it.
    const trace = await until(`trace ${picked.trace_id} to hold its three spans`, async () => {
      const t = await apiJson(`/api/v1/traces/${picked.trace_id}`);
      const services = t.spans.map((s) => s.service).sort().join();
      return services === "cart,checkout,frontend" ? t : null;
    });
    const failing = trace.spans.find((s) => s.span_id === picked.span_id);
    assert.ok(failing, `the log's span ${picked.span_id} is in the trace`);
    assert.equal(failing.status_code, "ERROR");

    const row = page.locator('[data-testid="log-row"]', { hasText: picked.body });
    await row.locator("a.trace-link").click();
    await page.waitForURL((u) => u.pathname === `/traces/${picked.trace_id}` && u.searchParams.get("span") === picked.span_id);
    await page.locator('[data-testid="waterfall"]').waitFor();
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="span-row"]').length === n, trace.spans.length);
    assert.equal(await page.locator('[data-testid="span-count"]').innerText(), String(trace.spans.length));
    const labels = await page.locator('[data-testid="span-row"] .wf-label').allInnerTexts();
    assert.deepEqual(
      labels.map((l) => l.replace(/^!/, "").trim()),
      ["frontend GET /", "cart GET /cart", "checkout POST /checkout"],
      "the spans nest frontend → cart → checkout",
    );
    // Exactly the checkout span is marked as an error, and it is the selected one.
    const errors = page.locator('[data-testid="span-row"].error');
    assert.equal(await errors.count(), 1);
    assert.match(await errors.innerText(), /checkout\s+POST \/checkout/);
    assert.equal(await errors.getAttribute("aria-selected"), "true");
    assert.equal(await errors.locator(".err-mark").count(), 1);
    // Its details: ERROR, the status message, v2.0.0, and as long as the log said it took.
    const details = page.locator('[data-testid="span-details"]');
    await details.waitFor();
    const text = await details.innerText();
    for (const expected of ["POST /checkout", "ERROR", "upstream timeout", "v2.0.0", "checkout", picked.pod]) {
      assert.ok(text.includes(expected), `the span's details show ${expected}:\n${text}`);
    }
    const ms = Number(FAILURE.exec(picked.body)[1]);
    assert.equal(failing.duration_ns, ms * 1_000_000, "the span took as long as its log says");
    assert.ok(ms >= 1500, `a v2.0.0 failure takes ~2 s: ${ms} ms`);
    assert.ok(text.includes(`${(ms / 1000).toFixed(2)} s`), `the span's duration (${ms} ms) is shown:\n${text}`);
    await shot("demo-trace");
  });

  step("CheckoutErrors fires and its rollout restart is recorded as a dry run", "demo-alerts", async () => {
    const event = await until(
      "a CheckoutErrors dry_run event in /api/v1/alerts/events",
      async () => (await apiJson("/api/v1/alerts/events")).events.find((e) => e.rule === "CheckoutErrors" && e.decision === "dry_run"),
      ROLLOUT_TIMEOUT,
    );
    assert.equal(event.action, "rollout_restart");
    assert.deepEqual(event.target, { namespace: "shop", deployment: "checkout" });
    assert.equal(event.request?.path, "/apis/apps/v1/namespaces/shop/deployments/checkout");

    await nav("Alerts").click();
    await page.waitForURL((u) => u.pathname === "/alerts");
    const firing = page.locator('[data-testid="active-alerts"] tr', { hasText: "CheckoutErrors" });
    await firing.filter({ hasText: "firing" }).waitFor();
    assert.match(await firing.innerText(), /checkout logged \d+ errors in the last minute/);
    const decided = page.locator('[data-testid="alert-events"] tr', { hasText: "CheckoutErrors" });
    await decided.first().waitFor();
    const text = await decided.first().innerText();
    for (const expected of ["dry_run", "rollout_restart", `deployment="checkout"`, `namespace="shop"`]) {
      assert.ok(text.includes(expected), `the decision row shows ${expected}: ${text}`);
    }
    await shot("demo-alerts");
  });
});
