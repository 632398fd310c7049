"""Alerts (docs/operations.md "Alerts"): a rate spike in a subtree, a silent publisher (stale,
under a configured filter or past its data class's expected period in the namespace
model, also across a model reload), a client reconnecting in a loop, messages that
arrive over a bridge; each a retained JSON message under
$SYS/broker/alerts/KIND/SUBJECT (active true, then false when it clears), a log
line and strata_alerts_total{kind}. Short windows; every wait has a deadline."""

import json
import signal
import threading
import time

import pytest

from conftest import IS_MOSQUITTO, TIMEOUT, Client, uid, wait_until
from test_http import config_error, scrape, start_http_broker, value

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="Strata alerts")

ALERTS = {
    "levels": 2,
    "window_s": 3,
    "spike_factor": 4,
    "drop_factor": 1000,
    "min_rate": 5,
    "stale": [{"filter": "plant/silent/#", "max_silence_s": 1}],
    "reconnect_loop": {"count": 4, "window_s": 60},
}


def start(broker_factory, broker=None, **alerts):
    """A broker with ALERTS updated by `alerts`; `broker`: more top-level config."""
    cfg = dict(ALERTS)
    cfg.update(alerts)
    return start_http_broker(broker_factory, alerts=cfg, **(broker or {}))


def watch(b):
    w = Client(b, version=5).connect()
    assert w.subscribe("$SYS/broker/alerts/#", qos=0) == [0]
    return w


def wait_alert(w, topic, active, timeout):
    """The next message on `topic` with this `active` flag, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no alert %s active=%s within %.0f s" % (topic, active, timeout)
        m = w.get(timeout=left)
        if m.topic == topic:
            body = json.loads(m.payload)
            if body["active"] == active:
                return body


def paced(pub, topic, rate, stop):
    """Publishes `rate` messages per second until `stop` is set."""
    while not stop.wait(1.0 / rate):
        pub.publish(topic, b"1", qos=0)


def spike(w, pub, burst_broker, clear=False):
    """Steady traffic from `pub` on acme/dresden while its baseline forms (window_s
    seconds, no alert meanwhile), then a burst from a new client of `burst_broker`.
    Returns the spike alert and, with `clear`, the alert cleared once traffic is
    steady again."""
    stop = threading.Event()
    steady = threading.Thread(target=paced, args=(pub, "acme/dresden/press-7/temp", 20, stop), daemon=True)
    steady.start()
    try:
        deadline = time.monotonic() + ALERTS["window_s"] + 2
        while time.monotonic() < deadline:
            w.expect_none(0.5)  # no alert during steady traffic
        burst = Client(burst_broker, version=5).connect()
        for _ in range(3000):
            burst.publish("acme/dresden/press-7/temp", b"2", qos=0)
        alert = wait_alert(w, "$SYS/broker/alerts/spike/acme/dresden", True, TIMEOUT + 5)
        cleared = wait_alert(w, "$SYS/broker/alerts/spike/acme/dresden", False, TIMEOUT + 10) if clear else None
        burst.disconnect()
    finally:
        stop.set()
        steady.join(TIMEOUT)
    return alert, cleared


def test_spike_raises_and_clears(broker_factory):
    b = start(broker_factory)
    w = watch(b)
    pub = Client(b, version=5).connect()
    alert, cleared = spike(w, pub, b, clear=True)
    assert alert["kind"] == "spike" and alert["subject"] == "acme/dresden"
    assert alert["value"] > 4 * alert["baseline"] and alert["value"] >= 5
    assert alert["since"].endswith("Z")
    assert cleared["subject"] == "acme/dresden"
    samples, _ = scrape(b)
    assert value(samples, "strata_alerts_total", kind="spike") == 1
    assert value(samples, "strata_alerts_total", kind="stale") == 0
    assert "alert spike on 'acme/dresden'" in b.stderr_text()
    pub.disconnect()
    w.disconnect()


def test_silent_publisher_raises_stale(broker_factory):
    b = start(broker_factory)
    w = watch(b)
    pub = Client(b, version=5).connect()
    pub.publish("plant/silent/temp", b"21.5", qos=1)
    pub.publish("plant/elsewhere/temp", b"21.5", qos=1)  # not watched
    alert = wait_alert(w, "$SYS/broker/alerts/stale/plant/silent/temp", True, TIMEOUT + 3)
    assert alert["kind"] == "stale" and alert["threshold"] == 1 and alert["value"] > 1
    samples, _ = scrape(b)
    assert value(samples, "strata_alerts_active") >= 1
    # it speaks again: cleared
    pub.publish("plant/silent/temp", b"21.6", qos=1)
    wait_alert(w, "$SYS/broker/alerts/stale/plant/silent/temp", False, TIMEOUT)
    # a late subscriber sees the retained state
    late = Client(b, version=5).connect()
    late.subscribe("$SYS/broker/alerts/stale/#")
    m = late.get()
    assert m.topic == "$SYS/broker/alerts/stale/plant/silent/temp"
    assert m.retain and json.loads(m.payload)["active"] is False
    late.expect_none()  # plant/elsewhere/temp is not watched
    late.disconnect()
    pub.disconnect()
    w.disconnect()


# A small namespace model: telemetry is expected every 500 ms, state has no period.
MODEL = """version: 1
levels:
  - name: enterprise
    names: [acme]
  - name: site
    names: [dresden]
  - name: equipment
    pattern: "press-[0-9]+"
classes:
  telemetry:
    expected_period: %(telemetry)s
  state:
    retain: any%(state)s
enforcement:
  mode: reject
"""
TELEMETRY = "acme/dresden/press-7/telemetry/temp"
STATE = "acme/dresden/press-7/state"


def write_model(path, telemetry="500ms", state_period=None):
    state = "\n    expected_period: %s" % state_period if state_period else ""
    path.write_text(MODEL % {"telemetry": telemetry, "state": state})
    return str(path)


def test_stale_from_the_model_data_class(broker_factory, tmp_path):
    model = write_model(tmp_path / "model.yaml")
    b = start(broker_factory, broker={"namespace": {"model": model}}, stale=[], stale_factor=2)
    w = watch(b)
    pub = Client(b, version=5).connect()
    published = time.monotonic()
    pub.publish(TELEMETRY, b"21.5", qos=1)
    pub.publish(STATE, b"running", qos=1)  # no expected period: never stale
    alert = wait_alert(w, "$SYS/broker/alerts/stale/" + TELEMETRY, True, TIMEOUT + 3)
    assert time.monotonic() - published > 1.0  # 2 x 500 ms
    assert alert["kind"] == "stale" and alert["subject"] == TELEMETRY
    assert (alert["class"], alert["expected_period_s"], alert["threshold"]) == ("telemetry", 0.5, 1.0)
    assert alert["value"] > 1.0
    log = b.stderr_text()
    assert "alert stale on '%s'" % TELEMETRY in log and "class 'telemetry', expected period 0.5 s, x 2" in log
    samples, _ = scrape(b)
    assert value(samples, "strata_alerts_total", kind="stale") == 1
    assert value(samples, "strata_alerts_active") == 1
    # it speaks again: cleared, and the state topic was never stale
    pub.publish(TELEMETRY, b"21.6", qos=1)
    cleared = wait_alert(w, "$SYS/broker/alerts/stale/" + TELEMETRY, False, TIMEOUT)
    assert cleared["class"] == "telemetry"
    samples, _ = scrape(b)
    assert value(samples, "strata_alerts_total", kind="stale") == 1
    assert value(samples, "strata_alerts_active") == 0
    pub.disconnect()
    w.disconnect()


def test_model_reload_changes_stale_limits(broker_factory, tmp_path):
    path = tmp_path / "model.yaml"
    model = write_model(path)
    b = start(broker_factory, broker={"namespace": {"model": model}}, stale=[], stale_factor=2)
    w = watch(b)
    pub = Client(b, version=5).connect()
    pub.publish(TELEMETRY, b"21.5", qos=1)
    pub.publish(STATE, b"running", qos=1)
    wait_alert(w, "$SYS/broker/alerts/stale/" + TELEMETRY, True, TIMEOUT + 3)

    # telemetry is now expected hourly, state every 500 ms
    write_model(path, telemetry="1h", state_period="500ms")
    reloaded = time.monotonic()
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: "namespace model reloaded" in b.stderr_text(), what="the reload log line")
    cleared = wait_alert(w, "$SYS/broker/alerts/stale/" + TELEMETRY, False, TIMEOUT)
    assert cleared["active"] is False
    # state is watched from the reload on, not since its only message
    alert = wait_alert(w, "$SYS/broker/alerts/stale/" + STATE, True, TIMEOUT + 3)
    assert time.monotonic() - reloaded > 1.0
    assert (alert["class"], alert["expected_period_s"], alert["threshold"]) == ("state", 0.5, 1.0)
    pub.disconnect()
    w.disconnect()
    b.assert_alive()


def test_stale_filters_win_and_factor_zero_turns_model_checks_off(broker_factory, tmp_path):
    model = write_model(tmp_path / "model.yaml")
    b = start(broker_factory, broker={"namespace": {"model": model}}, stale_factor=0,
              stale=[{"filter": "acme/dresden/press-8/#", "max_silence_s": 1}])
    w = watch(b)
    pub = Client(b, version=5).connect()
    pub.publish(TELEMETRY, b"21.5", qos=1)  # the model would say 2 x 500 ms; off
    pub.publish("acme/dresden/press-8/telemetry/temp", b"20.1", qos=1)  # the filter says 1 s
    alert = wait_alert(w, "$SYS/broker/alerts/stale/acme/dresden/press-8/telemetry/temp", True, TIMEOUT + 3)
    assert alert["threshold"] == 1 and "class" not in alert
    # Had the model's limit applied, TELEMETRY (published first, limit 1 s) would
    # have been raised by the same tick at the latest.
    samples, _ = scrape(b)
    assert value(samples, "strata_alerts_total", kind="stale") == 1
    pub.disconnect()
    w.disconnect()


def test_bridged_messages_are_counted(broker_factory):
    """Messages that arrive over a bridge count like a client's: a rate spike and
    a stale topic, both fed only through the bridge."""
    remote = broker_factory()
    b = start(broker_factory, broker={"bridges": [{
        "name": "down", "remote": "mqtt://127.0.0.1:%d" % remote.port, "protocol_version": 5,
        "client_id": "plant-down", "reconnect": {"min_ms": 50, "max_ms": 400},
        "receive": [{"remote": "acme/#", "local": "acme/#", "qos": 0},
                    {"remote": "plant/#", "local": "plant/#", "qos": 1}]}]})
    w = watch(b)
    local = Client(b, version=5).connect()
    assert local.subscribe("plant/up", qos=0) == [0]
    pub = Client(remote, version=5).connect()

    def bridge_up():
        pub.publish("plant/up", b"?", qos=0)
        try:
            return local.get(timeout=0.2)
        except AssertionError:
            return None
    wait_until(bridge_up, what="a message over the bridge")

    pub.publish("plant/silent/bridged", b"1", qos=1)
    alert = wait_alert(w, "$SYS/broker/alerts/stale/plant/silent/bridged", True, TIMEOUT + 3)
    assert alert["threshold"] == 1

    alert, _ = spike(w, pub, remote)
    assert alert["value"] > 4 * alert["baseline"]
    pub.disconnect()
    local.disconnect()
    w.disconnect()


def test_reconnect_loop(broker_factory):
    b = start(broker_factory)
    w = watch(b)
    cid = uid("flappy")
    for _ in range(ALERTS["reconnect_loop"]["count"]):
        Client(b, client_id=cid, version=5).connect().disconnect()
    alert = wait_alert(w, "$SYS/broker/alerts/reconnect_loop/" + cid, True, TIMEOUT)
    assert alert["subject"] == cid and alert["value"] >= 4 and alert["threshold"] == 4
    samples, _ = scrape(b)
    assert value(samples, "strata_alerts_total", kind="reconnect_loop") == 1
    w.disconnect()


def test_alerts_config_errors(tmp_path):
    for text, message in [
            ("alerts: {levels: 0}", b"alerts.levels: must be between 1 and 16"),
            ("alerts: {spike_factor: fast}", b"alerts.spike_factor: expected a number"),
            ("alerts: {stale: [{filter: 'a/#/b', max_silence_s: 5}]}", b"not a valid MQTT topic filter"),
            ("alerts: {stale: [{filter: 'a/#'}]}", b"missing required key 'max_silence_s'"),
            ("alerts: {reconnect_loop: {count: 1}}", b"alerts.reconnect_loop.count: must be"),
            ("alerts: {stale_factor: 0.5}", b"alerts.stale_factor: must be 0 (off) or at least 1"),
            ("alerts: {stale_factor: -1}", b"alerts.stale_factor: expected a number"),
            ("alerts: {windows_s: 3}", b"unknown key 'windows_s'")]:
        err = config_error(tmp_path, text)
        assert message in err, (text, err)
