// The broker's JSON API (/api/v1/...), on the page's own origin.
//
// After a password login every request carries the session token; a 401 then
// means the token expired (onexpired). Certificate and anonymous logins send no
// Authorization header: the broker knows the identity from the connection.

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

export class Api {
  constructor() {
    this.token = null;
    this.onexpired = null;
  }

  async request(method, path, { auth } = {}) {
    const headers = { Accept: 'application/json' };
    if (auth) headers.Authorization = auth;
    else if (this.token) headers.Authorization = `Bearer ${this.token}`;
    // same-origin: on https the browser presents the user's client certificate.
    const r = await fetch(path, { method, headers, credentials: 'same-origin', cache: 'no-store' });
    let body = null;
    try { body = await r.json(); } catch { /* not JSON */ }
    if (r.ok) return body;
    if (r.status === 401 && this.token && !auth) {
      this.token = null;
      this.onexpired && this.onexpired();
    }
    throw new ApiError(r.status, body, Number(r.headers.get('Retry-After')) || null);
  }

  get(path) { return this.request('GET', path); }

  async login(user, password) {
    const basic = btoa(String.fromCharCode(...new TextEncoder().encode(`${user}:${password}`)));
    const body = await this.request('POST', '/api/v1/login', { auth: `Basic ${basic}` });
    this.token = body.token;
    return body;
  }

  async logout() {
    if (!this.token) return;
    try { await this.request('POST', '/api/v1/logout'); } catch { /* gone already */ }
    this.token = null;
  }

  me() { return this.get('/api/v1/me'); }
  topic(topic) { return this.get(`/api/v1/topic?topic=${encodeURIComponent(topic)}`); }
  alerts() { return this.get('/api/v1/alerts'); }
  bridges() { return this.get('/api/v1/bridges'); }
  opcua() { return this.get('/api/v1/opcua'); }

  // Every page of /api/v1/state for the filter (and class); fields=topic gives
  // only the topics.
  async state(filter, { klass, topicsOnly } = {}) {
    const out = [];
    let cursor = null;
    do {
      const q = new URLSearchParams({ filter, limit: '1000' });
      if (klass) q.set('class', klass);
      if (topicsOnly) q.set('fields', 'topic');
      if (cursor) q.set('cursor', cursor);
      const page = await this.get(`/api/v1/state?${q}`);
      out.push(...page.messages);
      cursor = page.next_cursor;
    } while (cursor);
    return out;
  }
}
