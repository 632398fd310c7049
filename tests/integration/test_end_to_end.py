"""One namespace, end to end (docs/end-to-end.md; deploy/demo/).

The shipped demo set-up, on loopback with ports of the test's choosing: the OPC UA test
PLC (node-opcua), the Dresden edge broker (deploy/demo/edge.yaml: the ACME model in
reject mode, roles, an OPC UA source with payload templates and writes, a bridge with
class rules, an audit log) and the enterprise broker (deploy/demo/enterprise.yaml: the
same model, roles, audit). What the test shows, in the demo's story:

- PLC values arrive at the enterprise as valid telemetry;
- the analyst there sees OEE and nothing else, and cannot command;
- the operator's setpoint command crosses the bridge, passes the plant's grants and model,
  becomes an OPC UA Write, the PLC value changes, and the reply comes back up with the
  request_id; both audit logs name the operator;
- a safety gate under a cell is refused at both ends (the enterprise refuses the operator;
  for the engineer, whom the enterprise lets through, the plant refuses it);
- a payload that breaks the model is refused at the edge and never leaves it.

Every process is stopped by its PID (broker_factory, peers).
"""

import json
import os

import pytest
import yaml

import mqtt_raw as r
from conftest import IS_MOSQUITTO, uid, wait_until
from test_auth import audit_lines as audit, passwd
from test_bridges import wait_connected
from test_opcua import peers  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="the end-to-end set-up is Strata's")

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEMO = os.path.join(SOURCE_DIR, "deploy", "demo")
ACME = os.path.join(SOURCE_DIR, "deploy", "namespace", "acme.yaml")
PRESS7 = "acme/dresden/press-shop/line-2/cell-1/press-7"
GATE = "acme/dresden/press-shop/line-2/cell-1/safety-gate-1"
TS = "2026-12-07T10:00:00Z"
PASSWORDS = {"ana": "ana-demo-pw", "olga": "olga-demo-pw", "erik": "erik-demo-pw", "plant-dresden": "demo-plant-pw"}
NOT_AUTHORIZED = 0x87
PAYLOAD_FORMAT_INVALID = 0x99
LIVE_TIMEOUT = 30.0  # OPC UA session set-up and the bridge's first connect on a loaded machine


def demo_config(name):
    """A deploy/demo config as overrides for broker_factory: its own listeners and data
    directory are the test's."""
    with open(os.path.join(DEMO, name)) as f:
        cfg = yaml.safe_load(f)
    # PyYAML reads the key `on` as YAML 1.1's boolean true (yaml-cpp, like YAML 1.2, as a string).
    for grants in cfg.get("roles", {}).values():
        for g in grants:
            if True in g:
                g["on"] = g.pop(True)
    for k in ("listeners", "persistence", "sys"):
        cfg.pop(k, None)
    cfg["sys"] = {"interval": 1}
    cfg["namespace"]["model"] = ACME
    return cfg


def cmd(command, request_id, **parameters):
    c = {"command": command, "request_id": request_id, "ts": TS}
    if parameters:
        c["parameters"] = parameters
    return json.dumps(c).encode()


def login(raw_clients, broker, user):
    """A raw 5.0 connection of `user` that publishes (and reads its acknowledgements)."""
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid(user), username=user, password=PASSWORDS[user].encode())
    return c


def watcher(clients, broker, user, *filters):
    """A paho connection of `user` subscribed to `filters` (QoS 1)."""
    c = clients(broker, connect=False, version=5)
    c.c.username_pw_set(user, PASSWORDS[user])
    c.connect()
    for f in filters:
        c.subscribe(f, qos=1)
    return c


def next_publish(c, topic, timeout=LIVE_TIMEOUT):
    """The next message on `topic` that `c` receives (others on the way are skipped)."""
    def one():
        m = c.get(timeout=timeout)
        return m if m.topic == topic else None
    return wait_until(one, timeout=timeout, what="a message on " + topic)


@pytest.fixture
def plant(broker_factory, peers, tmp_path):  # noqa: F811
    """The PLC, the enterprise and the edge, as deploy/demo/run.sh starts them."""
    plc = peers()
    pw = tmp_path / "enterprise-passwd"
    for user, password in PASSWORDS.items():
        passwd(pw, user, password)
    e = demo_config("enterprise.yaml")
    e["auth"]["password_file"] = str(pw)
    e["audit"]["file"] = str(tmp_path / "enterprise-audit.log")
    enterprise = broker_factory(**e)

    d = demo_config("edge.yaml")
    d["audit"]["file"] = str(tmp_path / "edge-audit.log")
    d["opcua"][0]["endpoint"] = plc.endpoint
    d["opcua"][0]["pki"] = str(tmp_path / "edge-opcua-pki")
    d["bridges"][0]["remote"] = "mqtt://127.0.0.1:%d" % enterprise.port
    d["bridges"][0]["reconnect"] = {"min_ms": 50, "max_ms": 400}
    edge = broker_factory(**d)
    return {"plc": plc, "enterprise": enterprise, "edge": edge,
            "enterprise_audit": str(tmp_path / "enterprise-audit.log"), "edge_audit": str(tmp_path / "edge-audit.log")}


def test_one_namespace_end_to_end(plant, clients, raw_clients):
    enterprise, edge = plant["enterprise"], plant["edge"]
    wait_connected(clients, edge, name="to-enterprise", timeout=LIVE_TIMEOUT)

    # PLC values arrive at the enterprise as the model's telemetry.
    olga = login(raw_clients, enterprise, "olga")
    olga_sees = watcher(clients, enterprise, "olga", "acme/dresden/press-shop/line-2/#")
    m = next_publish(olga_sees, PRESS7 + "/telemetry/temperature")
    t = json.loads(m.payload)
    assert set(t) == {"value", "ts", "unit", "quality"} and t["unit"] == "degC" and t["quality"] == "good"
    assert isinstance(t["value"], float)

    # The analyst sees OEE and nothing else, and cannot command.
    ana = login(raw_clients, enterprise, "ana")
    ana_sees = watcher(clients, enterprise, "ana", "acme/#")
    oee = {"availability": 0.9, "performance": 0.95, "quality": 0.99, "oee": 0.85, "ts": TS}
    local = raw_clients(edge, r.V5)
    local.connect_ok(uid("hmi"))
    assert local.publish_acked("acme/dresden/press-shop/line-2/oee", json.dumps(oee).encode(), retain=True,
                               pid=1).reason in (0, 0x10)
    got = ana_sees.get(timeout=LIVE_TIMEOUT)
    assert (got.topic, json.loads(got.payload)) == ("acme/dresden/press-shop/line-2/oee", oee)
    ana_sees.expect_none(1.0)  # the PLC's telemetry keeps flowing: none of it reaches the analyst
    assert ana.publish_acked(PRESS7 + "/cmd/setpoint", cmd("set", "req-ana-0001", value=1.0), pid=2).reason == \
        NOT_AUTHORIZED

    # The operator's setpoint: bridge, the plant's grants and model, an OPC UA Write, the
    # new value, and the reply with her request_id.
    assert olga.publish_acked(PRESS7 + "/cmd/setpoint", cmd("set", "req-olga-0001", value=55.5), pid=3).reason == 0
    reply = json.loads(next_publish(olga_sees, PRESS7 + "/reply/setpoint").payload)
    assert (reply["request_id"], reply["status"]) == ("req-olga-0001", "ok"), reply
    wait_until(lambda: json.loads(next_publish(olga_sees, PRESS7 + "/telemetry/setpoint").payload)["value"] == 55.5,
               timeout=LIVE_TIMEOUT, what="the PLC's setpoint at 55.5")
    [e] = audit(plant["enterprise_audit"], lambda j: j["action"] == "command" and j.get("topic") == PRESS7 + "/cmd/setpoint"
                and j["identity"] == "olga")
    assert e["outcome"] == "allowed"
    [p] = audit(plant["edge_audit"], lambda j: j["action"] == "command" and j.get("topic") == PRESS7 + "/cmd/setpoint")
    assert (p["identity"], p["outcome"]) == ("to-enterprise", "allowed")
    assert p["origin"] == {"identity": "olga", "broker": "enterprise-hq"}

    # A safety gate under a cell: the enterprise refuses the operator ...
    assert olga.publish_acked(GATE + "/cmd/reset", cmd("reset", "req-olga-0002"), pid=4).reason == NOT_AUTHORIZED
    audit(plant["enterprise_audit"], lambda j: j["action"] == "command" and j.get("topic") == GATE + "/cmd/reset"
          and j["identity"] == "olga" and j["outcome"] == "refused")
    # ... and the plant refuses the engineer, whom the enterprise lets through.
    erik = login(raw_clients, enterprise, "erik")
    assert erik.publish_acked(GATE + "/cmd/reset", cmd("reset", "req-erik-0001"), pid=5).reason == 0
    [p] = audit(plant["edge_audit"], lambda j: j["action"] == "command" and j.get("topic") == GATE + "/cmd/reset")
    assert (p["identity"], p["outcome"], p["origin"]) == ("to-enterprise", "refused",
                                                          {"identity": "erik", "broker": "enterprise-hq"})

    # A payload that breaks the model is refused at the edge and never leaves it: the
    # next good value on the same topic is the first the enterprise sees.
    bad_topic = "acme/dresden/press-shop/line-2/press-8/telemetry/pressure"
    assert local.publish_acked(bad_topic, b'{"value": "high", "ts": "%s"}' % TS.encode(), pid=6).reason == \
        PAYLOAD_FORMAT_INVALID
    good = json.dumps({"value": 180.5, "ts": TS}).encode()
    assert local.publish_acked(bad_topic, good, pid=7).reason in (0, 0x10)
    assert next_publish(olga_sees, bad_topic).payload == good
