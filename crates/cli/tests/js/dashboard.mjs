// Drives Debian's Chromium (headless, through puppeteer-core, which downloads no browser) over
// the dashboard for crates/cli/tests/it/dashboard.rs:
//
//   node dashboard.mjs URL FIRST SECOND SCREENSHOT
//
// Loads URL on a phone-sized screen, waits for prompt FIRST to show finalized, prints "ready",
// then waits (without reloading: the page follows the chain's WebSocket) for prompt SECOND to
// show finalized, saves a screenshot and prints the page's text as JSON.
import puppeteer from "puppeteer-core";

const [url, first, second, screenshot] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 1 });
  await page.goto(url, { waitUntil: "load" });
  const finalized = (id) => `.prompt[data-id="${id}"] .badge.finalized`;
  await page.waitForSelector(finalized(first), { timeout: 60_000 });
  const live = await page.$eval("#live", (node) => node.textContent);
  console.log(JSON.stringify({ ready: true, live }));
  await page.waitForSelector(finalized(second), { timeout: 120_000 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.screenshot({ path: screenshot, fullPage: false });
  const text = await page.evaluate(() => document.body.innerText);
  const loads = await page.evaluate(() => performance.getEntriesByType("navigation").length);
  console.log(JSON.stringify({ text, overflow, loads }));
} finally {
  await browser.close();
}
