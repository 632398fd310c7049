"""CONNECT: protocol name/level, client identifiers, session takeover, keep-alive."""

import time

import pytest

import mqtt_raw as r
from conftest import mosquitto_deviation, mosquitto_pub, uid


def test_v311_paho_connect_accepted(broker, clients):
    c = clients(broker, version=4)
    flags, rc, _ = c.connack
    assert rc == 0
    assert not c.session_present


def test_v5_paho_connect_accepted(broker, clients):
    c = clients(broker, version=5)
    flags, rc, _ = c.connack
    assert rc == 0


def test_mosquitto_pub_both_versions(broker):
    mosquitto_pub(broker, "-V", "mqttv311", "-t", "connect/v311", "-m", "x")
    mosquitto_pub(broker, "-V", "mqttv5", "-t", "connect/v5", "-m", "x")
    broker.assert_alive()


def test_v5_connack_advertises_configured_limits(broker_factory, raw_clients):
    b = broker_factory(limits={"receive_maximum": 7, "topic_alias_maximum": 5,
                               "max_packet_size": 4096, "max_inflight": 7})
    c = raw_clients(b, r.V5)
    ack = c.connect_ok(uid())
    assert ack.props.get("receive_maximum") == 7
    assert ack.props.get("topic_alias_maximum") == 5
    assert ack.props.get("maximum_packet_size") == 4096


def test_wrong_protocol_name_refused(broker, raw_clients):
    c = raw_clients(broker)
    c.send(r.connect(uid(), protocol_name="MQTX"))
    packets = c.wait_closed()
    # Either closed silently or with a refusing CONNACK, never accepted.
    assert all(p.type == r.CONNACK and p.reason != 0 for p in packets), packets
    broker.assert_alive()


def test_unsupported_protocol_level_refused(broker, raw_clients):
    c = raw_clients(broker)
    c.send(r.connect(uid(), version=6))
    packets = c.wait_closed()
    assert len(packets) <= 1, packets
    if packets:
        assert packets[0].type == r.CONNACK
        # 3.1.1 return code 1 (unacceptable protocol version) or 5.0 0x84
        assert packets[0].reason in (0x01, r.UNSUPPORTED_PROTOCOL_VERSION), packets
    broker.assert_alive()


def test_v5_empty_client_id_gets_assigned_identifier(broker, raw_clients):
    a = raw_clients(broker, r.V5)
    ack_a = a.connect_ok("", clean=True)
    id_a = ack_a.props.get("assigned_client_identifier")
    assert id_a, "no Assigned Client Identifier in %r" % ack_a
    b = raw_clients(broker, r.V5)
    id_b = b.connect_ok("", clean=True).props.get("assigned_client_identifier")
    assert id_b and id_b != id_a
    # both connections stay usable (the second did not take over the first)
    a.ping()
    b.ping()


def test_v5_client_with_own_id_gets_no_assigned_identifier(broker, raw_clients):
    c = raw_clients(broker, r.V5)
    ack = c.connect_ok(uid())
    assert not ack.props.has("assigned_client_identifier")


def test_v311_empty_client_id_with_clean_session_accepted(broker, raw_clients):
    c = raw_clients(broker)
    ack = c.connect("", clean=True)
    assert ack.reason == 0
    c.ping()


def test_v311_empty_client_id_without_clean_session_refused(broker, raw_clients):
    c = raw_clients(broker)
    ack = c.connect("", clean=False)
    assert ack.reason == 0x02  # identifier rejected
    c.wait_closed()


@mosquitto_deviation("closes the old connection without DISCONNECT 0x8E")
def test_v5_session_takeover_old_connection_gets_disconnect_0x8e(broker, raw_clients):
    cid = uid()
    old = raw_clients(broker, r.V5)
    old.connect_ok(cid)
    new = raw_clients(broker, r.V5)
    new.connect_ok(cid)
    packets = old.wait_closed()
    assert [p.type for p in packets] == [r.DISCONNECT], packets
    assert packets[0].reason == r.SESSION_TAKEN_OVER
    new.ping()


def test_v311_session_takeover_closes_old_connection(broker, raw_clients):
    cid = uid()
    old = raw_clients(broker)
    old.connect_ok(cid)
    new = raw_clients(broker)
    new.connect_ok(cid)
    assert old.wait_closed() == []
    new.ping()


def test_rapid_takeovers_never_close_the_newest_connection(broker, raw_clients):
    cid = uid()
    conns = []
    for i in range(20):
        c = raw_clients(broker, r.V5 if i % 2 else r.V311)
        c.connect_ok(cid, clean=False, props=[("session_expiry_interval", 60)] if i % 2 else ())
        conns.append(c)
    for c in conns[:-1]:
        c.wait_closed()
    last = conns[-1]
    last.ping()
    last.expect_nothing(0.3)
    last.ping()


def test_takeover_keeps_the_session_subscriptions(broker, raw_clients, clients):
    cid = uid()
    old = raw_clients(broker)
    old.connect_ok(cid, clean=False)
    old.subscribe([("takeover/keep", 1)])
    new = raw_clients(broker)
    ack = new.connect_ok(cid, clean=False)
    assert ack.session_present
    old.wait_closed()
    clients(broker).publish("takeover/keep", b"still-here", qos=1)
    p = new.recv_publish()
    assert p.topic == "takeover/keep" and p.payload == b"still-here"


@mosquitto_deviation("checks keep-alive only every few seconds")
def test_keepalive_timeout_closes_silent_client(broker, raw_clients):
    c = raw_clients(broker, timeout=10)
    c.connect_ok(uid(), keepalive=1)
    t0 = time.monotonic()
    packets = c.wait_closed(timeout=5)
    elapsed = time.monotonic() - t0
    assert packets == []
    # 1.5 x 1 s; a little slack either side for scheduling
    assert 1.2 <= elapsed <= 3.0, elapsed


@mosquitto_deviation("checks keep-alive only every few seconds")
def test_v5_keepalive_timeout_closes_silent_client(broker, raw_clients):
    c = raw_clients(broker, r.V5, timeout=10)
    c.connect_ok(uid(), keepalive=1)
    t0 = time.monotonic()
    packets = c.wait_closed(timeout=5)
    elapsed = time.monotonic() - t0
    # a DISCONNECT 0x8D before closing is allowed
    assert all(p.type == r.DISCONNECT and p.reason == r.KEEP_ALIVE_TIMEOUT for p in packets), packets
    assert 1.2 <= elapsed <= 3.0, elapsed


def test_keepalive_not_enforced_early_when_client_pings(broker, raw_clients):
    c = raw_clients(broker)
    c.connect_ok(uid(), keepalive=1)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        c.ping()
        time.sleep(0.5)  # paced traffic under test: well inside the keep-alive
    c.ping()


def test_v5_server_keep_alive_caps_large_keepalive(broker_factory, raw_clients):
    b = broker_factory(limits={"max_keepalive": 10})
    c = raw_clients(b, r.V5)
    ack = c.connect_ok(uid(), keepalive=60)
    assert ack.props.get("server_keep_alive") == 10


def test_v5_server_keep_alive_replaces_zero_keepalive(broker_factory, raw_clients):
    b = broker_factory(limits={"max_keepalive": 10})
    c = raw_clients(b, r.V5)
    ack = c.connect_ok(uid(), keepalive=0)
    assert ack.props.get("server_keep_alive") == 10


def test_v5_keepalive_within_maximum_is_kept(broker_factory, raw_clients):
    b = broker_factory(limits={"max_keepalive": 10})
    c = raw_clients(b, r.V5)
    ack = c.connect_ok(uid(), keepalive=5)
    assert ack.props.get("server_keep_alive") in (None, 5)


@mosquitto_deviation("max_keepalive below 10 unsupported; keep-alive checked coarsely")
def test_v5_server_keep_alive_is_enforced(broker_factory, raw_clients):
    b = broker_factory(limits={"max_keepalive": 1})
    c = raw_clients(b, r.V5, timeout=10)
    ack = c.connect_ok(uid(), keepalive=0)
    assert ack.props.get("server_keep_alive") == 1
    t0 = time.monotonic()
    packets = c.wait_closed(timeout=5)
    assert all(p.type == r.DISCONNECT for p in packets), packets
    assert 1.2 <= time.monotonic() - t0 <= 3.0


@mosquitto_deviation("max_keepalive only applies to 5.0 clients in 2.0.11")
@pytest.mark.parametrize("keepalive", [60, 0])
def test_v311_keepalive_above_maximum_is_capped_silently(broker_factory, raw_clients, keepalive):
    """3.1.1 cannot tell a client its keep-alive: one asking for more than
    max_keepalive (or for none) is accepted and closed after 1.5 x max_keepalive of
    silence, as limits.max_keepalive documents."""
    b = broker_factory(limits={"max_keepalive": 1})
    c = raw_clients(b, timeout=10)
    assert c.connect(uid(), keepalive=keepalive).reason == 0
    t0 = time.monotonic()
    assert c.wait_closed(timeout=5) == []
    assert 1.2 <= time.monotonic() - t0 <= 3.0


def test_v311_keepalive_within_maximum_accepted(broker_factory, raw_clients):
    b = broker_factory(limits={"max_keepalive": 10})
    c = raw_clients(b)
    assert c.connect(uid(), keepalive=10).reason == 0


# ---------------------------------------------------------------- closing with a reason

def keep_writing_after(c, packet_bytes, seconds=0.3):
    """Writes `packet_bytes` every 10 ms for `seconds`, as a client with queued output
    (acknowledgements, pings) does; returns the error of the first write that failed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            c.sock.sendall(packet_bytes)
        except OSError as e:
            return e
        time.sleep(0.01)  # paced writes under test, not a wait for the broker
    return None


def read_to_eof(c):
    """The packets the broker sends until it half-closes; fails on a reset."""
    packets = []
    while True:
        try:
            packets.append(c.recv())
        except r.Closed:
            return packets


@mosquitto_deviation("closes at once after its DISCONNECT")
def test_disconnect_with_reason_half_closes_and_reads_on(broker, raw_clients):
    """After a DISCONNECT with a reason code the broker shuts its sending side and
    reads what the client still sends, so a client that goes on writing (acks, pings)
    is not reset and reads the DISCONNECT whole, then the end of the stream."""
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid())
    c.send(r.connect(uid(), version=r.V5))  # a second CONNECT: protocol error
    p = c.expect(r.DISCONNECT)
    assert p.reason == r.PROTOCOL_ERROR
    assert p.props.get("reason_string") == "second CONNECT"  # intact, whole packet
    err = keep_writing_after(c, r.pingreq() + r.puback(1, version=r.V5))
    assert err is None, "write after DISCONNECT failed: %r" % err
    assert read_to_eof(c) == []  # FIN after the DISCONNECT, nothing else


@mosquitto_deviation("closes at once after a refusing CONNACK")
def test_refused_connack_half_closes_and_reads_on(broker, raw_clients):
    c = raw_clients(broker)
    ack = c.connect("", clean=False)  # 3.1.1: an empty client id needs clean session
    assert ack.reason == 0x02
    err = keep_writing_after(c, r.pingreq())
    assert err is None, "write after the refusing CONNACK failed: %r" % err
    assert read_to_eof(c) == []


@mosquitto_deviation("closes at once after its DISCONNECT")
def test_lingering_is_bounded_for_a_client_that_never_closes(broker, raw_clients):
    c = raw_clients(broker, r.V5, timeout=10)
    c.connect_ok(uid())
    c.send(r.connect(uid(), version=r.V5))
    assert c.expect(r.DISCONNECT).reason == r.PROTOCOL_ERROR
    t0 = time.monotonic()
    with pytest.raises(r.Closed):
        c.recv()  # FIN at once
    # the client keeps its side open and writes nothing: the broker closes within ~1 s,
    # after which writes are refused by the peer
    def refused():
        try:
            c.sock.sendall(r.pingreq())
        except OSError:
            return True
        return False
    deadline = time.monotonic() + 5
    while not refused():
        assert time.monotonic() < deadline, "broker still reads 5 s after the DISCONNECT"
        time.sleep(0.05)  # bounded poll
    assert time.monotonic() - t0 >= 0.8
    broker.assert_alive()
