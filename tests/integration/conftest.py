"""Fixtures for the black-box integration tests.

Every test starts its own broker on a free port (port 0) with a config written to
its own tmp dir, so test files can run in parallel. The broker under test is the
`strata` binary (env STRATA_BIN); with BROKER=mosquitto the same tests run against
/usr/sbin/mosquitto with an equivalent mosquitto.conf, to validate the tests
themselves. Tests that only Strata can pass are marked `strata_only`; places where
Mosquitto 2.0.11 deviates from the spec are marked `mosquitto_deviation` (xfail
in that mode only). In Strata mode nothing is skipped.

Waiting is always bounded: events, queues and polls with timeouts.
"""

import copy
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes  # noqa: F401  (re-exported for the tests)
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

import mqtt_raw

BROKER = os.environ.get("BROKER", "strata")
IS_MOSQUITTO = BROKER == "mosquitto"
STRATA_BIN = os.environ.get("STRATA_BIN", "/work/main/build/broker/strata")
MOSQUITTO_BIN = os.environ.get("MOSQUITTO_BIN", "/usr/sbin/mosquitto")

TIMEOUT = 5.0          # default bound for any wait on the broker
START_TIMEOUT = 15.0   # the ASan build starts slower
STOP_TIMEOUT = 10.0

strata_only = pytest.mark.skipif(IS_MOSQUITTO, reason="Strata-specific (config, $SYS names, CLI)")


refuses_filters = pytest.mark.skipif(
    IS_MOSQUITTO, reason="Mosquitto 2.0.11 cannot be configured to refuse a subscribe filter")


def mosquitto_deviation(why):
    """Marks a spec-correct test that Mosquitto 2.0.11 is known to fail."""
    return pytest.mark.xfail(IS_MOSQUITTO, reason="Mosquitto 2.0.11: " + why, strict=False)


DEFAULT_CONFIG = {
    "listeners": [{"name": "default", "protocol": "mqtt", "bind": "127.0.0.1:0"}],
    "limits": {
        "max_connections": 100000,
        "max_packet_size": "1MiB",
        "receive_maximum": 1024,
        "topic_alias_maximum": 64,
        "max_keepalive": 3600,
        "max_queued_messages": 1000,
        "max_queued_bytes": "16MiB",
        "max_inflight": 64,
        "max_session_expiry": 4294967295,
    },
    "log": {"level": "info"},
    "persistence": {"path": None},  # filled with TMPDIR/data
    "auth": {"allow_anonymous": True},
    "access": [{"deny": "subscribe", "on": "test/nosubscribe"}],
    "sys": {"interval": 10},
    "shutdown": {"grace_ms": 2000},
}

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def to_yaml_scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dict):
        return "{" + ", ".join("%s: %s" % (k, to_yaml_scalar(x)) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(to_yaml_scalar(x) for x in v) + "]"
    s = str(v)
    if re.match(r"^\d+[KMG]i?B$", s) or (_PLAIN.match(s) and s not in ("true", "false", "null", "yes", "no", "on", "off")):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_yaml(cfg):
    """Flow-style YAML, one top-level key per line (like the documented example)."""
    return "".join("%s: %s\n" % (k, to_yaml_scalar(v)) for k, v in cfg.items())


def merge(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def size_value(v):
    if isinstance(v, int):
        return v
    m = re.match(r"^(\d+)([KMG])iB$", v)
    return int(m.group(1)) * {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}[m.group(2)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """One broker process. `port` is known once start() returns."""

    def __init__(self, tmpdir, overrides):
        self.dir = tmpdir
        self.config = merge(DEFAULT_CONFIG, overrides or {})
        if self.config["persistence"].get("path") is None:
            self.config["persistence"]["path"] = str(tmpdir / "data")
        self.host = "127.0.0.1"
        self.port = None
        self.listeners = {}  # name -> (host, port), from the "strata listening" lines
        self.proc = None
        self.stdout_lines = queue.Queue()
        self.startup_lines = []  # stdout up to "strata ready"
        self.stopped_rc = None
        self.stderr_path = tmpdir / "broker.stderr"
        self.limits = self.config["limits"]

    # -- lifecycle
    def start(self):
        if IS_MOSQUITTO:
            self._start_mosquitto()
        else:
            self._start_strata()
        return self

    def _spawn(self, argv, cwd=None, env=None):
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL, cwd=str(cwd or self.dir), env=env)
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self):
        for line in iter(self.proc.stdout.readline, b""):
            self.stdout_lines.put(line.decode("utf-8", "replace").rstrip("\n"))
        self.stdout_lines.put(None)

    def _start_strata(self):
        self.config_path = self.dir / "strata.yaml"
        self.config_path.write_text(to_yaml(self.config))
        self._spawn([STRATA_BIN, "--config", str(self.config_path)])
        self._wait_ready()

    def _wait_ready(self):
        """Reads stdout up to "strata ready", noting each listener's address."""
        deadline = time.monotonic() + START_TIMEOUT
        listening = re.compile(r"^strata listening (\S+) (\S+) (\S+):(\d+)$")
        seen = self.startup_lines
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self.stdout_lines.get(timeout=max(0.01, remaining))
            except queue.Empty:
                line = ""
            if line is None or remaining <= 0:
                self.kill()
                raise AssertionError("strata did not become ready; stdout=%r stderr=%s"
                                     % (seen, self.stderr_text()[-4000:]))
            seen.append(line)
            m = listening.match(line)
            if m:
                self.listeners[m.group(1)] = (m.group(3).strip("[]"), int(m.group(4)))
            if m and self.port is None:
                self.host, self.port = m.group(3).strip("[]"), int(m.group(4))
            if line == "strata ready":
                assert self.port is not None, "ready without a listening line: %r" % seen
                return

    def _start_mosquitto(self):
        self.port = free_port()
        lim = self.limits
        lines = [
            "per_listener_settings false",
            "listener %d 127.0.0.1" % self.port,
            "max_connections %d" % lim["max_connections"],
            "max_topic_alias %d" % lim["topic_alias_maximum"],
            "allow_anonymous true",
            "persistence false",
            # running as root, mosquitto would switch to user "mosquitto", which cannot
            # read the pytest tmp dir; this is ignored when not started as root
            "user root",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type information",  # for the "running" line
            "max_packet_size %d" % size_value(lim["max_packet_size"]),
            "max_keepalive %d" % lim["max_keepalive"],
            "max_queued_messages %d" % lim["max_queued_messages"],
            "max_queued_bytes %d" % size_value(lim["max_queued_bytes"]),
            "max_inflight_messages %d" % lim["max_inflight"],
            "sys_interval %d" % self.config["sys"]["interval"],
        ]
        # The `access` rules have no equivalent: Mosquitto 2.0.11's acl_file does not
        # refuse subscriptions, so tests of refused filters are skipped in this mode.
        self.config_path = self.dir / "mosquitto.conf"
        self.config_path.write_text("\n".join(lines) + "\n")
        self._spawn([MOSQUITTO_BIN, "-c", str(self.config_path)])
        # Ready when it logs "mosquitto version X running" (a bounded poll of its log).
        # Not by probing the port: 2.0.11 then miscounts connections for max_connections.
        deadline = time.monotonic() + START_TIMEOUT
        while not re.search(r"mosquitto version \S+ running", self.stderr_text()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError("mosquitto did not start: %s" % self.stderr_text())
            time.sleep(0.02)

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        try:
            self.stopped_rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("broker did not exit within %.0fs" % timeout)
        return self.stopped_rc

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait_exit(timeout)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)

    def crash(self):
        """kill -9, as a power cut would stop it; teardown then expects exit by SIGKILL."""
        self.kill()
        self.crashed = True
        self.stopped_rc = self.proc.returncode

    def stderr_text(self):
        try:
            self._stderr.flush()
        except (AttributeError, ValueError):
            pass
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def assert_clean_exit(self):
        err = self.stderr_text()
        assert "ERROR: AddressSanitizer" not in err, err[-6000:]
        assert "runtime error:" not in err, err[-6000:]
        assert "ERROR: LeakSanitizer" not in err, err[-6000:]
        expected = -signal.SIGKILL if getattr(self, "crashed", False) else 0
        assert self.stopped_rc == expected, "broker exit code %r; stderr tail:\n%s" % (self.stopped_rc, err[-4000:])

    def assert_alive(self):
        """The process is running and still serves a fresh client."""
        assert self.proc.poll() is None, "broker died: %s" % self.stderr_text()[-4000:]
        c = mqtt_raw.RawClient(self.port, self.host)
        try:
            c.connect_ok("alive-" + uuid.uuid4().hex[:8])
            c.ping()
        finally:
            c.disconnect()

    # -- convenience
    def raw(self, version=mqtt_raw.V311, timeout=TIMEOUT):
        return mqtt_raw.RawClient(self.port, self.host, version=version, timeout=timeout)


@pytest.fixture
def broker_factory(tmp_path):
    """start_broker(**overrides) -> running Broker; every broker is stopped in teardown
    (SIGTERM, killed after a bound) and must exit 0 without sanitizer reports."""
    started = []
    count = [0]

    def start(**overrides):
        count[0] += 1
        d = tmp_path / ("broker%d" % count[0])
        d.mkdir()
        b = Broker(d, overrides)
        started.append(b)
        return b.start()

    yield start
    errors = []
    for b in started:
        try:
            if b.stopped_rc is None:
                b.stop()
            b.assert_clean_exit()
        except AssertionError as e:
            errors.append(str(e))
        finally:
            b.kill()
    assert not errors, "\n".join(errors)


@pytest.fixture
def broker(broker_factory):
    return broker_factory()


# ---------------------------------------------------------------- paho clients

def uid(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def props(packet_type, **kw):
    """props(PacketTypes.PUBLISH, MessageExpiryInterval=5, UserProperty=[("a","1")])"""
    p = Properties(packet_type)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


class Client:
    """A paho client driven by its own network thread, with no automatic reconnect.
    Received messages go to `self.messages` (a queue)."""

    def __init__(self, broker, client_id=None, version=5, clean=True, keepalive=60,
                 will=None, connect_props=None, transport="tcp"):
        self.broker = broker
        self.version = version
        self.client_id = uid("paho") if client_id is None else client_id
        proto = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
        if version == 5:
            self.c = mqtt.Client(client_id=self.client_id, protocol=proto, transport=transport)
        else:
            self.c = mqtt.Client(client_id=self.client_id, clean_session=clean, protocol=proto,
                                 transport=transport)
        self.clean = clean
        self.keepalive = keepalive
        # TLS and WebSocket sockets must not be written by two threads at once:
        # then every write is left to the network thread (see connect()).
        self.single_writer = transport != "tcp"
        self.connect_props = connect_props
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connack = None
        self.disconnect_rc = None
        self._acks = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if will:
            self.c.will_set(will["topic"], will.get("payload"), will.get("qos", 0),
                            will.get("retain", False), will.get("props"))
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_disconnect = self._on_disconnect

    # callbacks (network thread)
    def _on_connect(self, c, u, flags, rc, properties=None):
        self.connack = (flags, rc, properties)
        self.connected.set()

    def _on_disconnect(self, c, u, rc, properties=None):
        self.disconnect_rc = rc
        self.disconnected.set()

    def _ack_event(self, mid):
        with self._lock:
            return self._acks.setdefault(mid, [threading.Event(), None])

    def _on_subscribe(self, c, u, mid, granted, properties=None):
        e = self._ack_event(mid)
        e[1] = granted
        e[0].set()

    def _on_unsubscribe(self, c, u, mid, *rest):
        e = self._ack_event(mid)
        e[1] = rest
        e[0].set()

    def _loop(self):
        while not self._stop.is_set():
            rc = self.c.loop(timeout=0.02)
            if rc not in (mqtt.MQTT_ERR_SUCCESS,):
                if self.disconnected.is_set() or rc == mqtt.MQTT_ERR_NO_CONN:
                    self._stop.wait(0.02)

    # API
    def tls(self, **kw):
        """paho's tls_set(**kw), before connect()."""
        self.c.tls_set(**kw)
        self.single_writer = True
        return self

    def connect(self, expect_rc=0, timeout=TIMEOUT):
        kw = {}
        if self.version == 5:
            kw["clean_start"] = self.clean
            if self.connect_props is not None:
                kw["properties"] = self.connect_props
        self.c.connect(self.broker.host, self.broker.port, keepalive=self.keepalive, **kw)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        if self.single_writer:
            # paho writes from the calling thread only when it has no loop thread
            self.c._thread = self._thread
        assert self.connected.wait(timeout), "no CONNACK"
        flags, rc, _ = self.connack
        if expect_rc is not None:
            assert rc == expect_rc, "CONNACK %r" % (rc,)
        return self

    @property
    def session_present(self):
        return bool(self.connack[0].get("session present"))

    def subscribe(self, topic, qos=0, options=None, properties=None, timeout=TIMEOUT):
        """Returns the granted QoS / reason codes as a list of ints."""
        if self.version == 5:
            opts = options or SubscribeOptions(qos=qos)
            rc, mid = self.c.subscribe(topic, options=opts, properties=properties)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        e = self._ack_event(mid)
        assert e[0].wait(timeout), "no SUBACK"
        return [g.value if hasattr(g, "value") else g for g in e[1]]

    def unsubscribe(self, topic, timeout=TIMEOUT):
        rc, mid = self.c.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        e = self._ack_event(mid)
        assert e[0].wait(timeout), "no UNSUBACK"
        return e[1]

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None, timeout=TIMEOUT):
        info = self.c.publish(topic, payload, qos, retain, properties)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, info.rc
        info.wait_for_publish(timeout)
        assert info.is_published(), "publish to %s not completed" % topic
        return info

    def get(self, timeout=TIMEOUT):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("%s: no message within %.1fs" % (self.client_id, timeout))

    def get_n(self, n, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        return [self.get(max(0.01, deadline - time.monotonic())) for _ in range(n)]

    def until(self, payload, timeout=TIMEOUT):
        """Messages received before the one carrying `payload` (a marker)."""
        if isinstance(payload, str):
            payload = payload.encode()
        before = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.get(max(0.01, deadline - time.monotonic()))
            if m.payload == payload:
                return before
            before.append(m)

    def expect_none(self, seconds=0.5):
        try:
            m = self.messages.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError("unexpected message on %s: %r" % (m.topic, m.payload))

    def disconnect(self, reason=0, props=()):
        """Sends DISCONNECT (reason/props as in mqtt_raw) and waits until the broker has
        closed the connection: when this returns the broker has processed the
        DISCONNECT, so the session is offline. (paho's own disconnect() closes the
        socket at once, which would leave that ordering to chance.)"""
        if self._thread is None or not self.c.is_connected():
            self.close()
            return
        wait_until(lambda: not self.c._out_packet, what="paho to flush its output")
        self._stop.set()
        self._thread.join(TIMEOUT)
        s = self.c.socket()
        version = mqtt_raw.V5 if self.version == 5 else mqtt_raw.V311
        try:
            s.settimeout(TIMEOUT)
            s.sendall(mqtt_raw.disconnect(reason, props, version))
            while s.recv(65536):  # discard anything in flight until the broker closes
                pass
        except socket.timeout:
            raise AssertionError("%s: broker did not close after DISCONNECT" % self.client_id)
        except OSError:
            pass
        self.disconnected.set()
        self.close()

    def quit(self):
        """Stops the network thread, then sends DISCONNECT through paho itself (any
        transport: TLS, WebSocket) and closes. Unlike disconnect() it does not wait for
        the broker to close the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(TIMEOUT)
        self.c._thread = None
        if self.c.is_connected():
            self.c.disconnect()
        self.close()

    def close(self):
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(TIMEOUT)
        try:
            self.c.socket() and self.c.socket().close()
        except OSError:
            pass


@pytest.fixture
def clients():
    """client(broker, **kw) -> connected paho Client; all closed in teardown."""
    made = []

    def make(broker, connect=True, expect_rc=0, **kw):
        c = Client(broker, **kw)
        made.append(c)
        if connect:
            c.connect(expect_rc=expect_rc)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def raw_clients():
    """raw(broker, version) -> RawClient; all closed in teardown."""
    made = []

    def make(broker, version=mqtt_raw.V311, timeout=TIMEOUT):
        c = broker.raw(version, timeout)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def wait_retained(clients, broker, topic, predicate, timeout=TIMEOUT):
    """Subscribes to `topic` (a retained state value such as $SYS/...) and returns the
    first payload (text) for which predicate() holds, within `timeout`."""
    c = clients(broker)
    c.subscribe(topic)
    deadline = time.monotonic() + timeout
    last = None
    try:
        while time.monotonic() < deadline:
            try:
                last = c.get(timeout=max(0.05, deadline - time.monotonic())).payload.decode()
            except AssertionError:
                break
            if predicate(last):
                return last
    finally:
        c.close()
    raise AssertionError("%s never satisfied the condition (last %r); stderr:\n%s"
                         % (topic, last, broker.stderr_text()[-3000:]))


def wait_until(predicate, timeout=TIMEOUT, interval=0.05, what="condition"):
    """Bounded poll: returns the first truthy value of predicate()."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


# ---------------------------------------------------------------- mosquitto clients

MOSQUITTO_PUB = "/usr/bin/mosquitto_pub"
MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"


def mosquitto_pub(broker, *args, input=None, timeout=TIMEOUT):
    argv = [MOSQUITTO_PUB, "-h", broker.host, "-p", str(broker.port)] + list(args)
    r = subprocess.run(argv, input=input, capture_output=True, timeout=timeout)
    assert r.returncode == 0, "mosquitto_pub failed (%d): %s" % (r.returncode, r.stderr.decode())
    return r


class MosquittoSub:
    """mosquitto_sub in debug mode (-d) so that start() can return once its SUBACK
    arrived; payload lines are told apart from debug lines by a -F prefix."""

    def __init__(self, broker, *args):
        # stdbuf: line-buffered stdout through the pipe, so lines arrive as they happen
        self.argv = ["stdbuf", "-oL", MOSQUITTO_SUB, "-d", "-F", "PAYLOAD:%p", "-h", broker.host,
                     "-p", str(broker.port)] + list(args)
        self.lines = queue.Queue()

    def start(self, timeout=TIMEOUT):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            line = self._next(deadline)
            if "received SUBACK" in line:
                return self

    def _read(self):
        for line in iter(self.proc.stdout.readline, b""):
            self.lines.put(line.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def _next(self, deadline):
        try:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError("mosquitto_sub: nothing within the timeout")
        if line is None:
            raise EOFError("mosquitto_sub exited")
        return line

    def payloads(self, n, timeout=TIMEOUT):
        """The next n payload lines (debug lines filtered out)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            line = self._next(deadline)
            if line.startswith("PAYLOAD:"):
                out.append(line[len("PAYLOAD:"):])
        return out

    def wait(self, timeout=TIMEOUT):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def mosquitto_subs():
    made = []

    def make(broker, *args):
        s = MosquittoSub(broker, *args).start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()
