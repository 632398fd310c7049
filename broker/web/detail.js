// The detail panel of the selected node: its last message (payload, flags,
// MQTT 5 properties), the model's reading of it (levels, class, schema, verdict,
// from GET /api/v1/topic), a sparkline of its numeric value and, where the
// identity may command below it, the command form.

import { el, fill, readPayload, age, rate, count, bytesText, base64 } from './format.js';
import { commandForm } from './command.js';

const PAYLOAD_FORMAT = { 0: '0 (bytes)', 1: '1 (UTF-8 text)' };

export class Detail {
  // options: {api, history, client(), replies, deadLetter(), onselect(path)}
  constructor(box, options) {
    this.box = box;
    this.o = options;
    this.node = null;
    this.reading = null;
    this.empty();
  }

  empty() {
    this.node = null;
    this.box.replaceChildren(el('p', { class: 'muted hint', text: 'Select a topic or a node of the tree (Enter or a click) to see its last message, its model reading and, where you may, send a command.' }));
  }

  async show(node) {
    this.node = node;
    this.reading = null;
    this.shownMessage = undefined;
    if (node.message) this.o.history.track(node.path, node.message);
    this.head = el('div', { class: 'detail-head' });
    this.message = el('div', { class: 'detail-message' });
    this.spark = el('div', { class: 'detail-spark' });
    this.model = el('div', { class: 'detail-model' }, el('p', { class: 'muted', text: 'Reading the model…' }));
    this.command = el('div', { class: 'detail-command' });
    this.box.replaceChildren(this.head, this.message, this.spark, this.model, this.command);
    this.refresh(Date.now());
    try {
      const reading = await this.o.api.topic(node.path);
      if (this.node !== node) return;
      this.reading = reading;
      this.showModel(reading);
      if (reading.command) commandForm(this.command, reading.command, { client: this.o.client(), replies: this.o.replies });
    } catch (e) {
      if (this.node !== node) return;
      this.model.replaceChildren(el('p', { class: 'muted', text: e.status === 403
        ? 'This identity may not receive this topic, so the broker does not read it for you.' : `The model reading is not available: ${e.message}` }));
    }
    this.shownMessage = undefined;
    this.refresh(Date.now());
  }

  // Called by the render loop: the message if it changed, its age, the sparkline.
  refresh(now) {
    const node = this.node;
    if (!node) return;
    const second = Math.floor(now / 1000);
    const parts = [el('h2', { class: 'topic-path' }, ...this.crumbs(node))];
    const below = node.topics - (node.message ? 1 : 0);
    if (below > 0) parts.push(el('p', { class: 'muted', text: `${count(below)} topics below · ${rate(node.messagesPerSecond(second)) || 'no messages'} over the last 10 s` }));
    else parts.push(el('p', { class: 'muted', text: `${rate(node.messagesPerSecond(second)) || 'no messages'} over the last 10 s` }));
    this.head.replaceChildren(...parts);
    if (node.message !== this.shownMessage) {
      this.shownMessage = node.message;
      this.showMessage(node.message);
    }
    if (this.ageText && node.message) this.ageText.textContent = age(now - this.receivedAt(node.message));
    const drawn = node.message && this.o.history.draw(node.path, now);
    this.spark.replaceChildren(...(drawn ? [el('h3', { text: 'Value, last minutes' }), drawn.svg,
      el('p', { class: 'muted', text: `${drawn.n} values · min ${drawn.lo} · max ${drawn.hi} · last ${drawn.last}` })] : []));
  }

  crumbs(node) {
    const chain = [];
    for (let n = node; n && n.parent; n = n.parent) chain.unshift(n);
    const levels = this.reading ? this.reading.levels || [] : [];
    const out = [];
    chain.forEach((n, i) => {
      if (i > 0) out.push(el('span', { class: 'sep', text: '/' }));
      const title = levels[i] ? levels[i].level : undefined;
      out.push(n === node ? el('span', { title, text: n.name || '(empty)' })
        : el('button', { type: 'button', class: 'link', title, text: n.name || '(empty)', onclick: () => this.o.onselect(n.path) }));
    });
    return out;
  }

  // The broker's record of the retained value `m` is (GET /api/v1/topic), or null.
  retainedRecord(m) {
    const r = this.reading && this.reading.retained;
    if (!m.retain || !r) return null;
    const same = r.payload_encoding === 'base64' ? base64(m.payload) === r.payload : readPayload(m).text === r.payload;
    return same ? r : null;
  }

  receivedAt(m) {
    // A retained value the page got on subscribing: the broker knows when it arrived.
    const r = this.retainedRecord(m);
    return r && r.received_ms ? r.received_ms : m.receivedAt;
  }

  // The page subscribes at QoS 0: the QoS a message was published with is
  // known from the broker's record of a retained value only.
  qosText(m) {
    const r = this.retainedRecord(m);
    if (r) return String(r.qos);
    return m.qos > 0 ? String(m.qos) : 'as published: not shown (the explorer receives at QoS 0)';
  }

  showMessage(m) {
    this.ageText = null;
    if (!m) {
      this.message.replaceChildren(this.node.topics > 0 ? el('p', { class: 'muted', text: 'No message on this node itself.' }) : el('p', { class: 'muted', text: 'The topic was cleared.' }));
      return;
    }
    const p = readPayload(m);
    const at = this.receivedAt(m);
    this.ageText = el('span', { text: age(Date.now() - at) });
    const facts = el('dl', { class: 'facts' },
      el('dt', { text: 'Retained' }), el('dd', { text: m.retain ? 'yes' : 'no' }),
      el('dt', { text: 'QoS' }), el('dd', { text: this.qosText(m) }),
      el('dt', { text: 'Received' }), el('dd', {}, new Date(at).toLocaleString(), ' (', this.ageText, ' ago)'),
      el('dt', { text: 'Size' }), el('dd', { text: `${m.payload.length} bytes` }));
    let payload;
    if (p.kind === 'json') payload = el('pre', { class: 'payload json', text: JSON.stringify(p.value, null, 2) });
    else if (p.kind === 'text') payload = el('pre', { class: 'payload', text: p.text || '(empty)' });
    else payload = el('div', {}, el('h4', { text: 'hex' }), el('pre', { class: 'payload', text: p.hex }),
      el('h4', { text: 'base64' }), el('pre', { class: 'payload', text: base64(m.payload) }));
    const quarantine = this.quarantineReason(m, p);
    fill(this.message,
      quarantine ? el('p', { class: 'bad quarantine-reason', text: `Quarantined: ${quarantine}` }) : null,
      el('h3', { text: 'Last message' }), facts, payload, this.properties(m.properties || {}));
  }

  quarantineReason(m, p) {
    const prefix = this.o.deadLetter();
    if (!prefix || !m.topic.startsWith(prefix + '/')) return null;
    return p.kind === 'json' && p.value && p.value.reason ? p.value.reason : null;
  }

  properties(props) {
    const rows = [];
    const add = (name, value) => rows.push(el('dt', { text: name }), el('dd', { text: value }));
    if (props.content_type !== undefined) add('Content type', props.content_type);
    if (props.payload_format_indicator !== undefined) add('Payload format', PAYLOAD_FORMAT[props.payload_format_indicator] || String(props.payload_format_indicator));
    if (props.message_expiry_interval !== undefined) add('Message expiry', `${props.message_expiry_interval} s`);
    if (props.response_topic !== undefined) add('Response topic', props.response_topic);
    if (props.correlation_data !== undefined) add('Correlation data', bytesText(props.correlation_data));
    for (const [k, v] of props.user_properties || []) add(`${k} (user property)`, v);
    return el('div', {}, el('h3', { text: 'MQTT 5 properties' }),
      rows.length ? el('dl', { class: 'facts props' }, ...rows) : el('p', { class: 'muted', text: 'none' }));
  }

  showModel(r) {
    const levels = (r.levels || []).map((l) => el('li', {}, el('span', { class: 'level', text: l.level }), ' ', l.name));
    let verdict;
    if (!r.verdict) verdict = el('dd', { class: 'muted', text: r.retained ? '—' : 'no retained message to check' });
    else if (r.verdict.ok) verdict = el('dd', { class: 'ok', text: 'fits the model' });
    else verdict = el('dd', { class: 'bad', text: r.verdict.reason || 'does not fit' });
    fill(this.model, el('h3', { text: 'Model' }),
      levels.length ? el('ol', { class: 'levels' }, ...levels) : null,
      el('dl', { class: 'facts' },
        el('dt', { text: 'Class' }), el('dd', { text: r.class || (r.free ? 'none (free subtree)' : 'none') }),
        el('dt', { text: 'Verdict' }), verdict),
      r.schema ? el('details', { class: 'schema' }, el('summary', { text: `Schema${r.schema.title ? `: ${r.schema.title}` : ''}` }),
        el('pre', { text: JSON.stringify(r.schema, null, 2) })) : null);
  }
}
