// The command form: built from the command class's JSON schema, sent with a
// confirmation step as QoS 1 with a response topic and correlation data, the
// reply shown when it arrives.
//
// command: the `command` object of GET /api/v1/topic ({topic_prefix,
// reply_prefix, class, schema}). The command topic is topic_prefix + a name:
// the value of the `command` field when the schema has one, else typed in.

import { el, fill, randomId, readPayload } from './format.js';
import { reasonText } from './mqtt.js';

// One input per schema property: enum -> select, boolean -> checkbox,
// number/integer -> number, object/array -> JSON textarea, else text.
function field(name, schema, required) {
  const id = `cmd-${name}`;
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  let input;
  if (Array.isArray(schema.enum)) {
    input = el('select', { id }, ...schema.enum.map((v) => el('option', { value: JSON.stringify(v), text: String(v) })));
  } else if (type === 'boolean') {
    input = el('input', { id, type: 'checkbox' });
  } else if (type === 'number' || type === 'integer') {
    input = el('input', { id, type: 'number', step: type === 'integer' ? '1' : 'any' });
  } else if (type === 'object' || type === 'array') {
    input = el('textarea', { id, rows: 3, placeholder: type === 'object' ? '{ }' : '[ ]', spellcheck: 'false' });
  } else {
    input = el('input', { id, type: 'text', spellcheck: 'false' });
    if (name === 'request_id') input.value = randomId();
    else if (schema.format === 'date-time' || name === 'ts' || /timestamp/.test(schema.$ref || '')) input.value = new Date().toISOString();
  }
  if (schema.const !== undefined) input.value = schema.const;
  const value = () => {
    if (input.tagName === 'SELECT') return JSON.parse(input.value);
    if (input.type === 'checkbox') return input.checked;
    const text = input.value.trim();
    if (text === '') return undefined;
    if (input.type === 'number') return Number(text);
    if (input.tagName === 'TEXTAREA') return JSON.parse(text);
    return text;
  };
  const label = el('label', { for: id, text: name + (required ? ' *' : '') });
  const hint = schema.description || schema.title;
  return { name, input, value, row: el('div', { class: 'field' }, label, input, hint ? el('small', { text: hint }) : null) };
}

// Builds the form into `box`. client: the MqttClient; replies: a Map topic ->
// handler that the page calls for every message (see explorer.js).
export function commandForm(box, command, { client, replies }) {
  const schema = command.schema || { type: 'object', properties: {} };
  const properties = schema.properties || {};
  const required = new Set(schema.required || []);
  const fields = Object.entries(properties).map(([name, s]) => field(name, s, required.has(name)));
  const byName = Object.fromEntries(fields.map((f) => [f.name, f]));
  const nameInput = byName.command ? null : el('input', { id: 'cmd-name', type: 'text', placeholder: 'setpoint' });
  const status = el('div', { class: 'cmd-status', role: 'status', 'aria-live': 'polite' });
  const confirm = el('div', { class: 'cmd-confirm', hidden: true });
  const send = el('button', { type: 'submit', class: 'primary', text: 'Send…' });
  const form = el('form', { class: 'command', 'aria-label': 'Send a command' },
    nameInput ? el('div', { class: 'field' }, el('label', { for: 'cmd-name', text: 'command name *' }), nameInput) : null,
    ...fields.map((f) => f.row), el('div', { class: 'buttons' }, send), confirm, status);

  const read = () => {
    const body = {};
    for (const f of fields) {
      let v;
      try { v = f.value(); } catch { throw new Error(`${f.name}: not valid JSON`); }
      if (v !== undefined) body[f.name] = v;
      else if (required.has(f.name)) throw new Error(`${f.name} is required`);
    }
    const name = byName.command ? String(body.command) : nameInput.value.trim();
    if (!name || name.includes('/') || /[+#]/.test(name)) throw new Error('a command name is required (one topic level)');
    return { body, name };
  };

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    let cmd;
    try { cmd = read(); } catch (err) { status.textContent = err.message; status.className = 'cmd-status bad'; return; }
    const topic = command.topic_prefix + cmd.name;
    const yes = el('button', { type: 'button', class: 'primary danger', text: 'Send' });
    const no = el('button', { type: 'button', text: 'Cancel' });
    confirm.replaceChildren(el('p', { text: `Send ${cmd.name} to ${topic}?` }), yes, no);
    confirm.hidden = false;
    send.disabled = true;
    yes.focus();
    no.addEventListener('click', () => { confirm.hidden = true; send.disabled = false; send.focus(); });
    yes.addEventListener('click', () => {
      confirm.hidden = true;
      publish(topic, cmd).finally(() => { send.disabled = false; });
    });
  });

  async function publish(topic, { body, name }) {
    const replyTopic = command.reply_prefix ? command.reply_prefix + name : null;
    const correlation = String(body.request_id || randomId());
    status.className = 'cmd-status';
    status.replaceChildren(el('p', { text: `Sending ${name}…` }));
    try {
      if (replyTopic) {
        // Subscribed before sending, so that no reply can be missed.
        const [code] = await client.subscribe([{ filter: replyTopic, qos: 1 }]);
        if (code >= 0x80) status.append(el('p', { class: 'bad', text: `Replies on ${replyTopic} cannot be read: ${reasonText(code)}` }));
        else replies.set(replyTopic, (m) => showReply(m, correlation));
      }
      const properties = { content_type: 'application/json', payload_format_indicator: 1 };
      if (replyTopic) Object.assign(properties, { response_topic: replyTopic, correlation_data: correlation });
      const ack = await client.publish(topic, JSON.stringify(body), { qos: 1, properties });
      const why = ack.properties.reason_string ? `: ${ack.properties.reason_string}` : '';
      if (ack.reasonCode >= 0x80) {
        status.className = 'cmd-status bad';
        status.replaceChildren(el('p', { text: `Refused by the broker (${reasonText(ack.reasonCode)}${why})` }));
        return;
      }
      const nobody = ack.reasonCode === 0x10 ? ' No one subscribes to the command topic.' : '';
      fill(status, el('p', { class: 'ok', text: `Sent ${name} (request ${correlation}).${nobody}` }),
        replyTopic ? el('p', { class: 'waiting', text: `Waiting for the reply on ${replyTopic}…` }) : null);
      // Later fields keep the values typed; a new request gets a new id and time.
      if (byName.request_id) byName.request_id.input.value = randomId();
      if (byName.ts) byName.ts.input.value = new Date().toISOString();
    } catch (err) {
      status.className = 'cmd-status bad';
      status.replaceChildren(el('p', { text: `Not sent: ${err.message}` }));
    }
  }

  function showReply(m, correlation) {
    const p = readPayload(m);
    const cd = m.properties.correlation_data;
    const mine = cd ? new TextDecoder().decode(cd) === correlation
      : p.kind === 'json' && p.value && p.value.request_id ? p.value.request_id === correlation : true;
    if (!mine) return;
    const verdict = p.kind === 'json' && p.value && p.value.status;
    status.querySelector('.waiting')?.remove();
    status.append(el('div', { class: `reply ${verdict === 'ok' ? 'ok' : verdict ? 'bad' : ''}` },
      el('strong', { text: `Reply on ${m.topic}${verdict ? `: ${verdict}` : ''}` }),
      el('pre', { text: p.kind === 'json' ? JSON.stringify(p.value, null, 2) : p.text || p.hex })));
  }

  box.replaceChildren(el('h3', { text: `Command (${command.class})` }),
    el('p', { class: 'muted', text: `Topic ${command.topic_prefix}NAME` + (command.reply_prefix ? `, replies on ${command.reply_prefix}NAME` : '') }),
    form);
}
