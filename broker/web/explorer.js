// The UNS explorer: log in, receive every topic the identity may see over MQTT
// (WebSocket), and browse them as a tree with live counts and rates.
//
// Modules: mqtt.js (the MQTT 5 client), store.js (topics and the tree), rowlist.js
// (the virtualised rows), labels.js (the model's level names), detail.js (the
// selected node), command.js (the command form), health.js (alerts, bridges,
// OPC UA), api.js (the JSON API), sparkline.js, format.js.
//
// Messages only change the store; the screen is drawn from it at most four times
// a second (RENDER_MS), and only the rows in view.

import { MqttClient, reasonText } from './mqtt.js';
import { Node, TopicTree, matchesFilter } from './store.js';
import { RowList } from './rowlist.js';
import { Api } from './api.js';
import { Labels } from './labels.js';
import { Detail } from './detail.js';
import { Health } from './health.js';
import { History } from './sparkline.js';
import { el, preview, rate, count, age, randomId, readPayload } from './format.js';

const RENDER_MS = 250;
const ROW_HEIGHT = 28;
const RECONNECT_MS = [1000, 2000, 5000, 10000];

const $ = (id) => document.getElementById(id);
const api = new Api();
const history = new History();
const replies = new Map();          // reply topic -> handler, for the command form

let session = null;                 // {me, credentials: {user, password} | null}
let client = null;
let tree = new TopicTree();
let labels = null;
let selected = null;
let view = 'tree';                  // tree | stale | quarantine
let query = null;                   // {text, filter, klass, classTopics} while searching
let results = [];                   // search results: [{topic, node}]
let stale = [];                     // [{topic, node, info}] from the stale alerts
let quarantined = [];               // [{topic, node}] under the model's dead-letter prefix
let listVersion = 0, shownList = -1, shownShape = -1, shownView = null;
let subscribeRefused = null;

const detail = new Detail($('detail'), {
  api, history, replies,
  client: () => client,
  deadLetter: () => session && session.me.model && session.me.model.dead_letter,
  onselect: (path) => openPath(path),
});
const health = new Health($('health'), api, {
  onalerts: setAlerts,
  onopen: (topic) => openPath(topic),
  mayAdmin: () => Boolean(session && session.me.may_admin),
});

// ---- login -----------------------------------------------------------------------

async function probeIdentity() {
  // A client certificate or an anonymous listener identifies us without a password.
  try {
    const me = await api.me();
    $('login-as').textContent = `Continue as ${me.identity} (${me.login})`;
    $('login-other').hidden = false;
  } catch { /* a password it is */ }
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const user = $('user').value, password = $('password').value;
  const error = $('login-error');
  error.textContent = '';
  $('login-submit').disabled = true;
  try {
    await api.login(user, password);
    $('password').value = '';
    await start({ user, password });
  } catch (err) {
    if (err.status === 401) error.textContent = 'Wrong user name or password.';
    else if (err.status === 429) error.textContent = `Too many failed logins from this address: try again in ${err.retryAfter || 'a few'} s.`;
    else error.textContent = `Login failed: ${err.message}`;
  } finally {
    $('login-submit').disabled = false;
  }
});

$('login-as').addEventListener('click', () => start(null).catch((err) => { $('login-error').textContent = `Login failed: ${err.message}`; }));
$('logout').addEventListener('click', () => stop('Logged out.'));
api.onexpired = () => stop('The session expired: log in again.');

async function start(credentials) {
  const me = await api.me();
  session = { me, credentials };
  tree = new TopicTree();
  tree.onnew = onNewTopic;
  selected = null;
  results = []; stale = []; quarantined = []; query = null; subscribeRefused = null;
  labels = new Labels(api, me.model ? me.model.levels : null, () => invalidate());
  $('identity').textContent = me.identity;
  $('identity').title = `logged in by ${me.login}; roles: ${(me.roles || []).join(', ') || 'none'}`;
  const classes = me.model ? Object.keys(me.model.classes || {}) : [];
  $('class-filter').replaceChildren(el('option', { value: '', text: 'all classes' }),
    ...classes.map((c) => el('option', { value: c, text: c })));
  $('class-filter').hidden = classes.length === 0;
  $('search').value = '';
  $('login').hidden = true;
  $('app').hidden = false;
  $('session').hidden = false;
  detail.empty();
  setView('tree');
  health.start();
  connect(0);
  treeList.container.focus();
}

function stop(message) {
  session = null;
  health.stop();
  if (client) { client.onclose = null; client.disconnect(); client = null; }
  clearTimeout(reconnectTimer);
  api.logout();
  $('app').hidden = true;
  $('session').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('user').focus();
}

// ---- live data -------------------------------------------------------------------

let reconnectTimer = null;

async function connect(attempt) {
  const me = session.me;
  const c = new MqttClient();
  client = c;
  c.onmessage = onMessage;
  c.onclose = (why) => {
    if (client !== c || !session) return;
    setConnection('bad', `disconnected: ${why}; reconnecting`);
    reconnectTimer = setTimeout(() => connect(attempt + 1), RECONNECT_MS[Math.min(attempt, RECONNECT_MS.length - 1)]);
  };
  setConnection('wait', 'connecting');
  const creds = session.credentials;
  try {
    await c.connect(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/mqtt`, {
      clientId: `explorer-${randomId()}`,
      username: creds ? creds.user : null,
      password: creds ? creds.password : null,
      keepAlive: 30,
      userProperties: [['strata-wide-subscriptions', 'filter']],
    });
    // QoS 0: a viewer needs no acknowledgements, and the broker then sends the
    // retained state without waiting for any (at QoS 1 its in-flight window of
    // 64 would pace 100,000 retained topics by round trips).
    const [code] = await c.subscribe([{ filter: '#', qos: 0, retainAsPublished: true }]);
    if (code >= 0x80) {
      subscribeRefused = `The broker refused the subscription (${reasonText(code)}): ${me.identity} may see nothing.`;
      setConnection('bad', 'subscription refused');
    } else {
      setConnection('ok', 'live');
    }
  } catch (err) {
    if (client !== c || !session) return;
    setConnection('bad', `MQTT: ${err.message}`);
    // A refused login will be refused again; anything else is retried.
    if (!/0x8[67]|0x8a/i.test(err.message)) reconnectTimer = setTimeout(() => connect(attempt + 1), RECONNECT_MS[Math.min(attempt, RECONNECT_MS.length - 1)]);
    else subscribeRefused = `The broker refused the MQTT connection (${err.message}).`;
  }
  invalidate();
}

function setConnection(state, text) {
  const e = $('conn');
  e.dataset.state = state;
  e.textContent = text;
}

function onMessage(m) {
  const node = tree.put(m, Date.now());
  if (node) history.add(m);
  const reply = replies.get(m.topic);
  if (reply) reply(m);
  invalidate();
}

function onNewTopic(node) {
  if (query && matches(node.path)) { results.push({ topic: node.path, node }); listVersion++; }
  const prefix = session.me.model && session.me.model.dead_letter;
  if (prefix && node.path.startsWith(prefix + '/')) { quarantined.push({ topic: node.path, node }); listVersion++; }
}

// ---- search and the lists --------------------------------------------------------

function matches(topic) {
  if (query.klass && !(query.classTopics.has(topic) || topic.split('/').includes(query.klass))) return false;
  if (query.filter) return matchesFilter(query.filter, topic);
  return !query.text || topic.toLowerCase().includes(query.text);
}

async function runQuery() {
  const text = $('search').value.trim();
  const klass = $('class-filter').value;
  if (!text && !klass) {
    query = null;
  } else {
    const filter = /[+#]/.test(text) ? text : null;
    const previous = query && query.klass === klass ? query.classTopics : null;
    query = { text: text.toLowerCase(), filter, klass, classTopics: previous || new Set() };
    if (klass && !previous) {
      const q = query;
      try {
        const messages = await api.state('#', { klass, topicsOnly: true });
        q.classTopics = new Set(messages.map((m) => m.topic));
      } catch (err) {
        $('empty').textContent = `The class filter is not available: ${err.message}`;
      }
      if (q !== query) return;
    }
    results = [];
    for (const topic of tree.topics.keys()) if (matches(topic)) results.push({ topic, node: tree.topics.get(topic) });
    results.sort((a, b) => (a.topic < b.topic ? -1 : 1));
  }
  listVersion++;
  if (view !== 'tree') setView('tree');
  render();
}

let searchTimer = null;
$('search').addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(runQuery, 150); });
$('search').addEventListener('keydown', (e) => {
  if (e.key === 'Escape') { $('search').value = ''; runQuery(); currentList().container.focus(); }
  if (e.key === 'Enter') { clearTimeout(searchTimer); runQuery().then(() => currentList().container.focus()); }
});
$('class-filter').addEventListener('change', runQuery);

function setAlerts(alerts) {
  stale = alerts.filter((a) => a.kind === 'stale').map((a) => ({
    topic: a.subject, node: tree.topics.get(a.subject) || null,
    info: a.since ? `stale for ${age(Date.now() - Date.parse(a.since))}` : 'stale',
  }));
  $('stale-count').textContent = stale.length ? String(stale.length) : '';
  listVersion++;
  invalidate();
}

for (const b of document.querySelectorAll('[data-view]')) b.addEventListener('click', () => setView(b.dataset.view));

function setView(v) {
  view = v;
  for (const b of document.querySelectorAll('[data-view]')) b.setAttribute('aria-selected', String(b.dataset.view === v));
  render();
}

// ---- the tree and the lists on screen ---------------------------------------------

function setText(e, text) { if (e.textContent !== text) e.textContent = text; }

function span(cls) { return el('span', { class: cls }); }

const treeList = new RowList($('tree'), {
  rowHeight: ROW_HEIGHT,
  makeRow() {
    const row = el('div', { role: 'treeitem', class: 'row' });
    row.parts = { twisty: span('twisty'), name: span('name'), level: span('level'), value: span('value'), count: span('count'), rate: span('rate') };
    row.parts.twisty.setAttribute('aria-hidden', 'true');
    row.append(...Object.values(row.parts));
    return row;
  },
  paint(row, node) {
    const p = row.parts, second = Math.floor(Date.now() / 1000);
    const parent = node.children && node.children.size > 0;
    row.dataset.path = node.path;
    row.setAttribute('aria-level', String(node.depth + 1));
    if (parent) row.setAttribute('aria-expanded', String(node.expanded)); else row.removeAttribute('aria-expanded');
    row.setAttribute('aria-selected', String(node === selected));
    row.style.paddingLeft = `${0.25 + node.depth * 1.1}em`;
    setText(p.twisty, parent ? (node.expanded ? '▾' : '▸') : '');
    setText(p.name, node.name || '(empty)');
    setText(p.level, labels ? labels.label(node) : '');
    setText(p.value, node.message ? preview(node.message) : '');
    setText(p.count, parent ? count(node.topics) : '');
    setText(p.rate, rate(node.messagesPerSecond(second)));
  },
  onclick(node, index, e) {
    if (e.target.classList.contains('twisty')) toggle(node, !node.expanded);
    else select(node);
  },
  onkey(key, node, index) {
    const parent = node.children && node.children.size > 0;
    if (key === 'ArrowRight') {
      if (parent && !node.expanded) toggle(node, true);
      else if (parent) treeList.setActive(index + 1);
    } else if (key === 'ArrowLeft') {
      if (node.expanded) toggle(node, false);
      else if (node.parent && node.parent.parent) treeList.setActive(treeList.indexOf(node.parent));
    } else if (key === 'Enter' || key === ' ') {
      select(node);
    } else return false;
    return true;
  },
});

const flatList = new RowList($('list'), {
  rowHeight: ROW_HEIGHT,
  makeRow() {
    const row = el('div', { role: 'option', class: 'row flat' });
    row.parts = { topic: span('topic'), info: span('info'), value: span('value'), age: span('age') };
    row.append(...Object.values(row.parts));
    return row;
  },
  paint(row, item) {
    const p = row.parts, m = item.node && item.node.message;
    row.dataset.path = item.topic;
    row.setAttribute('aria-selected', String(!!item.node && item.node === selected));
    setText(p.topic, item.topic);
    setText(p.info, item.info || (view === 'quarantine' && m ? quarantineReason(m) : ''));
    setText(p.value, m ? preview(m) : '');
    setText(p.age, m ? age(Date.now() - m.receivedAt) : '');
  },
  onclick(item) { openItem(item); },
  onkey(key, item) {
    if (key !== 'Enter' && key !== ' ') return false;
    openItem(item);
    return true;
  },
});

function quarantineReason(m) {
  const p = readPayload(m);
  return p.kind === 'json' && p.value && p.value.reason ? p.value.reason : '';
}

function currentList() { return view === 'tree' && !query ? treeList : flatList; }

function toggle(node, open) {
  if (!node.children || node.children.size === 0 || node.expanded === open) return;
  node.expanded = open;
  tree.shape++;
  render();
}

function showTreeRows() {
  treeList.setItems(tree.rows());
  shownShape = tree.shape;
}

function select(node) {
  selected = node;
  detail.show(node);
  render();
}

function openItem(item) {
  if (item.node && item.node.message) select(item.node);
  else openPath(item.topic);
}

// Shows a topic from elsewhere (an alert, a breadcrumb) in the tree and selects it.
function openPath(path) {
  const node = tree.find(path);
  if (!node) {
    // Not seen by the page (a stale topic without a retained value): details only.
    const root = new Node('', null, '');
    select(new Node(path, root, path));
    return;
  }
  for (let n = node.parent; n && n.parent; n = n.parent) n.expanded = true;
  tree.shape++;
  $('search').value = '';
  query = null;
  setView('tree');
  showTreeRows();
  treeList.setActive(treeList.indexOf(node));
  select(node);
  treeList.container.focus();
}

// ---- drawing ---------------------------------------------------------------------

let renderQueued = false, lastRender = 0;

// Asks for a render, at most every RENDER_MS. What the user does renders at once
// (render() directly), so that the keys that follow act on what is shown.
function invalidate() {
  if (renderQueued) return;
  renderQueued = true;
  const wait = Math.max(0, RENDER_MS - (performance.now() - lastRender));
  setTimeout(() => requestAnimationFrame(render), wait);
}

function render() {
  renderQueued = false;
  lastRender = performance.now();
  if (!session) return;
  const now = Date.now();
  setText($('topic-count'), `${count(tree.size)} topics`);
  $('topic-count').dataset.count = String(tree.size);
  setText($('total-rate'), rate(tree.root.messagesPerSecond(Math.floor(now / 1000))) || '0/s');
  setText($('quarantine-count'), quarantined.length ? String(quarantined.length) : '');

  const flat = !(view === 'tree' && !query);
  const shown = flat ? `${view}:${!!query}` : 'tree';
  $('tree').hidden = flat;
  $('list').hidden = !flat;
  let items, empty = '';
  if (!flat) {
    if (tree.shape !== shownShape || shownView !== shown) showTreeRows();
    else treeList.render();
    items = treeList.items;
    if (items.length === 0) empty = emptyTreeText();
  } else {
    const source = view === 'stale' ? stale : view === 'quarantine' ? quarantined : results;
    if (listVersion !== shownList || shownView !== shown) { flatList.setItems(source); shownList = listVersion; }
    else flatList.render();
    items = source;
    if (items.length === 0) {
      empty = view === 'stale' ? 'No stale topics: every topic with an expected period has reported in time.'
        : view === 'quarantine' ? 'Nothing quarantined since the page was opened (quarantined messages are not retained).'
          : 'No topic matches.';
    }
  }
  shownView = shown;
  setText($('list-head'), listHead(items.length));
  setText($('empty'), empty);
  $('empty').hidden = !empty;
  detail.refresh(now);
}

function listHead(n) {
  if (view === 'stale') return `${count(n)} stale topics`;
  if (view === 'quarantine') return `${count(n)} quarantined topics`;
  if (query) return `${count(n)} matching topics` + (query.klass ? ` of class ${query.klass}` : '');
  return '';
}

function emptyTreeText() {
  const me = session.me;
  if (me.roles_active && (me.roles || []).length === 0) return `${me.identity} holds no roles, so there is nothing it may see.`;
  if (subscribeRefused) return subscribeRefused;
  return `No topics yet. ${me.identity} sees only what its subscribe grants allow; retained topics show as they arrive, others when they are next published.`;
}

// Rates and ages move on even without messages.
setInterval(() => { if (session) invalidate(); }, 1000);

// "/" focuses the search from anywhere but a text field.
document.addEventListener('keydown', (e) => {
  if (e.key !== '/' || !session) return;
  if (e.target.closest('input, textarea, select')) return;
  e.preventDefault();
  $('search').focus();
});

probeIdentity();
$('user').focus();
