"""Sparkplug B (issue "Sparkplug B"): a Sparkplug Aware broker that carries
Sparkplug metrics into the namespace and namespace commands down as DCMD.

The edge node is Eclipse Tahu's sparkplug-client (tests/sparkplug/peer/edge_node.js,
installed by `deploy/setup.sh test`), started here on 127.0.0.1 and stopped by its
PID; it reports what it receives as JSON lines on stdout (bounded waits). Payloads
that no well-behaved node sends (malformed, alias without a birth, seq gaps) are
built here with a few lines of protobuf encoding.
"""

import json
import pathlib
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import yaml

from conftest import IS_MOSQUITTO, STRATA_BIN, uid, wait_retained, wait_until
from test_http import make_passwd, basic, request, scrape, start_http_broker

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "sparkplug"))
from sparkplug_wire import metric, payload  # noqa: E402  (hand-made payloads, shared with benchmarks/)

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="Sparkplug Aware is Strata's")

REPO = pathlib.Path(__file__).resolve().parents[2]
PEER_DIR = REPO / "tests" / "sparkplug" / "peer"
ACME = str(REPO / "deploy" / "namespace" / "acme.yaml")
EXAMPLE = REPO / "deploy" / "sparkplug" / "strata.yaml"
LINE = "acme/dresden/press-shop/line-2"
PEER_TIMEOUT = 30.0
VALUE_TIMEOUT = 15.0
TELEMETRY_KEYS = {"value", "ts", "unit", "quality"}


# ------------------------------------------------------------------ the Tahu edge node

class EdgeNode:
    """edge_node.js; start() returns once it printed {"event": "born"}."""

    def __init__(self, broker, tmp_path, group="dresden", edge="line-2", devices=("press-7", "press-8"),
                 bdseq=0, client_id=None, username=None, password=None):
        self.argv = [shutil.which("node") or "node", "edge_node.js", "--url", "mqtt://127.0.0.1:%d" % broker.port,
                     "--group", group, "--edge", edge, "--devices", ",".join(devices), "--bdseq", str(bdseq),
                     "--client-id", client_id or uid("edge")]
        if username:
            self.argv += ["--username", username, "--password", password]
        self.log_path = tmp_path / ("edge-%s.log" % uid())
        self.events = queue.Queue()
        self.proc = None

    def start(self):
        if not (PEER_DIR / "node_modules" / "sparkplug-client").exists():
            raise AssertionError("%s has no sparkplug-client: run deploy/setup.sh test (npm ci)"
                                 % (PEER_DIR / "node_modules"))
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, cwd=str(PEER_DIR), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log)
        threading.Thread(target=self._read, daemon=True).start()
        self.expect("born", timeout=PEER_TIMEOUT)
        return self

    def _read(self):
        for line in iter(self.proc.stdout.readline, b""):
            try:
                self.events.put(json.loads(line))
            except ValueError:
                pass
        self.events.put(None)

    def expect(self, event, predicate=lambda e: True, timeout=VALUE_TIMEOUT):
        """The next event of this kind that satisfies `predicate` (others are skipped)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                e = self.events.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                e = None
            if e is None or time.monotonic() > deadline:
                raise AssertionError("edge node: no %r event (saw %r); log: %s"
                                     % (event, seen, self.log_path.read_text(errors="replace")[-2000:]))
            seen.append(e)
            if e.get("event") == event and predicate(e):
                return e

    def none(self, event, seconds=1.0):
        """No event of this kind within `seconds` (a bounded wait for something that must not come)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                e = self.events.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                return
            assert e is None or e.get("event") != event, e

    def send(self, **cmd):
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()
        self.expect("sent", lambda e: e["op"] == cmd["op"])

    def kill(self):
        """SIGKILL: the TCP connection drops, the broker publishes the node's will (NDEATH)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def edge_nodes(tmp_path):
    made = []

    def make(broker, **kw):
        n = EdgeNode(broker, tmp_path, **kw)
        made.append(n)
        return n.start()

    yield make
    for n in made:
        n.stop()


# ------------------------------------------------------------------ the broker

def example():
    return yaml.safe_load(EXAMPLE.read_text())


def start(broker_factory, **over):
    section = example()["sparkplug"]
    section.update(over.pop("sparkplug", {}))
    return start_http_broker(broker_factory, namespace={"model": ACME}, sparkplug=section,
                             sys={"interval": 1}, **over)


def sys_value(clients, b, leaf, predicate, timeout=VALUE_TIMEOUT):
    return wait_retained(clients, b, "$SYS/broker/sparkplug/sparkplug/" + leaf, predicate, timeout)


def node_state(clients, b, group, edge, predicate, timeout=VALUE_TIMEOUT):
    text = wait_retained(clients, b, "$SYS/broker/sparkplug/sparkplug/node/%s/%s" % (group, edge),
                         lambda t: predicate(json.loads(t)), timeout)
    return json.loads(text)


def collect(sub, topics, timeout=VALUE_TIMEOUT):
    """{topic: message} until every topic of `topics` arrived (others kept too)."""
    got = {}
    deadline = time.monotonic() + timeout
    while not set(topics) <= set(got):
        if time.monotonic() > deadline:
            raise AssertionError("missing %r (got %r)" % (sorted(set(topics) - set(got)), sorted(got)))
        m = sub.get(timeout=max(0.05, deadline - time.monotonic()))
        got[m.topic] = m
    return got


def no_model_refusals(b):
    samples, _ = scrape(b)
    namespace = {k: v for k, v in samples.items() if k[0] == "strata_namespace_messages_total"}
    assert sum(v for k, v in namespace.items() if ("outcome", "pass") in k[1]) > 0, namespace
    refused = {k: v for k, v in namespace.items()
               if ("outcome", "pass") not in k[1] and ("outcome", "free") not in k[1] and v}
    assert not refused, refused
    return samples


# ------------------------------------------------------------------ tests

def test_births_are_certified_mapped_into_the_model_and_kept_for_late_joiners(broker_factory, clients,
                                                                             edge_nodes, mosquitto_subs):
    b = start(broker_factory)
    raw = clients(b)
    raw.subscribe("spBv1.0/#")
    uns = clients(b)  # 5.0
    uns.subscribe("acme/#")
    node = edge_nodes(b)

    births = collect(raw, ["spBv1.0/dresden/NBIRTH/line-2", "spBv1.0/dresden/DBIRTH/line-2/press-7",
                           "spBv1.0/dresden/DBIRTH/line-2/press-8"])
    want = []
    for press in ("press-7", "press-8"):
        base = "%s/%s/" % (LINE, press)
        want += [base + "telemetry/" + t for t in ("temperature", "pressure", "running", "count", "setpoint")]
        want.append(base + "state")
    got = collect(uns, want)
    t = json.loads(got[LINE + "/press-7/telemetry/temperature"].payload)
    assert t["value"] == 20.5 and t["unit"] == "degC" and t["quality"] == "good" and t["ts"].endswith("Z"), t
    for topic in want:
        v = json.loads(got[topic].payload)
        if topic.endswith("/state"):
            assert v["state"] == "running" and set(v) == {"state", "ts"}, v
            assert got[topic].retain == 0  # live delivery; retained below
        else:
            assert set(v) <= TELEMETRY_KEYS and {"value", "ts", "quality"} <= set(v), (topic, v)
    assert json.loads(got[LINE + "/press-7/telemetry/count"].payload)["value"] == -3  # Int32, two's complement
    assert json.loads(got[LINE + "/press-7/telemetry/running"].payload)["value"] is True

    # Data by alias only: the names come from the births.
    node.send(op="data", device="press-7", metrics={"Temperature": 23.25, "State": "idle", "Count": -7})
    got = collect(uns, [LINE + "/press-7/telemetry/temperature", LINE + "/press-7/state",
                        LINE + "/press-7/telemetry/count"])
    assert json.loads(got[LINE + "/press-7/telemetry/temperature"].payload)["value"] == 23.25
    assert json.loads(got[LINE + "/press-7/state"].payload)["state"] == "idle"
    assert json.loads(got[LINE + "/press-7/telemetry/count"].payload)["value"] == -7

    # Late joiners, 3.1.1 (mosquitto_sub) and 5.0 (paho): every birth, retained, byte for byte.
    certs = {"$sparkplug/certificates/" + t: m.payload for t, m in births.items()}
    late5 = clients(b)
    late5.subscribe("$sparkplug/certificates/#")
    got = collect(late5, list(certs))
    for topic, m in got.items():
        assert m.retain == 1 and m.payload == certs[topic], topic
    late3 = mosquitto_subs(b, "-V", "mqttv311", "-t", "$sparkplug/certificates/#", "-F", "PAYLOAD:%t", "-C", "3")
    assert sorted(late3.payloads(3)) == sorted(certs)
    state = clients(b, version=4)
    state.subscribe(LINE + "/press-7/state")
    m = state.get(timeout=VALUE_TIMEOUT)
    assert m.retain == 1 and json.loads(m.payload)["state"] == "idle"

    # The model (reject mode in the press shop) refused nothing: every JSON passed its schema.
    samples = no_model_refusals(b)
    assert samples[("strata_sparkplug_metrics_total",
                    frozenset({("sparkplug", "sparkplug"), ("outcome", "mapped")}))] >= 15
    assert samples[("strata_sparkplug_metrics_total",
                    frozenset({("sparkplug", "sparkplug"), ("outcome", "denied")}))] == 0
    assert samples[("strata_sparkplug_node_online",
                    frozenset({("sparkplug", "sparkplug"), ("group", "dresden"), ("edge_node", "line-2")}))] == 1
    assert sys_value(clients, b, "births", lambda v: v == "3") == "3"


def test_rebirth_on_ncmd_and_the_state_in_the_admin_api(broker_factory, clients, edge_nodes, tmp_path):
    b = start(broker_factory, auth={"allow_anonymous": True, "password_file": str(make_passwd(tmp_path))},
              roles={"admin": [{"allow": "admin", "on": "#"}],
                     "anyone": [{"allow": "subscribe", "on": "#"}, {"allow": "subscribe", "on": "$SYS/#"},
                                {"allow": "publish", "on": "#"}]},
              users={"ops": ["admin"], "anonymous": ["anyone"], "sparkplug": ["anyone"]})
    node = edge_nodes(b)
    # A host application asks for a rebirth.
    host = clients(b)
    host.publish("spBv1.0/dresden/NCMD/line-2",
                 payload([metric("Node Control/Rebirth", datatype="Boolean", value=True)]), qos=1)
    node.expect("rebirth")
    assert sys_value(clients, b, "births", lambda v: v == "6") == "6"

    status, _, body = request(b.web, "/api/v1/sparkplug", headers={"Authorization": basic("ops", "ops-pw-1")})
    assert status == 200 and len(body) == 1, body
    s = body[0]
    assert s["name"] == "sparkplug" and s["messages"]["births"] == 6 and s["nodes_online"] == 1, s
    n = s["nodes"][0]
    assert (n["group"], n["edge_node"], n["online"], n["bd_seq"], n["births"]) == ("dresden", "line-2", True, 0, 2)
    assert n["devices"]["press-7"]["online"] and n["devices"]["press-7"]["births"] == 2
    assert n["devices"]["press-7"]["metrics"] == 7 and n["last_birth"].endswith("Z")
    status, _, _ = request(b.web, "/api/v1/sparkplug")
    assert status == 401

    # The node dies: its connection drops, the broker publishes its will (NDEATH, bdSeq 0).
    node.kill()
    n = node_state(clients, b, "dresden", "line-2", lambda n: not n["online"])
    assert n["deaths"] == 1 and n["stale_deaths"] == 0 and not n["devices"]["press-8"]["online"], n


def test_a_stale_will_does_not_take_a_reborn_node_offline(broker_factory, clients, edge_nodes):
    b = start(broker_factory, sparkplug={"offline_alert_s": 1})
    uns = clients(b)
    uns.subscribe(LINE + "/press-7/telemetry/temperature")
    first = edge_nodes(b, bdseq=0)
    # The node comes back on a new connection (bdSeq 1) before the broker noticed the old one died.
    second = edge_nodes(b, bdseq=1)
    node_state(clients, b, "dresden", "line-2", lambda n: n["bd_seq"] == 1 and n["births"] == 2)
    first.kill()  # its will: NDEATH with bdSeq 0
    n = node_state(clients, b, "dresden", "line-2", lambda n: n["stale_deaths"] == 1)
    assert n["online"] and n["deaths"] == 0, n
    assert [json.loads(m.payload)["quality"] for m in uns.get_n(2)] == ["good", "good"]  # two births
    uns.expect_none(0.5)  # the stale will published nothing
    second.send(op="stop")  # NDEATH with bdSeq 1
    n = node_state(clients, b, "dresden", "line-2", lambda n: not n["online"])
    assert n["deaths"] == 1 and not n["devices"]["press-7"]["online"] and n["last_death"], n
    # The mapped values stay, no longer current: quality uncertain.
    stale = json.loads(uns.get(timeout=VALUE_TIMEOUT).payload)
    assert stale["value"] == 20.5 and stale["quality"] == "uncertain", stale
    # Offline for more than offline_alert_s: the alert.
    alert = json.loads(wait_retained(clients, b, "$SYS/broker/alerts/sparkplug_offline/dresden/line-2",
                                     lambda t: json.loads(t)["active"], VALUE_TIMEOUT))
    assert alert["kind"] == "sparkplug_offline" and alert["subject"] == "dresden/line-2", alert
    assert sys_value(clients, b, "nodes/offline", lambda v: v == "1") == "1"


def test_commands_become_dcmd_for_identities_with_the_command_grant(broker_factory, clients, edge_nodes,
                                                                    raw_clients, tmp_path):
    import mqtt_raw
    roles = {
        "edge": [{"allow": "publish", "on": "spBv1.0/#"}, {"allow": "subscribe", "on": "spBv1.0/#"}],
        "gateway": [{"allow": "publish", "on": "#"}],
        "operator": [{"allow": "subscribe", "on": "#"}, {"allow": "publish", "on": "acme/#"},
                     {"allow": "command", "on": "acme/dresden/press-shop/+/+/cmd/#"}],
        "watcher": [{"allow": "subscribe", "on": "#"}, {"allow": "subscribe", "on": "$SYS/#"},
                    {"allow": "publish", "on": "acme/#"}],
    }
    passwd = make_passwd(tmp_path, {"edge": "edge-pw-1", "op": "op-pw-1"})
    b = start(broker_factory, auth={"allow_anonymous": True, "password_file": str(passwd)}, roles=roles,
              users={"edge": ["edge"], "sparkplug": ["gateway"], "op": ["operator"], "anonymous": ["watcher"]})
    node = edge_nodes(b, username="edge", password="edge-pw-1")
    op = clients(b, connect=False)
    op.c.username_pw_set("op", "op-pw-1")
    op.connect()
    op.subscribe(LINE + "/+/reply/#")

    def command(value, request_id, subtopic="setpoint", press="press-7"):
        cmd = {"command": "set", "request_id": request_id, "ts": "2026-01-01T08:00:00Z",
               "parameters": {"value": value}}
        op.publish("%s/%s/cmd/%s" % (LINE, press, subtopic), json.dumps(cmd), qos=1)
        return json.loads(op.get(timeout=VALUE_TIMEOUT).payload)

    reply = command(55.5, "req-00000001")
    assert reply["status"] == "ok" and reply["request_id"] == "req-00000001", reply
    e = node.expect("dcmd")
    assert e["device"] == "press-7" and e["metrics"] == [
        {"name": "Setpoint", "alias": 105, "type": "Double", "value": 55.5}], e

    # The metric's type decides what fits: Mode is Int8.
    reply = command(300, "req-00000002", "mode")
    assert reply["status"] == "refused" and "Int8" in reply["detail"], reply
    reply = command(-3, "req-00000003", "mode")
    assert reply["status"] == "ok", reply
    e = node.expect("dcmd")
    assert e["metrics"][0]["name"] == "Mode" and e["metrics"][0]["value"] == -3, e
    # A device the edge node never birthed.
    reply = command(1.0, "req-00000004", press="press-9")
    assert reply["status"] == "refused" and "no birth" in reply["detail"], reply

    # Without the command grant: refused by the broker (0x87), nothing reaches the device.
    raw = raw_clients(b, mqtt_raw.V5)
    raw.connect_ok(uid("watcher"))
    cmd = {"command": "set", "request_id": "req-00000005", "ts": "2026-01-01T08:00:00Z", "parameters": {"value": 1}}
    assert raw.publish_acked(LINE + "/press-7/cmd/setpoint", json.dumps(cmd).encode()).reason == 0x87
    # A command that does not fit the model's cmd schema: refused before it is routed (0x99).
    op5 = raw_clients(b, mqtt_raw.V5)
    op5.connect_ok(uid("op"), username="op", password=b"op-pw-1")
    assert op5.publish_acked(LINE + "/press-7/cmd/setpoint", b'{"value": 1}').reason == 0x99
    node.none("dcmd", seconds=1.0)
    assert sys_value(clients, b, "commands", lambda v: v == "2") == "2"
    assert sys_value(clients, b, "command_errors", lambda v: v == "2") == "2"


def test_hostile_payloads_data_without_birth_and_seq_gaps(broker_factory, clients):
    b = start(broker_factory, sparkplug={"rebirth_interval_s": 3600})
    pub = clients(b, version=4)
    ncmd = clients(b)
    ncmd.subscribe("spBv1.0/plant/NCMD/#")

    # Malformed protobuf, random bytes, a truncated birth, a topic of no message type: counted.
    rng = random.Random(21)
    good = payload([metric("bdSeq", datatype="Int64", value=0), metric("Temp", 1, "Double", 1.5)], seq=0)
    bad = [b"\xff\xff\xff", good[:-3], b"\x12\xff\xff\xff\xff\x07"] + \
          [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))) for _ in range(50)]
    for p in bad:
        pub.publish("spBv1.0/plant/NDATA/fuzz", p, qos=1)
    pub.publish("spBv1.0/plant/XDATA/fuzz", good, qos=1)
    malformed = int(sys_value(clients, b, "malformed", lambda v: int(v) >= 4))
    b.assert_alive()

    # Data by alias from a node whose birth the broker never saw: nothing resolved; a Rebirth asked for once.
    pub.publish("spBv1.0/plant/NDATA/edge-9", payload([metric(alias=1, datatype="Double", value=2.0)], seq=5), qos=1)
    m = ncmd.get(timeout=VALUE_TIMEOUT)
    assert m.topic == "spBv1.0/plant/NCMD/edge-9" and b"Node Control/Rebirth" in m.payload
    pub.publish("spBv1.0/plant/NDATA/edge-9", payload([metric(alias=1, datatype="Double", value=2.0)], seq=6), qos=1)
    assert int(sys_value(clients, b, "no_birth", lambda v: v == "2")) == 2
    ncmd.expect_none(0.5)  # one request per rebirth_interval_s

    # A node that births, then loses messages: seq gaps counted, alerted.
    pub.publish("spBv1.0/plant/NBIRTH/edge-1", good, qos=1)
    pub.publish("spBv1.0/plant/NDATA/edge-1", payload([metric(alias=1, value=2.5)], seq=1), qos=1)
    pub.publish("spBv1.0/plant/NDATA/edge-1", payload([metric(alias=1, value=3.5)], seq=4), qos=1)
    pub.publish("spBv1.0/plant/NDATA/edge-1", payload([metric(alias=77, value=3.5)], seq=5), qos=1)
    n = node_state(clients, b, "plant", "edge-1", lambda n: n["messages"] == 4)
    assert n["seq_gaps"] == 1 and n["online"], n
    assert sys_value(clients, b, "unknown_aliases", lambda v: v == "1") == "1"
    alert = json.loads(wait_retained(clients, b, "$SYS/broker/alerts/sparkplug_seq_gap/plant/edge-1",
                                     lambda t: json.loads(t)["active"], VALUE_TIMEOUT))
    assert alert["value"] == 1, alert
    # A birth without bdSeq is refused; a death of a node never born changes nothing.
    pub.publish("spBv1.0/plant/NBIRTH/edge-2", payload([metric("Temp", 1, "Double", 1.5)], seq=0), qos=1)
    pub.publish("spBv1.0/plant/NDEATH/edge-3", payload([metric("bdSeq", datatype="Int64", value=0)]), qos=1)
    assert sys_value(clients, b, "refused", lambda v: v == "1") == "1"
    assert sys_value(clients, b, "stale_deaths", lambda v: v == "1") == "1"
    assert int(sys_value(clients, b, "malformed", lambda v: True)) == malformed
    b.assert_alive()


def test_certificates_and_aliases_outlive_a_restart(broker_factory, clients, tmp_path):
    data = str(tmp_path / "data")
    b1 = start(broker_factory, persistence={"path": data, "durability": "always"})
    watch = clients(b1)
    watch.subscribe("$sparkplug/certificates/#")
    pub = clients(b1)
    base = "spBv1.0/dresden/%s/line-3"
    pub.publish(base % "NBIRTH", payload([metric("bdSeq", datatype="Int64", value=4)], seq=0), qos=1)
    pub.publish(base % "DBIRTH" + "/press-9",
                payload([metric("Temperature", 7, "Double", 19.0), metric("State", 8, "String", "idle")], seq=1),
                qos=1)
    certs = ["$sparkplug/certificates/spBv1.0/dresden/NBIRTH/line-3",
             "$sparkplug/certificates/spBv1.0/dresden/DBIRTH/line-3/press-9"]
    collect(watch, certs)
    b1.stop()

    # Read back from the store: a late subscriber gets them, and data by alias maps again.
    b2 = start(broker_factory, persistence={"path": data, "durability": "always"})
    late = clients(b2)
    late.subscribe("$sparkplug/certificates/#")
    assert all(m.retain for m in collect(late, certs).values())
    uns = clients(b2)
    uns.subscribe("acme/dresden/press-shop/line-3/#")
    clients(b2).publish(base % "DDATA" + "/press-9", payload([metric(alias=7, value=21.75)], seq=2), qos=1)
    temperature = "acme/dresden/press-shop/line-3/press-9/telemetry/temperature"
    first = json.loads(collect(uns, [temperature])[temperature].payload)
    assert first["value"] == 19.0  # retained from the birth before the restart
    assert json.loads(collect(uns, [temperature])[temperature].payload)["value"] == 21.75
    n = node_state(clients, b2, "dresden", "line-3", lambda n: n["online"])
    assert n["bd_seq"] == 4 and n["devices"]["press-9"]["online"], n


def test_a_reloaded_mapping_applies_with_the_aliases_known(broker_factory, clients, edge_nodes):
    from conftest import merge, to_yaml
    b = start(broker_factory)
    node = edge_nodes(b)
    uns = clients(b)
    uns.subscribe(LINE + "/press-7/#")
    collect(uns, [LINE + "/press-7/telemetry/temperature"])  # retained from the birth
    # Mode (Int8) was not mapped; now it is, and Temperature goes elsewhere.
    section = example()["sparkplug"]
    rules = section["mappings"][0]["metrics"]
    rules[0]["subtopic"] = "temp"
    rules.append({"name": "Mode", "class": "telemetry", "subtopic": "mode"})
    b.config = merge(b.config, {"sparkplug": section})
    b.config_path.write_text(to_yaml(b.config))
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload: sparkplug: changed sparkplug" in b.stderr_text(), timeout=VALUE_TIMEOUT,
               what="the reload")
    # No new birth: the aliases come from the certificates the new host read back.
    node.send(op="data", device="press-7", metrics={"Temperature": 30.5, "Mode": 2})
    got = collect(uns, [LINE + "/press-7/telemetry/temp", LINE + "/press-7/telemetry/mode"])
    assert json.loads(got[LINE + "/press-7/telemetry/temp"].payload)["value"] == 30.5
    assert json.loads(got[LINE + "/press-7/telemetry/mode"].payload)["value"] == 2
    n = node_state(clients, b, "dresden", "line-2", lambda n: n["online"] and n["devices"]["press-7"]["online"])
    assert n["births"] == 1, n

    # Without the section the host is gone: births are no longer certified.
    del b.config["sparkplug"]
    b.config_path.write_text(to_yaml(b.config))
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload: sparkplug: removed sparkplug" in b.stderr_text(), timeout=VALUE_TIMEOUT,
               what="the reload")
    clients(b).publish("spBv1.0/dresden/NBIRTH/line-9", payload([metric("bdSeq", datatype="Int64", value=0)], seq=0),
                       qos=1)
    late = clients(b)
    late.subscribe("$sparkplug/certificates/spBv1.0/dresden/NBIRTH/line-9")
    late.expect_none(1.0)


def test_an_enterprise_that_comes_later_gets_the_births_over_the_bridge(broker_factory, clients, edge_nodes):
    """The plant broker (not Sparkplug Aware) bridges spBv1.0/# up and NCMD/DCMD down; the
    enterprise broker is started after the edge node birthed: the births wait in the
    bridge's buffer, the enterprise certifies and maps them, and a command there reaches
    the device through the plant."""
    from conftest import free_port
    port = free_port()
    bridge = {"name": "up", "remote": "mqtt://127.0.0.1:%d" % port, "protocol_version": 5, "client_id": "plant-up",
              "reconnect": {"min_ms": 50, "max_ms": 200},
              "forward": [{"local": "spBv1.0/#", "remote": "spBv1.0/#", "qos": 1}],
              "receive": [{"remote": "spBv1.0/+/NCMD/#", "local": "spBv1.0/+/NCMD/#", "qos": 1},
                          {"remote": "spBv1.0/+/DCMD/#", "local": "spBv1.0/+/DCMD/#", "qos": 1}]}
    plant = broker_factory(bridges=[bridge])
    node = edge_nodes(plant)
    node.send(op="data", device="press-7", metrics={"Temperature": 24.5})

    enterprise = broker_factory(listeners=[{"name": "mqtt", "protocol": "mqtt", "bind": "127.0.0.1:%d" % port}],
                                namespace={"model": ACME}, sparkplug=example()["sparkplug"])
    late = clients(enterprise)
    late.subscribe("$sparkplug/certificates/#")
    collect(late, ["$sparkplug/certificates/spBv1.0/dresden/NBIRTH/line-2",
                   "$sparkplug/certificates/spBv1.0/dresden/DBIRTH/line-2/press-7",
                   "$sparkplug/certificates/spBv1.0/dresden/DBIRTH/line-2/press-8"])
    uns = clients(enterprise)
    uns.subscribe(LINE + "/press-7/telemetry/temperature")
    assert json.loads(uns.get(timeout=VALUE_TIMEOUT).payload)["value"] == 24.5  # the DDATA after the births
    op = clients(enterprise)
    op.subscribe(LINE + "/press-7/reply/setpoint")
    op.publish(LINE + "/press-7/cmd/setpoint", json.dumps({"command": "set", "request_id": "req-00000009",
                                                          "ts": "2026-01-01T08:00:00Z",
                                                          "parameters": {"value": 61.5}}), qos=1)
    assert json.loads(op.get(timeout=VALUE_TIMEOUT).payload)["status"] == "ok"
    e = node.expect("dcmd")
    assert e["device"] == "press-7" and e["metrics"][0]["name"] == "Setpoint" and e["metrics"][0]["value"] == 61.5


def check_config(tmp_path, text):
    cfg = tmp_path / "strata.yaml"
    cfg.write_text(text)
    return subprocess.run([STRATA_BIN, "--config", str(cfg), "--check-config"], capture_output=True, timeout=30)


def test_bad_sparkplug_config_is_refused_clearly(tmp_path):
    cases = [
        ("sparkplug:\n  mappings:\n    - {group: g, topic: \"acme/line-{edge_node}\", metrics: [{class: telemetry}]}\n",
         b"strata.yaml:3: sparkplug.mappings[0].topic: 'line-{edge_node}': a placeholder"),
        ("sparkplug:\n  max_nodes: 0\n", b"strata.yaml:2: sparkplug.max_nodes"),
        ("sparkplug:\n  mappings:\n    - {topic: \"acme/{device}\", device: \"+\", commands: [{subtopic: s, metric: m}]}\n",
         b"every id given as \"+\" must be a placeholder"),
        ("sparkplug:\n  mappings:\n    - {topic: \"acme/x\", metrics: [{class: telemetry, subtopic: \"a/+\"}]}\n",
         b"sparkplug.mappings[0].metrics[0].subtopic: expected topic levels without wildcards"),
        ("sparkplug:\n  templates: {telemetry: {ts: source_ts}}\n", b"a template needs a key that holds the value"),
        ("sparkplug:\n  reply_class: cmd\n", b"command_class and reply_class must differ"),
        ("sparkplug:\n  rebirth: maybe\n", b"sparkplug.rebirth"),
    ]
    for text, want in cases:
        r = check_config(tmp_path, text)
        assert r.returncode != 0 and want in r.stderr, (text, r.stderr)


def test_a_mapping_the_model_would_refuse_stops_the_start(tmp_path):
    model = "namespace: {model: \"%s\"}\n" % ACME
    base = ("sparkplug:\n  mappings:\n    - group: dresden\n      device: \"+\"\n"
            "      topic: \"acme/dresden/press-shop/{edge_node}/{device}\"\n")
    cases = [
        (base.replace("device: \"+\"", "edge_node: \"+\"\n      device: \"+\"") +
         "      metrics: [{name: \"*\", class: oee}]\n",
         b"strata.yaml:4: sparkplug.mappings[0]: the namespace model (%s) refuses every value of class 'oee'"
         % ACME.encode()),
        (base + "      metrics: [{name: \"*\", class: gauges}]\n", b"has no class 'gauges'"),
        (base + "      metrics: [{name: \"*\", class: cmd}]\n", b"class 'cmd' is a command class"),
        ("sparkplug:\n  templates: {telemetry: {value: value}}\n  mappings:\n"
         "    - {group: g, edge_node: e, topic: \"acme/x\", metrics: [{name: \"*\", class: telemetry}]}\n",
         b"refuses every value of class 'telemetry'"),
        ("sparkplug:\n  command_class: telemetry\n  mappings:\n"
         "    - {group: g, edge_node: e, device: d, topic: \"acme/x\", commands: [{subtopic: s, metric: m}]}\n",
         b"class 'telemetry' (command_class) is not a command class"),
    ]
    for text, want in cases:
        r = check_config(tmp_path, model + text)
        assert r.returncode != 0 and want in r.stderr, (text, r.stderr)


def test_the_deploy_example_is_a_valid_config():
    r = subprocess.run([STRATA_BIN, "--config", str(EXAMPLE), "--check-config"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
