"""OPC UA ingestion (issue "OPC UA ingestion"): PLC values into the namespace,
commands back down.

The PLC is the node-opcua test peer (tests/opcua/peer/server.js, installed by
`deploy/setup.sh test`), started here on 127.0.0.1 and stopped by its PID;
Strata connects to it as configured under `opcua:` and MQTT clients see the
values. Readiness of the peer is its `ready <port>` line (bounded wait).
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import threading
import queue
import time

import pytest

from conftest import IS_MOSQUITTO, Client, PacketTypes, props, uid, wait_until

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="OPC UA ingestion is Strata's")

PEER_DIR = pathlib.Path(__file__).resolve().parent.parent / "opcua" / "peer"
PEER_START_TIMEOUT = 60.0  # node-opcua takes 3-7 s, more on a loaded machine
VALUE_TIMEOUT = 30.0
USER, PASSWORD = "operator", "secret-pw"
PREFIX = "acme/dresden/press-shop/line-2/cell-1/press-7"


class Peer:
    """The node-opcua server; start() returns once it printed `ready <port>`."""

    def __init__(self, pki, port=0, extra=()):
        self.pki = pki
        self.port = port
        self.extra = list(extra)
        self.proc = None

    def start(self):
        if not (PEER_DIR / "node_modules" / "node-opcua").exists():
            raise AssertionError("%s has no node-opcua: run deploy/setup.sh test (npm ci)" % (PEER_DIR / "node_modules"))
        self.log = open(self.pki.parent / ("peer-%s.log" % self.pki.name), "ab")
        argv = [shutil.which("node") or "node", "server.js", "--pki", str(self.pki), "--port", str(self.port),
                "--user", USER, "--password", PASSWORD] + self.extra
        self.proc = subprocess.Popen(argv, cwd=str(PEER_DIR), stdout=subprocess.PIPE, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in iter(self.proc.stdout.readline, b"")] + [lines.put(None)],
                         daemon=True).start()
        deadline = time.monotonic() + PEER_START_TIMEOUT
        while True:
            try:
                line = lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("the OPC UA peer did not print `ready <port>` within %.0f s" % PEER_START_TIMEOUT)
            text = line.decode().strip()
            if text.startswith("ready "):
                self.port = int(text.split()[1])
                return self

    @property
    def endpoint(self):
        return "opc.tcp://127.0.0.1:%d" % self.port

    @property
    def certificate(self):
        return self.pki / "server_certificate.der"

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def peers(tmp_path):
    started = []

    def make(name="plc", **kw):
        p = Peer(tmp_path / name, **kw)
        started.append(p)
        return p.start()

    yield make
    for p in started:
        p.stop()


def trusted_pki(tmp_path, peer, name="client-pki"):
    """A client PKI directory that trusts the peer's certificate."""
    pki = tmp_path / name
    (pki / "trusted").mkdir(parents=True, exist_ok=True)
    shutil.copy(peer.certificate, pki / "trusted" / "plc.der")
    return pki


def source(peer, pki, name="plc1", **extra):
    s = {
        "name": name,
        "endpoint": peer.endpoint,
        "pki": str(pki),
        "publish_interval_ms": 200,
        "mappings": [
            {"node": "ns=2;s=PLC1.Line1.Counter", "topic": PREFIX + "/telemetry/count"},
            {"browse": "Objects/PLC1/Line1", "topic_prefix": PREFIX + "/telemetry/line1"},
        ],
        "writes": [{"topic": PREFIX + "/cmd/setpoint", "node": "ns=2;s=PLC1.Line1.Setpoint"}],
    }
    s.update(extra)
    return s


def start_broker(broker_factory, *sources, **over):
    over.setdefault("sys", {"interval": 1})
    return broker_factory(opcua=list(sources), **over)


def values(sub, topic, n, timeout=VALUE_TIMEOUT):
    """The next n decoded payloads published on `topic` (others skipped)."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("%d of %d values on %s" % (len(got), n, topic))
        m = sub.get(timeout=remaining)
        if m.topic == topic:
            got.append(json.loads(m.payload))
    return got


def wait_sys(clients, broker, name, leaf, predicate, timeout=VALUE_TIMEOUT):
    c = clients(broker)
    c.subscribe("$SYS/broker/opcua/%s/%s" % (name, leaf))
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = c.get(timeout=max(0.05, deadline - time.monotonic())).payload.decode()
        except AssertionError:
            break
        if predicate(last):
            c.close()
            return last
    c.close()
    raise AssertionError("$SYS/broker/opcua/%s/%s never satisfied the condition (last %r); stderr:\n%s"
                         % (name, leaf, last, broker.stderr_text()[-3000:]))


def test_values_published_as_json_none_anonymous(broker_factory, clients, peers, tmp_path):
    peer = peers()
    b = start_broker(broker_factory, source(peer, trusted_pki(tmp_path, peer)))
    sub = clients(b)
    sub.subscribe(PREFIX + "/telemetry/#")
    counts = values(sub, PREFIX + "/telemetry/count", 3)
    assert all(c["status"] == "Good" for c in counts)
    assert all(isinstance(c["value"], int) for c in counts)
    assert counts[-1]["value"] > counts[0]["value"]
    assert counts[0]["source_ts"].endswith("Z") and counts[0]["server_ts"].endswith("Z")

    # The browse mapping: every variable below Objects/PLC1/Line1, retained.
    late = clients(b)
    late.subscribe(PREFIX + "/telemetry/line1/#")
    seen = {}
    deadline = time.monotonic() + VALUE_TIMEOUT
    want = {"Counter", "Temperature", "Running", "Recipe", "Speeds", "Setpoint", "Axis/Position", "Axis/Enabled"}
    while not want <= set(seen) and time.monotonic() < deadline:
        m = late.get(timeout=max(0.05, deadline - time.monotonic()))
        seen[m.topic[len(PREFIX + "/telemetry/line1/"):]] = json.loads(m.payload)
    assert want <= set(seen), sorted(seen)
    assert isinstance(seen["Temperature"]["value"], float)
    assert seen["Running"]["value"] is True
    assert seen["Recipe"]["value"] == "R-100"
    assert isinstance(seen["Speeds"]["value"], list) and len(seen["Speeds"]["value"]) == 4

    assert int(wait_sys(clients, b, "plc1", "connected", lambda v: v == "1")) == 1
    assert int(wait_sys(clients, b, "plc1", "items", lambda v: int(v) >= 9)) >= 9
    assert int(wait_sys(clients, b, "plc1", "values", lambda v: int(v) > 0)) > 0


def test_types_as_json(broker_factory, clients, peers, tmp_path):
    peer = peers()
    b = start_broker(broker_factory, source(peer, trusted_pki(tmp_path, peer), mappings=[
        {"browse": "Objects/PLC1/Types", "topic_prefix": "plant/types"}], writes=[]))
    sub = clients(b)
    sub.subscribe("plant/types/#")
    seen = {}
    deadline = time.monotonic() + VALUE_TIMEOUT
    while len(seen) < 6 and time.monotonic() < deadline:
        m = sub.get(timeout=max(0.05, deadline - time.monotonic()))
        seen[m.topic.split("/")[-1]] = json.loads(m.payload)["value"]
    assert seen["Int16"] == -12345
    assert seen["Int64"] == 0x123456789AB
    assert seen["Float"] == 1.5
    assert seen["DateTime"] == "2024-01-02T03:04:05.678Z"
    assert seen["ByteString"] == "AAEC/v8="
    assert seen["Matrix"] == [[1, 2, 3], [4, 5, 6]]
