// Browsers watching the whole tree, for benchmarks/explorer_cost: opens N pages
// of the explorer at URL in one headless Debian chromium (a browser context
// each, as N people would), logs each in as the identity the broker already
// knows (anonymous), waits until every page is live, prints "ready", and keeps
// watching until its stdin closes; then prints one JSON line per page (topics
// it holds) and exits.
//
//   node benchmarks/explorer_watchers.mjs http://127.0.0.1:PORT/ 5
//
// With --expect T instead: one page, and the time from the click on the login
// button until the page counts T topics, printed as {"load_ms": ...}.
//
//   node benchmarks/explorer_watchers.mjs http://127.0.0.1:PORT/ --expect 100000
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'tests', 'browser', 'peer', 'package.json'));
const { chromium } = require('playwright-core');

const [url, n = '5', expected] = process.argv.slice(2);
if (!url || (n === '--expect' && !(Number(expected) > 0))) {
  console.error('usage: explorer_watchers.mjs URL [PAGES | --expect TOPICS]');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const pages = [];
try {
  if (n === '--expect') {
    const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
    await page.goto(url);
    const login = page.locator('#login-as');
    await login.waitFor({ timeout: 30000 });
    const t0 = Date.now();
    await login.click();
    await page.waitForFunction((want) => Number(document.getElementById('topic-count').dataset.count) >= want,
      Number(expected), { timeout: 120000, polling: 10 });
    console.log(JSON.stringify({ load_ms: Date.now() - t0 }));
  } else {
    await watch();
  }
} finally {
  await browser.close();
}

// N pages, live; their topic counts once stdin closes.
async function watch() {
  for (let i = 0; i < Number(n); i++) {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    await page.goto(url);
    await page.locator('#login-as').click({ timeout: 30000 });
    await page.waitForFunction(() => document.getElementById('conn').textContent === 'live', null, { timeout: 30000 });
    pages.push(page);
  }
  console.log('ready');
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.on('end', resolve));
  for (const page of pages) {
    const topics = await page.evaluate(() => Number(document.getElementById('topic-count').dataset.count));
    console.log(JSON.stringify({ topics }));
  }
}
