// Turning payloads, times and rates into text.

const strict = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

// What a payload is: {kind: 'json', value, text} | {kind: 'text', text} |
// {kind: 'binary', hex, base64}. Cached on the message, which never changes.
export function readPayload(message) {
  if (message.read) return message.read;
  let read;
  try {
    const text = strict.decode(message.payload);
    read = { kind: 'text', text };
    const first = text.trimStart()[0];
    if (first !== undefined && '{["-0123456789tfn'.includes(first)) {
      try { read = { kind: 'json', value: JSON.parse(text), text }; } catch { /* text it is */ }
    }
  } catch {
    read = { kind: 'binary', hex: hex(message.payload), base64: base64(message.payload) };
  }
  message.read = read;
  return read;
}

// One line for a row of the tree.
export function preview(message, max = 60) {
  const p = readPayload(message);
  let s;
  if (p.kind === 'binary') s = `${message.payload.length} bytes binary`;
  else if (p.kind === 'json' && p.value && typeof p.value === 'object' && 'value' in p.value) {
    s = String(p.value.value) + (p.value.unit ? ' ' + p.value.unit : '');
  } else if (p.kind === 'json' && p.value && typeof p.value.state === 'string') {
    s = p.value.state;                                   // a machine state
  } else if (p.kind === 'json' && p.value && typeof p.value.oee === 'number') {
    s = `OEE ${(p.value.oee * 100).toFixed(1)} %`;
  } else s = p.text.replace(/\s+/g, ' ');
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

// The number a payload carries: its `value` field, or the payload if it is a bare number.
export function numericValue(message) {
  const p = readPayload(message);
  if (p.kind !== 'json') return null;
  const v = p.value !== null && typeof p.value === 'object' ? p.value.value : p.value;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return null;
}

export function hex(bytes, max = 4096) {
  let s = '';
  const n = Math.min(bytes.length, max);
  for (let i = 0; i < n; i++) s += bytes[i].toString(16).padStart(2, '0') + (i % 16 === 15 ? '\n' : ' ');
  return n < bytes.length ? s + `… (${bytes.length} bytes)` : s.trimEnd();
}

export function base64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// A message of the JSON API (/api/v1/state, /api/v1/topic) in the shape mqtt.js gives.
export function fromApi(m) {
  const properties = { ...(m.properties || {}) };
  if (typeof properties.correlation_data === 'string') properties.correlation_data = encoder.encode(properties.correlation_data);
  return {
    topic: m.topic,
    payload: m.payload_encoding === 'base64' ? fromBase64(m.payload || '') : encoder.encode(m.payload || ''),
    qos: m.qos, retain: m.retain, properties,
    receivedAt: m.received_ms || (m.received ? Date.parse(m.received) : null),
  };
}

export function bytesText(bytes) {
  try { return strict.decode(bytes); } catch { return hex(bytes); }
}

export function age(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function rate(perSecond) {
  if (perSecond === 0) return '';
  if (perSecond < 10) return perSecond.toFixed(1) + '/s';
  return Math.round(perSecond).toLocaleString('en') + '/s';
}

export const count = (n) => n.toLocaleString('en');

// A random id for request_id and client ids: 16 hex digits.
export function randomId() {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// Replaces the children of `parent`, leaving out null and false ones.
export function fill(parent, ...children) {
  parent.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return parent;
}

// Makes an element: el('div', {class: 'x', text: 'y'}, child, ...). No HTML strings.
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}
