// The explorer's MQTT client (broker/web/mqtt.js) without a browser: Node.js
// with a fake WebSocket. Checks the stream reassembly (several packets in one
// message, a packet split at every byte), property decoding, and what the client
// sends (CONNECT, SUBSCRIBE, PUBLISH with properties, PUBACK for QoS 1).
//
//   node mqtt.spec.mjs      exits 0 when every check passed, 1 with FAIL: ... otherwise

import assert from 'node:assert/strict';
import { PacketReader, decodePublish, MqttClient } from '../../broker/web/mqtt.js';

const enc = new TextEncoder();
const str = (s) => { const b = enc.encode(s); return [b.length >> 8, b.length & 0xff, ...b]; };
function varint(n) { const out = []; do { let b = n % 128; n = Math.floor(n / 128); if (n) b |= 0x80; out.push(b); } while (n); return out; }
const packet = (first, body) => Uint8Array.from([first, ...varint(body.length), ...body]);
const concat = (...parts) => { const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0)); let at = 0; for (const p of parts) { out.set(p, at); at += p.length; } return out; };

// Server -> client: CONNACK, SUBACK, a QoS 1 retained PUBLISH with properties, a
// QoS 0 PUBLISH with a payload long enough for a two-byte remaining length.
const props = [0x03, ...str('application/json'), 0x09, 0, 3, 1, 2, 3, 0x26, ...str('unit'), ...str('degC'), 0x26, ...str('line'), ...str('2')];
const stream = concat(
  packet(0x20, [0x00, 0x00, 3, 0x13, 0, 20]),                      // CONNACK, server keep alive 20
  packet(0x90, [0, 1, 0, 0x01]),                                   // SUBACK id 1, granted QoS 1
  packet(0x33, [...str('a/b'), 0, 7, props.length, ...props, ...enc.encode('{"value":1}')]),
  packet(0x30, [...str('a/c'), 0, ...new Array(200).fill(0x41)]),
);

function check(packets) {
  assert.deepEqual(packets.map((p) => p.type), [2, 9, 3, 3]);
  const m = decodePublish(packets[2].flags, packets[2].body);
  assert.equal(m.topic, 'a/b');
  assert.equal(m.qos, 1);
  assert.equal(m.retain, true);
  assert.equal(m.packetId, 7);
  assert.equal(m.properties.content_type, 'application/json');
  assert.deepEqual([...m.properties.correlation_data], [1, 2, 3]);
  assert.deepEqual(m.properties.user_properties, [['unit', 'degC'], ['line', '2']]);
  assert.equal(new TextDecoder().decode(m.payload), '{"value":1}');
  const big = decodePublish(packets[3].flags, packets[3].body);
  assert.equal(big.payload.length, 200);
  assert.equal(big.qos, 0);
}

const tests = {
  'several packets in one message'() { check(new PacketReader().push(stream)); },
  'a packet split at every byte'() {
    for (let at = 1; at < stream.length; at++) {
      const r = new PacketReader();
      check([...r.push(stream.slice(0, at)), ...r.push(stream.slice(at))]);
    }
  },
  'one byte at a time'() {
    const r = new PacketReader();
    const packets = [];
    for (const b of stream) packets.push(...r.push(Uint8Array.of(b)));
    check(packets);
  },
  'a remaining length of more than four bytes is refused'() {
    assert.throws(() => new PacketReader().push(Uint8Array.of(0x30, 0xff, 0xff, 0xff, 0xff, 0x01)), /remaining length/);
  },
  async 'what the client sends'() {
    const sent = [];
    let ws;
    globalThis.WebSocket = class {
      static OPEN = 1;
      constructor(url, protocol) { ws = this; this.url = url; this.protocol = protocol; this.readyState = 1; setTimeout(() => this.onopen(), 0); }
      send(bytes) { sent.push(...new PacketReader().push(Uint8Array.from(bytes))); }
      close() { this.readyState = 3; }
    };
    const client = new MqttClient();
    const got = [];
    client.onmessage = (m) => got.push(m);
    const connected = client.connect('ws://x/mqtt', { clientId: 'explorer-1', username: 'olga', password: 'pw', keepAlive: 30,
      userProperties: [['strata-wide-subscriptions', 'filter']] });
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(ws.protocol, 'mqtt');
    const connect = sent.shift();
    assert.equal(connect.type, 1);
    const body = new TextDecoder().decode(connect.body);
    for (const part of ['MQTT', 'strata-wide-subscriptions', 'filter', 'explorer-1', 'olga', 'pw']) assert.ok(body.includes(part), part);
    assert.equal(connect.body[6], 5);             // protocol level 5
    assert.equal(connect.body[7], 0xc2);          // username, password, clean start
    ws.onmessage({ data: stream.slice(0, 8).buffer });           // the CONNACK only
    const ack = await connected;
    assert.equal(client.keepAlive, 20);
    assert.equal(ack.reasonCode, 0);
    const subscribed = client.subscribe([{ filter: '#', qos: 1, retainAsPublished: true }]);
    const sub = sent.shift();
    assert.equal(sub.type, 8);
    assert.equal(sub.flags, 2);
    assert.deepEqual([...sub.body.slice(-2)], [0x23, 0x09]); // '#', QoS 1 + retain as published
    ws.onmessage({ data: stream.slice(8).buffer });              // SUBACK and two PUBLISH
    assert.deepEqual(await subscribed, [1]);
    assert.equal(got.length, 2);
    const puback = sent.shift();
    assert.equal(puback.type, 4);
    assert.deepEqual([...puback.body], [0, 7]);
    const published = client.publish('a/cmd/start', '{"command":"start"}', { qos: 1,
      properties: { response_topic: 'a/reply/start', correlation_data: 'r-1', content_type: 'application/json' } });
    const pub = sent.shift();
    const m = decodePublish(pub.flags, pub.body);
    assert.equal(m.topic, 'a/cmd/start');
    assert.equal(m.qos, 1);
    assert.equal(m.properties.response_topic, 'a/reply/start');
    assert.equal(new TextDecoder().decode(m.properties.correlation_data), 'r-1');
    ws.onmessage({ data: packet(0x40, [m.packetId >> 8, m.packetId & 0xff, 0x87, 0]).buffer });
    assert.equal((await published).reasonCode, 0x87);
    clearInterval(client.timer);
  },
};

let failed = 0;
for (const [name, fn] of Object.entries(tests)) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    failed++;
    console.error(`FAIL: ${name}: ${e.stack}`);
  }
}
console.log(`${Object.keys(tests).length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
