"""Federation in the model's terms: bridge rules that name classes, and commands that
carry their origin across a bridge (docs/federation.md).

A plant and an enterprise broker on loopback, both on the shipped ACME model
(deploy/namespace/acme.yaml). The plant's bridge forwards the data classes up and takes
the `cmd` class down, with equipment under a cell or not; a command from the enterprise
is audited at both ends with the sender's identity. Every broker is stopped by its PID
(broker_factory).
"""

import json
import os
import subprocess

import pytest

from conftest import IS_MOSQUITTO, PacketTypes, props, uid
from test_bridges import bridge_cfg, plant_with, wait_connected, wait_sys
from test_auth import audit_lines, passwd

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="bridges are Strata's")

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ACME = os.path.join(SOURCE_DIR, "deploy", "namespace", "acme.yaml")
TS = "2026-12-07T10:00:00Z"
LINE2 = "acme/dresden/press-shop/line-2"
DATA_CLASSES = ["telemetry", "state", "oee", "alarm"]


def telemetry(v):
    return json.dumps({"value": v, "ts": TS})


def cmd(command="stop", request_id=None):
    return json.dumps({"command": command, "request_id": request_id or uid("req"), "ts": TS})


def class_rules():
    return dict(forward=[{"class": DATA_CLASSES, "local": "acme/dresden/#", "remote": "acme/dresden/#"}],
                receive=[{"class": "cmd", "remote": "acme/dresden/#", "local": "acme/dresden/#"}])


def test_class_rules_forward_data_and_take_commands_under_a_cell_or_not(broker_factory, clients):
    enterprise = broker_factory(namespace={"model": ACME})
    plant = plant_with(broker_factory, bridge_cfg(enterprise.port, **class_rules()), namespace={"model": ACME})
    wait_connected(clients, plant)

    up = clients(enterprise)
    up.subscribe("acme/#", qos=1)
    pub = clients(plant)
    # Up: every data class, with a cell and without; commands and free topics stay.
    pub.publish(LINE2 + "/cell-1/press-7/cmd/stop", cmd(), qos=1)
    pub.publish("sandbox/notes", "stays here", qos=1)
    pub.publish(LINE2 + "/cell-1/press-7/telemetry/temp", telemetry(1), qos=1)
    pub.publish(LINE2 + "/press-8/telemetry/temp", telemetry(2), qos=1)
    alarm = json.dumps({"id": "PR-0042", "severity": "critical", "active": True, "ts": TS})
    pub.publish(LINE2 + "/press-8/alarm", alarm, qos=1)
    got = {}
    for _ in range(3):
        m = up.get()
        got[m.topic] = m.payload
    assert got == {LINE2 + "/cell-1/press-7/telemetry/temp": telemetry(1).encode(),
                   LINE2 + "/press-8/telemetry/temp": telemetry(2).encode(),
                   LINE2 + "/press-8/alarm": alarm.encode()}
    up.expect_none(0.3)

    # Down: commands under a cell and without one; telemetry from the enterprise stays there.
    down = clients(plant)
    down.subscribe("acme/dresden/+/+/+/cmd/#", qos=1)
    down.subscribe("acme/dresden/+/+/+/+/cmd/#", qos=1)
    down.subscribe("acme/dresden/+/+/+/+/telemetry/#", qos=1)
    hq = clients(enterprise)
    hq.publish(LINE2 + "/cell-1/press-7/telemetry/temp", telemetry(3), qos=1)
    hq.publish(LINE2 + "/cell-1/press-7/cmd/stop", cmd(request_id="req-under-cell"), qos=1)
    hq.publish(LINE2 + "/press-8/cmd/stop", cmd(request_id="req-without-cell"), qos=1)
    seen = sorted(json.loads(down.get().payload)["request_id"] for _ in range(2))
    assert seen == ["req-under-cell", "req-without-cell"]
    down.expect_none(0.3)


def test_unknown_class_in_a_bridge_rule_stops_the_start(tmp_path):
    from conftest import DEFAULT_CONFIG, STRATA_BIN, merge, to_yaml
    cases = [
        ({"namespace": {"model": ACME}}, {"class": "kpi", "local": "acme/#", "remote": "acme/#"},
         "class: the model has no class 'kpi' (its classes: telemetry, state, oee, alarm, cmd, reply)"),
        ({}, {"class": "telemetry"}, "class: names the namespace model's classes; configure one (namespace.model)"),
        ({"namespace": {"model": ACME}}, {"class": "oee", "local": "acme/#"}, "'local' and 'remote' go together"),
    ]
    for i, (extra, rule, needle) in enumerate(cases):
        cfg = merge(DEFAULT_CONFIG, dict(extra, bridges=[{"name": "x", "remote": "mqtt://127.0.0.1:1",
                                                          "forward": [rule]}]))
        cfg["persistence"]["path"] = str(tmp_path / ("d%d" % i))
        path = tmp_path / ("bad%d.yaml" % i)
        path.write_text(to_yaml(cfg))
        # The broker refuses to start, and --check-config says the same.
        for extra_args in ([], ["--check-config"]):
            r = subprocess.run([STRATA_BIN, "--config", str(path)] + extra_args, capture_output=True, timeout=30)
            err = r.stderr.decode()
            assert r.returncode == 2, err
            assert needle in err, err
            # Where: the file and line of the rule.
            assert "%s:" % path in err and "bridges[0].forward[0]" in err, err


def test_a_command_carries_its_origin_and_both_ends_audit_it(broker_factory, clients, tmp_path):
    pw = tmp_path / "passwd"
    passwd(pw, "olga", "olga-pw")
    passwd(pw, "mallory", "mallory-pw")
    e_audit, p_audit = tmp_path / "enterprise-audit.log", tmp_path / "plant-audit.log"
    enterprise = broker_factory(
        broker_id="enterprise-hq", namespace={"model": ACME},
        auth={"allow_anonymous": True, "password_file": str(pw)},
        roles={"operator": [{"allow": "subscribe", "where": {"site": "dresden", "line": "line-2"}},
                            {"allow": "command", "where": {"site": "dresden", "line": "line-2"}}],
               "bridge": [{"allow": "subscribe", "on": "#"}, {"allow": "publish", "on": "#"}]},
        users={"olga": ["operator"], "mallory": ["operator"], "anonymous": ["bridge"]},
        audit={"file": str(e_audit)})
    plant = plant_with(
        broker_factory, bridge_cfg(enterprise.port, identity="hq-bridge", **class_rules()),
        namespace={"model": ACME}, auth={"allow_anonymous": True},
        roles={"hq-commands": [{"allow": "command", "where": {"site": "dresden"}},
                               {"deny": "command", "where": {"equipment": "safety-gate-*"}}],
               "watcher": [{"allow": "subscribe", "on": "#"}, {"allow": "subscribe", "on": "$SYS/#"}]},
        users={"hq-bridge": ["hq-commands"], "anonymous": ["watcher"]},
        audit={"file": str(p_audit)})
    wait_connected(clients, plant)
    local = clients(plant)
    local.subscribe("acme/dresden/#", qos=1)

    olga = clients(enterprise, connect=False)
    olga.c.username_pw_set("olga", "olga-pw")
    olga.connect()
    # A client's own origin properties are replaced by the broker's.
    forged = props(PacketTypes.PUBLISH, UserProperty=[("strata-origin-identity", "ceo")])
    olga.publish(LINE2 + "/cell-1/press-7/cmd/stop", cmd(request_id="req-olga-0001"), qos=1, properties=forged)
    m = local.get()
    assert json.loads(m.payload)["request_id"] == "req-olga-0001"
    user = dict(m.properties.UserProperty)
    assert user["strata-origin-identity"] == "olga"
    assert user["strata-origin-broker"] == "enterprise-hq"
    assert [v for k, v in m.properties.UserProperty if k == "strata-origin-identity"] == ["olga"]

    [e] = audit_lines(e_audit, lambda j: j["action"] == "command" and j.get("topic", "").endswith("press-7/cmd/stop"))
    assert (e["identity"], e["outcome"]) == ("olga", "allowed")
    [p] = audit_lines(p_audit, lambda j: j["action"] == "command" and j.get("topic", "").endswith("press-7/cmd/stop"))
    assert (p["identity"], p["outcome"]) == ("hq-bridge", "allowed")
    assert p["origin"] == {"identity": "olga", "broker": "enterprise-hq"}

    # A safety gate under a cell: allowed at the enterprise, refused by the plant's grants.
    gate = LINE2 + "/cell-2/safety-gate-1/cmd/reset"
    olga.publish(gate, cmd("reset", "req-olga-0002"), qos=1)
    [p] = audit_lines(p_audit, lambda j: j["action"] == "command" and j.get("topic") == gate)
    assert (p["identity"], p["outcome"], p["reason"]) == ("hq-bridge", "refused", "not authorized")
    assert p["origin"] == {"identity": "olga", "broker": "enterprise-hq"}
    local.expect_none(0.3)
    assert int(wait_sys(clients, plant, "$SYS/broker/bridges/up/messages/denied", lambda v: int(v) >= 1)) == 1


def test_check_config_compiles_the_grants_against_the_model(tmp_path):
    from conftest import DEFAULT_CONFIG, STRATA_BIN, merge, to_yaml
    cfg = merge(DEFAULT_CONFIG, {"namespace": {"model": ACME},
                                 "roles": {"operator": [{"allow": "command", "where": {"plant": "dresden"}}]},
                                 "users": {"olga": ["operator"]}})
    cfg["persistence"]["path"] = str(tmp_path / "data")
    path = tmp_path / "roles.yaml"
    path.write_text(to_yaml(cfg))
    r = subprocess.run([STRATA_BIN, "--config", str(path), "--check-config"], capture_output=True, timeout=30)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert "%s:" % path in err and "roles.operator[0]: where: the model has no level 'plant'" in err, err
