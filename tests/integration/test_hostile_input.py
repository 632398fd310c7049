"""Input no library may turn into an exception that stops the broker: JSON numbers a
double cannot hold (1e999) in a will, a PUBLISH, a retained value re-checked by a
reload or a restart, a schema file and the `strata namespace explain` CLI; payloads
that name a key twice or start with a byte order mark in a modeled class; replies
(CONNACK, AUTH) larger than the Maximum Packet Size a client announced."""

import signal
import subprocess

import pytest

import mqtt_raw as r
from conftest import MOSQUITTO_PUB, strata_only, uid, wait_until
from test_auth import BAD_CREDENTIALS, PASSWORDS, example_overrides, login, scram_login
from test_namespace import ACME, PRESS, model_dir, puback, run, v5_publisher  # noqa: F401 (model_dir: a fixture)

pytestmark = strata_only

TS = "2026-12-06T10:00:00Z"
HUGE_TELEMETRY = b'{"value":1e999,"ts":"' + TS.encode() + b'"}'
HUGE_STATE = b'{"state":"running","ts":"' + TS.encode() + b'","x":1e999}'
LINE2_TELEMETRY = "acme/dresden/press-shop/line-2/press-7/telemetry/temperature"


# ---------------------------------------------------------------- case 1: a will at CONNECT

def test_will_with_huge_number_from_a_subscribe_only_user(broker_factory, tmp_path, raw_clients):
    """The issue's command: mosquitto_pub as the analyst (subscribe grants only)."""
    b = broker_factory(**example_overrides(tmp_path))
    p = subprocess.run([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(b.port), "-u", "ana", "-P", PASSWORDS["ana"],
                        "-t", "sandbox/x", "-m", "hi", "--will-topic", LINE2_TELEMETRY,
                        "--will-payload", HUGE_TELEMETRY.decode()], capture_output=True, timeout=15)
    assert p.returncode != 0  # refused: the analyst may not publish the will
    assert b.proc.poll() is None  # still running
    c = login(raw_clients, b, "olga")
    c.send(r.pingreq())
    c.expect(r.PINGRESP)


@pytest.mark.parametrize("version", [r.V5, r.V311])
def test_will_with_huge_number_from_a_user_who_may_publish_it(broker_factory, tmp_path, raw_clients, version):
    """olga (operator of line 2) may publish there: the model refuses the payload."""
    b = broker_factory(**example_overrides(tmp_path))
    c = raw_clients(b, version)
    ack = c.connect(uid("olga"), username="olga", password=PASSWORDS["olga"].encode(),
                    will={"topic": LINE2_TELEMETRY, "payload": HUGE_TELEMETRY, "qos": 1, "retain": False})
    if version == r.V5:
        assert ack.reason == r.PAYLOAD_FORMAT_INVALID
        assert "number overflow" in ack.props.get("reason_string", "")
        c.wait_closed()
    else:
        assert ack.reason == 0  # 3.1.1: accepted, the will dropped (logged)
        c.close()
    s = login(raw_clients, b, "erik")
    s.send(r.pingreq())
    s.expect(r.PINGRESP)
    assert b.proc.poll() is None  # still running


# ---------------------------------------------------------------- case 2: PUBLISH, reload, restart, CLI

@pytest.mark.parametrize("qos", [1, 2])
def test_publish_with_huge_number_is_refused_with_0x99(broker_factory, raw_clients, qos):
    b = broker_factory(namespace={"model": ACME})
    c = v5_publisher(raw_clients, b)
    ack = puback(c, LINE2_TELEMETRY, HUGE_TELEMETRY, qos=qos)
    assert ack.reason == r.PAYLOAD_FORMAT_INVALID
    assert "number overflow" in ack.props.get("reason_string", "")
    # The publisher's connection is not closed as an internal error.
    c.send(r.pingreq())
    c.expect(r.PINGRESP)
    assert "internal error" not in b.stderr_text()


def without_state_schema(model):
    text = model.read_text()
    assert "    schema: schemas/state.json\n" in text
    model.write_text(text.replace("    schema: schemas/state.json\n", ""))
    return text


def test_retained_huge_number_then_schema_added_by_reload_and_restart(broker_factory, model_dir, raw_clients,
                                                                      tmp_path):
    model = model_dir / "acme.yaml"
    original = without_state_schema(model)
    data = str(tmp_path / "data")
    b = broker_factory(namespace={"model": str(model)}, persistence={"path": data})
    c = v5_publisher(raw_clients, b)
    topic = PRESS + "/state"
    assert puback(c, topic, HUGE_STATE, retain=True).reason in (r.SUCCESS, r.NO_MATCHING_SUBSCRIBERS)

    # The schema comes back: the reload re-checks the retained value and
    # removes it (reject zone); the broker and its clients carry on.
    model.write_text(original)
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: "namespace model reload: " in b.stderr_text(), what="the retained re-check log line")
    line = [l for l in b.stderr_text().splitlines() if "namespace model reload: " in l][0]
    assert "1 removed" in line, line
    c.send(r.pingreq())
    c.expect(r.PINGRESP)

    # Stored again without the schema, then the broker restarts with it.
    without_state_schema(model)
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: b.stderr_text().count("namespace model reloaded") >= 2, what="the second reload")
    assert puback(c, topic, HUGE_STATE, retain=True, pid=8).reason in (r.SUCCESS, r.NO_MATCHING_SUBSCRIBERS)
    c.close()
    b.stop()
    b.assert_clean_exit()
    model.write_text(original)
    b2 = broker_factory(namespace={"model": str(model)}, persistence={"path": data})
    line = [l for l in b2.stderr_text().splitlines() if "namespace model start-up: " in l][0]
    assert "1 retained messages checked, 1 removed" in line, line
    s = v5_publisher(raw_clients, b2)
    s.subscribe([(PRESS + "/#", 1)])
    s.expect_nothing(0.3)  # the value that breaks the schema is not served
    assert b2.proc.poll() is None


def test_schema_file_with_huge_number_is_a_model_error(model_dir):
    schema = model_dir / "schemas" / "state.json"
    schema.write_text(schema.read_text().rstrip().rstrip("}") + ', "maxProperties": 1e999}')
    p = run("namespace", "check", model_dir / "acme.yaml")
    assert p.returncode == 2, p.stderr
    err = p.stderr.decode()
    assert "state.json" in err and "number overflow" in err, err


def test_reload_of_a_model_whose_schema_overflows_keeps_the_old_one(broker_factory, model_dir, raw_clients):
    model = model_dir / "acme.yaml"
    b = broker_factory(namespace={"model": str(model)})
    schema = model_dir / "schemas" / "state.json"
    schema.write_text(schema.read_text().rstrip().rstrip("}") + ', "maxProperties": 1e999}')
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: "not reloaded" in b.stderr_text(), what="the failed reload")
    line = [l for l in b.stderr_text().splitlines() if "not reloaded" in l][0]
    assert "number overflow" in line, line
    c = v5_publisher(raw_clients, b)
    assert puback(c, LINE2_TELEMETRY, HUGE_TELEMETRY).reason == r.PAYLOAD_FORMAT_INVALID


def test_cli_explain_with_huge_number(tmp_path):
    payload = tmp_path / "huge.json"
    payload.write_bytes(HUGE_TELEMETRY)
    p = run("namespace", "explain", ACME, LINE2_TELEMETRY, payload)
    assert p.returncode == 1, p.stderr  # the payload is invalid: not an abort (134)
    assert "number overflow" in p.stdout.decode()
    assert "0x99" in p.stdout.decode()


# ---------------------------------------------------------------- case 15: duplicate keys, BOM

@pytest.mark.parametrize("payload,why", [
    (b'{"value": 1.5, "ts": "' + TS.encode() + b'", "value": "off"}', "the key 'value' appears twice"),
    (b'\xef\xbb\xbf{"value": 1.5, "ts": "' + TS.encode() + b'"}', "byte order mark"),
])
def test_duplicate_keys_and_byte_order_mark_refused(broker_factory, raw_clients, payload, why):
    b = broker_factory(namespace={"model": ACME})
    c = v5_publisher(raw_clients, b)
    ack = puback(c, LINE2_TELEMETRY, payload)
    assert ack.reason == r.PAYLOAD_FORMAT_INVALID
    assert why in ack.props.get("reason_string", "")
    # Free subtrees are not checked: the same bytes pass there.
    assert puback(c, "sandbox/raw", payload, pid=9).reason in (r.SUCCESS, r.NO_MATCHING_SUBSCRIBERS)


# ---------------------------------------------------------------- the client's Maximum Packet Size

def test_refusing_connack_within_the_clients_maximum_packet_size(broker_factory, tmp_path, raw_clients):
    """A wrong password, asked with problem information: the Reason String comes only when
    the CONNACK still fits the Maximum Packet Size the client announced (MQTT-3.1.2-25)."""
    b = broker_factory(**example_overrides(tmp_path))
    roomy = raw_clients(b, r.V5).connect(uid("olga"), username="olga", password=b"wrong",
                                         props=[("maximum_packet_size", 1000)])
    assert roomy.reason == BAD_CREDENTIALS
    assert roomy.props.has("reason_string") and roomy.size > 16
    tight = raw_clients(b, r.V5).connect(uid("olga"), username="olga", password=b"wrong",
                                         props=[("maximum_packet_size", 16)])
    assert tight.reason == BAD_CREDENTIALS
    assert not tight.props.has("reason_string") and tight.size <= 16


def test_connack_that_cannot_fit_closes_the_connection(broker_factory, raw_clients):
    """An empty client id needs an Assigned Client Identifier: with a Maximum Packet Size
    of 12 no CONNACK fits, so nothing is sent and the connection closes."""
    b = broker_factory()
    c = raw_clients(b, r.V5)
    c.send(r.connect("", version=r.V5, props=[("maximum_packet_size", 12)]))
    assert c.wait_closed() == []
    wait_until(lambda: "above the client's Maximum Packet Size of 12" in b.stderr_text(), what="the log line")
    ok = raw_clients(b, r.V5).connect_ok("", props=[("maximum_packet_size", 100)])
    assert ok.size <= 100 and ok.props.has("assigned_client_identifier")


def test_scram_challenge_larger_than_the_clients_maximum_packet_size(broker_factory, tmp_path, raw_clients):
    """SCRAM's server-first message (nonces, salt) does not fit 40 bytes: the AUTH is not
    sent, the connection closes; the same login with room for it succeeds."""
    b = broker_factory(**example_overrides(tmp_path))
    c = raw_clients(b, r.V5)
    first = "n,,n=olga,r=fyko+d2lbbFgONRv9qkxdawL"
    c.send(r.connect(uid("olga"), version=r.V5,
                     props=[("authentication_method", "SCRAM-SHA-256"),
                            ("authentication_data", first.encode()), ("maximum_packet_size", 40)]))
    assert c.wait_closed() == []
    ack, _ = scram_login(raw_clients(b, r.V5), "olga", PASSWORDS["olga"])
    assert ack.reason == 0


def test_second_connect_of_an_unknown_version_is_a_protocol_error(broker_factory, raw_clients):
    """The decoder refuses a CONNECT of protocol level 6 with 0x84, a CONNACK code; to a
    connected 5.0 client it is a second CONNECT, a protocol error (DISCONNECT 0x82), and
    every reason code the broker sends is one its packet type may carry."""
    b = broker_factory()
    c = raw_clients(b, r.V5)
    c.connect_ok(uid())
    c.send(r.connect(uid(), version=6))
    p = c.expect(r.DISCONNECT)
    assert p.reason == r.PROTOCOL_ERROR
    c.wait_closed()


def test_a_new_topic_alias_never_takes_a_publish_over_the_maximum_packet_size(broker_factory, raw_clients):
    """A PUBLISH of 18 bytes gets 3 more with a new Topic Alias: to a client whose Maximum
    Packet Size is 20 it goes without the alias (and no alias is set up), not as 21 bytes."""
    b = broker_factory()
    sub = raw_clients(b, r.V5)
    sub.connect_ok(uid(), props=[("maximum_packet_size", 20), ("topic_alias_maximum", 5)])
    sub.subscribe("sandbox/xy")
    pub = raw_clients(b, r.V5)
    pub.connect_ok(uid())
    for payload in (b"abc", b"def"):
        pub.publish("sandbox/xy", payload)
        p = sub.expect(r.PUBLISH)
        assert (p.topic, p.payload, p.size) == ("sandbox/xy", payload, 18)
        assert not p.props.has("topic_alias")
