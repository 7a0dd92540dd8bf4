// Drives the operator console in a real headless chromium (Debian's /usr/bin/chromium via
// playwright-core; nothing is downloaded). Run by tests/tests/console_browser.rs, which starts
// the admin API on the local emulator with seeded aggregates and passes:
//   node console.mjs <baseUrl> <token> <screenshotDir> <itemId> <driftedId>
// Prints one line per check; exits non-zero at the first failure.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [base, token, shots, itemId, driftedId] = process.argv.slice(2);
if (!driftedId) {
  console.error("usage: node console.mjs <baseUrl> <token> <screenshotDir> <itemId> <driftedId>");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const violations = [];
page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
page.on("pageerror", (e) => violations.push(String(e)));
const timeout = 15000;

function check(ok, what) {
  if (!ok) throw new Error(`FAILED: ${what}`);
  console.log(`ok - ${what}`);
}
async function message() {
  return (await page.locator("#message").textContent()) || "";
}
async function waitMessage(re) {
  await page.waitForFunction((src) => new RegExp(src).test(document.getElementById("message").textContent), re.source, { timeout });
  return message();
}
const shot = (name) => page.screenshot({ path: join(shots, name), fullPage: true });

try {
  const response = await page.goto(new URL("console/", base).href);
  const csp = response.headers()["content-security-policy"] || "";
  check(csp.includes("default-src 'none'") && csp.includes("script-src 'self'"), "served with a strict Content-Security-Policy");
  await shot("01-sign-in.png");

  // Without a token every action is refused by the API.
  await page.fill("#aggregate-id", itemId);
  await page.click("#lookup");
  const refused = await waitMessage(/Refused/);
  check(/401/.test(refused), `an action without a token is refused (${refused})`);
  await shot("02-refused.png");

  await page.fill("#token", token);
  await page.click("#sign-in");
  check(await page.isVisible("#signed-in"), "signed in with the bearer token");

  await page.click("#lookup");
  await waitMessage(/snapshot\(s\) of/);
  const rows = await page.locator("#snapshots tbody tr").count();
  check(rows === 2, `two snapshots listed (${rows})`);
  await shot("03-snapshots.png");

  await page.locator("#snapshots tbody tr").first().locator("button.view").click();
  await waitMessage(/Showing version/);
  const state = await page.locator("#state").textContent();
  check(state.includes('"onHand"') && state.includes('"sku"'), "a snapshot's state is shown");
  await shot("04-state.png");

  await page.click("#create");
  await waitMessage(/Snapshot (created|already present)/);
  check((await page.locator("#snapshots tbody tr").count()) === 3, "a snapshot is created at the current version");

  // Delete with confirmation.
  await page.locator("#snapshots tbody tr").last().locator("button.delete").click();
  check(await page.isVisible("#confirm"), "delete asks for confirmation");
  await shot("05-delete-confirm.png");
  await page.click("#confirm-ok");
  await waitMessage(/Deleted snapshot/);
  check((await page.locator("#snapshots tbody tr").count()) === 2, "the confirmed snapshot is deleted");

  // Verify a drifted aggregate: the differences are highlighted.
  await page.selectOption("#aggregate-type", "WAREHOUSE");
  await page.fill("#aggregate-id", driftedId);
  await page.click("#lookup");
  await waitMessage(/snapshot\(s\) of/);
  await page.click("#verify");
  await waitMessage(/Verify: mismatch/);
  const highlighted = await page.locator("#verify-loaded .diff").count();
  check(highlighted > 0, `verify shows a mismatch with ${highlighted} highlighted line(s)`);
  await shot("06-verify-mismatch.png");

  // The last snapshot only goes with force.
  const only = await page.locator("#snapshots tbody tr").count();
  check(only === 1, "the drifted aggregate has one snapshot");
  await page.locator("#snapshots tbody tr").first().locator("button.delete").click();
  check(await page.isVisible("#confirm-force-row"), "deleting the last snapshot offers force");
  await page.click("#confirm-ok");
  const conflict = await waitMessage(/409/);
  check(/only snapshot|force/i.test(conflict), `without force the last snapshot is kept (${conflict})`);
  await page.locator("#snapshots tbody tr").first().locator("button.delete").click();
  await page.check("#confirm-force");
  await page.click("#confirm-ok");
  await waitMessage(/Deleted snapshot/);
  check((await page.locator("#snapshots tbody tr").count()) === 0, "with force the last snapshot is deleted");

  await page.click("#cleanup-dry-run");
  await waitMessage(/Cleanup dry run done/);
  check((await page.locator("#cleanup-result").textContent()).includes("dryRun"), "cleanup dry run summary shown");
  await shot("07-cleanup-dry-run.png");

  await page.click("#backfill-dry-run");
  await waitMessage(/Backfill would re-snapshot 1 aggregate/);
  check((await page.locator("#backfill-plan").textContent()).includes("estimatedReadUnits"), "backfill dry run shows the plan");
  await page.click("#backfill-start");
  await waitMessage(/Backfill complete: 1 \/ 1/);
  check((await page.locator("#backfill-status").textContent()).includes("1 / 1 complete"), "backfill started and watched to completion");
  await shot("08-backfill.png");

  check(violations.length === 0, `no Content-Security-Policy violation or page error (${violations.join("; ")})`);
} catch (error) {
  console.error(String(error));
  await shot("failure.png").catch(() => {});
  await browser.close();
  process.exit(1);
}
await browser.close();
