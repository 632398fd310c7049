"""Retained messages: set, replace, clear with an empty payload, delivered on subscribe."""

import subprocess

import pytest

import mqtt_raw as r
from conftest import uid, mosquitto_pub


def retained_on_subscribe(broker, raw_clients, filt, qos=1, version=r.V311):
    """Subscribes a fresh client and returns the retained messages it gets
    (everything before a live marker published after the SUBACK)."""
    s = raw_clients(broker, version)
    s.connect_ok(uid())
    marker_topic = "marker/" + uid()
    s.subscribe([(filt, qos), (marker_topic, 1)])
    pub = raw_clients(broker, version)
    pub.connect_ok(uid())
    pub.publish_acked(marker_topic, b"marker", qos=1)
    out = []
    while True:
        p = s.recv_publish()
        if p.payload == b"marker":
            return out
        out.append(p)


@pytest.mark.parametrize("version", [r.V311, r.V5])
def test_retained_delivered_on_subscribe(broker, raw_clients, clients, version):
    topic = "ret/set/" + uid()
    clients(broker).publish(topic, b"current", qos=1, retain=True)
    got = retained_on_subscribe(broker, raw_clients, topic, version=version)
    assert [(p.topic, p.payload, p.retain) for p in got] == [(topic, b"current", True)]


def test_retained_replaced_by_newer_message(broker, raw_clients, clients):
    topic = "ret/replace/" + uid()
    pub = clients(broker)
    pub.publish(topic, b"v1", qos=1, retain=True)
    pub.publish(topic, b"v2", qos=1, retain=True)
    got = retained_on_subscribe(broker, raw_clients, topic)
    assert [p.payload for p in got] == [b"v2"]


def test_retained_cleared_by_empty_payload(broker, raw_clients, clients):
    topic = "ret/clear/" + uid()
    pub = clients(broker)
    pub.publish(topic, b"v1", qos=1, retain=True)
    pub.publish(topic, b"", qos=1, retain=True)
    assert retained_on_subscribe(broker, raw_clients, topic) == []


def test_empty_retained_message_still_forwarded_to_subscribers(broker, clients):
    topic = "ret/clear-forward/" + uid()
    sub = clients(broker)
    sub.subscribe(topic, qos=1)
    clients(broker).publish(topic, b"", qos=1, retain=True)
    assert sub.get().payload == b""


def test_non_retained_publish_does_not_replace_retained(broker, raw_clients, clients):
    topic = "ret/keep/" + uid()
    pub = clients(broker)
    pub.publish(topic, b"kept", qos=1, retain=True)
    pub.publish(topic, b"transient", qos=1, retain=False)
    assert [p.payload for p in retained_on_subscribe(broker, raw_clients, topic)] == [b"kept"]


def test_retained_delivered_for_wildcard_subscription(broker, raw_clients, clients):
    base = "ret/wild/" + uid()
    pub = clients(broker)
    for leaf in ("a", "b", "c/d"):
        pub.publish("%s/%s" % (base, leaf), leaf.encode(), qos=1, retain=True)
    pub.publish(base + "-other", b"no", qos=1, retain=True)
    got = retained_on_subscribe(broker, raw_clients, base + "/#")
    assert sorted(p.payload for p in got) == [b"a", b"b", b"c/d"]
    assert all(p.retain for p in got)


def test_retained_delivered_at_minimum_qos(broker, raw_clients, clients):
    topic = "ret/qos/" + uid()
    clients(broker).publish(topic, b"q2", qos=2, retain=True)
    got = retained_on_subscribe(broker, raw_clients, topic, qos=1)
    assert [(p.payload, p.qos) for p in got] == [(b"q2", 1)]
    clients(broker).publish(topic + "/low", b"q0", qos=0, retain=True)
    got = retained_on_subscribe(broker, raw_clients, topic + "/low", qos=2)
    assert [(p.payload, p.qos) for p in got] == [(b"q0", 0)]


def test_v311_live_message_to_existing_subscriber_has_retain_0(broker, raw_clients, clients):
    # [MQTT-3.3.1-9]
    topic = "ret/live/" + uid()
    s = raw_clients(broker)
    s.connect_ok(uid())
    s.subscribe([(topic, 1)])
    clients(broker).publish(topic, b"live", qos=1, retain=True)
    p = s.recv_publish()
    assert p.payload == b"live" and not p.retain


def test_retained_survives_publisher_disconnect(broker, raw_clients):
    topic = "ret/persist/" + uid()
    p = raw_clients(broker)
    p.connect_ok(uid())
    p.publish_acked(topic, b"stays", qos=1, retain=True)
    p.disconnect()
    assert [m.payload for m in retained_on_subscribe(broker, raw_clients, topic)] == [b"stays"]


def test_retained_with_mosquitto_clients(broker):
    topic = "ret/mosq/" + uid()
    mosquitto_pub(broker, "-V", "mqttv311", "-r", "-q", "1", "-t", topic, "-m", "from-pub")
    out = subprocess.run(["/usr/bin/mosquitto_sub", "-h", broker.host, "-p", str(broker.port),
                          "-V", "mqttv5", "-t", topic, "-C", "1", "-W", "5", "-F", "%r %p"],
                         capture_output=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().strip() == "1 from-pub"
