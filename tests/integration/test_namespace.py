"""The namespace model in the broker (deploy/namespace/acme.yaml): passing and
refused publishes for 5.0 and 3.1.1 clients, the three enforcement modes, retain
rules, free subtrees, the dead-letter prefix, SIGHUP reload, and the
`strata namespace check|explain` commands."""

import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

import mqtt_raw as r
from conftest import STRATA_BIN, strata_only, uid, wait_until

pytestmark = strata_only

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ACME = os.path.join(SOURCE_DIR, "deploy", "namespace", "acme.yaml")

TS = "2026-11-25T10:00:00Z"
TELEMETRY = json.dumps({"value": 21.5, "unit": "degC", "ts": TS}).encode()
BAD_TELEMETRY = json.dumps({"value": "hot", "ts": TS}).encode()
STATE = json.dumps({"state": "running", "ts": TS}).encode()
CMD = json.dumps({"command": "start", "request_id": "req-00000001", "ts": TS}).encode()

PRESS = "acme/dresden/press-shop/line-2/cell-1/press-7"        # mode reject (default)
LEIPZIG = "acme/leipzig/press-shop/line-1/press-3"            # mode warn
ASSEMBLY = "acme/dresden/assembly/line-2/robot-3"             # mode quarantine


@pytest.fixture
def model_dir(tmp_path):
    """A copy of deploy/namespace (model and schemas) that a test may edit."""
    d = tmp_path / "namespace"
    shutil.copytree(os.path.dirname(ACME), d)
    return d


@pytest.fixture
def ns_broker(broker_factory):
    return broker_factory(namespace={"model": ACME})


def v5_publisher(raw_clients, broker, **connect_kw):
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid("pub"), **connect_kw)
    return c


def puback(c, topic, payload, qos=1, retain=False, pid=7):
    """Publishes at QoS 1 (PUBACK) or 2 (PUBREC, flow completed) and returns the ack."""
    c.publish(topic, payload, qos=qos, retain=retain, pid=pid)
    if qos == 1:
        ack = c.expect(r.PUBACK)
    else:
        ack = c.expect(r.PUBREC)
        if ack.reason < 0x80:
            c.send(r.pubrel(pid, version=c.version))
            c.expect(r.PUBCOMP)
    assert ack.pid == pid
    return ack


# ---------------------------------------------------------------- passing

def test_valid_telemetry_reaches_5_and_311_subscribers(ns_broker, clients, raw_clients):
    s5 = clients(ns_broker, version=5)
    s311 = clients(ns_broker, version=3)
    for s in (s5, s311):
        s.subscribe("acme/#", qos=1)
    topic = PRESS + "/telemetry/temperature"
    ack = puback(v5_publisher(raw_clients, ns_broker), topic, TELEMETRY)
    assert ack.reason == r.SUCCESS
    for s in (s5, s311):
        m = s.get()
        assert (m.topic, m.payload) == (topic, TELEMETRY)
    # the optional cell level left out, and a 3.1.1 publisher
    p = raw_clients(ns_broker, r.V311)
    p.connect_ok(uid())
    p.publish_acked("acme/dresden/press-shop/line-2/press-7/telemetry", TELEMETRY)
    assert s5.get().topic == "acme/dresden/press-shop/line-2/press-7/telemetry"


def test_free_subtree_is_not_checked(ns_broker, clients, raw_clients):
    s = clients(ns_broker)
    s.subscribe("sandbox/#")
    ack = puback(v5_publisher(raw_clients, ns_broker), "sandbox/anything/goes", b"\xff not json")
    assert ack.reason == r.SUCCESS
    assert s.get().payload == b"\xff not json"


def test_sys_topics_still_flow_and_stay_closed_to_clients(broker_factory, clients, raw_clients):
    b = broker_factory(namespace={"model": ACME}, sys={"interval": 1})
    s = clients(b)
    s.subscribe("$SYS/broker/uptime")
    assert s.get().topic == "$SYS/broker/uptime"
    ack = puback(v5_publisher(raw_clients, b), "$SYS/fake", b"x")
    assert ack.reason == r.NOT_AUTHORIZED


# ---------------------------------------------------------------- reject

@pytest.mark.parametrize("topic", [
    "globex/dresden/press-shop/line-2/press-7/telemetry",      # enterprise
    "acme/berlin/press-shop/line-2/press-7/telemetry",         # site
    "acme/dresden/paint-shop/line-2/press-7/telemetry",        # area
    "acme/dresden/press-shop/line-x/press-7/telemetry",        # line
    "acme/dresden/press-shop/line-2/cell-1/Press7/telemetry",  # equipment
    "acme/dresden/press-shop/line-2/press-7/bogus",            # class
    "acme/dresden/press-shop/line-2/press-7",                  # no class
    "random/topic",                                            # outside the model
])
@pytest.mark.parametrize("qos", [1, 2])
def test_invalid_topic_refused_with_0x90(ns_broker, clients, raw_clients, topic, qos):
    s = clients(ns_broker)
    s.subscribe("#")
    c = v5_publisher(raw_clients, ns_broker)
    ack = puback(c, topic, TELEMETRY, qos=qos)
    assert ack.reason == r.TOPIC_NAME_INVALID
    assert ack.props.get("reason_string")
    s.expect_none(0.3)
    c.ping()  # the connection stays up


def test_wrong_payload_refused_with_0x99(ns_broker, clients, raw_clients):
    s = clients(ns_broker)
    s.subscribe("acme/#")
    c = v5_publisher(raw_clients, ns_broker)
    for payload in (BAD_TELEMETRY, b"not json", json.dumps({"value": 1}).encode()):
        ack = puback(c, PRESS + "/telemetry/temperature", payload)
        assert ack.reason == r.PAYLOAD_FORMAT_INVALID, payload
        assert "payload" in ack.props.get("reason_string", "")
    # a wrong command payload (set needs parameters)
    bad_cmd = json.dumps({"command": "set", "request_id": "req-00000002", "ts": TS}).encode()
    assert puback(c, PRESS + "/cmd", bad_cmd).reason == r.PAYLOAD_FORMAT_INVALID
    s.expect_none(0.3)


def test_no_reason_string_without_problem_information(ns_broker, raw_clients):
    c = v5_publisher(raw_clients, ns_broker, props=[("request_problem_information", 0)])
    ack = puback(c, "random/topic", b"x")
    assert ack.reason == r.TOPIC_NAME_INVALID
    assert not ack.props.has("reason_string")


def test_no_reason_string_beyond_client_maximum_packet_size(ns_broker, raw_clients):
    c = v5_publisher(raw_clients, ns_broker, props=[("maximum_packet_size", 32)])
    ack = puback(c, "random/topic", b"x")
    assert ack.reason == r.TOPIC_NAME_INVALID
    assert not ack.props.has("reason_string")


def test_rejected_qos0_is_dropped(ns_broker, clients, raw_clients):
    s = clients(ns_broker)
    s.subscribe("#")
    c = v5_publisher(raw_clients, ns_broker)
    c.publish("random/topic", b"x", qos=0)
    c.publish(PRESS + "/telemetry/t", BAD_TELEMETRY, qos=0)
    c.publish(PRESS + "/telemetry/t", TELEMETRY, qos=0)  # marker: in order after the others
    m = s.get()
    assert (m.topic, m.payload) == (PRESS + "/telemetry/t", TELEMETRY)
    c.ping()


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_v311_rejected_is_dropped_but_acknowledged(ns_broker, clients, raw_clients, qos):
    s = clients(ns_broker, version=3)
    s.subscribe("#", qos=1)
    c = raw_clients(ns_broker, r.V311)
    c.connect_ok(uid())
    if qos:
        ack = c.publish_acked("acme/berlin/press-shop/line-2/press-7/telemetry", TELEMETRY, qos=qos)
        assert ack.reason == 0
        c.publish_acked(PRESS + "/telemetry/t", BAD_TELEMETRY, qos=qos, pid=2)
    else:
        c.publish("acme/berlin/press-shop/line-2/press-7/telemetry", TELEMETRY)
    c.publish(PRESS + "/telemetry/t", TELEMETRY)  # marker
    m = s.get()
    assert (m.topic, m.payload) == (PRESS + "/telemetry/t", TELEMETRY)
    s.expect_none(0.3)


def test_retain_rules(ns_broker, clients, raw_clients):
    c = v5_publisher(raw_clients, ns_broker)
    # state: retain required
    assert puback(c, PRESS + "/state", STATE, retain=False).reason == 0x83
    assert puback(c, PRESS + "/state", STATE, retain=True).reason in (r.SUCCESS, r.NO_MATCHING_SUBSCRIBERS)
    # cmd: retain forbidden
    assert puback(c, PRESS + "/cmd", CMD, retain=True).reason == 0x83
    assert puback(c, PRESS + "/cmd", CMD, retain=False).reason in (r.SUCCESS, r.NO_MATCHING_SUBSCRIBERS)
    # only the valid retained state is stored
    s = clients(ns_broker)
    s.subscribe("acme/#")
    m = s.get()
    assert (m.topic, m.payload, m.retain) == (PRESS + "/state", STATE, True)
    s.expect_none(0.3)
    # an empty retained publish deletes it: only the topic is checked
    assert puback(c, PRESS + "/state", b"", retain=True).reason in (r.SUCCESS, r.NO_MATCHING_SUBSCRIBERS)
    s2 = clients(ns_broker)
    s2.subscribe("acme/#")
    s2.expect_none(0.3)


# ---------------------------------------------------------------- warn

def test_warn_mode_delivers_and_logs(ns_broker, clients, raw_clients):
    s = clients(ns_broker)
    s.subscribe("acme/leipzig/#")
    c = v5_publisher(raw_clients, ns_broker)
    topic = LEIPZIG + "/telemetry/pressure"
    ack = puback(c, topic, BAD_TELEMETRY)
    assert ack.reason == r.SUCCESS
    assert s.get().payload == BAD_TELEMETRY
    # a topic outside the model under a warn subtree also passes
    assert puback(c, "acme/leipzig/paint-shop", b"x").reason == r.SUCCESS
    wait_until(lambda: "namespace model (warn)" in ns_broker.stderr_text() and topic in ns_broker.stderr_text(),
               what="the warn log line")


# ---------------------------------------------------------------- quarantine

def test_quarantine_republishes_under_dead_letter_prefix(ns_broker, clients, raw_clients):
    s_orig = clients(ns_broker, version=5)
    s_orig.subscribe("acme/dresden/assembly/#", qos=1)
    s5 = clients(ns_broker, version=5)
    s5.subscribe("uns/quarantine/#", qos=1)
    s311 = clients(ns_broker, version=3)
    s311.subscribe("uns/quarantine/#", qos=1)

    c = v5_publisher(raw_clients, ns_broker)
    topic = ASSEMBLY + "/telemetry/torque"
    ack = puback(c, topic, BAD_TELEMETRY, qos=1, retain=False)
    assert ack.reason == r.SUCCESS
    assert "quarantined" in ack.props.get("reason_string", "")

    for s in (s5, s311):
        m = s.get()
        assert m.topic == "uns/quarantine/" + topic
        assert m.qos == 1 and not m.retain
        env = json.loads(m.payload)
        assert env["topic"] == topic
        assert env["code"] == "payload_invalid"
        assert env["reason"]
        assert env["payload"] == BAD_TELEMETRY.decode()
    s_orig.expect_none(0.3)

    # the 5.0 subscriber's copy carries the reason as a user property
    puback(c, ASSEMBLY + "/state", STATE, retain=False, pid=8)  # retain rule broken
    m5 = s5.get()
    up = dict(m5.properties.UserProperty)
    assert "retain" in up["strata-quarantine-reason"]
    assert json.loads(m5.payload)["code"] == "retain_violation"
    assert json.loads(s311.get().payload)["code"] == "retain_violation"
    s_orig.expect_none(0.3)

    # a valid message under a quarantine subtree is delivered as usual
    assert puback(c, topic, TELEMETRY, pid=9).reason == r.SUCCESS
    assert s_orig.get().payload == TELEMETRY
    s5.expect_none(0.3)


def test_quarantine_v311_publisher_and_binary_payload(ns_broker, clients, raw_clients):
    s = clients(ns_broker)
    s.subscribe("uns/quarantine/#")
    c = raw_clients(ns_broker, r.V311)
    c.connect_ok(uid())
    c.publish(ASSEMBLY + "/telemetry/x", b"\xff\xfe", qos=0)
    env = json.loads(s.get().payload)
    assert "payload_base64" in env and env["code"] == "payload_invalid"


def test_clients_cannot_publish_under_dead_letter_prefix(ns_broker, clients, raw_clients):
    s = clients(ns_broker)
    s.subscribe("uns/#")
    c = v5_publisher(raw_clients, ns_broker)
    for t in ("uns/quarantine", "uns/quarantine/" + ASSEMBLY + "/telemetry/x"):
        assert puback(c, t, b"forged").reason == r.NOT_AUTHORIZED
    # a sibling of the prefix is not under it (and is outside the model)
    assert puback(c, "uns/quarantined", b"x").reason == r.TOPIC_NAME_INVALID
    s.expect_none(0.3)
    c311 = raw_clients(ns_broker, r.V311)
    c311.connect_ok(uid())
    assert c311.publish_acked("uns/quarantine/x", b"forged").reason == 0
    s.expect_none(0.3)


# ---------------------------------------------------------------- reload

def test_sighup_reload_changes_verdict_and_keeps_connections(broker_factory, model_dir, clients, raw_clients):
    model = model_dir / "acme.yaml"
    b = broker_factory(namespace={"model": str(model)})
    s = clients(b)
    s.subscribe("acme/#")
    c = v5_publisher(raw_clients, b)
    berlin = "acme/berlin/press-shop/line-1/press-1/telemetry"
    assert puback(c, berlin, TELEMETRY).reason == r.TOPIC_NAME_INVALID

    model.write_text(model.read_text().replace("names: [dresden, leipzig]", "names: [dresden, leipzig, berlin]"))
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: "namespace model reloaded" in b.stderr_text(), what="the reload log line")
    assert puback(c, berlin, TELEMETRY, pid=8).reason == r.SUCCESS
    assert s.get().topic == berlin
    c.ping()

    # a bad model is refused and the old one stays
    model.write_text(model.read_text().replace("names: [dresden, leipzig, berlin]", "names: [dresden, dresden]"))
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: "not reloaded" in b.stderr_text(), what="the refused reload log line")
    assert "acme.yaml" in [l for l in b.stderr_text().splitlines() if "not reloaded" in l][0]
    assert puback(c, berlin, TELEMETRY, pid=9).reason == r.SUCCESS
    assert puback(c, "random/topic", b"x", pid=10).reason == r.TOPIC_NAME_INVALID
    c.ping()
    s.get()
    b.assert_alive()


def test_enforcement_mode_from_modified_model(broker_factory, model_dir, clients, raw_clients):
    model = model_dir / "acme.yaml"
    # the whole tree in warn mode (the overrides would repeat it: drop them)
    text = model.read_text().replace("mode: reject", "mode: warn")
    text = text.replace('"acme/leipzig/#": warn', '"acme/leipzig/#": reject')
    model.write_text(text)
    b = broker_factory(namespace={"model": str(model)})
    c = v5_publisher(raw_clients, b)
    assert puback(c, PRESS + "/telemetry/t", BAD_TELEMETRY).reason in (r.SUCCESS, r.NO_MATCHING_SUBSCRIBERS)
    assert puback(c, LEIPZIG + "/telemetry/t", BAD_TELEMETRY, pid=8).reason == r.PAYLOAD_FORMAT_INVALID


# ---------------------------------------------------------------- wills (checked at CONNECT)

def will(topic, payload, retain=False, qos=1):
    return {"topic": topic, "payload": payload, "qos": qos, "retain": retain}


@pytest.mark.parametrize("topic,payload,retain,code", [
    ("acme/berlin/press-shop/line-2/press-7/telemetry", TELEMETRY, False, r.TOPIC_NAME_INVALID),
    (PRESS + "/telemetry/t", BAD_TELEMETRY, False, r.PAYLOAD_FORMAT_INVALID),
    (PRESS + "/state", STATE, False, 0x83),  # state must be retained
])
def test_v5_will_refused_at_connect(ns_broker, raw_clients, topic, payload, retain, code):
    c = raw_clients(ns_broker, r.V5)
    ack = c.connect(uid(), will=will(topic, payload, retain))
    assert ack.reason == code
    assert ack.props.get("reason_string", "").startswith("will: ")
    c.wait_closed()


def test_v5_valid_will_is_published(ns_broker, clients, raw_clients):
    s = clients(ns_broker)
    s.subscribe("acme/#", qos=1)
    c = raw_clients(ns_broker, r.V5)
    c.connect_ok(uid(), will=will(PRESS + "/state", STATE, retain=True))
    c.close()
    m = s.get()
    assert (m.topic, m.payload) == (PRESS + "/state", STATE)


def test_v311_invalid_will_dropped_connection_accepted(ns_broker, clients, raw_clients):
    s = clients(ns_broker)
    s.subscribe("#", qos=1)
    bad = "acme/berlin/press-shop/line-2/press-7/telemetry"
    c = raw_clients(ns_broker, r.V311)
    c.connect_ok(uid(), will=will(bad, TELEMETRY))
    c.close()
    wait_until(lambda: "will on '%s' dropped" % bad in ns_broker.stderr_text(), what="the dropped-will log line")
    p = raw_clients(ns_broker, r.V311)
    p.connect_ok(uid())
    p.publish_acked(PRESS + "/telemetry/t", TELEMETRY)  # marker
    assert s.get().topic == PRESS + "/telemetry/t"
    s.expect_none(0.3)


@pytest.mark.parametrize("version", [r.V311, r.V5])
def test_will_quarantined_and_warned(ns_broker, clients, raw_clients, version):
    dead = clients(ns_broker)
    dead.subscribe("uns/quarantine/#", qos=1)
    orig = clients(ns_broker)
    orig.subscribe("acme/#", qos=1)
    q_topic = ASSEMBLY + "/telemetry/torque"
    c = raw_clients(ns_broker, version)
    c.connect_ok(uid(), will=will(q_topic, BAD_TELEMETRY))
    c.close()
    m = dead.get()
    assert m.topic == "uns/quarantine/" + q_topic and not m.retain
    env = json.loads(m.payload)
    assert (env["topic"], env["code"], env["payload"]) == (q_topic, "payload_invalid", BAD_TELEMETRY.decode())
    orig.expect_none(0.3)

    w_topic = LEIPZIG + "/telemetry/pressure"  # warn: published as it is
    c = raw_clients(ns_broker, version)
    c.connect_ok(uid(), will=will(w_topic, BAD_TELEMETRY))
    c.close()
    m = orig.get()
    assert (m.topic, m.payload) == (w_topic, BAD_TELEMETRY)
    dead.expect_none(0.3)


@pytest.mark.parametrize("version,code", [(r.V5, r.NOT_AUTHORIZED), (r.V311, 0x05)])
def test_will_under_dead_letter_prefix_refused(ns_broker, raw_clients, version, code):
    c = raw_clients(ns_broker, version)
    ack = c.connect(uid(), will=will("uns/quarantine/forged", b"x"))
    assert ack.reason == code
    c.wait_closed()


# ---------------------------------------------------------------- reload and retained messages

def test_reload_applies_new_model_to_retained_messages(broker_factory, model_dir, clients, raw_clients):
    model = model_dir / "acme.yaml"
    b = broker_factory(namespace={"model": str(model)})
    c = v5_publisher(raw_clients, b)
    keep = "acme/dresden/press-shop/line-2/press-17/state"
    stored = [PRESS + "/state", LEIPZIG + "/state", ASSEMBLY + "/state", keep]  # reject, warn, quarantine zones
    for pid, t in enumerate(stored, start=1):
        assert puback(c, t, STATE, retain=True, pid=pid).reason in (r.SUCCESS, r.NO_MATCHING_SUBSCRIBERS)
    assert puback(c, "sandbox/kept", b"free", retain=True, pid=9).reason in (r.SUCCESS, r.NO_MATCHING_SUBSCRIBERS)
    dead = clients(b)
    dead.subscribe("uns/quarantine/#", qos=1)

    # Equipment ids now need two or three digits: press-7, press-3 and robot-3 leave the model.
    text = model.read_text()
    assert '"[a-z]+(-[a-z]+)*-[0-9]{1,3}"' in text
    model.write_text(text.replace('"[a-z]+(-[a-z]+)*-[0-9]{1,3}"', '"[a-z]+(-[a-z]+)*-[0-9]{2,3}"'))
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: "namespace model reload: " in b.stderr_text(), what="the retained re-check log line")
    line = [l for l in b.stderr_text().splitlines() if "namespace model reload: " in l][0]
    assert "1 removed, 1 quarantined, 1 kept (warn)" in line, line

    m = dead.get()
    assert m.topic == "uns/quarantine/" + ASSEMBLY + "/state" and not m.retain
    env = json.loads(m.payload)
    assert (env["topic"], env["code"], env["retain"]) == (ASSEMBLY + "/state", "topic_invalid", True)

    s = clients(b)
    s.subscribe("#", qos=1)
    got = {s.get().topic for _ in range(3)}
    assert got == {LEIPZIG + "/state", keep, "sandbox/kept"}
    s.expect_none(0.3)
    c.ping()  # the publisher's connection survived the reload


# ---------------------------------------------------------------- start-up and CLI

# Where a broker started without a persistence path would create ./data: not the
# source tree.
RUN_DIR = tempfile.mkdtemp(prefix="strata-cli-")


def run(*args, timeout=15):
    return subprocess.run([STRATA_BIN] + [str(a) for a in args], capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=RUN_DIR)


def one_error_line(p):
    lines = [l for l in p.stderr.decode(errors="replace").splitlines() if l.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("case", ["missing", "invalid"])
def test_broker_does_not_start_with_a_bad_model(tmp_path, model_dir, case):
    if case == "missing":
        model = "nope/acme.yaml"
    else:
        (model_dir / "acme.yaml").write_text((model_dir / "acme.yaml").read_text().replace("levels:", "levls:"))
        model = "namespace/acme.yaml"  # relative to the config file
    cfg = tmp_path / "strata.yaml"
    cfg.write_text('listeners: [{name: default, bind: "127.0.0.1:0"}]\npersistence: {path: "%s"}\n'
                   "namespace: {model: %s}\n" % (tmp_path / "data", model))
    p = run("--config", cfg)
    assert p.returncode == 2, p
    assert b"strata ready" not in p.stdout
    line = one_error_line(p)
    assert "acme.yaml" in line
    if case == "invalid":
        assert "levls" in line


def test_model_path_relative_to_config_file(tmp_path, model_dir, broker_factory):
    # the fixture writes strata.yaml in its own dir: point there with a relative path
    b = broker_factory(namespace={"model": "../namespace/acme.yaml"})
    assert "namespace model loaded" in b.stderr_text()


def test_cli_check(model_dir):
    p = run("namespace", "check", ACME)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().splitlines()[0] == ACME + ": ok"
    bad = model_dir / "acme.yaml"
    bad.write_text(bad.read_text().replace("pattern: \"line-[0-9]{1,2}\"", "pattern: \"line-[0-9\""))
    p = run("namespace", "check", bad)
    assert p.returncode == 2
    line = one_error_line(p)
    assert "acme.yaml:" in line and "pattern" in line
    p = run("namespace", "check", model_dir / "missing.yaml")
    assert p.returncode == 2
    one_error_line(p)


def test_cli_explain(tmp_path):
    ok = tmp_path / "ok.json"
    ok.write_bytes(TELEMETRY)
    bad = tmp_path / "bad.json"
    bad.write_bytes(BAD_TELEMETRY)
    p = run("namespace", "explain", ACME, PRESS + "/telemetry/temperature", ok)
    assert p.returncode == 0, p.stdout
    out = p.stdout.decode()
    assert "equipment" in out and "press-7" in out and "telemetry" in out
    p = run("namespace", "explain", ACME, PRESS + "/telemetry/temperature", bad)
    assert p.returncode == 1
    assert "0x99" in p.stdout.decode()
    p = run("namespace", "explain", ACME, "acme/berlin/press-shop/line-2/press-7/telemetry")
    assert p.returncode == 1
    assert "0x90" in p.stdout.decode()
    p = run("namespace", "explain", ACME, "sandbox/x")
    assert p.returncode == 0
    # retain rule: state needs --retain
    state = tmp_path / "state.json"
    state.write_bytes(STATE)
    assert run("namespace", "explain", ACME, PRESS + "/state", state).returncode == 1
    assert run("namespace", "explain", "--retain", ACME, PRESS + "/state", state).returncode == 0
    # bad model, missing payload file, bad usage
    assert run("namespace", "explain", tmp_path / "none.yaml", "a/b").returncode == 2
    p = run("namespace", "explain", ACME, PRESS + "/telemetry/t", tmp_path / "none.json")
    assert p.returncode == 2 and "none.json" in one_error_line(p)
    assert run("namespace", "explain", ACME).returncode == 2
    assert run("namespace", "bogus").returncode == 2


def test_help_mentions_namespace_commands():
    p = run("--help")
    assert p.returncode == 0
    assert b"namespace check MODEL" in p.stdout and b"namespace explain" in p.stdout
