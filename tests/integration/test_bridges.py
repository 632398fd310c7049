"""Federation: a plant broker's bridge to an enterprise broker (issue "bridges").

Two real broker processes on loopback: the plant runs a bridge that opens the
connection to the enterprise (through a TCP proxy owned by the test where the link
must be cut), forwards its subtree up and receives commands down. Also against
Mosquitto as the remote. Every broker is stopped by its PID (broker_factory); the
proxy is closed in teardown.
"""

import socket
import subprocess
import threading
import time

import pytest

from conftest import (IS_MOSQUITTO, TIMEOUT, Client, PacketTypes, props, uid, wait_retained, wait_until)
import certs
import mqtt_raw

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="bridges are Strata's")

DRAIN_TIMEOUT = 30.0


class TcpProxy:
    """127.0.0.1:port -> target. cut() drops every connection and refuses new ones
    (accepted and closed at once) until restore(); retarget() follows a restarted
    remote to its new port."""

    def __init__(self, target_port):
        self.target = target_port
        self.blocked = False
        self.lock = threading.Lock()
        self.pairs = []
        self.accepted = 0
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.port = self.srv.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with self.lock:
                blocked = self.blocked
                self.accepted += 1
            if blocked:
                c.close()
                continue
            try:
                r = socket.create_connection(("127.0.0.1", self.target), timeout=TIMEOUT)
            except OSError:
                c.close()
                continue
            r.settimeout(None)
            with self.lock:
                self.pairs.append((c, r))
            threading.Thread(target=self._pump, args=(c, r), daemon=True).start()
            threading.Thread(target=self._pump, args=(r, c), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            self.blocked = True
            pairs, self.pairs = self.pairs, []
        for c, r in pairs:
            for s in (c, r):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def restore(self):
        with self.lock:
            self.blocked = False

    def retarget(self, port):
        with self.lock:
            self.target = port

    def close(self):
        self.cut()
        self.srv.close()


@pytest.fixture
def proxies():
    made = []

    def make(port):
        p = TcpProxy(port)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def bridge_cfg(port, name="up", version=5, forward=None, receive=None, scheme="mqtt", **extra):
    b = {
        "name": name,
        "remote": "%s://127.0.0.1:%d" % (scheme, port),
        "protocol_version": version,
        "client_id": "plant-" + name,
        "reconnect": {"min_ms": 50, "max_ms": 400},
        "forward": forward if forward is not None else [
            {"local": "acme/dresden/#", "remote": "acme/dresden/#", "qos": 1}],
        "receive": receive if receive is not None else [
            {"remote": "acme/dresden/+/cmd/#", "local": "acme/dresden/+/cmd/#", "qos": 1}],
    }
    b.update(extra)
    return b


def plant_with(broker_factory, *bridges, **over):
    over.setdefault("sys", {"interval": 1})
    return broker_factory(bridges=list(bridges), **over)


def wait_connected(clients, plant, name="up", value="1", timeout=DRAIN_TIMEOUT):
    """Waits for $SYS/broker/bridges/NAME/connected to read `value` (published every second)."""
    watcher = clients(plant)
    watcher.subscribe("$SYS/broker/bridges/%s/connected" % name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            m = watcher.get(timeout=max(0.05, deadline - time.monotonic()))
        except AssertionError:
            break
        if m.payload.decode() == value:
            watcher.close()
            return
    raise AssertionError("bridge %s did not report connected=%s; plant stderr:\n%s"
                         % (name, value, plant.stderr_text()[-3000:]))


def sys_value(clients, broker, topic, timeout=TIMEOUT):
    c = clients(broker)
    c.subscribe(topic)
    v = c.get(timeout=timeout).payload.decode()
    c.close()
    return v


def wait_sys(clients, broker, topic, predicate, timeout=DRAIN_TIMEOUT):
    return wait_retained(clients, broker, topic, predicate, timeout)


def receive_all(sub, expected, timeout=DRAIN_TIMEOUT):
    """Collects messages until every payload of `expected` arrived; returns them in
    arrival order (QoS 1 may repeat one)."""
    want = set(expected)
    got = []
    deadline = time.monotonic() + timeout
    while want:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("missing %d of %d messages, e.g. %r" % (len(want), len(expected), sorted(want)[:5]))
        m = sub.get(timeout=remaining)
        p = m.payload.decode()
        got.append(p)
        want.discard(p)
    return got


def assert_in_order(got, expected):
    """Every expected payload arrived, first occurrences in publish order."""
    first = []
    seen = set()
    for p in got:
        if p not in seen:
            seen.add(p)
            first.append(p)
    assert [p for p in first if p in set(expected)] == list(expected)


def fill_backlog(clients, plant, payloads, qos=1):
    """Publishes each payload on the plant (QoS 1: acknowledged once stored) and waits
    until the bridge's backlog holds them all."""
    pub = clients(plant)
    for p in payloads:
        pub.publish("acme/dresden/press-7/count", p, qos=qos)
    pub.close()
    wait_sys(clients, plant, "$SYS/broker/bridges/up/backlog/messages", lambda v: v == str(len(payloads)))


def cut_off_plant(broker_factory, clients, proxies, plant_over=None, **bridge_extra):
    """An enterprise with a subscriber on acme/dresden/#, a plant bridged to it through a
    proxy, and the proxy cut (the plant saw the link go down)."""
    enterprise = broker_factory()
    proxy = proxies(enterprise.port)
    plant = plant_with(broker_factory, bridge_cfg(proxy.port, **bridge_extra), **(plant_over or {}))
    wait_connected(clients, plant)
    up = clients(enterprise)
    up.subscribe("acme/dresden/#", qos=1)
    proxy.cut()
    wait_connected(clients, plant, value="0")
    return enterprise, proxy, plant, up


# ------------------------------------------------------------------ basics

@pytest.mark.parametrize("version", [5, 4])
def test_forward_up_and_commands_down(broker_factory, clients, version):
    enterprise = broker_factory()
    plant = plant_with(broker_factory, bridge_cfg(enterprise.port, version=version))
    wait_connected(clients, plant)

    up = clients(enterprise, version=version)
    up.subscribe("acme/#", qos=1)
    local = clients(plant, version=version)
    local.subscribe("acme/#", qos=1)
    pub = clients(plant, version=version)
    for i in range(20):
        pub.publish("acme/dresden/press-7/temp", "t%d" % i, qos=1)
    pub.publish("acme/dresden/press-7/state", "running", qos=1, retain=True)
    pub.publish("acme/berlin/press-1/temp", "not-forwarded", qos=1)

    got = receive_all(up, ["t%d" % i for i in range(20)] + ["running"])
    assert_in_order(got, ["t%d" % i for i in range(20)] + ["running"])
    up.expect_none(0.3)  # acme/berlin is not forwarded

    # The retained flag was carried: a late subscriber upstairs gets the state.
    late = clients(enterprise, version=version)
    late.subscribe("acme/dresden/press-7/state", qos=1)
    m = late.get()
    assert m.payload == b"running" and m.retain

    # A command from the enterprise reaches the plant once, and is not echoed back up.
    hq = clients(enterprise, version=version)
    hq.subscribe("acme/dresden/press-7/cmd/#", qos=1)
    hq.publish("acme/dresden/press-7/cmd/stop", "now", qos=1)
    assert hq.get().payload == b"now"
    # the plant's own subscriber: the command arrived (after the 22 local messages)
    assert len(local.until(b"now")) == 22
    local.expect_none(0.5)
    hq.expect_none(0.5)  # no second copy from the plant


def test_topic_remapping_and_v5_properties(broker_factory, clients):
    enterprise = broker_factory()
    plant = plant_with(broker_factory, bridge_cfg(
        enterprise.port,
        forward=[{"local": "acme/dresden/#", "remote": "plants/dresden/acme/dresden/#", "qos": 1}],
        receive=[{"remote": "plants/dresden/cmd/#", "local": "acme/dresden/cmd/#", "qos": 1}]))
    wait_connected(clients, plant)
    up = clients(enterprise)
    up.subscribe("plants/#", qos=1)
    pub = clients(plant)
    pub.publish("acme/dresden/line-2/oee", "0.87", qos=1,
                properties=props(PacketTypes.PUBLISH, UserProperty=[("unit", "ratio")], ContentType="text/plain",
                                 MessageExpiryInterval=300))
    m = up.get()
    assert m.topic == "plants/dresden/acme/dresden/line-2/oee"
    assert m.payload == b"0.87"
    assert ("unit", "ratio") in m.properties.UserProperty
    # marked with the plant's broker id (default: host name and store path)
    assert [v for k, v in m.properties.UserProperty if k == "strata-via"] == [
        "%s:%s" % (socket.gethostname(), plant.config["persistence"]["path"])]
    assert m.properties.ContentType == "text/plain"
    assert 0 < m.properties.MessageExpiryInterval <= 300

    local = clients(plant)
    local.subscribe("acme/dresden/cmd/#", qos=1)
    clients(enterprise).publish("plants/dresden/cmd/restart", "go", qos=1)
    assert local.get().topic == "acme/dresden/cmd/restart"


def test_bad_bridge_config_is_refused(tmp_path):
    from conftest import DEFAULT_CONFIG, STRATA_BIN, merge, to_yaml
    cases = [
        ({"name": "x", "remote": "http://h:1", "forward": [{"local": "a/#", "remote": "a/#"}]}, "mqtt://"),
        ({"name": "x", "remote": "mqtt://127.0.0.1:1", "forward": [{"local": "a/+/#", "remote": "b/#"}]},
         "same wildcard levels"),
        ({"name": "x", "remote": "mqtt://127.0.0.1:1"}, "at least one forward or receive rule"),
        ({"name": "x", "remote": "mqtt://127.0.0.1:1", "forward": [{"local": "a/#", "remote": "a/#", "qos": 2}]},
         "qos"),
    ]
    for i, (bridge, needle) in enumerate(cases):
        cfg = merge(DEFAULT_CONFIG, {"bridges": [bridge]})
        cfg["persistence"]["path"] = str(tmp_path / ("d%d" % i))
        path = tmp_path / ("bad%d.yaml" % i)
        path.write_text(to_yaml(cfg))
        r = subprocess.run([STRATA_BIN, "--config", str(path)], capture_output=True, timeout=30)
        assert r.returncode != 0
        assert needle in r.stderr.decode(), r.stderr.decode()


def test_client_cannot_take_a_bridge_client_id(broker, clients):
    c = clients(broker, connect=False, client_id="$bridge/up")
    c.connect(expect_rc=0x85)


# ------------------------------------------------------------------ store and forward

def test_outage_backlog_drains_in_order(broker_factory, clients, proxies):
    enterprise, proxy, plant, up = cut_off_plant(broker_factory, clients, proxies)
    pub = clients(plant)
    expected = ["m%04d" % i for i in range(300)]
    for p in expected:
        pub.publish("acme/dresden/press-7/count", p, qos=1)  # each PUBACKed by the plant
    wait_sys(clients, plant, "$SYS/broker/bridges/up/backlog/messages", lambda v: int(v) >= 300)
    up.expect_none(0.2)

    proxy.restore()
    got = receive_all(up, expected)
    assert_in_order(got, expected)
    wait_sys(clients, plant, "$SYS/broker/bridges/up/backlog/messages", lambda v: v == "0")
    assert int(sys_value(clients, plant, "$SYS/broker/bridges/up/last_ack_ms")) > 0


def test_plant_crash_with_backlog_then_drain(broker_factory, clients, proxies):
    enterprise = broker_factory()
    proxy = proxies(enterprise.port)
    cfg = bridge_cfg(proxy.port)
    plant = plant_with(broker_factory, cfg, persistence={"durability": "always"})
    wait_connected(clients, plant)
    up = clients(enterprise)
    up.subscribe("acme/dresden/#", qos=1)

    proxy.cut()
    pub = clients(plant)
    expected = ["c%03d" % i for i in range(200)]
    for p in expected:
        pub.publish("acme/dresden/press-7/count", p, qos=1)
    pub.close()
    plant.crash()

    plant2 = plant_with(broker_factory, cfg, persistence={"durability": "always", "path": plant.config["persistence"]["path"]})
    proxy.restore()
    got = receive_all(up, expected)
    assert_in_order(got, expected)
    wait_sys(clients, plant2, "$SYS/broker/bridges/up/backlog/messages", lambda v: v == "0")


def test_enterprise_crash_loses_nothing(broker_factory, clients, proxies):
    enterprise = broker_factory()
    data = enterprise.config["persistence"]["path"]
    proxy = proxies(enterprise.port)
    plant = plant_with(broker_factory, bridge_cfg(proxy.port))
    wait_connected(clients, plant)
    # A persistent subscriber upstairs, offline while the messages flow.
    sub = clients(enterprise, client_id="hq-analytics", clean=False,
                  connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=3600))
    sub.subscribe("acme/dresden/#", qos=1)
    sub.close()

    pub = clients(plant)
    first = ["a%03d" % i for i in range(100)]
    for p in first:
        pub.publish("acme/dresden/press-7/count", p, qos=1)
    wait_sys(clients, plant, "$SYS/broker/bridges/up/backlog/messages", lambda v: v == "0")
    enterprise.crash()  # everything it acknowledged must survive
    wait_connected(clients, plant, value="0")
    second = ["b%03d" % i for i in range(100)]
    for p in second:
        pub.publish("acme/dresden/press-7/count", p, qos=1)

    enterprise2 = broker_factory(persistence={"path": data})
    proxy.retarget(enterprise2.port)
    wait_connected(clients, plant)
    sub2 = clients(enterprise2, client_id="hq-analytics", clean=False,
                   connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=3600))
    assert sub2.session_present
    got = receive_all(sub2, first + second)
    assert_in_order(got, first + second)


# ------------------------------------------------------------------ buffer policies

def test_buffer_full_drop_oldest_is_counted(broker_factory, clients, proxies):
    enterprise, proxy, plant, up = cut_off_plant(broker_factory, clients, proxies, buffer={"max_bytes": 4096, "policy": "drop-oldest"})
    pub = clients(plant)
    payload = "x" * 100
    topic = "acme/dresden/press-7/blob"  # 25 + 100 bytes each: 32 fit in 4096
    for i in range(100):
        pub.publish(topic, "%03d%s" % (i, payload), qos=1)
    kept = 4096 // (len(topic) + 103)  # 32 messages of 128 bytes fill the buffer exactly
    wait_sys(clients, plant, "$SYS/broker/bridges/up/messages/dropped", lambda v: v == str(100 - kept))
    proxy.restore()
    got = receive_all(up, ["%03d%s" % (i, payload) for i in range(100 - kept, 100)])
    assert sorted(set(got)) == ["%03d%s" % (i, payload) for i in range(100 - kept, 100)]
    up.expect_none(0.3)


def test_buffer_full_block_refuses_publishers(broker_factory, clients, raw_clients, proxies):
    enterprise = broker_factory()
    proxy = proxies(enterprise.port)
    plant = plant_with(broker_factory, bridge_cfg(proxy.port, buffer={"max_bytes": 2048, "policy": "block"}))
    wait_connected(clients, plant)
    proxy.cut()
    wait_connected(clients, plant, value="0")
    pub = raw_clients(plant, mqtt_raw.V5)
    pub.connect_ok(uid("pub"))
    codes = [pub.publish_acked("acme/dresden/press-7/blob", ("%03d" % i + "y" * 100).encode(), pid=i + 1).reason
             for i in range(40)]
    assert 0x97 in codes, codes  # Quota exceeded once full
    accepted = [i for i, c in enumerate(codes) if c < 0x80]
    refused = len(codes) - len(accepted)
    assert refused == 40 - 2048 // 128  # 16 messages of 128 bytes fit
    wait_sys(clients, plant, "$SYS/broker/bridges/up/messages/refused", lambda v: v == str(refused))

    up = clients(enterprise)
    up.subscribe("acme/dresden/#", qos=1)
    proxy.restore()
    receive_all(up, ["%03d" % i + "y" * 100 for i in accepted])


def test_latest_only_keeps_the_newest_state(broker_factory, clients, proxies):
    enterprise, proxy, plant, up = cut_off_plant(broker_factory, clients, proxies, buffer={"state_topics": "latest-only"})
    pub = clients(plant)
    for i in range(50):
        pub.publish("acme/dresden/press-7/state", "s%02d" % i, qos=1, retain=True)
        pub.publish("acme/dresden/press-7/count", "n%02d" % i, qos=1)
    proxy.restore()
    got = receive_all(up, ["n%02d" % i for i in range(50)] + ["s49"])
    states = [p for p in got if p.startswith("s")]
    assert states == ["s49"], states
    wait_sys(clients, plant, "$SYS/broker/bridges/up/messages/superseded", lambda v: v == "49")


# ------------------------------------------------------------------ backlogs past memory

def test_backlog_past_the_memory_window_survives_a_crash_and_drains_in_order(broker_factory, clients, proxies):
    enterprise, proxy, plant, up = cut_off_plant(broker_factory, clients, proxies, buffer={"memory": {"messages": 500}})
    cfg = plant.config["bridges"][0]
    started = time.monotonic()
    expected = ["p%05d" % i for i in range(5000)]
    fill_backlog(clients, plant, expected)
    # All but the memory window wait in the store only.
    assert int(sys_value(clients, plant, "$SYS/broker/bridges/up/backlog/in_store_only")) == 4500
    plant.crash()

    plant2 = plant_with(broker_factory, cfg, persistence={"path": plant.config["persistence"]["path"]})
    wait_sys(clients, plant2, "$SYS/broker/bridges/up/backlog/messages", lambda v: v == "5000")
    assert int(sys_value(clients, plant2, "$SYS/broker/bridges/up/backlog/in_store_only")) >= 4500
    # The backlog's age counts from when its first message was queued, not
    # from the restart.
    age = int(sys_value(clients, plant2, "$SYS/broker/bridges/up/backlog/oldest_age_seconds"))
    assert age >= int(time.monotonic() - started) - 1, age

    proxy.restore()
    got = receive_all(up, expected)
    assert_in_order(got, expected)
    wait_sys(clients, plant2, "$SYS/broker/bridges/up/backlog/messages", lambda v: v == "0")


def test_drain_rate_paces_the_backlog_after_an_outage(broker_factory, clients, proxies):
    enterprise, proxy, plant, up = cut_off_plant(broker_factory, clients, proxies, buffer={"drain_rate": 1000})
    expected = ["r%04d" % i for i in range(2500)]
    fill_backlog(clients, plant, expected)
    proxy.restore()
    # Timed from the first message upstairs: 2,499 more at 1,000 msg/s
    # (a burst of 100 at most) cannot take less than 2.3 s.
    first = up.get(timeout=DRAIN_TIMEOUT)
    since = time.monotonic()
    got = [first.payload.decode()] + receive_all(up, expected[1:])
    elapsed = time.monotonic() - since
    assert_in_order(got, expected)
    assert elapsed >= 2.3, elapsed


def test_qos0_durable_is_kept_offline_and_across_a_restart(broker_factory, clients, proxies):
    enterprise, proxy, plant, up = cut_off_plant(broker_factory, clients, proxies, {"persistence": {"durability": "always"}},
                                                 buffer={"qos0": "durable"})
    cfg = plant.config["bridges"][0]
    expected = ["z%03d" % i for i in range(200)]
    fill_backlog(clients, plant, expected, qos=0)
    plant.stop()  # QoS 0 waits for no commit: a clean stop writes what is pending

    plant2 = plant_with(broker_factory, cfg, persistence={"durability": "always", "path": plant.config["persistence"]["path"]})
    proxy.restore()
    got = receive_all(up, expected)
    assert got == expected
    wait_sys(clients, plant2, "$SYS/broker/bridges/up/backlog/messages", lambda v: v == "0")


def test_qos0_in_memory_does_not_outlive_the_plant(broker_factory, clients, proxies):
    # buffer.qos0: memory (the default)
    enterprise, proxy, plant, up = cut_off_plant(broker_factory, clients, proxies)
    cfg = plant.config["bridges"][0]
    pub = clients(plant)
    pub.publish("acme/dresden/press-7/count", "in memory", qos=0)
    pub.publish("acme/dresden/press-7/count", "stored", qos=1)
    wait_sys(clients, plant, "$SYS/broker/bridges/up/backlog/messages", lambda v: v == "2")
    pub.close()
    plant.stop()

    plant_with(broker_factory, cfg, persistence={"path": plant.config["persistence"]["path"]})
    proxy.restore()
    assert up.get(timeout=DRAIN_TIMEOUT).payload.decode() == "stored"
    up.expect_none(0.3)


# ------------------------------------------------------------------ loops, roles

@pytest.mark.parametrize("version", [5, 4])
def test_two_brokers_bridged_both_ways_do_not_echo(broker_factory, clients, version):
    enterprise = broker_factory()
    both = [{"local": "acme/#", "remote": "acme/#", "qos": 1}]
    plant = plant_with(broker_factory, bridge_cfg(enterprise.port, version=version, forward=both, receive=both))
    wait_connected(clients, plant)
    sp = clients(plant)
    sp.subscribe("acme/#", qos=1)
    se = clients(enterprise)
    se.subscribe("acme/#", qos=1)
    clients(plant).publish("acme/dresden/press-7/temp", "from-plant", qos=1)
    clients(enterprise).publish("acme/dresden/press-7/cmd/stop", "from-enterprise", qos=1)
    for sub in (sp, se):
        got = sorted(m.payload for m in sub.get_n(2))
        assert got == [b"from-enterprise", b"from-plant"]
    # No copy comes back around: each side saw each message once.
    sp.expect_none(1.0)
    se.expect_none(0.2)


def test_a_bridge_each_way_does_not_echo(broker_factory, clients):
    """Each broker runs its own bridge to the other on the same subtree: a message
    crosses once and is not sent back (the remote's broker id from its CONNACK
    against the message's strata-via marks)."""
    both = [{"local": "acme/#", "remote": "acme/#", "qos": 1}]
    a = broker_factory()
    a_port, a_data = a.port, a.config["persistence"]["path"]
    b = plant_with(broker_factory, bridge_cfg(a_port, name="to-a", forward=both, receive=[]))
    a.stop()
    a = plant_with(broker_factory, bridge_cfg(b.port, name="to-b", forward=both, receive=[]),
                   persistence={"path": a_data},
                   listeners=[{"name": "default", "protocol": "mqtt", "bind": "127.0.0.1:%d" % a_port}])
    wait_connected(clients, a, name="to-b")
    wait_connected(clients, b, name="to-a")
    sa = clients(a)
    sa.subscribe("acme/#", qos=1)
    sb = clients(b)
    sb.subscribe("acme/#", qos=1)
    clients(a).publish("acme/dresden/press-7/temp", "from-a", qos=1)
    clients(b).publish("acme/dresden/press-8/temp", "from-b", qos=1)
    for sub in (sa, sb):
        assert sorted(m.payload for m in sub.get_n(2)) == [b"from-a", b"from-b"]
    sa.expect_none(1.0)
    sb.expect_none(0.2)
    wait_sys(clients, a, "$SYS/broker/bridges/to-b/messages/loops", lambda v: v == "1")
    wait_sys(clients, b, "$SYS/broker/bridges/to-a/messages/loops", lambda v: v == "1")


def test_commands_are_subject_to_the_bridge_identity_roles(broker_factory, clients):
    enterprise = broker_factory()
    roles = {"line-commander": [{"allow": "publish", "on": "acme/dresden/line-2/#"},
                                {"allow": "command", "on": "acme/dresden/line-2/#"}],
             "watcher": [{"allow": "subscribe", "on": "#"}, {"allow": "subscribe", "on": "$SYS/#"}]}
    plant = plant_with(
        broker_factory,
        bridge_cfg(enterprise.port, receive=[{"remote": "acme/dresden/#", "local": "acme/dresden/#", "qos": 1}],
                   forward=[], identity="hq-bridge"),
        roles=roles, users={"hq-bridge": ["line-commander"], "anonymous": ["watcher"]},
        auth={"allow_anonymous": True, "command_subtrees": ["acme/+/+/+/+/cmd/#"]})
    wait_connected(clients, plant)
    local = clients(plant)
    local.subscribe("acme/dresden/#", qos=1)
    hq = clients(enterprise)
    hq.publish("acme/dresden/line-1/cell-1/press-1/cmd/stop", "denied", qos=1)
    hq.publish("acme/dresden/line-2/cell-1/press-7/cmd/stop", "allowed", qos=1)
    assert local.get().payload == b"allowed"
    local.expect_none(0.3)
    assert int(wait_sys(clients, plant, "$SYS/broker/bridges/up/messages/denied", lambda v: int(v) >= 1)) == 1


# ------------------------------------------------------------------ TLS, Mosquitto

def test_bridge_over_mutual_tls(broker_factory, clients, tmp_path):
    pki = certs.Pki(tmp_path)
    enterprise = broker_factory(listeners=[
        {"name": "default", "protocol": "mqtt", "bind": "127.0.0.1:0"},
        {"name": "tls", "protocol": "mqtt+tls", "bind": "127.0.0.1:0", "tls": pki.tls_config()}])
    host, port = enterprise.listeners["tls"]
    plant = plant_with(broker_factory, bridge_cfg(
        port, scheme="mqtts", tls={"ca": pki.ca.cert, "cert": pki.client_cert, "key": pki.client_key,
                                   "server_name": "localhost"}))
    wait_connected(clients, plant)
    up = clients(enterprise)
    up.subscribe("acme/#", qos=1)
    clients(plant).publish("acme/dresden/press-7/temp", "secure", qos=1)
    assert up.get().payload == b"secure"

    # A bridge with a certificate the enterprise does not trust never connects.
    rogue = plant_with(broker_factory, bridge_cfg(
        port, name="rogue", scheme="mqtts", tls={"ca": pki.ca.cert, "cert": pki.rogue_cert, "key": pki.rogue_key,
                                                 "server_name": "localhost"}))
    wait_sys(clients, rogue, "$SYS/broker/bridges/rogue/connected", lambda v: v == "0")
    assert wait_sys(clients, rogue, "$SYS/broker/bridges/rogue/connects", lambda v: True) == "0"


@pytest.fixture
def mosquitto_remote(tmp_path):
    port = None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n"
                    "log_dest stderr\nlog_type all\n" % port)
    err = open(tmp_path / "mosquitto.err", "wb")
    proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=err)
    wait_until(lambda: b"running" in (tmp_path / "mosquitto.err").read_bytes(), what="mosquitto running")

    class Remote:
        pass
    r = Remote()
    r.port, r.host, r.proc, r.log = port, "127.0.0.1", proc, tmp_path / "mosquitto.err"
    yield r
    proc.terminate()
    proc.wait(timeout=10)
    err.close()


@pytest.mark.parametrize("version", [5, 4])
def test_mosquitto_as_the_remote(broker_factory, clients, mosquitto_remote, version):
    plant = plant_with(broker_factory, bridge_cfg(mosquitto_remote.port, version=version))
    wait_connected(clients, plant)
    up = clients(mosquitto_remote, version=version)
    up.subscribe("acme/#", qos=1)
    pub = clients(plant, version=version)
    expected = ["q%02d" % i for i in range(30)]
    for p in expected:
        pub.publish("acme/dresden/press-7/count", p, qos=1)
    assert_in_order(receive_all(up, expected), expected)

    local = clients(plant, version=version)
    local.subscribe("acme/dresden/+/cmd/#", qos=1)
    up.publish("acme/dresden/press-7/cmd/start", "go", qos=1)
    assert local.get().payload == b"go"
    # Mosquitto does not send the command back to the bridge (No Local / bridge flag)
    # and the plant does not forward it up again: one copy upstairs.
    up.until(b"go")
    up.expect_none(0.5)
