// A small MQTT 5.0 client over WebSocket (subprotocol "mqtt", binary frames).
//
// What the explorer needs and no more: CONNECT with username/password and user
// properties, SUBSCRIBE with options, PUBLISH in both directions (receive QoS 0/1,
// send QoS 0/1 with properties), PUBACK, keep-alive and DISCONNECT. QoS 2 is not
// used: we never subscribe or publish with it.
//
// A WebSocket message may carry several MQTT packets, and a packet may be split
// across messages: PacketReader reassembles the byte stream. Properties use the
// names of the broker's JSON API (content_type, user_properties, ...), so that a
// message read from /api/v1/state and one received here look the same.

const CONNECT = 1, CONNACK = 2, PUBLISH = 3, PUBACK = 4, SUBSCRIBE = 8, SUBACK = 9;
const PINGREQ = 12, PINGRESP = 13, DISCONNECT = 14;

// MQTT 5.0 section 2.2.2.2: id -> [name, wire type]
const PROPERTIES = {
  0x01: ['payload_format_indicator', 'byte'], 0x02: ['message_expiry_interval', 'u32'],
  0x03: ['content_type', 'str'], 0x08: ['response_topic', 'str'],
  0x09: ['correlation_data', 'bin'], 0x0B: ['subscription_identifier', 'varint'],
  0x11: ['session_expiry_interval', 'u32'], 0x12: ['assigned_client_identifier', 'str'],
  0x13: ['server_keep_alive', 'u16'], 0x15: ['authentication_method', 'str'],
  0x16: ['authentication_data', 'bin'], 0x17: ['request_problem_information', 'byte'],
  0x18: ['will_delay_interval', 'u32'], 0x19: ['request_response_information', 'byte'],
  0x1A: ['response_information', 'str'], 0x1C: ['server_reference', 'str'],
  0x1F: ['reason_string', 'str'], 0x21: ['receive_maximum', 'u16'],
  0x22: ['topic_alias_maximum', 'u16'], 0x23: ['topic_alias', 'u16'],
  0x24: ['maximum_qos', 'byte'], 0x25: ['retain_available', 'byte'],
  0x26: ['user_properties', 'pair'], 0x27: ['maximum_packet_size', 'u32'],
  0x28: ['wildcard_subscription_available', 'byte'],
  0x29: ['subscription_identifier_available', 'byte'],
  0x2A: ['shared_subscription_available', 'byte'],
};
const PROPERTY_IDS = Object.fromEntries(
  Object.entries(PROPERTIES).map(([id, [name, type]]) => [name, [Number(id), type]]));

export const REASONS = {
  0x00: 'Success', 0x01: 'Granted QoS 1', 0x02: 'Granted QoS 2', 0x04: 'Disconnect with will',
  0x10: 'No matching subscribers', 0x11: 'No subscription existed',
  0x80: 'Unspecified error', 0x81: 'Malformed packet', 0x82: 'Protocol error',
  0x83: 'Implementation specific error', 0x84: 'Unsupported protocol version',
  0x85: 'Client identifier not valid', 0x86: 'Bad user name or password',
  0x87: 'Not authorized', 0x88: 'Server unavailable', 0x89: 'Server busy', 0x8A: 'Banned',
  0x8B: 'Server shutting down', 0x8C: 'Bad authentication method', 0x8D: 'Keep alive timeout',
  0x8E: 'Session taken over', 0x8F: 'Topic filter invalid', 0x90: 'Topic name invalid',
  0x91: 'Packet identifier in use', 0x93: 'Receive maximum exceeded', 0x94: 'Topic alias invalid',
  0x95: 'Packet too large', 0x96: 'Message rate too high', 0x97: 'Quota exceeded',
  0x98: 'Administrative action', 0x99: 'Payload format invalid', 0x9A: 'Retain not supported',
  0x9B: 'QoS not supported', 0x9C: 'Use another server', 0x9D: 'Server moved',
  0x9E: 'Shared subscriptions not supported', 0x9F: 'Connection rate exceeded',
  0xA0: 'Maximum connect time', 0xA1: 'Subscription identifiers not supported',
  0xA2: 'Wildcard subscriptions not supported',
};

export function reasonText(code) {
  return `0x${code.toString(16).padStart(2, '0')} ${REASONS[code] || 'unknown'}`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });

// ---- writing ---------------------------------------------------------------------

class Writer {
  constructor() { this.parts = []; this.length = 0; }
  bytes(u8) { this.parts.push(u8); this.length += u8.length; return this; }
  byte(b) { return this.bytes(Uint8Array.of(b)); }
  u16(n) { return this.bytes(Uint8Array.of(n >> 8, n & 0xff)); }
  u32(n) { return this.bytes(Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)); }
  varint(n) { return this.bytes(varint(n)); }
  bin(u8) { return this.u16(u8.length).bytes(u8); }
  str(s) { return this.bin(encoder.encode(s)); }
  properties(props = {}) {
    const w = new Writer();
    for (const [name, value] of Object.entries(props)) {
      if (value === undefined || value === null) continue;
      const known = PROPERTY_IDS[name];
      if (!known) throw new Error(`unknown MQTT property ${name}`);
      const [id, type] = known;
      if (type === 'pair') {
        for (const [k, v] of value) w.byte(id).str(k).str(v);
        continue;
      }
      w.byte(id);
      if (type === 'byte') w.byte(value);
      else if (type === 'u16') w.u16(value);
      else if (type === 'u32') w.u32(value);
      else if (type === 'varint') w.varint(value);
      else if (type === 'str') w.str(value);
      else w.bin(typeof value === 'string' ? encoder.encode(value) : value);
    }
    return this.varint(w.length).bytes(w.concat());
  }
  concat() {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) { out.set(p, at); at += p.length; }
    return out;
  }
  // The whole packet: fixed header, then what was written.
  packet(type, flags = 0) {
    const body = this.concat();
    return new Writer().byte((type << 4) | flags).varint(body.length).bytes(body).concat();
  }
}

function varint(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Uint8Array.from(out);
}

// ---- reading ---------------------------------------------------------------------

class Reader {
  constructor(u8) { this.u8 = u8; this.pos = 0; }
  get left() { return this.u8.length - this.pos; }
  need(n) { if (this.left < n) throw new Error('malformed packet: too short'); }
  byte() { this.need(1); return this.u8[this.pos++]; }
  u16() { this.need(2); const v = (this.u8[this.pos] << 8) | this.u8[this.pos + 1]; this.pos += 2; return v; }
  u32() { this.need(4); const v = ((this.u8[this.pos] << 24) >>> 0) + (this.u8[this.pos + 1] << 16) + (this.u8[this.pos + 2] << 8) + this.u8[this.pos + 3]; this.pos += 4; return v; }
  varint() {
    let value = 0, mult = 1;
    for (let i = 0; i < 4; i++) {
      const b = this.byte();
      value += (b & 0x7f) * mult;
      if (!(b & 0x80)) return value;
      mult *= 128;
    }
    throw new Error('malformed packet: variable byte integer too long');
  }
  bin() { const n = this.u16(); this.need(n); const v = this.u8.slice(this.pos, this.pos + n); this.pos += n; return v; }
  str() { const n = this.u16(); this.need(n); const v = decoder.decode(this.u8.subarray(this.pos, this.pos + n)); this.pos += n; return v; }
  rest() { const v = this.u8.slice(this.pos); this.pos = this.u8.length; return v; }
  properties() {
    const props = {};
    const end = this.varint() + this.pos;
    if (end > this.u8.length) throw new Error('malformed packet: properties too long');
    while (this.pos < end) {
      const id = this.byte();
      const known = PROPERTIES[id];
      if (!known) throw new Error(`malformed packet: unknown property 0x${id.toString(16)}`);
      const [name, type] = known;
      if (type === 'pair') {
        (props.user_properties ||= []).push([this.str(), this.str()]);
      } else if (name === 'subscription_identifier') {
        (props.subscription_identifiers ||= []).push(this.varint());
      } else {
        props[name] = type === 'byte' ? this.byte() : type === 'u16' ? this.u16()
          : type === 'u32' ? this.u32() : type === 'varint' ? this.varint()
          : type === 'str' ? this.str() : this.bin();
      }
    }
    return props;
  }
}

// Reassembles MQTT packets from a byte stream delivered in arbitrary pieces.
export class PacketReader {
  constructor() { this.buf = new Uint8Array(0); this.pos = 0; }

  // Adds bytes; returns the complete packets now available as {type, flags, body}.
  push(bytes) {
    if (this.pos < this.buf.length) {
      const rest = this.buf.subarray(this.pos);
      const joined = new Uint8Array(rest.length + bytes.length);
      joined.set(rest);
      joined.set(bytes, rest.length);
      this.buf = joined;
    } else {
      this.buf = bytes;
    }
    this.pos = 0;
    const packets = [];
    for (;;) {
      const at = this.pos, buf = this.buf;
      if (buf.length - at < 2) break;
      let length = 0, mult = 1, i = at + 1;
      let complete = false;
      for (; i < buf.length && i < at + 5; i++) {
        length += (buf[i] & 0x7f) * mult;
        mult *= 128;
        if (!(buf[i] & 0x80)) { complete = true; i++; break; }
      }
      if (!complete) {
        if (i >= at + 5) throw new Error('malformed packet: remaining length too long');
        break;
      }
      if (buf.length - i < length) break;
      packets.push({ type: buf[at] >> 4, flags: buf[at] & 0x0f, body: buf.subarray(i, i + length) });
      this.pos = i + length;
    }
    return packets;
  }
}

// Decodes a PUBLISH body into {topic, payload, qos, retain, dup, packetId, properties}.
export function decodePublish(flags, body) {
  const r = new Reader(body);
  const qos = (flags >> 1) & 3;
  const topic = r.str();
  const packetId = qos > 0 ? r.u16() : 0;
  const properties = r.properties();
  return { topic, payload: r.rest(), qos, retain: (flags & 1) === 1, dup: (flags & 8) === 8, packetId, properties };
}

// ---- the client --------------------------------------------------------------------

export class MqttClient {
  constructor() {
    this.onmessage = null;   // (message) => void, message as decodePublish returns it
    this.onclose = null;     // (reason text) => void, once, after a connection was up
    this.ws = null;
    this.reader = new PacketReader();
    this.pending = new Map(); // packet id -> {resolve, reject}
    this.nextId = 1;
    this.outbox = [];
    this.closed = false;
  }

  // Opens the WebSocket and sends CONNECT; resolves with the CONNACK, rejects with
  // an Error whose message names the reason.
  connect(url, { clientId, username, password, keepAlive = 30, userProperties = [] } = {}) {
    this.keepAlive = keepAlive;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, 'mqtt');
      ws.binaryType = 'arraybuffer';
      this.ws = ws;
      this.connack = { resolve, reject };
      ws.onopen = () => {
        const w = new Writer().str('MQTT').byte(5);
        w.byte((username != null ? 0x80 : 0) | (password != null ? 0x40 : 0) | 0x02); // clean start
        w.u16(keepAlive);
        w.properties({ receive_maximum: 65535, user_properties: userProperties });
        w.str(clientId);
        if (username != null) w.str(username);
        if (password != null) w.bin(encoder.encode(password));
        this.send(w.packet(CONNECT));
      };
      ws.onmessage = (e) => this.receive(new Uint8Array(e.data));
      ws.onerror = () => {};
      ws.onclose = (e) => this.closedBy(this.disconnectReason || `connection closed (${e.code})`);
    });
  }

  // filters: [{filter, qos, retainAsPublished, noLocal, retainHandling}];
  // resolves with the SUBACK reason codes.
  subscribe(filters) {
    const id = this.packetId();
    const w = new Writer().u16(id).properties({});
    for (const f of filters) {
      w.str(f.filter);
      w.byte((f.qos || 0) | (f.noLocal ? 4 : 0) | (f.retainAsPublished ? 8 : 0) | ((f.retainHandling || 0) << 4));
    }
    return this.request(id, w.packet(SUBSCRIBE, 2));
  }

  // payload: string or Uint8Array. QoS 0 resolves at once; QoS 1 with the PUBACK
  // as {reasonCode, properties}.
  publish(topic, payload, { qos = 0, retain = false, properties = {} } = {}) {
    const bytes = typeof payload === 'string' ? encoder.encode(payload) : payload;
    const id = qos > 0 ? this.packetId() : 0;
    const w = new Writer().str(topic);
    if (qos > 0) w.u16(id);
    w.properties(properties).bytes(bytes);
    const packet = w.packet(PUBLISH, (qos << 1) | (retain ? 1 : 0));
    if (qos === 0) { this.send(packet); return Promise.resolve({ reasonCode: 0, properties: {} }); }
    return this.request(id, packet);
  }

  disconnect() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.send(new Writer().byte(0).properties({}).packet(DISCONNECT));
    }
    this.closing = true;
    this.ws && this.ws.close();
  }

  // ---- internals

  packetId() {
    for (;;) {
      const id = this.nextId;
      this.nextId = id === 65535 ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  request(id, packet) {
    return new Promise((resolve, reject) => {
      if (this.closed) { reject(new Error('not connected')); return; }
      this.pending.set(id, { resolve, reject });
      this.send(packet);
    });
  }

  send(bytes) {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(bytes);
    this.lastSent = Date.now();
  }

  receive(bytes) {
    this.lastReceived = Date.now();
    let packets;
    try {
      packets = this.reader.push(bytes);
    } catch (e) {
      this.fail(e.message);
      return;
    }
    for (const p of packets) {
      try {
        this.handle(p);
      } catch (e) {
        this.fail(e.message);
        return;
      }
    }
    // The acknowledgements of one WebSocket message go out in one frame.
    if (this.outbox.length) {
      const w = new Writer();
      for (const b of this.outbox) w.bytes(b);
      this.outbox = [];
      this.send(w.concat());
    }
  }

  handle({ type, flags, body }) {
    const r = new Reader(body);
    switch (type) {
      case PUBLISH: {
        const m = decodePublish(flags, body);
        if (m.qos === 1) this.outbox.push(new Writer().u16(m.packetId).packet(PUBACK));
        if (m.qos === 2) throw new Error('QoS 2 message received; never subscribed with QoS 2');
        this.onmessage && this.onmessage(m);
        break;
      }
      case CONNACK: {
        const sessionPresent = (r.byte() & 1) === 1;
        const reasonCode = r.byte();
        const properties = r.left ? r.properties() : {};
        if (reasonCode >= 0x80) {
          const text = reasonText(reasonCode) + (properties.reason_string ? `: ${properties.reason_string}` : '');
          this.connack.reject(new Error(text));
          this.closing = true;
          this.ws.close();
          return;
        }
        if (properties.server_keep_alive !== undefined) this.keepAlive = properties.server_keep_alive;
        this.startKeepAlive();
        this.connack.resolve({ sessionPresent, reasonCode, properties });
        this.connack = null;
        break;
      }
      case PUBACK: {
        const id = r.u16();
        const reasonCode = r.left ? r.byte() : 0;
        const properties = r.left ? r.properties() : {};
        this.settle(id, { reasonCode, properties });
        break;
      }
      case SUBACK: {
        const id = r.u16();
        const properties = r.properties();
        const codes = Array.from(r.rest());
        this.settle(id, codes, properties);
        break;
      }
      case PINGRESP:
        break;
      case DISCONNECT: {
        const code = r.left ? r.byte() : 0;
        const properties = r.left ? r.properties() : {};
        this.disconnectReason = 'disconnected by the broker: ' + reasonText(code)
          + (properties.reason_string ? `: ${properties.reason_string}` : '');
        break;
      }
      default:
        throw new Error(`unexpected packet type ${type}`);
    }
  }

  settle(id, value) {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.resolve(value);
  }

  // PINGREQ when nothing was sent for the keep-alive; closed when nothing was
  // received for 1.5 times it.
  startKeepAlive() {
    if (!this.keepAlive) return;
    const ms = this.keepAlive * 1000;
    this.lastSent = this.lastReceived = Date.now();
    this.timer = setInterval(() => {
      const now = Date.now();
      if (now - this.lastReceived > ms * 1.5) { this.fail('keep-alive timeout: nothing from the broker'); return; }
      if (now - this.lastSent >= ms * 0.9) this.send(new Writer().packet(PINGREQ));
    }, Math.min(ms / 4, 5000));
  }

  fail(text) {
    this.disconnectReason = text;
    this.ws.close();
    this.closedBy(text);
  }

  closedBy(text) {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const p of this.pending.values()) p.reject(new Error(text));
    this.pending.clear();
    if (this.connack) { this.connack.reject(new Error(text)); this.connack = null; return; }
    if (!this.closing && this.onclose) this.onclose(text);
  }
}
