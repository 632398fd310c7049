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
import socket
import subprocess
import threading
import queue
import time

import pytest

from conftest import IS_MOSQUITTO, Client, PacketTypes, props, uid, wait_retained, wait_until

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
    return wait_retained(clients, broker, "$SYS/broker/opcua/%s/%s" % (name, leaf), predicate, timeout)


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


def test_bad_status_codes_are_kept(broker_factory, clients, peers, tmp_path):
    peer = peers()
    b = start_broker(broker_factory, source(peer, trusted_pki(tmp_path, peer), writes=[], mappings=[
        {"browse": "Objects/PLC1/Line2", "topic_prefix": "plant/line2"}]))
    sub = clients(b)
    sub.subscribe("plant/line2/Broken")
    broken = values(sub, "plant/line2/Broken", 1)[0]
    assert broken["status"] == "BadSensorFailure", broken
    assert broken["status_code"] == 0x808C0000 and "value" in broken


# ------------------------------------------------------------------ write-back

def test_write_back_replies_and_the_value_follows(broker_factory, clients, peers, tmp_path):
    peer = peers()
    b = start_broker(broker_factory, source(peer, trusted_pki(tmp_path, peer)))
    watch = clients(b)
    watch.subscribe(PREFIX + "/telemetry/line1/Setpoint")
    assert values(watch, PREFIX + "/telemetry/line1/Setpoint", 1)[0]["value"] == 42.0
    wait_sys(clients, b, "plc1", "items", lambda v: int(v) >= 9)

    # 5.0: the reply goes to the Response Topic with the Correlation Data.
    op = clients(b)
    op.subscribe("ops/replies/#")
    op.publish(PREFIX + "/cmd/setpoint", json.dumps({"value": 55.5}), qos=1,
               properties=props(PacketTypes.PUBLISH, ResponseTopic="ops/replies/1", CorrelationData=b"req-1"))
    r = op.get(timeout=VALUE_TIMEOUT)
    assert r.topic == "ops/replies/1"
    assert json.loads(r.payload) == {"status": "Good"}
    assert r.properties.CorrelationData == b"req-1"
    assert [v["value"] for v in values(watch, PREFIX + "/telemetry/line1/Setpoint", 1)] == [55.5]

    # 3.1.1 (no Response Topic): the reply is on <topic>/reply; a bare JSON number is a value too.
    old = Client(b, version=3).connect()
    old.subscribe(PREFIX + "/cmd/setpoint/reply")
    old.publish(PREFIX + "/cmd/setpoint", "12", qos=1)
    assert json.loads(old.get(timeout=VALUE_TIMEOUT).payload) == {"status": "Good"}
    assert [v["value"] for v in values(watch, PREFIX + "/telemetry/line1/Setpoint", 1)] == [12.0]
    old.close()
    assert int(wait_sys(clients, b, "plc1", "writes", lambda v: int(v) >= 2)) == 2


def test_write_back_refuses_bad_payloads_clearly(broker_factory, clients, peers, tmp_path):
    peer = peers()
    b = start_broker(broker_factory, source(peer, trusted_pki(tmp_path, peer)))
    op = clients(b)
    op.subscribe(PREFIX + "/cmd/setpoint/reply")
    for payload, needle in ((b"not json", "not JSON"), (json.dumps({"value": "fast"}), "Double"),
                            (json.dumps([1, 2]), "Double")):
        op.publish(PREFIX + "/cmd/setpoint", payload, qos=1)
        reply = json.loads(op.get(timeout=VALUE_TIMEOUT).payload)
        assert reply["status"] == "BadTypeMismatch", reply
        assert needle in reply["error"], reply
    assert int(wait_sys(clients, b, "plc1", "write_errors", lambda v: int(v) >= 3)) == 3
    # The source is still fine: a good write goes through.
    op.publish(PREFIX + "/cmd/setpoint", "7.25", qos=1)
    assert json.loads(op.get(timeout=VALUE_TIMEOUT).payload) == {"status": "Good"}


def test_commands_need_the_command_grant(broker_factory, clients, raw_clients, peers, tmp_path):
    import mqtt_raw
    peer = peers()
    writes = [{"topic": PREFIX + "/cmd/setpoint", "node": "ns=2;s=PLC1.Line1.Setpoint"},
              {"topic": PREFIX + "/cmd/enable", "node": "ns=2;s=PLC1.Line1.Axis.Enabled"}]
    roles = {
        "gateway": [{"allow": "publish", "on": "acme/+/+/+/+/+/telemetry/#"},
                    # replies are under the command subtree: publishing them takes the grant
                    {"allow": "publish", "on": "acme/+/+/+/+/+/cmd/+/reply"},
                    {"allow": "command", "on": "acme/+/+/+/+/+/cmd/+/reply"}],
        "setter": [{"allow": "subscribe", "on": "#"}, {"allow": "subscribe", "on": "$SYS/#"},
                   {"allow": "publish", "on": PREFIX + "/cmd/setpoint"},
                   {"allow": "command", "on": PREFIX + "/cmd/setpoint"}],
    }
    b = start_broker(broker_factory, source(peer, trusted_pki(tmp_path, peer), writes=writes, identity="plc-gateway"),
                     roles=roles, users={"plc-gateway": ["gateway"], "anonymous": ["setter"]},
                     auth={"allow_anonymous": True, "command_subtrees": ["acme/+/+/+/+/+/cmd/#"]})
    watch = clients(b)
    watch.subscribe(PREFIX + "/#")
    wait_sys(clients, b, "plc1", "items", lambda v: int(v) >= 9)

    raw = raw_clients(b, mqtt_raw.V5)
    raw.connect_ok(uid("op"))
    assert raw.publish_acked(PREFIX + "/cmd/enable", b"true").reason == 0x87
    assert raw.publish_acked(PREFIX + "/cmd/setpoint", b"99").reason == 0
    got = {}
    deadline = time.monotonic() + VALUE_TIMEOUT
    while "reply" not in got and time.monotonic() < deadline:
        m = watch.get(timeout=max(0.05, deadline - time.monotonic()))
        if m.topic == PREFIX + "/cmd/setpoint/reply":
            got["reply"] = json.loads(m.payload)
        elif m.topic.endswith("/cmd/enable/reply"):
            raise AssertionError("a refused command was written: %r" % m.payload)
    assert got["reply"] == {"status": "Good"}
    # Axis/Enabled kept its value; the write counter saw one write only.
    assert int(wait_sys(clients, b, "plc1", "writes", lambda v: v != "0")) == 1
    assert int(wait_sys(clients, b, "plc1", "write_errors", lambda v: True)) == 0
    enabled = clients(b)
    enabled.subscribe(PREFIX + "/telemetry/line1/Axis/Enabled")
    assert values(enabled, PREFIX + "/telemetry/line1/Axis/Enabled", 1)[0]["value"] is False


def test_values_outside_the_identity_grants_are_denied(broker_factory, clients, peers, tmp_path):
    peer = peers()
    roles = {"gateway": [{"allow": "publish", "on": PREFIX + "/telemetry/count"}],
             "watcher": [{"allow": "subscribe", "on": "#"}, {"allow": "subscribe", "on": "$SYS/#"}]}
    b = start_broker(broker_factory, source(peer, trusted_pki(tmp_path, peer), writes=[], identity="plc-gateway"),
                     roles=roles, users={"plc-gateway": ["gateway"], "anonymous": ["watcher"]},
                     auth={"allow_anonymous": True})
    sub = clients(b)
    sub.subscribe(PREFIX + "/telemetry/#")
    assert values(sub, PREFIX + "/telemetry/count", 2)
    assert int(wait_sys(clients, b, "plc1", "denied", lambda v: int(v) > 0)) > 0
    # Nothing below line1 (not granted) was published.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            m = sub.get(timeout=max(0.05, deadline - time.monotonic()))
        except AssertionError:
            break
        assert m.topic == PREFIX + "/telemetry/count", m.topic


# ------------------------------------------------------------------ security

@pytest.mark.parametrize("policy,mode,user", [
    ("Basic256Sha256", "SignAndEncrypt", True),
    ("Aes128_Sha256_RsaOaep", "SignAndEncrypt", False),
    ("Aes128_Sha256_RsaOaep", "Sign", True),
])
def test_secure_channels_and_users(broker_factory, clients, peers, tmp_path, policy, mode, user):
    peer = peers(extra=["--no-anonymous"] if user else [])
    extra = {"security": {"policy": policy, "mode": mode}}
    if user:
        extra["user"] = {"username": USER, "password": PASSWORD}
    b = start_broker(broker_factory, source(peer, trusted_pki(tmp_path, peer), **extra))
    sub = clients(b)
    sub.subscribe(PREFIX + "/telemetry/count")
    counts = values(sub, PREFIX + "/telemetry/count", 2)
    assert counts[1]["value"] > counts[0]["value"]
    op = clients(b)
    op.subscribe(PREFIX + "/cmd/setpoint/reply")
    op.publish(PREFIX + "/cmd/setpoint", "3.5", qos=1)
    assert json.loads(op.get(timeout=VALUE_TIMEOUT).payload) == {"status": "Good"}


def test_wrong_password_is_refused_clearly(broker_factory, clients, peers, tmp_path):
    peer = peers(extra=["--no-anonymous"])
    b = start_broker(broker_factory, source(peer, trusted_pki(tmp_path, peer), user={"username": USER,
                                                                                   "password": "wrong"}))
    err = wait_sys(clients, b, "plc1", "last_error", lambda v: "BadUserAccessDenied" in v)
    assert "BadUserAccessDenied" in err
    assert wait_sys(clients, b, "plc1", "connected", lambda v: True) == "0"
    wait_until(lambda: "BadUserAccessDenied" in b.stderr_text(), what="a log line naming BadUserAccessDenied")
    # The broker itself is unaffected.
    c = clients(b)
    c.subscribe("x/y")
    c.publish("x/y", "still here")
    assert c.get().payload == b"still here"


def test_untrusted_server_certificate_is_refused_and_filed(broker_factory, clients, peers, tmp_path):
    peer = peers()
    pki = tmp_path / "empty-pki"
    b = start_broker(broker_factory, source(peer, pki, security={"policy": "Basic256Sha256", "mode": "Sign"}))
    err = wait_sys(clients, b, "plc1", "last_error", lambda v: "BadCertificateUntrusted" in v)
    assert "BadCertificateUntrusted" in err
    assert wait_sys(clients, b, "plc1", "connected", lambda v: True) == "0"
    # Filed under rejected/ for the operator to move to trusted/.
    wait_until(lambda: any((pki / "rejected").glob("*")) if (pki / "rejected").exists() else False,
               what="the server certificate under rejected/")
    # Once trusted, the next attempt connects without a broker restart.
    (pki / "trusted").mkdir(exist_ok=True)
    for f in (pki / "rejected").glob("*"):
        f.rename(pki / "trusted" / f.name)
    assert wait_sys(clients, b, "plc1", "connected", lambda v: v == "1", timeout=60) == "1"


# ------------------------------------------------------------------ outages

def test_server_restart_values_resume_without_broker_restart(broker_factory, clients, peers, tmp_path):
    peer = peers()
    b = start_broker(broker_factory, source(peer, trusted_pki(tmp_path, peer)))
    sub = clients(b)
    sub.subscribe(PREFIX + "/telemetry/count")
    assert values(sub, PREFIX + "/telemetry/count", 2)
    port = peer.port
    peer.stop(signal.SIGKILL)
    wait_sys(clients, b, "plc1", "connected", lambda v: v == "0")
    # MQTT is served while the PLC is down.
    c = clients(b)
    c.subscribe("x/y")
    c.publish("x/y", "up")
    assert c.get().payload == b"up"

    again = peers(name="plc", port=port)
    assert again.port == port
    wait_sys(clients, b, "plc1", "connected", lambda v: v == "1", timeout=60)
    # The counter restarted at 0 with the server: small values again, rising.
    got = values(sub, PREFIX + "/telemetry/count", 3, timeout=60)
    while got[-1]["value"] > 50:
        got = values(sub, PREFIX + "/telemetry/count", 1)
    assert int(wait_sys(clients, b, "plc1", "connects", lambda v: int(v) >= 2)) >= 2


def test_server_down_at_start_does_not_hold_the_broker(broker_factory, clients, peers, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    first = peers(name="plc")  # only for its certificate
    pki = trusted_pki(tmp_path, first)
    first.stop()
    cfg = source(first, pki)
    cfg["endpoint"] = "opc.tcp://127.0.0.1:%d" % port
    b = start_broker(broker_factory, cfg)
    c = clients(b)
    c.subscribe("x/y")
    c.publish("x/y", "up")
    assert c.get().payload == b"up"
    assert wait_sys(clients, b, "plc1", "connected", lambda v: True) == "0"
    sub = clients(b)
    sub.subscribe(PREFIX + "/telemetry/count")
    peers(name="plc", port=port)
    assert values(sub, PREFIX + "/telemetry/count", 2, timeout=60)


# ------------------------------------------------------------------ config

def test_bad_opcua_config_is_refused(tmp_path):
    from conftest import DEFAULT_CONFIG, STRATA_BIN, merge, to_yaml
    good = {"name": "plc1", "endpoint": "opc.tcp://127.0.0.1:4840",
            "mappings": [{"node": "ns=2;s=PLC1.Line1.Counter", "topic": "a/b"}]}
    cases = [
        ({"endpoint": "http://127.0.0.1:4840"}, "opc.tcp://"),
        ({"mappings": [{"node": "ns=x;q=1", "topic": "a/b"}]}, "OPC UA node id"),
        ({"mappings": [{"node": "ns=2;i=5", "topic": "a/+"}]}, "without wildcards"),
        ({"mappings": [{"browse": "Objects/PLC1"}]}, "topic_prefix"),
        ({"security": {"policy": "Basic256Sha256", "mode": "None"}}, "policy None goes with mode None"),
        ({"security": {"policy": "Basic128Rsa15", "mode": "Sign"}}, "Basic256Sha256"),
        ({"user": {"username": "u"}}, "password"),
        ({"publish_interval_ms": 0}, "publish_interval_ms"),
        ({"colour": "red"}, "colour"),
        ({"mappings": [], "writes": []}, "needs mappings or writes"),
        ({"mappings": [{"node": "ns=2;i=5", "topic": "a/b", "queue_size": 0}]}, "queue_size"),
        ({"mappings": [{"node": "ns=2;i=5", "topic": "a/b", "deadband": -1}]}, "deadband"),
    ]
    for i, (over, needle) in enumerate(cases):
        src = dict(good)
        src.update(over)
        cfg = merge(DEFAULT_CONFIG, {"opcua": [src]})
        cfg["persistence"]["path"] = str(tmp_path / ("d%d" % i))
        path = tmp_path / ("bad%d.yaml" % i)
        path.write_text(to_yaml(cfg))
        r = subprocess.run([STRATA_BIN, "--config", str(path)], capture_output=True, timeout=30)
        assert r.returncode != 0, over
        assert needle in r.stderr.decode(), (over, r.stderr.decode())
    # Two sources with one name.
    cfg = merge(DEFAULT_CONFIG, {"opcua": [good, good]})
    cfg["persistence"]["path"] = str(tmp_path / "dup")
    path = tmp_path / "dup.yaml"
    path.write_text(to_yaml(cfg))
    r = subprocess.run([STRATA_BIN, "--config", str(path)], capture_output=True, timeout=30)
    assert r.returncode != 0 and "duplicate OPC UA source name" in r.stderr.decode()


def deploy_example(name):
    import yaml
    return yaml.safe_load((pathlib.Path(__file__).resolve().parents[2] / "deploy" / "opcua" / name).read_text())


def test_the_deploy_examples_are_valid_configs(broker_factory, clients, peers, tmp_path):
    """deploy/opcua/edge.yaml's `opcua:` section starts a broker (its PLC, here a closed port,
    is down); demo.yaml's ingests the test PLC and writes its setpoint."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    edge = deploy_example("edge.yaml")["opcua"]
    for src in edge:
        src["endpoint"] = "opc.tcp://127.0.0.1:%d" % port
        src["pki"] = str(tmp_path / "pki")
    b = start_broker(broker_factory, *edge)
    assert wait_sys(clients, b, edge[0]["name"], "connected", lambda v: True) == "0"

    peer = peers()
    demo = deploy_example("demo.yaml")["opcua"]
    demo[0]["endpoint"] = peer.endpoint
    demo[0]["pki"] = str(tmp_path / "demo-pki")
    d = start_broker(broker_factory, *demo)
    sub = clients(d)
    sub.subscribe(PREFIX + "/#")
    assert values(sub, PREFIX + "/telemetry/count", 2)
    sub.publish(PREFIX + "/cmd/setpoint", json.dumps(command(55.5, "req-demo-0001")), qos=1)
    reply = values(sub, PREFIX + "/reply/setpoint", 1)[0]
    assert (reply["request_id"], reply["status"], reply["opcua_status"]) == ("req-demo-0001", "ok", "Good")


# ------------------------------------------------------------------ the namespace model

ACME = str(pathlib.Path(__file__).resolve().parents[2] / "deploy" / "namespace" / "acme.yaml")
TELEMETRY_KEYS = {"value", "ts", "unit", "quality"}


def command(value, request_id, parameters=None):
    """A command in the shape of deploy/namespace/schemas/cmd.json."""
    return {"command": "set", "request_id": request_id, "ts": "2026-01-01T08:00:00Z",
            "parameters": {"value": value} if parameters is None else parameters}


def demo_source(peer, tmp_path):
    src = deploy_example("demo.yaml")["opcua"][0]
    src["endpoint"] = peer.endpoint
    src["pki"] = str(tmp_path / "demo-pki")
    src["publish_interval_ms"] = 200
    return src


def test_shipped_examples_pass_the_model_in_reject_mode(broker_factory, clients, peers, tmp_path):
    """deploy/opcua/demo.yaml under deploy/namespace/acme.yaml (reject in the press shop):
    every value the PLC publishes arrives in the telemetry shape, commands in the cmd shape
    are written and answered on the reply topic, and the model refuses nothing."""
    from test_http import scrape, start_http_broker
    peer = peers()
    b = start_http_broker(broker_factory, namespace={"model": ACME}, opcua=[demo_source(peer, tmp_path)],
                          sys={"interval": 1})
    sub = clients(b)
    sub.subscribe(PREFIX + "/#")
    want = {"count", "temperature", "running", "setpoint", "axis/Position", "axis/Enabled"}
    seen = {}
    deadline = time.monotonic() + VALUE_TIMEOUT
    while not want <= set(seen) and time.monotonic() < deadline:
        m = sub.get(timeout=max(0.05, deadline - time.monotonic()))
        assert m.topic.startswith(PREFIX + "/telemetry/"), m.topic
        seen[m.topic[len(PREFIX + "/telemetry/"):]] = json.loads(m.payload)
    assert want <= set(seen), sorted(seen)
    for name, v in seen.items():
        assert set(v) <= TELEMETRY_KEYS and {"value", "ts", "quality"} <= set(v), (name, v)
        assert v["quality"] == "good" and v["ts"].endswith("Z"), (name, v)
    assert seen["temperature"]["unit"] == "degC" and "unit" not in seen["count"]
    assert seen["running"]["value"] is True and isinstance(seen["axis/Position"]["value"], float)
    assert seen["setpoint"]["value"] == 42.0

    # A command in the model's shape: written, answered with its request_id.
    op = clients(b)
    op.subscribe(PREFIX + "/reply/#")
    op.publish(PREFIX + "/cmd/setpoint", json.dumps(command(55.5, "req-00000001")), qos=1)
    r = op.get(timeout=VALUE_TIMEOUT)
    assert r.topic == PREFIX + "/reply/setpoint" and not r.retain
    reply = json.loads(r.payload)
    assert reply["request_id"] == "req-00000001" and reply["status"] == "ok" and reply["opcua_status"] == "Good"
    assert set(reply) == {"request_id", "status", "opcua_status", "ts"}, reply
    values_ = [v["value"] for v in values(sub, PREFIX + "/telemetry/setpoint", 1)]
    while values_[-1] != 55.5:
        values_ += [v["value"] for v in values(sub, PREFIX + "/telemetry/setpoint", 1)]

    # Commands the model takes but that do not say what to write: refused, with a detail.
    op.publish(PREFIX + "/cmd/setpoint", json.dumps(command(None, "req-00000002", parameters={"val": 1})), qos=1)
    reply = json.loads(op.get(timeout=VALUE_TIMEOUT).payload)
    assert reply["request_id"] == "req-00000002" and reply["status"] == "refused", reply
    assert reply["detail"] == "the command has no parameters.value", reply
    op.publish(PREFIX + "/cmd/setpoint", json.dumps(command("fast", "req-00000003")), qos=1)
    reply = json.loads(op.get(timeout=VALUE_TIMEOUT).payload)
    assert (reply["request_id"], reply["status"], reply["opcua_status"]) == ("req-00000003", "refused",
                                                                            "BadTypeMismatch"), reply
    assert "Double" in reply["detail"], reply

    # 5.0: a Response Topic and Correlation Data still win (here a topic of the reply class).
    op.publish(PREFIX + "/cmd/setpoint", json.dumps(command(12.5, "req-00000004")), qos=1,
               properties=props(PacketTypes.PUBLISH, ResponseTopic=PREFIX + "/reply/ops-1",
                                CorrelationData=b"c-4"))
    r = op.get(timeout=VALUE_TIMEOUT)
    assert r.topic == PREFIX + "/reply/ops-1" and r.properties.CorrelationData == b"c-4"
    assert json.loads(r.payload)["status"] == "ok"

    # Nothing was refused: not by the model, not by the source's grants.
    assert int(wait_sys(clients, b, "test-plc", "writes", lambda v: int(v) >= 2)) == 2
    assert int(wait_sys(clients, b, "test-plc", "write_errors", lambda v: int(v) >= 2)) == 2
    assert wait_sys(clients, b, "test-plc", "denied", lambda v: True) == "0"
    samples, _ = scrape(b)
    namespace = {k: v for k, v in samples.items() if k[0] == "strata_namespace_messages_total"}
    assert sum(v for k, v in namespace.items() if ("outcome", "pass") in k[1]) > 0, namespace
    assert sum(v for k, v in namespace.items() if ("outcome", "pass") not in k[1]
               and ("outcome", "free") not in k[1]) == 0, namespace


def write_config(tmp_path, name, template, writes=""):
    """A config in block style (so that its lines say something): one source with `template`
    (YAML flow text) and a telemetry mapping, under the example model."""
    path = tmp_path / (name + ".yaml")
    path.write_text(
        "listeners: [{name: default, protocol: mqtt, bind: \"127.0.0.1:0\"}]\n"
        "persistence: {path: \"%s\"}\n"
        "namespace:\n"
        "  model: \"%s\"\n"
        "opcua:\n"
        "  - name: plc1\n"
        "    endpoint: \"opc.tcp://127.0.0.1:4840\"\n"
        "    template: %s\n"
        "    mappings:\n"
        "      - {node: \"ns=2;s=PLC1.Line1.Counter\", topic: \"%s/telemetry/count\"}\n"
        "%s" % (tmp_path / ("data-" + name), ACME, template, PREFIX, writes))
    return path


def test_a_template_that_never_fits_stops_the_start(tmp_path):
    from conftest import STRATA_BIN
    path = write_config(tmp_path, "no-ts", "{value: value, quality: status}")  # telemetry requires ts
    r = subprocess.run([STRATA_BIN, "--config", str(path)], capture_output=True, timeout=30)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert "strata: %s:10: opcua[0].mappings[0]: " % path in err, err
    assert "refuses every value published on '%s/telemetry/count'" % PREFIX in err, err
    assert "missing required property 'ts'" in err, err
    assert "the payload template is at %s:8: opcua[0].template" % path in err, err
    assert "strata listening" not in r.stdout.decode()

    # `strata --check-config` says the same without starting; a fitting config is ok.
    c = subprocess.run([STRATA_BIN, "--config", str(path), "--check-config"], capture_output=True, timeout=30)
    assert c.returncode == 2 and "missing required property 'ts'" in c.stderr.decode(), c.stderr.decode()
    good = write_config(tmp_path, "fits", "{value: value, ts: source_ts, quality: status}")
    c = subprocess.run([STRATA_BIN, "--config", str(good), "--check-config"], capture_output=True, timeout=30)
    assert (c.returncode, c.stdout.decode()) == (0, "%s: ok\n" % good), c.stderr.decode()

    # Replies inside the cmd class (the default <topic>/reply) never fit either.
    path = write_config(tmp_path, "replies", "{value: value, ts: source_ts, quality: status}",
                        "    writes:\n"
                        "      - {topic: \"%s/cmd/setpoint\", node: \"ns=2;s=PLC1.Line1.Setpoint\",\n"
                        "         value: parameters.value}\n" % PREFIX)
    r = subprocess.run([STRATA_BIN, "--config", str(path)], capture_output=True, timeout=30)
    err = r.stderr.decode()
    assert r.returncode == 2 and "%s:12: opcua[0].writes[0]: " % path in err, err
    assert "refuses the replies published on '%s/cmd/setpoint/reply'" % PREFIX in err, err
    assert "set reply_topic" in err, err


def test_a_reloaded_model_that_does_not_fit_is_not_installed(broker_factory, clients, tmp_path):
    """SIGHUP with a model whose telemetry now needs a key the template does not publish:
    the reload is refused with the reason and the old model stays in force."""
    model = tmp_path / "model"
    shutil.copytree(os.path.dirname(ACME), model)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = {"name": "plc1", "endpoint": "opc.tcp://127.0.0.1:%d" % port, "pki": str(tmp_path / "pki"),
           "template": {"value": "value", "ts": "source_ts", "quality": "status"},
           "mappings": [{"node": "ns=2;s=PLC1.Line1.Counter", "topic": PREFIX + "/telemetry/count"}]}
    b = start_broker(broker_factory, src, namespace={"model": str(model / "acme.yaml")})
    schema = model / "schemas" / "telemetry.json"
    t = json.loads(schema.read_text())
    t["required"].append("unit")
    schema.write_text(json.dumps(t))
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: "namespace model not reloaded, the old one stays" in b.stderr_text(),
               what="the refused reload in the log")
    line = [l for l in b.stderr_text().splitlines() if "namespace model not reloaded" in l][0]
    assert "opcua[0].mappings[0]" in line and "unit" in line, line
    assert "namespace model reloaded" not in b.stderr_text()
    # The old model is in force: telemetry without a unit still passes.
    c = clients(b)
    c.subscribe(PREFIX + "/telemetry/x")
    c.publish(PREFIX + "/telemetry/x", json.dumps({"value": 1, "ts": "2026-01-01T00:00:00Z"}), qos=1)
    assert json.loads(c.get().payload)["value"] == 1



def test_queue_size_and_deadband_per_mapping(broker_factory, clients, peers, tmp_path):
    """The counter rises by 1 every 100 ms. Published once a second with a server queue of
    20 samples, every step arrives; with a deadband of 5, only changes larger than 5."""
    peer = peers()
    b = start_broker(broker_factory, source(peer, trusted_pki(tmp_path, peer), publish_interval_ms=1000, writes=[],
                                            mappings=[
        {"node": "ns=2;s=PLC1.Line1.Counter", "topic": "plant/queued", "sampling_ms": 50, "queue_size": 20},
        {"node": "ns=2;s=PLC1.Line1.Counter", "topic": "plant/deadband", "sampling_ms": 50, "deadband": 5}]))
    sub = clients(b)
    sub.subscribe("plant/#")
    queued = [v["value"] for v in values(sub, "plant/queued", 25)]
    steps = [b - a for a, b in zip(queued, queued[1:])]
    assert steps.count(1) >= len(steps) - 2, queued  # a sample may fall between two updates
    banded = [v["value"] for v in values(sub, "plant/deadband", 4)]
    assert all(b - a > 5 for a, b in zip(banded, banded[1:])), banded
