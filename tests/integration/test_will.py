"""Will messages: abnormal close, normal DISCONNECT, DISCONNECT 0x04, Will Delay
Interval vs session end, session takeover."""

import time

import pytest

import mqtt_raw as r
from conftest import uid, mosquitto_deviation


def will(topic, payload=b"gone", qos=0, retain=False, props=()):
    return {"topic": topic, "payload": payload, "qos": qos, "retain": retain, "props": props}


def watcher(broker, clients, topic, qos=1):
    w = clients(broker)
    w.subscribe(topic, qos=qos)
    return w


def normal_disconnect(c, reason=0, props=()):
    """DISCONNECT, then wait until the broker has closed the connection (so it has
    processed the DISCONNECT before the test goes on)."""
    c.send(r.disconnect(reason, props, c.version))
    c.wait_closed()


@pytest.mark.parametrize("version", [r.V311, r.V5])
def test_will_published_on_abnormal_close(broker, clients, raw_clients, version):
    topic = "will/abnormal/%d" % version
    w = watcher(broker, clients, topic)
    c = raw_clients(broker, version)
    c.connect_ok(uid(), will=will(topic, b"lost-%d" % version, qos=1))
    c.close()
    m = w.get()
    assert (m.topic, m.payload, m.qos) == (topic, b"lost-%d" % version, 1)


@pytest.mark.parametrize("version", [r.V311, r.V5])
def test_will_discarded_on_normal_disconnect(broker, clients, raw_clients, version):
    topic = "will/normal/%d" % version
    w = watcher(broker, clients, topic)
    c = raw_clients(broker, version)
    c.connect_ok(uid(), will=will(topic, b"must-not-appear", qos=1))
    normal_disconnect(c)
    clients(broker).publish(topic, b"marker", qos=1)
    assert w.until("marker") == []


def test_v5_disconnect_with_will_message_0x04_publishes_will(broker, clients, raw_clients):
    topic = "will/0x04"
    w = watcher(broker, clients, topic)
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid(), will=will(topic, b"asked-for", qos=1))
    normal_disconnect(c, r.DISCONNECT_WITH_WILL)
    m = w.get()
    assert m.payload == b"asked-for"


def test_will_published_on_protocol_error(broker, clients, raw_clients):
    topic = "will/protocol-error"
    w = watcher(broker, clients, topic)
    c = raw_clients(broker)
    c.connect_ok(uid(), will=will(topic, b"broken", qos=1))
    c.send(b"\x00\x00")  # packet type 0 is reserved: malformed
    c.wait_closed()
    assert w.get().payload == b"broken"


@mosquitto_deviation("checks keep-alive only every few seconds")
def test_will_published_on_keepalive_timeout(broker, clients, raw_clients):
    topic = "will/keepalive"
    w = watcher(broker, clients, topic)
    c = raw_clients(broker)
    c.connect_ok(uid(), keepalive=1, will=will(topic, b"silent", qos=1))
    assert w.get(timeout=4).payload == b"silent"


def test_retained_will_is_stored(broker, clients, raw_clients):
    topic = "will/retained/" + uid()
    w = watcher(broker, clients, topic)
    c = raw_clients(broker)
    c.connect_ok(uid(), will=will(topic, b"last-state", qos=1, retain=True))
    c.close()
    assert w.get().payload == b"last-state"  # published (and so stored) by now
    late = clients(broker, version=4)
    late.subscribe(topic, qos=1)
    m = late.get()
    assert m.payload == b"last-state" and m.retain


def test_v5_will_properties_passed_through(broker, clients, raw_clients):
    topic = "will/props"
    w = watcher(broker, clients, topic)
    c = raw_clients(broker, r.V5)
    wp = [("content_type", "text/plain"), ("response_topic", "will/reply"),
          ("correlation_data", b"\x01\x02"), ("user_property", ("a", "1")),
          ("user_property", ("b", "2"))]
    c.connect_ok(uid(), will=will(topic, b"props", qos=1, props=wp))
    c.close()
    m = w.get()
    assert m.properties.ContentType == "text/plain"
    assert m.properties.ResponseTopic == "will/reply"
    assert m.properties.CorrelationData == b"\x01\x02"
    assert m.properties.UserProperty == [("a", "1"), ("b", "2")]


def test_v5_will_delay_publishes_after_the_delay(broker, clients, raw_clients):
    topic = "will/delay"
    w = watcher(broker, clients, topic)
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid(), clean=False, props=[("session_expiry_interval", 60)],
                 will=will(topic, b"delayed", qos=1, props=[("will_delay_interval", 2)]))
    c.close()
    t0 = time.monotonic()
    w.expect_none(1.0)  # under test: nothing before the delay
    m = w.get(timeout=4)
    elapsed = time.monotonic() - t0
    assert m.payload == b"delayed"
    assert 1.5 <= elapsed <= 4.0, elapsed


def test_v5_will_delay_cancelled_by_reconnect(broker, clients, raw_clients):
    topic = "will/delay-cancel"
    cid = uid()
    w = watcher(broker, clients, topic)
    c = raw_clients(broker, r.V5)
    c.connect_ok(cid, clean=False, props=[("session_expiry_interval", 60)],
                 will=will(topic, b"must-not-appear", qos=1, props=[("will_delay_interval", 1)]))
    c.close()
    c2 = raw_clients(broker, r.V5)
    assert c2.connect_ok(cid, clean=False, props=[("session_expiry_interval", 60)]).session_present
    w.expect_none(2.0)  # under test: the 1 s delay passes without a will


def test_v5_will_published_when_session_ends_before_delay(broker, clients, raw_clients):
    topic = "will/session-ends"
    w = watcher(broker, clients, topic)
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid(), clean=False, props=[("session_expiry_interval", 1)],
                 will=will(topic, b"session-over", qos=1, props=[("will_delay_interval", 30)]))
    c.close()
    t0 = time.monotonic()
    m = w.get(timeout=4)
    assert m.payload == b"session-over"
    assert time.monotonic() - t0 <= 4.0


@mosquitto_deviation("waits for the Will Delay even when the session ends at once")
def test_v5_will_with_delay_published_at_once_when_session_expiry_is_zero(broker, clients, raw_clients):
    topic = "will/no-session"
    w = watcher(broker, clients, topic)
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid(), will=will(topic, b"now", qos=1, props=[("will_delay_interval", 30)]))
    c.close()
    assert w.get(timeout=2).payload == b"now"


def test_v311_takeover_publishes_will_of_old_connection(broker, clients, raw_clients):
    # [MQTT-3.1.2-8]: the will is published when the connection closes other than by DISCONNECT
    topic = "will/takeover/v311"
    cid = uid()
    w = watcher(broker, clients, topic)
    old = raw_clients(broker)
    old.connect_ok(cid, will=will(topic, b"taken-over", qos=1))
    new = raw_clients(broker)
    new.connect_ok(cid)
    old.wait_closed()
    assert w.get().payload == b"taken-over"


@mosquitto_deviation("does not publish the will when a takeover ends the session (fixed in later releases)")
def test_v5_takeover_with_clean_start_publishes_will(broker, clients, raw_clients):
    # clean start ends the old session, and the will is published when the session ends
    topic = "will/takeover/clean"
    cid = uid()
    w = watcher(broker, clients, topic)
    old = raw_clients(broker, r.V5)
    old.connect_ok(cid, clean=False, props=[("session_expiry_interval", 60)],
                   will=will(topic, b"session-ended", qos=1, props=[("will_delay_interval", 30)]))
    new = raw_clients(broker, r.V5)
    assert not new.connect_ok(cid, clean=True).session_present
    assert w.get(timeout=3).payload == b"session-ended"


def test_v5_takeover_resuming_session_does_not_publish_delayed_will(broker, clients, raw_clients):
    # a new connection for the session arrives before the Will Delay Interval passed
    topic = "will/takeover/resume"
    cid = uid()
    w = watcher(broker, clients, topic)
    old = raw_clients(broker, r.V5)
    old.connect_ok(cid, clean=False, props=[("session_expiry_interval", 60)],
                   will=will(topic, b"must-not-appear", qos=1, props=[("will_delay_interval", 1)]))
    new = raw_clients(broker, r.V5)
    assert new.connect_ok(cid, clean=False, props=[("session_expiry_interval", 60)]).session_present
    old.wait_closed()
    w.expect_none(2.0)  # under test: the delay passes, the session lives on, no will


@pytest.mark.parametrize("version,code", [(r.V5, 0x87), (r.V311, 0x05)])
def test_will_where_no_client_may_publish_is_refused(broker_factory, clients, raw_clients, version, code):
    """A will is a PUBLISH: not to the broker's own '$' topics, nor where the access rules
    deny publishing; the CONNECT is refused (Not authorized) and nothing is published."""
    b = broker_factory(access=[{"deny": "publish", "on": "plant/locked/#"}])
    w = clients(b)
    w.subscribe("$SYS/forged/#")
    w.subscribe("plant/#")
    for topic in ("$SYS/forged/uptime", "plant/locked/valve"):
        c = raw_clients(b, version)
        ack = c.connect(uid(), will=will(topic, b"forged", retain=True))
        assert ack.reason == code, topic
        c.wait_closed()
    ok = raw_clients(b, version)
    ok.connect_ok(uid(), will=will("plant/open/valve", b"gone"))
    ok.close()  # abnormal close: this will goes out, the first message the watcher sees
    m = w.get()
    assert (m.topic, m.payload) == ("plant/open/valve", b"gone")
    w.expect_none(0.3)
