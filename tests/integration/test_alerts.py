"""Alerts (README "Monitoring"): a rate spike in a subtree, a silent publisher (stale),
a client reconnecting in a loop; each a retained JSON message under
$SYS/broker/alerts/KIND/SUBJECT (active true, then false when it clears), a log
line and strata_alerts_total{kind}. Short windows; every wait has a deadline."""

import json
import threading
import time

import pytest

from conftest import IS_MOSQUITTO, TIMEOUT, Client, uid
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


def start(broker_factory, **alerts):
    cfg = dict(ALERTS)
    cfg.update(alerts)
    return start_http_broker(broker_factory, alerts=cfg)


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


def test_spike_raises_and_clears(broker_factory):
    b = start(broker_factory)
    w = watch(b)
    pub = Client(b, version=5).connect()
    stop = threading.Event()
    steady = threading.Thread(target=paced, args=(pub, "acme/dresden/press-7/temp", 20, stop), daemon=True)
    steady.start()
    try:
        # the baseline forms over window_s seconds; then a burst
        deadline = time.monotonic() + ALERTS["window_s"] + 2
        while time.monotonic() < deadline:
            w.expect_none(0.5)  # no alert during steady traffic
        burst = Client(b, version=5).connect()
        for _ in range(3000):
            burst.publish("acme/dresden/press-7/temp", b"2", qos=0)
        alert = wait_alert(w, "$SYS/broker/alerts/spike/acme/dresden", True, TIMEOUT + 5)
        assert alert["kind"] == "spike" and alert["subject"] == "acme/dresden"
        assert alert["value"] > 4 * alert["baseline"] and alert["value"] >= 5
        assert alert["since"].endswith("Z")
        # back to steady: cleared
        cleared = wait_alert(w, "$SYS/broker/alerts/spike/acme/dresden", False, TIMEOUT + 10)
        assert cleared["subject"] == "acme/dresden"
        burst.disconnect()
    finally:
        stop.set()
        steady.join(TIMEOUT)
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
            ("alerts: {windows_s: 3}", b"unknown key 'windows_s'")]:
        err = config_error(tmp_path, text)
        assert message in err, (text, err)
