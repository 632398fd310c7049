"""limits: max_connections, max_packet_size, max_queued_messages (with the drop
counter in $SYS), max_queued_bytes, max_inflight."""

import time

import pytest

import mqtt_raw as r
from conftest import uid, strata_only, wait_until, mosquitto_deviation


@pytest.mark.parametrize("version", [r.V311, r.V5])
def test_max_connections_refuses_extra_connection(broker_factory, raw_clients, version):
    b = broker_factory(limits={"max_connections": 3})
    conns = []
    for _ in range(3):
        c = raw_clients(b, version)
        c.connect_ok(uid())
        conns.append(c)
    extra = raw_clients(b, version)
    try:
        extra.send(r.connect(uid(), version=version))
    except OSError:
        pass  # closed at accept
    packets = extra.wait_closed()
    # no successful CONNACK; 5.0 may say 0x97 Quota exceeded / 0x89 Server busy,
    # 3.1.1 may say 3 Server unavailable
    assert all(p.type == r.CONNACK and p.reason in (0x03, 0x88, 0x89, 0x97) for p in packets), packets
    for c in conns:
        c.ping()  # the established ones are untouched


def test_max_connections_frees_a_slot_when_a_client_leaves(broker_factory, raw_clients):
    b = broker_factory(limits={"max_connections": 2})
    a = raw_clients(b)
    a.connect_ok(uid())
    c = raw_clients(b)
    c.connect_ok(uid())
    c.disconnect()

    def can_connect():
        n = raw_clients(b)
        try:
            return n.connect(uid()).reason == 0
        except (r.Closed, OSError):
            return False
    wait_until(can_connect, what="a free connection slot")


def test_max_packet_size_v311_oversized_packet_closes(broker_factory, raw_clients, clients):
    b = broker_factory(limits={"max_packet_size": 1024})
    sub = clients(b, version=4)
    sub.subscribe("limits/mps", qos=1)
    c = raw_clients(b)
    c.connect_ok(uid())
    c.publish("limits/mps", b"x" * 2000, qos=1, pid=1)
    assert c.wait_closed() == []
    clients(b, version=4).publish("limits/mps", b"marker", qos=1)
    assert sub.until("marker") == []


@mosquitto_deviation("does not count the Remaining Length bytes in the packet size")
def test_max_packet_size_boundary(broker_factory, raw_clients):
    b = broker_factory(limits={"max_packet_size": 1024})
    c = raw_clients(b)
    c.connect_ok(uid())
    exact = r.publish("mps", b"y" * 1014, qos=1, pid=1)
    assert len(exact) == 1024
    c.send(exact)
    assert c.expect(r.PUBACK).pid == 1
    over = r.publish("mps", b"y" * 1015, qos=1, pid=2)
    assert len(over) == 1025
    c.send(over)
    assert c.wait_closed() == []


def offline_session_with_backlog(b, raw_clients, clients, topic, count, payload=lambda i: b"m%d" % i):
    cid = uid()
    s = raw_clients(b)
    s.connect_ok(cid, clean=False)
    s.subscribe([(topic, 1)])
    s.disconnect(wait=True)
    pub = clients(b)
    for i in range(count):
        pub.publish(topic, payload(i), qos=1)
    return cid, pub


def drain_until_marker(b, raw_clients, cid, pub, topic):
    s = raw_clients(b)
    assert s.connect_ok(cid, clean=False).session_present
    pub.publish(topic, b"marker", qos=1)
    got = []
    while True:
        p = s.recv_publish()
        if p.payload == b"marker":
            return got
        got.append(p.payload)


def test_max_queued_messages_limits_offline_queue(broker_factory, raw_clients, clients):
    b = broker_factory(limits={"max_queued_messages": 5})
    cid, pub = offline_session_with_backlog(b, raw_clients, clients, "limits/queue", 10)
    got = drain_until_marker(b, raw_clients, cid, pub, "limits/queue")
    assert got == [b"m0", b"m1", b"m2", b"m3", b"m4"], "queue up to the limit, then drop"


@strata_only
def test_max_queued_messages_drops_are_counted_in_sys(broker_factory, raw_clients, clients):
    b = broker_factory(limits={"max_queued_messages": 5}, sys={"interval": 1})
    watcher = clients(b)
    watcher.subscribe("$SYS/broker/messages/dropped")
    base = int(watcher.get().payload)
    cid, pub = offline_session_with_backlog(b, raw_clients, clients, "limits/dropcount", 12)
    deadline = time.monotonic() + 5
    while True:
        value = int(watcher.get(timeout=max(0.01, deadline - time.monotonic())).payload)
        if value >= base + 7:
            break


def test_max_queued_bytes_limits_offline_queue(broker_factory, raw_clients, clients):
    b = broker_factory(limits={"max_queued_bytes": 2000})
    cid, pub = offline_session_with_backlog(b, raw_clients, clients, "limits/bytes", 10,
                                            payload=lambda i: b"%d" % i + b"." * 499)
    got = drain_until_marker(b, raw_clients, cid, pub, "limits/bytes")
    assert 1 <= len(got) <= 4, "2000 bytes hold at most four 500-byte messages, got %d" % len(got)
    assert got == [b"%d" % i + b"." * 499 for i in range(len(got))]


@pytest.mark.parametrize("version", [
    r.V311, pytest.param(r.V5, marks=mosquitto_deviation("uses only the client's Receive Maximum for 5.0"))])
def test_max_inflight_limits_unacknowledged_outbound(broker_factory, raw_clients, clients, version):
    b = broker_factory(limits={"max_inflight": 3})
    s = raw_clients(b, version)
    s.connect_ok(uid(), props=[("receive_maximum", 100)] if version == r.V5 else ())
    s.subscribe([("limits/inflight", 1)])
    pub = clients(b)
    for i in range(6):
        pub.publish("limits/inflight", b"%d" % i, qos=1)
    first = [s.recv_publish(ack=False) for _ in range(3)]
    s.expect_nothing(0.5)  # under test: the fourth waits for an acknowledgement
    for p in first:
        s.ack(p)
    rest = [s.recv_publish() for _ in range(3)]
    assert [p.payload for p in first + rest] == [b"%d" % i for i in range(6)]


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


@strata_only
def test_client_that_does_not_read_its_replies_is_throttled_not_buffered(broker_factory, raw_clients):
    """A client pipelining requests without reading the replies: the broker
    stops reading from it instead of buffering replies without bound, and
    resumes (losing nothing) once the client reads."""
    import select
    import threading

    b = broker_factory()
    c = raw_clients(b)
    c.connect_ok(uid())
    c.sock.settimeout(None)
    pid = b.proc.pid
    rss_before = _rss_kib(pid)

    # 64 MiB of PINGREQ (64 MiB of PINGRESP owed): far more than the kernel's
    # socket buffers on both sides hold.
    count = 32 * 1024 * 1024
    chunk = r.pingreq() * 32768
    sent = [0]
    done = threading.Event()

    def sender():
        for _ in range(count // 32768):
            c.sock.sendall(chunk)
            sent[0] += len(chunk)
        done.set()

    t = threading.Thread(target=sender, daemon=True)
    t.start()

    # Bounded poll until the sender has been stuck for half a second: the
    # broker has stopped reading.
    last = [-1, time.monotonic()]

    def stalled():
        if sent[0] != last[0]:
            last[0], last[1] = sent[0], time.monotonic()
            return False
        return time.monotonic() - last[1] > 0.5

    wait_until(stalled, timeout=30, interval=0.1, what="the sender to stall")
    assert not done.is_set(), "the broker read 64 MiB without the client reading a reply"
    grown = _rss_kib(pid) - rss_before
    assert grown < 8 * 1024, "broker RSS grew by %d KiB buffering replies" % grown

    # Reading resumes the flow; every request gets its reply.
    expected = 2 * count
    received = 0
    while received < expected:
        # Bounded wait without a socket timeout (the sender thread shares the socket).
        readable, _, _ = select.select([c.sock], [], [], TIMEOUT_READ)
        assert readable, "no reply for %d s after %d of %d bytes" % (TIMEOUT_READ, received, expected)
        data = c.sock.recv(1 << 20)
        assert data, "connection closed after %d of %d bytes" % (received, expected)
        # Only PINGRESPs (0xD0 0x00), whatever the split of the stream.
        first = received % 2  # where the first 0xD0 of this chunk is
        assert data[first::2].count(0xD0) == len(data[first::2]), "unexpected bytes in the reply stream"
        assert data[1 - first::2].count(0x00) == len(data[1 - first::2]), "unexpected bytes in the reply stream"
        received += len(data)
    assert received == expected
    assert done.wait(TIMEOUT_READ)
    c.ping()


TIMEOUT_READ = 30
