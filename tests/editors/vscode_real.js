// Drives VS Code (code-server in Chromium, via playwright-core) through the Locus extension:
// palette → "Locus: Locate issue" → input box → peek view + quick pick; then the same on the open
// *.issue.md (whole document). Run by tests/editors/vscode-real.sh, which sets:
// PW_MODULE, CS_URL, ISSUE_ONE_LINE, ISSUE_BASENAME, EXPECT_TOP, EXPECT_TOP_FILE, SHOT, CHROMIUM.
'use strict';
const { chromium } = require(process.env.PW_MODULE);
const env = process.env;
let passed = 0;
let failed = 0;
const ok = (cond, what, detail) => {
  if (cond) { passed++; console.log(`ok - ${what}`); } else { failed++; console.log(`not ok - ${what}${detail ? `\n  # ${String(detail).replace(/\n/g, '\n  # ')}` : ''}`); }
  return cond;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const topBase = env.EXPECT_TOP_FILE ? env.EXPECT_TOP_FILE.split('/').pop() : '';

async function rows(page, sel) {
  return page.$$eval(sel, (els) => els.map((e) => e.innerText.replace(/\s+/g, ' ').trim()).filter(Boolean));
}

async function openFile(page, name) {
  await page.keyboard.press('Control+P');
  await page.waitForSelector('.quick-input-widget:not([style*="display: none"]) input', { timeout: 20000 });
  await page.keyboard.insertText(name);
  await page.waitForSelector(`.quick-input-widget .monaco-list-row[aria-label*="${name}"]`, { timeout: 20000 });
  await page.keyboard.press('Enter');
  await page.waitForSelector(`.tab.active[aria-label*="${name}"]`, { timeout: 20000 });
}

async function runLocate(page) {
  await page.keyboard.press('F1');
  await page.waitForSelector('.quick-input-widget:not([style*="display: none"]) input', { timeout: 20000 });
  await page.keyboard.insertText('Locus: Locate issue');
  await page.waitForSelector('.quick-input-widget .monaco-list-row[aria-label*="Locate issue"]', { timeout: 30000 });
  await page.keyboard.press('Enter');
}

async function waitPeekAndPick(page) {
  await page.waitForSelector('.peekview-widget .monaco-list-row', { timeout: 60000 });
  await page.waitForSelector('.quick-input-widget .monaco-list-row[aria-label^="["]', { timeout: 30000 });
  await sleep(500);
  return {
    peek: await rows(page, '.peekview-widget .monaco-list-row'),
    peekTitle: await page.$eval('.peekview-widget .peekview-title', (e) => e.innerText.replace(/\s+/g, ' ')).catch(() => ''),
    pick: await page.$$eval('.quick-input-widget .monaco-list-row', (els) => els.map((e) => e.getAttribute('aria-label') || e.innerText)),
  };
}

(async () => {
  const browser = await chromium.launch({ executablePath: env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  try {
    await page.goto(env.CS_URL, { waitUntil: 'domcontentloaded', timeout: 60000 });
    await page.waitForSelector('.monaco-workbench', { timeout: 90000 });
    ok(true, 'code-server workbench loaded');
    await sleep(2000); // let the workbench settle (focus, restored state)

    // 1. A Python file open, no selection: the command asks with an input box.
    await openFile(page, 'models.py');
    ok(true, 'opened shop/models.py (activates the extension)');
    await runLocate(page);
    await page.waitForSelector('.quick-input-widget:not([style*="display: none"]) .quick-input-title, .quick-input-widget:not([style*="display: none"]) .quick-input-message', { timeout: 20000 });
    const prompt = await page.$eval('.quick-input-widget', (e) => e.innerText);
    ok(/Paste the issue|Locate issue/.test(prompt), 'the palette command asks for the issue in an input box', prompt.slice(0, 200));
    await page.keyboard.insertText(env.ISSUE_ONE_LINE);
    await page.keyboard.press('Enter');
    const r1 = await waitPeekAndPick(page);
    console.log(`# peek title: ${r1.peekTitle}\n# peek rows:\n#   ${r1.peek.join('\n#   ')}\n# quick pick:\n#   ${r1.pick.join('\n#   ')}`);
    ok(r1.peek.length > 0, `peek view shows ${r1.peek.length} rows`);
    ok(!topBase || r1.peek.some((t) => t.includes(topBase)), `peek view lists ${env.EXPECT_TOP_FILE}`, r1.peek.join(' | '));
    ok(/^\[\d\.\d\d\] .+ — .+/.test(r1.pick[0] || ''), 'quick pick rows read "[score] name — reason"', r1.pick[0]);
    ok(!env.EXPECT_TOP || (r1.pick[0] || '').includes(env.EXPECT_TOP), `quick pick lists the top hit ${env.EXPECT_TOP} first`, r1.pick[0]);
    await page.screenshot({ path: env.SHOT });
    console.log(`# screenshot: ${env.SHOT}`);
    await page.keyboard.press('Enter'); // open the first pick
    const active = topBase ? await page.waitForSelector(`.tab.active[aria-label*="${topBase}"]`, { timeout: 20000 }).then(() => true, () => false) : true;
    ok(active, `choosing the first pick opens ${env.EXPECT_TOP_FILE}`);

    // 2. The *.issue.md open, no selection: the whole document is the issue.
    await page.keyboard.press('Escape');
    await openFile(page, env.ISSUE_BASENAME);
    await runLocate(page);
    const r2 = await waitPeekAndPick(page);
    ok(!topBase || r2.peek.some((t) => t.includes(topBase)), `from ${env.ISSUE_BASENAME}: peek view lists ${env.EXPECT_TOP_FILE}`, r2.peek.join(' | '));
    ok(!env.EXPECT_TOP || (r2.pick[0] || '').includes(env.EXPECT_TOP), `from ${env.ISSUE_BASENAME}: top hit ${env.EXPECT_TOP} first`, r2.pick[0]);
    const editorHasPeek = await page.$(`.editor-instance .peekview-widget`);
    ok(!!editorHasPeek, 'the peek opens inside the issue editor, at the cursor');
    await page.screenshot({ path: env.SHOT.replace(/\.png$/, '-issue.png') });
    await page.keyboard.press('Escape');
  } catch (e) {
    failed++;
    console.log(`not ok - aborted: ${e.stack || e}`);
    await page.screenshot({ path: env.SHOT }).catch(() => {});
  } finally {
    await browser.close();
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
  }
})();
