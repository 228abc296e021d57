// Drives Debian's chromium through playwright-core against a running leaderboard.
// Usage: node leaderboard.mjs URL SCREENSHOT.png EXPECT_TEXT [EXPECT_TEXT ...]
// Checks that every EXPECT_TEXT appears in the page (the tables' cells included), that a
// submitted method name holding HTML and script stays inert (no <img onerror>, no script ran,
// its text shown literally), and saves a full-page screenshot. Exit code 0 = all checks pass.
import { chromium } from "playwright-core";

const [url, shot, ...expected] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = false;
const fail = (msg) => { console.error(`FAIL: ${msg}`); failed = true; };
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1200 } });
  page.on("dialog", async (d) => { fail(`a dialog opened: ${d.message()}`); await d.dismiss(); });
  await page.goto(url, { waitUntil: "domcontentloaded", timeout: 60000 });
  await page.getByText("vad-eval leaderboard", { exact: true }).first()
    .waitFor({ timeout: 60000 });
  // sample-split runs are hidden by default: show them, then open the Tables tab
  await page.getByText("Show sample-split runs (plumbing checks)").click();
  await page.waitForTimeout(1500);
  await page.getByRole("tab", { name: "Tables" }).click();
  await page.locator("[data-testid='stDataFrame']:visible").first().waitFor({ timeout: 60000 });
  await page.waitForTimeout(2000);
  // glide-data-grid draws on a canvas; its cells are mirrored in an accessibility table
  const text = await page.evaluate(() => {
    const cells = [...document.querySelectorAll("[data-testid='stDataFrame'] td, " +
      "[data-testid='stDataFrame'] th, [role='gridcell'], [role='columnheader']")];
    return document.body.innerText + "\n" + cells.map((c) => c.textContent).join("\n");
  });
  for (const want of expected) {
    if (!text.includes(want)) fail(`text not found in the page: ${JSON.stringify(want)}`);
    else console.log(`found: ${want}`);
  }
  const injected = await page.evaluate(() => ({
    pwned: window.__pwned ?? null,
    imgs: document.querySelectorAll("img[src='x']").length,
    scripts: [...document.querySelectorAll("script")]
      .filter((s) => s.textContent.includes("__pwned")).length,
  }));
  if (injected.pwned !== null) fail(`injected script ran (window.__pwned=${injected.pwned})`);
  if (injected.imgs) fail(`${injected.imgs} injected <img> element(s) in the DOM`);
  if (injected.scripts) fail(`${injected.scripts} injected <script> element(s) in the DOM`);
  console.log(`inert: ${JSON.stringify(injected)}`);
  await page.screenshot({ path: shot, fullPage: true });
} catch (err) {
  fail(String(err && err.stack || err));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
