// What both browser suites (ui.test.mjs, demo.test.mjs) share: where the binaries and
// Chromium are, the start-up check that they exist, polling, and the browser itself.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const webDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const bin = path.resolve(webDir, process.env.PORTHOLE_BIN ?? "../target/debug/porthole");
export const collectorBin = path.resolve(webDir, process.env.PORTHOLE_COLLECTOR_BIN ?? "../target/debug/porthole-collector");
export const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const artifacts = path.join(webDir, "e2e", "artifacts");
export const TIMEOUT = 20_000;

/** The binaries and Chromium every suite needs, with `extra` `[what, file, hint]` rows;
 * throws naming the first one missing and how to get it. */
export function requireFiles(extra = []) {
  for (const [what, file, hint] of [
    ["the porthole binary", bin, "build it (cargo build) or set PORTHOLE_BIN"],
    ["the porthole-collector binary", collectorBin, "build it (cargo build) or set PORTHOLE_COLLECTOR_BIN"],
    ...extra,
    ["Chromium", chromiumPath, "apt-get install -y chromium, or set CHROMIUM"],
  ]) {
    if (!existsSync(file)) throw new Error(`missing ${what} at ${file}: ${hint}`);
  }
}

/** Polls `check` every `pauseMs` until it returns something truthy (and returns that), or
 * fails after `ms`. */
export async function until(what, check, ms = TIMEOUT, pauseMs = 250) {
  const deadline = Date.now() + ms;
  let error = null;
  for (;;) {
    const result = await check().catch((e) => ((error = e), null));
    if (result) return result;
    if (Date.now() > deadline) assert.fail(`waited ${ms} ms for ${what}${error ? ` (last error: ${error.message})` : ""}`);
    await new Promise((r) => setTimeout(r, pauseMs));
  }
}

/** Headless Chromium with a 1280×800 page whose actions wait up to TIMEOUT. `launch()`
 * gives every run a fresh temporary profile of its own. */
export async function launchPage() {
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  return { browser, page };
}
