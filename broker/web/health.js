// Alerts, bridges and OPC UA sources at a glance, polled every 5 s.
// Alerts are filtered by the identity's grants; bridges and OPC UA need the
// admin grant: they are asked for only when /api/v1/me says the identity
// holds it (403 otherwise).

import { el, age } from './format.js';

const POLL_MS = 5000;

export class Health {
  // box: the panel; onalerts(alerts) is called after every poll of the alerts;
  // onopen(topic) when an alert's topic is clicked; mayAdmin() whether the
  // identity holds the admin grant.
  constructor(box, api, { onalerts, onopen, mayAdmin }) {
    this.box = box;
    this.api = api;
    this.onalerts = onalerts;
    this.onopen = onopen;
    this.mayAdmin = mayAdmin;
    this.timer = null;
  }

  start() { this.stopped = false; this.poll(); this.timer = setInterval(() => this.poll(), POLL_MS); }
  stop() { this.stopped = true; clearInterval(this.timer); }

  async poll() {
    const needsAdmin = () => Promise.reject(Object.assign(new Error('needs the admin grant'), { status: 403 }));
    const admin = this.mayAdmin();
    const [alerts, bridges, opcua] = await Promise.allSettled([
      this.api.alerts(), admin ? this.api.bridges() : needsAdmin(), admin ? this.api.opcua() : needsAdmin()]);
    if (this.stopped) return;
    const list = alerts.status === 'fulfilled' ? alerts.value.alerts || [] : null;
    this.onalerts(list || []);
    this.box.replaceChildren(
      this.section('Alerts', alerts, () => this.alerts(list)),
      this.section('Bridges', bridges, (v) => this.table(v, ['name', 'connected', 'backlog', 'last error'], (b) => [
        b.name, b.connected ? 'yes' : 'no', `${b.backlog?.messages ?? 0}`, b.last_error || ''], (b) => !b.connected)),
      this.section('OPC UA sources', opcua, (v) => this.table(v, ['name', 'connected', 'items', 'errors'], (o) => [
        o.name, o.connected ? 'yes' : 'no', `${o.items}`, `${o.errors}`], (o) => !o.connected)));
  }

  section(title, result, body) {
    let content;
    if (result.status === 'fulfilled') content = body(result.value);
    else if (result.reason.status === 403) content = el('p', { class: 'muted', text: 'needs the admin grant' });
    else content = el('p', { class: 'bad', text: `not available: ${result.reason.message}` });
    return el('section', { class: 'health-part' }, el('h3', { text: title }), content);
  }

  alerts(list) {
    if (list.length === 0) return el('p', { class: 'ok', text: 'no active alerts' });
    const now = Date.now();
    return el('ul', { class: 'alerts' }, ...list.slice(0, 50).map((a) => {
      const since = a.since ? ` for ${age(now - Date.parse(a.since))}` : '';
      const subject = el('button', { type: 'button', class: 'link', text: a.subject, onclick: () => this.onopen(a.subject) });
      return el('li', { class: `alert ${a.kind}` }, el('span', { class: 'kind', text: a.kind }), ' ', subject,
        el('span', { class: 'muted', text: `${a.value !== undefined ? ` ${JSON.stringify(a.value)}` : ''}${since}` }));
    }), list.length > 50 ? el('li', { class: 'muted', text: `and ${list.length - 50} more` }) : null);
  }

  table(items, heads, cells, bad) {
    if (!Array.isArray(items) || items.length === 0) return el('p', { class: 'muted', text: 'none configured' });
    return el('table', {},
      el('thead', {}, el('tr', {}, ...heads.map((h) => el('th', { text: h })))),
      el('tbody', {}, ...items.map((x) => el('tr', { class: bad(x) ? 'bad' : '' }, ...cells(x).map((c) => el('td', { text: c }))))));
  }
}
