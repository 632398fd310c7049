"""Sessions: clean session / clean start, Session Expiry Interval, offline queues,
redelivery of unacknowledged QoS 1/2 with DUP, packet identifiers."""

import time

import mqtt_raw as r
from conftest import uid, props, PacketTypes, strata_only


def expiry(seconds):
    return [("session_expiry_interval", seconds)]


# ---------------------------------------------------------------- 3.1.1

def test_v311_persistent_session_keeps_subscriptions(broker, clients):
    cid = uid()
    s = clients(broker, client_id=cid, version=4, clean=False)
    assert not s.session_present
    s.subscribe("sess/keep", qos=1)
    s.disconnect()
    s2 = clients(broker, client_id=cid, version=4, clean=False)
    assert s2.session_present
    clients(broker, version=4).publish("sess/keep", b"hello", qos=1)
    m = s2.get()
    assert m.topic == "sess/keep" and m.payload == b"hello"


def test_v311_clean_session_discards_previous_session(broker, clients):
    cid = uid()
    s = clients(broker, client_id=cid, version=4, clean=False)
    s.subscribe("sess/clean", qos=1)
    s.disconnect()
    s2 = clients(broker, client_id=cid, version=4, clean=True)
    assert not s2.session_present
    s2.subscribe("sess/marker")
    pub = clients(broker, version=4)
    pub.publish("sess/clean", b"old-subscription", qos=1)
    pub.publish("sess/marker", b"marker", qos=1)
    assert s2.until("marker") == []


def test_v311_clean_session_state_ends_at_disconnect(broker, clients):
    cid = uid()
    s = clients(broker, client_id=cid, version=4, clean=True)
    s.subscribe("sess/gone", qos=1)
    s.disconnect()
    s2 = clients(broker, client_id=cid, version=4, clean=False)
    assert not s2.session_present


def test_v311_messages_queued_while_offline_are_delivered_in_order(broker, clients):
    cid = uid()
    s = clients(broker, client_id=cid, version=4, clean=False)
    s.subscribe("sess/queue", qos=1)
    s.disconnect()
    pub = clients(broker, version=4)
    for i in range(5):
        pub.publish("sess/queue", ("m%d" % i).encode(), qos=1)
    s2 = clients(broker, client_id=cid, version=4, clean=False)
    assert s2.session_present
    got = [m.payload for m in s2.get_n(5)]
    assert got == [b"m0", b"m1", b"m2", b"m3", b"m4"]


def test_v311_qos2_queued_while_offline_delivered_once(broker, clients):
    cid = uid()
    s = clients(broker, client_id=cid, version=4, clean=False)
    s.subscribe("sess/q2", qos=2)
    s.disconnect()
    pub = clients(broker, version=4)
    pub.publish("sess/q2", b"once", qos=2)
    pub.publish("sess/q2", b"marker", qos=2)
    s2 = clients(broker, client_id=cid, version=4, clean=False)
    msgs = s2.get_n(2)
    assert [m.payload for m in msgs] == [b"once", b"marker"]
    assert all(m.qos == 2 for m in msgs)


# ---------------------------------------------------------------- 5.0 clean start / expiry

def test_v5_clean_start_discards_existing_session(broker, clients):
    cid = uid()
    s = clients(broker, client_id=cid, clean=False,
                connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    s.subscribe("sess5/clean", qos=1)
    s.disconnect()
    s2 = clients(broker, client_id=cid, clean=True,
                 connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    assert not s2.session_present
    s2.subscribe("sess5/marker")
    pub = clients(broker)
    pub.publish("sess5/clean", b"old", qos=1)
    pub.publish("sess5/marker", b"marker", qos=1)
    assert s2.until("marker") == []


def test_v5_session_resumed_within_expiry(broker, clients):
    cid = uid()
    s = clients(broker, client_id=cid, clean=False,
                connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=30))
    s.subscribe("sess5/resume", qos=1)
    s.disconnect()
    clients(broker).publish("sess5/resume", b"queued", qos=1)
    s2 = clients(broker, client_id=cid, clean=False,
                 connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=30))
    assert s2.session_present
    assert s2.get().payload == b"queued"


def test_v5_session_expiry_zero_ends_session_at_disconnect(broker, clients):
    cid = uid()
    s = clients(broker, client_id=cid, clean=False)  # no Session Expiry Interval: 0
    s.subscribe("sess5/zero", qos=1)
    s.disconnect()
    s2 = clients(broker, client_id=cid, clean=False)
    assert not s2.session_present


def test_v5_session_expires_and_queued_messages_are_discarded(broker, clients):
    cid = uid()
    s = clients(broker, client_id=cid, clean=False,
                connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=1))
    s.subscribe("sess5/expire", qos=1)
    s.disconnect()
    pub = clients(broker)
    pub.publish("sess5/expire", b"queued-before-expiry", qos=1)
    time.sleep(2.2)  # under test: the 1 s Session Expiry Interval passes
    s2 = clients(broker, client_id=cid, clean=False,
                 connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=30))
    assert not s2.session_present
    s2.subscribe("sess5/marker")
    pub.publish("sess5/expire", b"after-expiry", qos=1)
    pub.publish("sess5/marker", b"marker", qos=1)
    assert s2.until("marker") == []


def test_v5_session_expiry_set_to_zero_on_disconnect(broker, raw_clients):
    cid = uid()
    c = raw_clients(broker, r.V5)
    c.connect_ok(cid, clean=False, props=expiry(60))
    c.subscribe([("sess5/discard", 1)])
    c.disconnect(0, props=expiry(0), wait=True)
    c2 = raw_clients(broker, r.V5)
    assert not c2.connect_ok(cid, clean=False, props=expiry(60)).session_present


def test_v5_disconnect_may_not_set_expiry_when_connect_had_zero(broker, raw_clients):
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid(), clean=False)
    c.send(r.disconnect(0, props=expiry(60), version=r.V5))
    packets = c.wait_closed()
    # Protocol error [MQTT-3.14.2-2]: the server sends DISCONNECT 0x82 (or just closes)
    assert all(p.type == r.DISCONNECT and p.reason == r.PROTOCOL_ERROR for p in packets), packets


@strata_only
def test_v5_session_expiry_capped_by_max_session_expiry(broker_factory, raw_clients):
    b = broker_factory(limits={"max_session_expiry": 1})
    c = raw_clients(b, r.V5)
    ack = c.connect_ok(uid(), clean=False, props=expiry(3600))
    # a server that uses a different value than requested says so in CONNACK
    assert ack.props.get("session_expiry_interval") == 1


# ---------------------------------------------------------------- redelivery

def test_v311_unacked_qos1_redelivered_with_dup_on_reconnect(broker, raw_clients, clients):
    cid = uid()
    s = raw_clients(broker)
    s.connect_ok(cid, clean=False)
    s.subscribe([("redeliver/q1", 1)])
    clients(broker, version=4).publish("redeliver/q1", b"unacked", qos=1)
    first = s.recv_publish(ack=False)
    assert first.qos == 1 and not first.dup
    s.close()
    s2 = raw_clients(broker)
    assert s2.connect_ok(cid, clean=False).session_present
    again = s2.recv_publish(ack=False)
    assert again.dup, "redelivered PUBLISH must have DUP set: %r" % again
    assert again.pid == first.pid and again.payload == b"unacked" and again.qos == 1
    s2.ack(again)
    s2.expect_nothing(0.3)


def test_v5_unacked_qos2_redelivered_with_dup_on_reconnect(broker, raw_clients, clients):
    cid = uid()
    s = raw_clients(broker, r.V5)
    s.connect_ok(cid, clean=False, props=expiry(60))
    s.subscribe([("redeliver/q2", 2)])
    clients(broker).publish("redeliver/q2", b"unreceived", qos=2)
    first = s.recv_publish(ack=False)
    assert first.qos == 2 and not first.dup
    s.close()
    s2 = raw_clients(broker, r.V5)
    assert s2.connect_ok(cid, clean=False, props=expiry(60)).session_present
    again = s2.recv_publish(ack=False)
    assert again.dup and again.pid == first.pid and again.qos == 2
    assert again.payload == b"unreceived"
    s2.send(r.pubrec(again.pid, version=r.V5))
    rel = s2.expect(r.PUBREL)
    assert rel.pid == again.pid
    s2.send(r.pubcomp(rel.pid, version=r.V5))


def test_v311_pubrel_resent_after_reconnect(broker, raw_clients, clients):
    cid = uid()
    s = raw_clients(broker)
    s.connect_ok(cid, clean=False)
    s.subscribe([("redeliver/rel", 2)])
    clients(broker, version=4).publish("redeliver/rel", b"x", qos=2)
    p = s.recv_publish(ack=False)
    s.send(r.pubrec(p.pid))
    assert s.expect(r.PUBREL).pid == p.pid
    s.close()  # PUBCOMP never sent
    s2 = raw_clients(broker)
    assert s2.connect_ok(cid, clean=False).session_present
    again = s2.recv()
    # after PUBREC the message must not be sent again; only PUBREL is
    assert again.type == r.PUBREL and again.pid == p.pid, again
    s2.send(r.pubcomp(p.pid))
    s2.expect_nothing(0.3)


def test_v311_acked_message_not_redelivered(broker, raw_clients, clients):
    cid = uid()
    s = raw_clients(broker)
    s.connect_ok(cid, clean=False)
    s.subscribe([("redeliver/acked", 1)])
    clients(broker, version=4).publish("redeliver/acked", b"done", qos=1)
    s.recv_publish(ack=True)
    s.ping()  # the PUBACK was processed before the PINGREQ
    s.close()
    s2 = raw_clients(broker)
    assert s2.connect_ok(cid, clean=False).session_present
    s2.expect_nothing(0.5)


def test_inbound_qos2_state_survives_reconnect(broker, raw_clients, clients):
    """A QoS 2 message PUBRECed by the broker is delivered exactly once even when the
    publisher reconnects and resends PUBLISH with DUP before PUBREL."""
    sub = clients(broker, version=4)
    sub.subscribe("redeliver/in2", qos=2)
    cid = uid()
    p = raw_clients(broker)
    p.connect_ok(cid, clean=False)
    p.publish("redeliver/in2", b"exactly-once", qos=2, pid=7)
    assert p.expect(r.PUBREC).pid == 7
    p.close()
    p2 = raw_clients(broker)
    assert p2.connect_ok(cid, clean=False).session_present
    p2.publish("redeliver/in2", b"exactly-once", qos=2, pid=7, dup=True)
    assert p2.expect(r.PUBREC).pid == 7
    p2.send(r.pubrel(7))
    assert p2.expect(r.PUBCOMP).pid == 7
    # marker at QoS 2 too: paho hands QoS 2 messages over only after PUBREL
    p2.publish_acked("redeliver/in2", b"marker", qos=2, pid=8)
    assert [m.payload for m in sub.until("marker")] == [b"exactly-once"]


def test_inflight_packet_identifiers_are_distinct(broker, raw_clients, clients):
    s = raw_clients(broker, r.V5)
    s.connect_ok(uid(), props=[("receive_maximum", 50)])
    s.subscribe([("pid/#", 1)])
    pub = clients(broker)
    for i in range(30):
        pub.publish("pid/x", str(i).encode(), qos=1)
    got = [s.recv_publish(ack=False) for _ in range(30)]
    pids = [p.pid for p in got]
    assert all(1 <= x <= 65535 for x in pids)
    assert len(set(pids)) == 30, pids
    assert [p.payload for p in got] == [str(i).encode() for i in range(30)]
    for p in got:
        s.ack(p)
    # identifiers are freed by the acknowledgements: 30 more flow normally
    for i in range(30):
        pub.publish("pid/x", b"again", qos=1)
    again = [s.recv_publish(ack=True) for _ in range(30)]
    assert all(p.payload == b"again" for p in again)
