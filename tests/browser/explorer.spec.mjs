// Browser tests of the explorer page (broker/web), driven by
// tests/integration/test_explorer.py against a real broker.
//
//   node explorer.spec.mjs SCENARIO
//
// Environment: STRATA_URL (the broker's http listener, e.g. http://127.0.0.1:8080/),
// STRATA_USER, STRATA_PASSWORD, STRATA_PARAMS (JSON: what the scenario expects),
// STRATA_ARTIFACTS (screenshots go there), CHROMIUM (default /usr/bin/chromium).
//
// Handshake with the test: the script prints `ready NAME` on stdout when the page
// is in a state the test waits for, and reads lines from stdin where the test has
// done something (e.g. `published VALUE T_MS`). Exits 0 when every check passed,
// 1 with `FAIL: ...` on stderr otherwise. No fixed sleeps: every wait has a condition
// and a bound.

import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const WAIT = 10000;   // bound for anything the page should do promptly (ASan broker)

let chromium;
try {
  ({ chromium } = await import(path.join(here, 'peer/node_modules/playwright-core/index.mjs')));
} catch (e) {
  console.error(`FAIL: playwright-core is not installed in ${path.join(here, 'peer')}: run (cd tests/browser/peer && npm ci) or deploy/setup.sh test (${e.message})`);
  process.exit(2);
}

const scenario = process.argv[2];
const url = process.env.STRATA_URL;
const user = process.env.STRATA_USER;
const password = process.env.STRATA_PASSWORD;
const params = JSON.parse(process.env.STRATA_PARAMS || '{}');
const artifacts = process.env.STRATA_ARTIFACTS || path.join(process.cwd(), 'artifacts');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
fs.mkdirSync(artifacts, { recursive: true });

class Failure extends Error {}
function check(condition, message) { if (!condition) throw new Failure(message); }

// ---- stdin handshake

const lines = [];
const waiters = [];
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const w = waiters.shift();
  if (w) w(line); else lines.push(line);
});
function signal(name) { process.stdout.write(`ready ${name}\n`); }
function nextLine(timeout = 60000) {
  if (lines.length) return Promise.resolve(lines.shift());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Failure('no word from the test on stdin')), timeout);
    waiters.push((line) => { clearTimeout(timer); resolve(line); });
  });
}

// ---- page helpers

async function shot(page, name) {
  await page.screenshot({ path: path.join(artifacts, `${name}.png`) });
}

async function login(page, u = user, p = password) {
  await page.goto(url);
  await page.fill('#user', u);
  await page.fill('#password', p);
  await page.click('#login-submit');
}

async function waitText(page, selector, text, timeout = WAIT, what = `${selector} to contain ${JSON.stringify(text)}`) {
  try {
    await page.waitForFunction(([s, t]) => [...document.querySelectorAll(s)].some((e) => e.textContent.includes(t)),
      [selector, text], { timeout, polling: 'raf' });
  } catch {
    const seen = await page.$$eval(selector, (es) => es.map((e) => e.textContent).slice(0, 5)).catch(() => []);
    throw new Failure(`timed out waiting for ${what}; seen: ${JSON.stringify(seen)}`);
  }
}

async function topicCount(page) {
  return Number(await page.getAttribute('#topic-count', 'data-count'));
}

function row(path) { return `#tree [data-path="${path}"]`; }

// Expands the tree down to `path` (clicking the twisties) and selects it.
async function openNode(page, path) {
  const parts = path.split('/');
  for (let i = 1; i < parts.length; i++) {
    const prefix = parts.slice(0, i).join('/');
    await page.waitForSelector(row(prefix), { timeout: WAIT });
    if (await page.getAttribute(row(prefix), 'aria-expanded') === 'false') await page.click(`${row(prefix)} .twisty`);
  }
  await page.waitForSelector(row(path), { timeout: WAIT });
  await page.click(`${row(path)} .name`);
  await page.waitForSelector(`${row(path)}[aria-selected="true"]`, { timeout: WAIT });
}

async function search(page, text) {
  await page.fill('#search', text);
  await page.press('#search', 'Enter');
}

async function listCount(page, expected, what) {
  try {
    await page.waitForFunction((n) => document.getElementById('list-head').textContent.startsWith(`${n.toLocaleString('en')} `),
      expected, { timeout: WAIT });
  } catch {
    throw new Failure(`${what}: expected ${expected} topics, the page says ${JSON.stringify(await page.textContent('#list-head'))}`);
  }
}

// ---- scenarios

const scenarios = {
  // https with a client certificate: the page offers to continue as the
  // certificate's identity, and the tree (over wss with the same certificate)
  // shows what its grants allow.
  async certificate(page) {
    await page.goto(url);
    const as = page.locator('#login-as');
    await as.waitFor({ timeout: WAIT });
    const text = await as.textContent();
    check(text.includes(params.identity) && text.includes('certificate'), `the button names the certificate's identity: ${text}`);
    await as.click();
    await page.waitForFunction(() => document.getElementById('conn').textContent === 'live', null, { timeout: WAIT });
    try {
      await page.waitForFunction((n) => Number(document.getElementById('topic-count').dataset.count) === n,
        params.topics, { timeout: WAIT });
    } catch {
      throw new Failure(`expected ${params.topics} topics, the page counts ${await page.textContent('#topic-count')}`);
    }
    await page.screenshot({ path: path.join(artifacts, 'certificate.png') });
  },
  // The tree with the model's level names; a live update of a leaf within 1 s.
  async tree(page) {
    await login(page);
    await page.waitForSelector(row('acme'), { timeout: WAIT });
    await waitText(page, `${row('acme')} .level`, 'enterprise');
    await page.focus('#tree');
    await page.keyboard.press('Home');
    await page.keyboard.press('ArrowRight');   // expands acme
    await page.waitForSelector(`${row('acme')}[aria-expanded="true"]`, { timeout: WAIT });
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowRight');   // expands dresden
    await waitText(page, `${row('acme/dresden')} .level`, 'site');
    await page.waitForSelector(`${row('acme/dresden')}[aria-expanded="true"]`, { timeout: WAIT });
    await waitText(page, `${row('acme/dresden/press-shop')} .level`, 'area');
    const leaf = params.leaf;
    await openNode(page, leaf);
    for (const [prefix, level] of Object.entries(params.levels)) await waitText(page, `${row(prefix)} .level`, level);
    await waitText(page, '#detail .topic-path', leaf.split('/').pop());
    await waitText(page, '#detail .detail-model', 'telemetry', WAIT, 'the model reading of the leaf');
    await shot(page, 'tree');
    signal('tree');
    const [word, value, published] = (await nextLine()).split(' ');
    check(word === 'published', `unexpected line from the test: ${word}`);
    const deadline = Number(published) + 1000;
    try {
      await page.waitForFunction(([p, v]) => {
        const r = document.querySelector(`#tree [data-path="${p}"] .value`);
        return r && r.textContent.includes(v) && document.querySelector('#detail .payload')?.textContent.includes(v);
      }, [leaf, value], { timeout: Math.max(1, deadline - Date.now()), polling: 'raf' });
    } catch {
      throw new Failure(`the new value ${value} of ${leaf} did not show within 1 s of the publish`);
    }
    console.log(`live update shown ${Date.now() - Number(published)} ms after the publish`);
    await shot(page, 'detail');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => getComputedStyle(document.querySelector('.panes')).display === 'flex', null, { timeout: WAIT });
    await shot(page, 'phone');
    const box = await page.$eval('#detail', (e) => e.getBoundingClientRect().top);
    const tree = await page.$eval('.browse', (e) => e.getBoundingClientRect().bottom);
    check(box >= tree - 1, 'on a phone the detail panel should be below the tree');
  },

  // Substring, filter and class searches; the stale and quarantine views.
  async search(page) {
    await login(page);
    await page.waitForFunction((n) => Number(document.getElementById('topic-count').dataset.count) >= n,
      params.total, { timeout: WAIT });
    await page.keyboard.press('/');
    check(await page.evaluate(() => document.activeElement.id) === 'search', '/ should focus the search');
    for (const [text, n] of params.searches) {
      await search(page, text);
      await listCount(page, n, `search ${JSON.stringify(text)}`);
    }
    await search(page, params.searches[0][0]);
    await page.selectOption('#class-filter', params.klass[0]);
    await listCount(page, params.klass[1], `class ${params.klass[0]} with ${params.searches[0][0]}`);
    await search(page, '');
    await listCount(page, params.klass[2], `class ${params.klass[0]}`);
    await shot(page, 'search');
    await page.selectOption('#class-filter', '');
    await search(page, '');

    await page.click('[data-view="stale"]');
    await waitText(page, '#list [data-path]', params.stale, 60000, `the stale topic ${params.stale}`);
    await shot(page, 'stale');

    await page.click('[data-view="quarantine"]');
    await waitText(page, '#empty', 'Nothing quarantined');
    signal('quarantine');
    check((await nextLine()) === 'published', 'unexpected line from the test');
    await waitText(page, '#list [data-path]', params.quarantine, WAIT, `the quarantined copy of ${params.quarantine}`);
    await waitText(page, '#list .info', params.reason, WAIT, 'the quarantine reason');
    await page.click(`#list [data-path="${params.dead_letter}/${params.quarantine}"]`);
    await waitText(page, '#detail .quarantine-reason', params.reason);
    await shot(page, 'quarantine');
  },

  // A wrong password gets the login error; a user without roles sees nothing.
  async refused(page) {
    await login(page, user, 'not-the-password');
    await waitText(page, '#login-error', 'Wrong user name or password');
    check(await page.isHidden('#app'), 'the explorer should stay hidden after a failed login');
    await shot(page, 'login-refused');
    await login(page, params.noRoles, params.noRolesPassword);
    await waitText(page, '#empty', params.noRoles);
    const text = await page.textContent('#empty');
    check(/no roles|may see nothing|refused/.test(text), `the empty tree should say why: ${text}`);
    check(await topicCount(page) === 0, 'a user without roles should see no topics');
    check(await page.$$eval('#tree [data-path]', (rows) => rows.filter((r) => !r.hidden).length) === 0, 'no rows expected');
    await shot(page, 'no-roles');
  },

  // The command form: sent from the page, answered by the test.
  async command(page) {
    await login(page);
    await openNode(page, params.node);
    await page.waitForSelector('#cmd-command', { timeout: WAIT });
    await shot(page, 'command-form');
    await page.selectOption('#cmd-command', { label: 'start' });
    const requestId = await page.inputValue('#cmd-request_id');
    check(requestId.length >= 8, `request_id should be prefilled: ${requestId}`);
    check(!Number.isNaN(Date.parse(await page.inputValue('#cmd-ts'))), 'ts should be prefilled with the time');
    await page.click('.command button[type=submit]');
    await waitText(page, '.cmd-confirm', `Send start to ${params.node}/cmd/start?`);
    await shot(page, 'command-confirm');
    await page.click('.cmd-confirm button.primary');
    await waitText(page, '.cmd-status', 'Sent start');
    signal(`sent ${requestId}`);
    check((await nextLine()) === 'replied', 'unexpected line from the test');
    await waitText(page, '.reply', 'ok', WAIT, 'the reply in the page');
    await waitText(page, '.reply', requestId);
    await shot(page, 'command-reply');
  },

  // An identity without the command grant sees no form.
  async nocommand(page) {
    await login(page);
    await openNode(page, params.node);
    await waitText(page, '#detail .detail-model', 'equipment', WAIT, 'the model reading of the node');
    check(await page.$('#detail form.command') === null, `${user} should see no command form`);
    await shot(page, 'no-command-form');
  },

  // From the click on "Log in" to the tree showing every topic.
  async load(page) {
    await page.goto(url);
    await page.fill('#user', user);
    await page.fill('#password', password);
    const start = Date.now();
    await page.click('#login-submit');
    try {
      await page.waitForFunction((n) => document.getElementById('topic-count').dataset.count === String(n)
        && document.querySelector('#tree [data-path]'), params.total, { timeout: params.timeout_ms, polling: 'raf' });
    } catch {
      throw new Failure(`the tree did not show ${params.total} topics within ${params.timeout_ms} ms (it shows ${await topicCount(page)})`);
    }
    const ms = Date.now() - start;
    console.log(`load ${params.total} topics ${ms} ms`);
    // Still responsive: expanding a node and searching all topics answer promptly.
    const t0 = Date.now();
    await page.click(`${row('acme')} .twisty`);
    await page.waitForSelector(`${row('acme')}[aria-expanded="true"]`, { timeout: WAIT });
    await search(page, params.search);
    await listCount(page, params.searchCount, `search ${params.search}`);
    console.log(`expand and search over ${params.total} topics ${Date.now() - t0} ms`);
    await shot(page, 'load');
  },

  // The wall-display screenshot for docs/explorer.png.
  async wall(page) {
    await login(page);
    await openNode(page, params.node);
    await waitText(page, '#detail .detail-model', 'telemetry');
    await page.waitForFunction(() => parseInt(document.querySelector('#detail .sparkline')?.getAttribute('aria-label'), 10) >= 6,
      null, { timeout: 60000 });
    await page.screenshot({ path: params.out || path.join(artifacts, 'wall.png') });
  },
};

if (!scenarios[scenario]) {
  console.error(`FAIL: unknown scenario ${scenario}; one of ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}

let browser;
let code = 0;
try {
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'], headless: true });
  const viewport = scenario === 'wall' ? { width: 1400, height: 900 } : { width: 1280, height: 800 };
  const options = { viewport };
  if (params.cert) {
    // The test's own CA signed the broker's certificate; the client
    // certificate is presented to the broker's origin only.
    options.ignoreHTTPSErrors = true;
    options.clientCertificates = [{ origin: new URL(url).origin, certPath: params.cert, keyPath: params.key }];
  }
  const page = await browser.newPage(options);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // HTTP answers such as 401 and 403 are part of the checks, not errors.
  page.on('console', (m) => { if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) errors.push(m.text()); });
  await scenarios[scenario](page);
  check(errors.length === 0, `errors in the page: ${errors.join('; ')}`);
  console.log(`PASS ${scenario}`);
} catch (e) {
  console.error(`FAIL: ${scenario}: ${e instanceof Failure ? e.message : e.stack}`);
  code = 1;
} finally {
  if (browser) await browser.close();
}
process.exit(code);
