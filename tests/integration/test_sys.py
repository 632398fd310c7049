"""$SYS/broker/... topics (sys.interval 1 s): version, uptime, clients connected,
messages and bytes in/out, retained count, subscriptions count."""

import re
import subprocess
import threading
import time

import pytest

from conftest import IS_MOSQUITTO, MOSQUITTO_BIN, STRATA_BIN, uid, TIMEOUT, mosquitto_deviation

SYS = "$SYS/broker/"


def number(value):
    """Strata publishes decimal text; Mosquitto adds units to a few ("12 seconds")."""
    pattern = r"^(\d+)( \w+)?$" if IS_MOSQUITTO else r"^(\d+)$"
    m = re.match(pattern, value)
    assert m, "not a decimal value: %r" % value
    return int(m.group(1))


class SysWatcher:
    """Keeps the latest value of every $SYS/broker/... topic."""

    def __init__(self, broker, clients):
        self.values = {}
        self.updates = {}
        self.cond = threading.Condition()
        self.client = clients(broker)
        self.client.c.on_message = self._on_message
        self.client.subscribe(SYS + "#")

    def _on_message(self, c, u, m):
        with self.cond:
            self.values[m.topic] = m.payload.decode()
            self.updates[m.topic] = self.updates.get(m.topic, 0) + 1
            self.cond.notify_all()

    def wait(self, name, predicate=lambda v: True, timeout=TIMEOUT, fresh=False):
        """Waits until $SYS/broker/<name> has a value satisfying predicate(value);
        fresh=True ignores values already seen (waits for the next update)."""
        topic = SYS + name
        with self.cond:
            start = self.updates.get(topic, 0)
            ok = self.cond.wait_for(
                lambda: topic in self.values and (not fresh or self.updates[topic] > start)
                and predicate(self.values[topic]), timeout)
            assert ok, "%s: last value %r" % (topic, self.values.get(topic))
            return self.values[topic]

    def settled(self, name):
        """A value after at least one live update (so counters include start-up work)."""
        self.wait(name)
        return number(self.wait(name, fresh=True))


@pytest.fixture
def sys_broker(broker_factory):
    return broker_factory(sys={"interval": 1})


@pytest.fixture
def watcher(sys_broker, clients):
    return SysWatcher(sys_broker, clients)


def binary_version():
    if IS_MOSQUITTO:
        out = subprocess.run([MOSQUITTO_BIN, "-h"], capture_output=True, timeout=TIMEOUT)
    else:
        out = subprocess.run([STRATA_BIN, "--version"], capture_output=True, timeout=TIMEOUT)
    m = re.search(r"\d+\.\d+\.\d+", (out.stdout + out.stderr).decode())
    assert m, "no version number printed"
    return m.group(0)


def test_sys_topics_are_retained(sys_broker, clients):
    c = clients(sys_broker)
    c.subscribe(SYS + "version")
    m = c.get()
    assert m.retain, "a new subscriber gets the current $SYS value at once"


def test_sys_version_matches_binary(watcher):
    v = watcher.wait("version")
    assert binary_version() in v, v


def test_sys_uptime_increases(watcher):
    first = number(watcher.wait("uptime"))
    second = number(watcher.wait("uptime", lambda v: number(v) > first))
    assert second > first


def test_sys_clients_connected(sys_broker, watcher, raw_clients):
    base = watcher.settled("clients/connected")
    conns = []
    for _ in range(3):
        c = raw_clients(sys_broker)
        c.connect_ok(uid())
        conns.append(c)
    watcher.wait("clients/connected", lambda v: number(v) == base + 3)
    for c in conns[:2]:
        c.disconnect()
    watcher.wait("clients/connected", lambda v: number(v) == base + 1)


def test_sys_messages_received_and_sent(sys_broker, watcher, clients):
    sub = clients(sys_broker)
    sub.subscribe("sys/msgs", qos=1)
    recv0 = watcher.settled("messages/received")
    sent0 = number(watcher.wait("messages/sent"))
    pub = clients(sys_broker)
    for _ in range(10):
        pub.publish("sys/msgs", b"x", qos=1)
    sub.get_n(10)
    watcher.wait("messages/received", lambda v: number(v) >= recv0 + 10)
    watcher.wait("messages/sent", lambda v: number(v) >= sent0 + 10)


def test_sys_bytes_received_and_sent(sys_broker, watcher, clients):
    sub = clients(sys_broker)
    sub.subscribe("sys/bytes", qos=1)
    in0 = watcher.settled("bytes/received")
    out0 = number(watcher.wait("bytes/sent"))
    pub = clients(sys_broker)
    for _ in range(10):
        pub.publish("sys/bytes", b"b" * 1000, qos=1)
    sub.get_n(10)
    watcher.wait("bytes/received", lambda v: number(v) >= in0 + 10000)
    watcher.wait("bytes/sent", lambda v: number(v) >= out0 + 10000)


def test_sys_retained_messages_count(sys_broker, watcher, clients):
    base = watcher.settled("retained messages/count")
    pub = clients(sys_broker)
    for i in range(3):
        pub.publish("sys/retained/%d" % i, b"r", qos=1, retain=True)
    watcher.wait("retained messages/count", lambda v: number(v) == base + 3)
    pub.publish("sys/retained/0", b"", qos=1, retain=True)
    watcher.wait("retained messages/count", lambda v: number(v) == base + 2)


def test_sys_subscriptions_count(sys_broker, watcher, clients):
    base = watcher.settled("subscriptions/count")
    c = clients(sys_broker)
    for f in ("sys/sub/a", "sys/sub/b/#", "sys/sub/+/c"):
        c.subscribe(f)
    watcher.wait("subscriptions/count", lambda v: number(v) == base + 3)
    c.unsubscribe("sys/sub/a")
    watcher.wait("subscriptions/count", lambda v: number(v) == base + 2)
    c.disconnect()  # a clean session's subscriptions end with it
    watcher.wait("subscriptions/count", lambda v: number(v) == base)


@mosquitto_deviation("with sys_interval 1 it updates about every 2 s")
def test_sys_interval_is_honoured(sys_broker, watcher):
    watcher.wait("uptime")
    t0 = time.monotonic()
    watcher.wait("uptime", fresh=True, timeout=3)
    watcher.wait("uptime", fresh=True, timeout=3)
    assert time.monotonic() - t0 <= 3.5  # two updates at a 1 s interval
