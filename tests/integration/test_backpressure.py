"""Overload without loss: a subscriber slower than its publishers holds them back
(their input is not read while its queue is full) instead of dropping what they were
told was received; one that stays full for limits.slow_consumer.after_ms is disconnected
(0x97) or dropped for alone, and the other subscribers and the publishers go on.
docs/operations.md "Slow consumers"."""

import signal
import socket
import threading
import time

import pytest

import mqtt_raw as r
from conftest import IS_MOSQUITTO, merge, to_yaml, uid
from test_http import scrape, start_http_broker, value

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="Strata's back-pressure and slow-consumer policy")

PUBLISHERS = 10
PER_PUBLISHER = 500
WINDOW = 32          # QoS 1/2 messages a publisher has unacknowledged
QUEUE = 100          # limits.max_queued_messages: small, so that it fills at once


def publish_all(port, version, qos, index, count, errors, topic_of=None, reasons=(r.SUCCESS,)):
    """One publisher at full speed: `count` messages, at most WINDOW unacknowledged,
    every flow completed with one of `reasons`. Records what went wrong in `errors`."""
    c = r.RawClient(port, version=version, timeout=60)
    try:
        c.connect_ok(uid("pub%d" % index))
        topic = topic_of(index) if topic_of else "acme/dresden/press/line%d/temp" % index
        sent = acked = 0
        pending = set()
        while acked < count:
            while sent < count and len(pending) < WINDOW:
                pid = sent % 60000 + 1
                c.publish(topic, b"%d:%d" % (index, sent), qos=qos, pid=pid)
                pending.add(pid)
                sent += 1
            p = c.recv()
            if p.type == r.PUBACK or p.type == r.PUBCOMP:
                assert p.reason in reasons, p
                pending.discard(p.pid)
                acked += 1
            elif p.type == r.PUBREC:
                assert p.reason in reasons, p
                c.send(r.pubrel(p.pid, version=version))
        c.disconnect()
    except Exception as e:  # reported by the test
        errors.append("publisher %d: %r" % (index, e))
        c.close()


class PacedSubscriber:
    """A raw-socket subscriber that reads at most `rate` messages a second (and acks them),
    recording every payload in order."""

    def __init__(self, port, version, qos, rate, client_id=None, receive_maximum=20):
        self.c = r.RawClient(port, version=version, timeout=60)
        props = [("receive_maximum", receive_maximum)] if version == r.V5 else ()
        self.c.connect_ok(client_id or uid("sub"), props=props)
        assert self.c.subscribe([("acme/#", qos)]).reasons == [qos]
        self.rate = rate
        self.got = []
        self.closed = False

    def read(self, until_count, timeout):
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        while len(self.got) < until_count and time.monotonic() < deadline:
            try:
                p = self.c.recv(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            if p.type == r.PUBREL:
                self.c.ack(p)
                continue
            assert p.type == r.PUBLISH, p
            self.c.ack(p)
            self.got.append(p.payload)
            if self.rate:
                # Paced: the reader's own speed, not a synchronisation.
                ahead = len(self.got) / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        return self.got


def per_publisher(payloads):
    seqs = {}
    for p in payloads:
        i, n = p.split(b":")
        seqs.setdefault(int(i), []).append(int(n))
    return seqs


def fan_in(port, version, qos, sub, publishers=PUBLISHERS, count=PER_PUBLISHER):
    """`publishers` publishers at full speed while `sub` reads; what `sub` got, after
    checking that it is every acknowledged message once, in order per publisher."""
    errors = []
    pubs = [threading.Thread(target=publish_all, args=(port, version, qos, i, count, errors))
            for i in range(publishers)]
    for t in pubs:
        t.start()
    got = sub.read(publishers * count, timeout=60)
    for t in pubs:
        t.join(timeout=60)
    assert not errors, errors
    assert len(got) == publishers * count, "got %d of %d" % (len(got), publishers * count)
    assert per_publisher(got) == {i: list(range(count)) for i in range(publishers)}
    return got


@pytest.mark.parametrize("version", [r.V311, r.V5], ids=["v311", "v5"])
@pytest.mark.parametrize("qos", [1, 2])
def test_fast_publishers_and_a_slow_subscriber_lose_nothing(broker_factory, qos, version):
    b = broker_factory(limits={"max_queued_messages": QUEUE})
    sub = PacedSubscriber(b.port, version, qos, rate=2500)
    fan_in(b.port, version, qos, sub)
    sub.c.disconnect()


def metrics_broker(broker_factory, **overrides):
    return start_http_broker(broker_factory, **overrides)


def test_holds_are_counted_and_nothing_is_dropped(broker_factory):
    b = metrics_broker(broker_factory, limits={"max_queued_messages": QUEUE})
    sub = PacedSubscriber(b.port, r.V5, 1, rate=2500)
    fan_in(b.port, r.V5, 1, sub)
    samples, kinds = scrape(b)
    assert value(samples, "strata_publisher_holds_total") > 0, "the subscriber's queue never filled"
    assert kinds["strata_publisher_holds_total"] == "counter"
    assert value(samples, "strata_messages_dropped_total", reason="queue_full") == 0
    assert value(samples, "strata_slow_consumer_actions_total", action="disconnect") == 0
    assert value(samples, "strata_publishers_waiting") == 0
    sub.c.disconnect()


def stuck_subscriber(port, version, qos=1, client_id=None, session_expiry=0):
    """Subscribes, then never reads: its receive buffer is small so it fills at once."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    c = r.RawClient.__new__(r.RawClient)
    c.version, c.timeout, c.sock, c.buf, c.closed = version, 10, s, b"", False
    props = [("session_expiry_interval", session_expiry)] if version == r.V5 and session_expiry else ()
    c.connect_ok(client_id or uid("stuck"), clean=not session_expiry, props=props)
    assert c.subscribe([("acme/#", qos)]).reasons == [qos]
    return c


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize("version", [r.V311, r.V5], ids=["v311", "v5"])
def test_a_stuck_subscriber_is_disconnected_and_the_others_go_on(broker_factory, version):
    b = metrics_broker(broker_factory, limits={"max_queued_messages": QUEUE,
                                               "slow_consumer": {"after_ms": 1000, "action": "disconnect"}})
    stuck = stuck_subscriber(b.port, version)
    fast = PacedSubscriber(b.port, version, 1, rate=0)
    started = time.monotonic()
    # The fast subscriber loses nothing; the stuck one holds the publishers about a
    # second (after_ms), then is disconnected and lets them go.
    fan_in(b.port, version, 1, fast)
    took = time.monotonic() - started
    samples, _ = scrape(b)
    assert value(samples, "strata_slow_consumer_actions_total", action="disconnect") == 1
    assert took >= 1.0, "held for less than after_ms: %.2f s" % took
    wait_for(lambda: "is a slow consumer" in b.stderr_text(), 10, "no slow-consumer log line")
    # Its connection is closed (what it had buffered, then the end).
    stuck.sock.settimeout(10)
    with pytest.raises(r.Closed):
        while True:
            stuck.recv(timeout=10)
    # Another burst goes through at once: nobody holds the publishers any more.
    fast.got.clear()
    fan_in(b.port, version, 1, fast, publishers=3, count=100)
    fast.c.disconnect()


def test_a_stuck_persistent_session_keeps_its_queue(broker_factory):
    b = metrics_broker(broker_factory, limits={"max_queued_messages": QUEUE,
                                               "slow_consumer": {"after_ms": 500, "action": "disconnect"}})
    cid = uid("stuck")
    stuck = stuck_subscriber(b.port, r.V5, client_id=cid, session_expiry=3600)
    errors = []
    publish_all(b.port, r.V5, 1, 0, 400, errors)
    assert not errors, errors
    samples, _ = scrape(b)
    assert value(samples, "strata_slow_consumer_actions_total", action="disconnect") == 1
    with pytest.raises(r.Closed):
        while True:
            stuck.recv(timeout=10)
    # What was queued when it was disconnected is delivered when it comes back, in order.
    back = r.RawClient(b.port, version=r.V5, timeout=10)
    assert back.connect_ok(cid, clean=False, props=[("session_expiry_interval", 3600)]).session_present
    got = []
    try:
        while True:
            got.append(back.recv_publish(timeout=2).payload)
    except TimeoutError:
        pass
    seqs = per_publisher(got).get(0, [])
    assert len(seqs) >= QUEUE // 2, "its queue was not kept: %d messages" % len(seqs)
    assert seqs == sorted(seqs)
    back.disconnect()


def test_drop_action_drops_for_the_slow_subscriber_alone(broker_factory):
    b = metrics_broker(broker_factory, limits={"max_queued_messages": QUEUE,
                                               "slow_consumer": {"after_ms": 500, "action": "drop"}})
    cid = uid("stuck")
    stuck = stuck_subscriber(b.port, r.V5, client_id=cid)
    fast = PacedSubscriber(b.port, r.V5, 1, rate=0)
    fan_in(b.port, r.V5, 1, fast, publishers=1, count=1000)
    samples, _ = scrape(b)
    assert value(samples, "strata_slow_consumer_actions_total", action="drop") == 1
    assert value(samples, "strata_messages_dropped_total", reason="slow_consumer") > 0
    # Still connected: it is dropped for, not disconnected.
    assert value(samples, "strata_slow_consumer_actions_total", action="disconnect") == 0
    assert value(samples, "strata_session_dropped_messages_total", client_id=cid) > 0
    # Its queue is the deepest, at its limit.
    assert value(samples, "strata_session_queued_messages", client_id=cid) >= QUEUE * 3 // 4
    stuck.close()
    fast.c.disconnect()


def test_the_slow_consumer_policy_changes_on_reload(broker_factory):
    """A SIGHUP with a shorter limits.slow_consumer.after_ms frees publishers held by a
    subscriber that would otherwise have held them for a minute."""
    b = metrics_broker(broker_factory, limits={"max_queued_messages": QUEUE,
                                               "slow_consumer": {"after_ms": 60000, "action": "disconnect"}})
    stuck = stuck_subscriber(b.port, r.V5)
    errors = []
    # Once the subscriber is gone, nobody matches: 0x10.
    pub = threading.Thread(target=publish_all, args=(b.port, r.V5, 1, 0, 400, errors),
                           kwargs={"reasons": (r.SUCCESS, r.NO_MATCHING_SUBSCRIBERS)})
    pub.start()
    wait_for(lambda: value(scrape(b)[0], "strata_publishers_waiting") == 1, 30, "the publisher was never held")
    b.config = merge(b.config, {"limits": {"slow_consumer": {"after_ms": 500}}})
    b.config_path.write_text(to_yaml(b.config))
    b.send_signal(signal.SIGHUP)
    pub.join(timeout=30)
    assert not pub.is_alive() and not errors, errors
    assert value(scrape(b)[0], "strata_slow_consumer_actions_total", action="disconnect") == 1
    with pytest.raises(r.Closed):
        while True:
            stuck.recv(timeout=10)
