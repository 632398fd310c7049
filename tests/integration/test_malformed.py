"""Malformed packets and protocol errors from a raw socket.
3.1.1: the connection is closed (no response). 5.0: DISCONNECT 0x81 (malformed) or
0x82 (protocol error), then close. The broker survives and serves others."""

import random
import socket

import pytest

import mqtt_raw as r
from conftest import uid, mosquitto_deviation

MALFORMED, PROTOCOL = r.MALFORMED_PACKET, r.PROTOCOL_ERROR


def connected(broker, raw_clients, version):
    c = raw_clients(broker, version)
    c.connect_ok(uid())
    return c


def assert_closed_silently(broker, c):
    assert c.wait_closed() == []
    broker.assert_alive()


def assert_v5_disconnect(broker, c, *codes):
    packets = c.wait_closed()
    assert [p.type for p in packets] == [r.DISCONNECT], packets
    assert packets[0].reason in codes, "reason 0x%02x, expected %s" % (
        packets[0].reason, ["0x%02x" % x for x in codes])
    broker.assert_alive()


# bodies shared by both versions: (name, bytes to send after CONNACK)
def topic_bytes(raw_topic):
    return r.u16(len(raw_topic)) + raw_topic


V311_CASES = [
    ("reserved-type-0", b"\x00\x00"),
    ("reserved-type-15", b"\xf0\x00"),
    ("remaining-length-5-bytes", b"\x30\xff\xff\xff\xff\x7f"),
    ("publish-qos3", b"\x36" + r.varint(5) + topic_bytes(b"a") + b"\x00\x01"),
    ("publish-invalid-utf8-topic", b"\x30" + r.varint(4) + topic_bytes(b"\xc3\x28")),
    ("publish-null-char-topic", b"\x30" + r.varint(5) + topic_bytes(b"a\x00b")),
    ("publish-wildcard-topic", r.publish("a/+/b", b"x")),
    ("publish-qos1-packet-id-0", r.publish("a", b"x", qos=1, pid=0)),
    ("publish-topic-length-beyond-packet", b"\x30\x04\x00\x64ab"),
    ("subscribe-wrong-flags", b"\x80" + r.subscribe(1, [("a", 0)])[1:]),
    ("subscribe-no-filters", b"\x82\x02\x00\x01"),
    ("subscribe-qos3", r.subscribe(1, [("a", 3)])),
    ("subscribe-packet-id-0", r.subscribe(0, [("a", 0)])),
    ("unsubscribe-wrong-flags", b"\xa0" + r.unsubscribe(1, ["a"])[1:]),
    ("pubrel-wrong-flags", b"\x60\x02\x00\x01"),
    ("second-connect", r.connect(uid())),
]


@pytest.mark.parametrize("name,data", V311_CASES, ids=[c[0] for c in V311_CASES])
def test_v311_malformed_packet_closes_connection(broker, raw_clients, name, data):
    c = connected(broker, raw_clients, r.V311)
    c.send(data)
    assert_closed_silently(broker, c)


def test_v311_first_packet_not_connect_closes(broker, raw_clients):
    c = raw_clients(broker)
    c.send(r.publish("a", b"x"))
    assert_closed_silently(broker, c)


def test_v311_connect_reserved_flag_closes(broker, raw_clients):
    c = raw_clients(broker)
    c.send(r.connect(uid(), reserved_flag=True))
    assert_closed_silently(broker, c)


def test_v311_will_qos3_closes(broker, raw_clients):
    c = raw_clients(broker)
    c.send(r.connect(uid(), will={"topic": "w", "payload": b"x", "qos": 3}))
    assert_closed_silently(broker, c)


def test_huge_remaining_length_rejected_without_waiting_for_data(broker, raw_clients):
    # 268,435,455 bytes announced (far above max_packet_size): refused up front
    c = connected(broker, raw_clients, r.V311)
    c.send(b"\x30\xff\xff\xff\x7f" + b"\x00\x01a")
    assert_closed_silently(broker, c)


V5_CASES = [
    ("reserved-type-0", b"\x00\x00", (MALFORMED, PROTOCOL)),
    ("remaining-length-5-bytes", b"\x30\xff\xff\xff\xff\x7f", (MALFORMED,)),
    ("publish-qos3", b"\x36" + r.varint(6) + topic_bytes(b"a") + b"\x00\x01\x00", (MALFORMED,)),
    ("publish-invalid-utf8-topic", b"\x30" + r.varint(5) + topic_bytes(b"\xc3\x28") + b"\x00",
     (MALFORMED,)),
    ("publish-unknown-property", b"\x30" + r.varint(6) + topic_bytes(b"a") + b"\x02\x7f\x00",
     (MALFORMED,)),
    ("publish-property-length-beyond-packet",
     b"\x30" + r.varint(5) + topic_bytes(b"a") + b"\x40x", (MALFORMED,)),
    ("publish-property-value-truncated",
     b"\x30" + r.varint(7) + topic_bytes(b"a") + b"\x03\x02\x00\x00", (MALFORMED,)),
    ("publish-duplicate-payload-format-indicator",
     r.publish("a", b"x", props=[("payload_format_indicator", 0), ("payload_format_indicator", 0)],
               version=r.V5), (PROTOCOL, MALFORMED)),
    ("publish-with-subscription-identifier",
     r.publish("a", b"x", props=[("subscription_identifier", 1)], version=r.V5), (PROTOCOL, MALFORMED)),
    ("publish-qos1-packet-id-0", r.publish("a", b"x", qos=1, pid=0, version=r.V5), (PROTOCOL, MALFORMED)),
    ("subscribe-wrong-flags", b"\x80" + r.subscribe(1, [("a", 0)], version=r.V5)[1:], (MALFORMED,)),
    ("subscribe-reserved-option-bits", r.subscribe(1, [("a", 0xC0)], version=r.V5), (MALFORMED,)),
    ("subscribe-retain-handling-3", r.subscribe(1, [("a", 0x30)], version=r.V5), (PROTOCOL, MALFORMED)),
    ("subscribe-no-filters", b"\x82\x03\x00\x01\x00", (PROTOCOL, MALFORMED)),
    ("pubrel-wrong-flags", b"\x60\x02\x00\x01", (MALFORMED,)),
    ("second-connect", r.connect(uid(), version=r.V5), (PROTOCOL,)),
    # [MQTT-3.3.2-14] a Response Topic is a topic name: no wildcards
    ("publish-response-topic-hash",
     r.publish("a", b"x", props=[("response_topic", "reply/#")], version=r.V5), (MALFORMED, PROTOCOL)),
    ("publish-response-topic-plus",
     r.publish("a", b"x", qos=1, pid=3, props=[("response_topic", "reply/+/x")], version=r.V5),
     (MALFORMED, PROTOCOL)),
]

# Mosquitto 2.0.11 closes these without a DISCONNECT (or accepts them)
NO_DISCONNECT = mosquitto_deviation("closes without sending DISCONNECT")
V5_DEVIATIONS = {
    "remaining-length-5-bytes": NO_DISCONNECT,
    "publish-duplicate-payload-format-indicator": NO_DISCONNECT,
    "publish-with-subscription-identifier": mosquitto_deviation(
        "accepts a Subscription Identifier from a client [MQTT-3.3.4-6]"),
    "pubrel-wrong-flags": NO_DISCONNECT,
    "second-connect": NO_DISCONNECT,
    "publish-response-topic-hash": mosquitto_deviation("accepts a Response Topic with wildcards"),
    "publish-response-topic-plus": mosquitto_deviation("accepts a Response Topic with wildcards"),
}
V5_PARAMS = [pytest.param(*c, id=c[0], marks=[V5_DEVIATIONS[c[0]]] if c[0] in V5_DEVIATIONS else [])
             for c in V5_CASES]


@pytest.mark.parametrize("name,data,codes", V5_PARAMS)
def test_v5_malformed_packet_gets_disconnect(broker, raw_clients, name, data, codes):
    c = connected(broker, raw_clients, r.V5)
    c.send(data)
    assert_v5_disconnect(broker, c, *codes)


def test_v5_malformed_connect_refused(broker, raw_clients):
    c = raw_clients(broker, r.V5)
    good = r.connect(uid(), version=r.V5)
    # CONNECT with an unknown property id 0x7f in its properties
    body = good[2:]
    at = 2 + 4 + 1 + 1 + 2  # protocol name, level, flags, keep-alive
    bad_body = body[:at] + b"\x02\x7f\x00" + body[at + 1:]
    c.send(b"\x10" + r.varint(len(bad_body)) + bad_body)
    packets = c.wait_closed()
    # a CONNACK with 0x81 before closing is allowed, never a success
    assert all(p.type == r.CONNACK and p.reason in (MALFORMED, PROTOCOL) for p in packets), packets
    broker.assert_alive()


V5_BAD_CONNECTS = [
    # 3.1.2.11.10: Authentication Data without an Authentication Method
    pytest.param("auth-data-without-method", dict(props=[("authentication_data", b"\x01\x02")]),
                 id="auth-data-without-method",
                 marks=mosquitto_deviation("accepts Authentication Data without a method")),
    # a will whose Response Topic holds a wildcard
    pytest.param("will-response-topic-wildcard",
                 dict(will={"topic": "w/1", "payload": b"x", "props": [("response_topic", "reply/#")]}),
                 id="will-response-topic-wildcard",
                 marks=mosquitto_deviation("accepts a will Response Topic with wildcards")),
]


@pytest.mark.parametrize("name,kw", V5_BAD_CONNECTS)
def test_v5_connect_breaking_property_rules_is_refused(broker, raw_clients, name, kw):
    c = raw_clients(broker, r.V5)
    c.send(r.connect(uid(), version=r.V5, **kw))
    packets = c.wait_closed()
    # a CONNACK with 0x81/0x82 before closing is allowed, never a success
    assert all(p.type == r.CONNACK and p.reason in (MALFORMED, PROTOCOL) for p in packets), packets
    broker.assert_alive()


def test_truncated_packet_then_close_is_harmless(broker, raw_clients):
    c = raw_clients(broker)
    c.send(r.connect(uid())[:7])
    c.close()
    c2 = connected(broker, raw_clients, r.V311)
    c2.send(r.publish("t", b"x" * 100)[:20])
    c2.close()
    broker.assert_alive()


def test_random_garbage_never_kills_the_broker(broker):
    rng = random.Random(20240501)
    for i in range(40):
        version = r.V5 if i % 2 else r.V311
        s = socket.create_connection((broker.host, broker.port), timeout=5)
        try:
            if i % 4 < 2:
                s.sendall(r.connect(uid(), version=version))
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            while s.recv(4096):  # until the broker closes (bounded by the socket timeout)
                pass
        except socket.timeout:
            pass  # a partial packet may legitimately wait for more bytes
        except OSError:
            pass  # reset / already closed by the broker
        finally:
            s.close()
    broker.assert_alive()


def test_broker_serves_others_while_a_client_misbehaves(broker, raw_clients, clients):
    sub = clients(broker)
    sub.subscribe("malformed/others", qos=1)
    bad = connected(broker, raw_clients, r.V5)
    pub = clients(broker)
    pub.publish("malformed/others", b"before", qos=1)
    bad.send(b"\x30\xff\xff\xff\xff\x7f")
    bad.wait_closed()
    pub.publish("malformed/others", b"after", qos=1)
    assert [m.payload for m in sub.get_n(2)] == [b"before", b"after"]
