"""MQTT 5.0 features: Message Expiry, Topic Aliases both ways, Receive Maximum both
ways, Maximum Packet Size both ways, Payload Format Indicator, pass-through
properties, Reason Strings, Server Reference redirect, AUTH."""

import time

import pytest

import mqtt_raw as r
from conftest import (uid, props, PacketTypes, mosquitto_deviation, strata_only,
                      refuses_filters)


def offline_session(broker, raw_clients, cid, topic, qos=1):
    """A persistent 5.0 session subscribed to `topic`, offline once this returns."""
    c = raw_clients(broker, r.V5)
    c.connect_ok(cid, clean=False, props=[("session_expiry_interval", 60)])
    c.subscribe([(topic, qos)])
    c.disconnect(wait=True)


def resume(broker, clients, cid):
    c = clients(broker, client_id=cid, clean=False,
                connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    assert c.session_present
    return c


# ---------------------------------------------------------------- Message Expiry

def test_message_expiry_drops_expired_queued_message(broker, clients, raw_clients):
    cid = uid()
    offline_session(broker, raw_clients, cid, "exp/q")
    pub = clients(broker)
    pub.publish("exp/q", b"short-lived", qos=1,
                properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=1))
    pub.publish("exp/q", b"marker", qos=1)
    time.sleep(2.2)  # under test: the message expires while queued
    c = resume(broker, clients, cid)
    assert c.until("marker") == []


def test_message_expiry_remaining_time_sent_on(broker, clients, raw_clients):
    cid = uid()
    offline_session(broker, raw_clients, cid, "exp/remaining")
    clients(broker).publish("exp/remaining", b"m", qos=1,
                            properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=10))
    time.sleep(1.2)  # under test: time spent waiting in the broker
    m = resume(broker, clients, cid).get()
    assert m.payload == b"m"
    assert 1 <= m.properties.MessageExpiryInterval <= 9


def test_message_expiry_forwarded_to_live_subscriber(broker, clients):
    sub = clients(broker)
    sub.subscribe("exp/live", qos=1)
    clients(broker).publish("exp/live", b"m", qos=1,
                            properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=30))
    assert 28 <= sub.get().properties.MessageExpiryInterval <= 30


def test_message_without_expiry_has_no_expiry_property(broker, raw_clients, clients):
    s = raw_clients(broker, r.V5)
    s.connect_ok(uid())
    s.subscribe([("exp/none", 1)])
    clients(broker).publish("exp/none", b"m", qos=1)
    assert not s.recv_publish().props.has("message_expiry_interval")


def test_retained_message_expires(broker, clients):
    topic = "exp/retained/" + uid()
    clients(broker).publish(topic, b"old-state", qos=1, retain=True,
                            properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=1))
    time.sleep(2.2)  # under test: the retained message expires
    c = clients(broker)
    c.subscribe(topic, qos=1)
    clients(broker).publish(topic, b"marker", qos=1)
    assert c.until("marker") == []


# ---------------------------------------------------------------- Topic Aliases

def test_inbound_topic_alias_resolved(broker, raw_clients, clients):
    sub = clients(broker)
    sub.subscribe("alias/in/#", qos=1)
    c = raw_clients(broker, r.V5)
    ack = c.connect_ok(uid())
    assert ack.props.get("topic_alias_maximum", 0) >= 1
    c.publish_acked("alias/in/long/topic", b"first", pid=1, props=[("topic_alias", 1)])
    c.publish_acked("", b"second", pid=2, props=[("topic_alias", 1)])
    # re-mapping an alias to another topic is allowed
    c.publish_acked("alias/in/other", b"third", pid=3, props=[("topic_alias", 1)])
    c.publish_acked("", b"fourth", pid=4, props=[("topic_alias", 1)])
    got = [(m.topic, m.payload) for m in sub.get_n(4)]
    assert got == [("alias/in/long/topic", b"first"), ("alias/in/long/topic", b"second"),
                   ("alias/in/other", b"third"), ("alias/in/other", b"fourth")]


@mosquitto_deviation("answers alias 0 with 0x81 instead of 0x94")
def test_inbound_topic_alias_zero_is_disconnect_0x94(broker, raw_clients):
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid())
    c.publish("alias/zero", b"x", props=[("topic_alias", 0)])
    packets = c.wait_closed()
    assert [(p.type, p.reason) for p in packets] == [(r.DISCONNECT, r.TOPIC_ALIAS_INVALID)]
    broker.assert_alive()


def test_inbound_topic_alias_above_maximum_is_disconnect_0x94(broker_factory, raw_clients):
    b = broker_factory(limits={"topic_alias_maximum": 5})
    c = raw_clients(b, r.V5)
    ack = c.connect_ok(uid())
    assert ack.props.get("topic_alias_maximum") == 5
    c.publish("alias/high", b"x", props=[("topic_alias", 6)])
    packets = c.wait_closed()
    assert [(p.type, p.reason) for p in packets] == [(r.DISCONNECT, r.TOPIC_ALIAS_INVALID)]


def test_inbound_unknown_topic_alias_is_protocol_error(broker, raw_clients):
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid())
    c.publish("", b"x", props=[("topic_alias", 3)])  # alias never set on this connection
    packets = c.wait_closed()
    assert [(p.type, p.reason) for p in packets] == [(r.DISCONNECT, r.PROTOCOL_ERROR)]


def test_inbound_topic_aliases_do_not_survive_reconnect(broker, raw_clients):
    cid = uid()
    c = raw_clients(broker, r.V5)
    c.connect_ok(cid, clean=False, props=[("session_expiry_interval", 60)])
    c.publish_acked("alias/conn", b"x", pid=1, props=[("topic_alias", 2)])
    c.close()
    c2 = raw_clients(broker, r.V5)
    c2.connect_ok(cid, clean=False, props=[("session_expiry_interval", 60)])
    c2.publish("", b"x", qos=1, pid=2, props=[("topic_alias", 2)])
    packets = c2.wait_closed()
    assert [(p.type, p.reason) for p in packets] == [(r.DISCONNECT, r.PROTOCOL_ERROR)]


@mosquitto_deviation("never assigns outbound topic aliases")
def test_outbound_topic_aliases_assigned_when_client_allows(broker, raw_clients, clients):
    s = raw_clients(broker, r.V5)
    s.connect_ok(uid(), props=[("topic_alias_maximum", 5)])
    s.subscribe([("alias/out/#", 1)])
    pub = clients(broker)
    for t in ("alias/out/a", "alias/out/a", "alias/out/b", "alias/out/a", "alias/out/b"):
        pub.publish(t, t.encode(), qos=1)
    aliases = {}
    resolved = []
    empty_topic_seen = False
    for _ in range(5):
        p = s.recv_publish()
        alias = p.props.get("topic_alias")
        if p.topic:
            if alias is not None:
                assert 1 <= alias <= 5
                aliases[alias] = p.topic
            resolved.append(p.topic)
        else:
            assert alias in aliases, "empty topic with unknown alias: %r" % p
            empty_topic_seen = True
            resolved.append(aliases[alias])
        assert resolved[-1].encode() == p.payload
    assert aliases, "the broker never assigned a topic alias"
    assert empty_topic_seen, "the broker never used an assigned alias"


def test_no_outbound_topic_alias_when_client_maximum_is_zero(broker, raw_clients, clients):
    s = raw_clients(broker, r.V5)
    s.connect_ok(uid())  # no Topic Alias Maximum: 0
    s.subscribe([("alias/none", 1)])
    pub = clients(broker)
    for _ in range(3):
        pub.publish("alias/none", b"x", qos=1)
    for _ in range(3):
        p = s.recv_publish()
        assert p.topic == "alias/none" and not p.props.has("topic_alias")


# ---------------------------------------------------------------- Receive Maximum

@mosquitto_deviation("answers PUBREC 0x97 instead of DISCONNECT 0x93")
def test_client_exceeding_receive_maximum_gets_disconnect_0x93(broker_factory, raw_clients):
    b = broker_factory(limits={"receive_maximum": 2, "max_inflight": 2})
    c = raw_clients(b, r.V5)
    ack = c.connect_ok(uid())
    rm = ack.props.get("receive_maximum")
    assert rm == 2
    for pid in range(1, rm + 1):  # QoS 2 stays in flight until PUBREL
        c.publish("rm/in", b"x", qos=2, pid=pid)
        assert c.expect(r.PUBREC).pid == pid
    c.publish("rm/in", b"one-too-many", qos=2, pid=rm + 1)
    packets = c.wait_closed()
    assert [(p.type, p.reason) for p in packets] == [(r.DISCONNECT, r.RECEIVE_MAXIMUM_EXCEEDED)]


def test_within_receive_maximum_is_fine(broker_factory, raw_clients):
    b = broker_factory(limits={"receive_maximum": 2, "max_inflight": 2})
    c = raw_clients(b, r.V5)
    c.connect_ok(uid())
    for i in range(6):  # completes each flow, so never more than one in flight
        c.publish_acked("rm/ok", b"x", qos=2, pid=i + 1)
    c.ping()


@mosquitto_deviation("after an acknowledgement it sends one message more than Receive Maximum allows")
@pytest.mark.parametrize("qos", [1, 2])
def test_broker_respects_client_receive_maximum(broker, raw_clients, clients, qos):
    s = raw_clients(broker, r.V5)
    s.connect_ok(uid(), props=[("receive_maximum", 2)])
    s.subscribe([("rm/out", qos)])
    pub = clients(broker)
    for i in range(5):
        pub.publish("rm/out", b"%d" % i, qos=qos)
    first = [s.recv_publish(ack=False) for _ in range(2)]
    s.expect_nothing(0.5)  # under test: a third must wait for an acknowledgement
    if qos == 2:
        s.send(r.pubrec(first[0].pid, version=r.V5))
        assert s.expect(r.PUBREL).pid == first[0].pid
        s.expect_nothing(0.3)  # still in flight until PUBCOMP
        s.send(r.pubcomp(first[0].pid, version=r.V5))
    else:
        s.send(r.puback(first[0].pid, version=r.V5))
    third = s.recv_publish(ack=False)
    s.expect_nothing(0.3)
    s.ack(first[1])
    s.ack(third)
    rest = []
    while len(rest) < 2:
        p = s.recv()
        if p.type == r.PUBREL:
            s.ack(p)
            continue
        rest.append(p)
        s.ack(p)
    payloads = [p.payload for p in first + [third] + rest]
    assert payloads == [b"0", b"1", b"2", b"3", b"4"]


# ---------------------------------------------------------------- Maximum Packet Size

def test_oversized_inbound_packet_gets_disconnect_0x95(broker_factory, raw_clients, clients):
    b = broker_factory(limits={"max_packet_size": 1024})
    sub = clients(b)
    sub.subscribe("mps/in", qos=1)
    c = raw_clients(b, r.V5)
    assert c.connect_ok(uid()).props.get("maximum_packet_size") == 1024
    c.publish("mps/in", b"x" * 2000, qos=1, pid=1)
    packets = c.wait_closed()
    assert [(p.type, p.reason) for p in packets] == [(r.DISCONNECT, r.PACKET_TOO_LARGE)]
    clients(b).publish("mps/in", b"marker", qos=1)
    assert sub.until("marker") == []


def test_outbound_message_over_client_maximum_dropped_for_that_client_only(broker, raw_clients, clients):
    small = raw_clients(broker, r.V5)
    small.connect_ok(uid(), props=[("maximum_packet_size", 256)])
    small.subscribe([("mps/out", 1)])
    big = raw_clients(broker, r.V5)
    big.connect_ok(uid())
    big.subscribe([("mps/out", 1)])
    pub = clients(broker)
    pub.publish("mps/out", b"B" * 1000, qos=1)
    pub.publish("mps/out", b"small", qos=1)
    p = small.recv_publish()
    assert p.payload == b"small", "oversized message must be dropped, not sent: %r" % p.payload[:20]
    assert len(p.raw) <= 256
    assert [big.recv_publish().payload for _ in range(2)] == [b"B" * 1000, b"small"]
    small.ping()  # still connected


# ---------------------------------------------------------------- Payload Format Indicator

@mosquitto_deviation("does not validate payloads with Payload Format Indicator 1")
def test_payload_format_indicator_with_invalid_utf8_rejected_0x99(broker, raw_clients, clients):
    sub = clients(broker)
    sub.subscribe("pfi/bad", qos=1)
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid())
    c.publish("pfi/bad", b"\xff\xfe\xc3", qos=1, pid=1, props=[("payload_format_indicator", 1)])
    p = c.recv()
    # either a PUBACK with 0x99 or a DISCONNECT with 0x99 [MQTT-3.3.2-4 / 5.4.9]
    assert (p.type, p.reason) in ((r.PUBACK, r.PAYLOAD_FORMAT_INVALID),
                                  (r.DISCONNECT, r.PAYLOAD_FORMAT_INVALID)), p
    clients(broker).publish("pfi/bad", b"marker", qos=1)
    assert sub.until("marker") == []


def test_payload_format_indicator_passed_through(broker, clients):
    sub = clients(broker)
    sub.subscribe("pfi/good", qos=1)
    clients(broker).publish("pfi/good", "grüße".encode(), qos=1,
                            properties=props(PacketTypes.PUBLISH, PayloadFormatIndicator=1))
    m = sub.get()
    assert m.payload == "grüße".encode() and m.properties.PayloadFormatIndicator == 1


# ---------------------------------------------------------------- pass-through properties

def test_publish_properties_passed_through_in_order(broker, raw_clients, clients):
    s = raw_clients(broker, r.V5)
    s.connect_ok(uid())
    s.subscribe([("props/t", 1)])
    user = [("zeta", "1"), ("alpha", "2"), ("zeta", "3"), ("ünï", "cödé")]
    clients(broker).publish("props/t", b"body", qos=1, properties=props(
        PacketTypes.PUBLISH, ContentType="application/json", ResponseTopic="props/reply",
        CorrelationData=b"\x00\xffcorr", UserProperty=user))
    p = s.recv_publish()
    assert p.props.get("content_type") == "application/json"
    assert p.props.get("response_topic") == "props/reply"
    assert p.props.get("correlation_data") == b"\x00\xffcorr"
    assert p.props.all("user_property") == user


def test_properties_reach_paho_subscriber(broker, clients):
    sub = clients(broker)
    sub.subscribe("props/paho", qos=2)
    clients(broker).publish("props/paho", b"body", qos=2, properties=props(
        PacketTypes.PUBLISH, ContentType="text/plain", ResponseTopic="r/t",
        CorrelationData=b"42", UserProperty=[("b", "1"), ("a", "2")]))
    m = sub.get()
    assert m.properties.ContentType == "text/plain"
    assert m.properties.ResponseTopic == "r/t"
    assert m.properties.CorrelationData == b"42"
    assert m.properties.UserProperty == [("b", "1"), ("a", "2")]


def test_v311_subscriber_gets_v5_message_without_properties(broker, raw_clients, clients):
    s = raw_clients(broker, r.V311)
    s.connect_ok(uid())
    s.subscribe([("props/v311", 1)])
    clients(broker).publish("props/v311", b"plain", qos=1, properties=props(
        PacketTypes.PUBLISH, UserProperty=[("k", "v")], ContentType="x"))
    p = s.recv_publish()  # parsed as 3.1.1: the payload must be exactly the body
    assert p.payload == b"plain"


# ---------------------------------------------------------------- Reason Strings

@mosquitto_deviation("sends no Reason Strings")
def test_error_disconnect_carries_reason_string(broker, raw_clients):
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid())
    c.publish("rs/t", b"x", props=[("topic_alias", 0)])
    packets = c.wait_closed()
    assert packets and packets[0].type == r.DISCONNECT
    rs = packets[0].props.get("reason_string")
    assert isinstance(rs, str) and rs.strip(), packets[0]


@refuses_filters
def test_no_reason_string_when_problem_information_not_requested(broker, raw_clients):
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid(), props=[("request_problem_information", 0)])
    ack = c.subscribe([("test/nosubscribe", 1)])
    assert ack.reasons == [0x80]
    assert not ack.props.has("reason_string")  # [MQTT-3.1.2-29]
    assert not ack.props.has("user_property")


# ---------------------------------------------------------------- Server Reference

@strata_only
def test_redirect_v5_use_another_server(broker_factory, raw_clients):
    b = broker_factory(redirect={"server_reference": "127.0.0.1:1", "permanent": False})
    c = raw_clients(b, r.V5)
    ack = c.connect(uid())
    assert ack.reason == r.USE_ANOTHER_SERVER
    assert ack.props.get("server_reference") == "127.0.0.1:1"
    c.wait_closed()


@strata_only
def test_redirect_v5_server_moved(broker_factory, raw_clients):
    b = broker_factory(redirect={"server_reference": "127.0.0.1:1", "permanent": True})
    c = raw_clients(b, r.V5)
    ack = c.connect(uid())
    assert ack.reason == r.SERVER_MOVED
    assert ack.props.get("server_reference") == "127.0.0.1:1"
    c.wait_closed()


@strata_only
def test_redirect_v311_server_unavailable(broker_factory, raw_clients):
    b = broker_factory(redirect={"server_reference": "127.0.0.1:1", "permanent": False})
    c = raw_clients(b, r.V311)
    ack = c.connect(uid())
    assert ack.reason == 0x03
    c.wait_closed()


# ---------------------------------------------------------------- AUTH

def test_connect_with_authentication_method_refused_0x8c(broker, raw_clients):
    c = raw_clients(broker, r.V5)
    ack = c.connect(uid(), props=[("authentication_method", "SCRAM-SHA-256"),
                                  ("authentication_data", b"n,,n=user,r=abc")])
    assert ack.reason == r.BAD_AUTHENTICATION_METHOD
    c.wait_closed()
    broker.assert_alive()


def test_auth_packet_without_authentication_method_is_protocol_error(broker, raw_clients):
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid())
    c.send(r.auth(0x19, [("authentication_method", "SCRAM-SHA-256")]))  # re-authenticate
    packets = c.wait_closed()
    assert all(p.type == r.DISCONNECT and p.reason in (r.PROTOCOL_ERROR, r.BAD_AUTHENTICATION_METHOD)
               for p in packets), packets
