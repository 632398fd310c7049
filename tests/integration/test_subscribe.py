"""Subscriptions: wildcards, $-topics, shared subscriptions, No Local, Retain As
Published, Retain Handling, Subscription Identifiers, overlapping subscriptions,
UNSUBSCRIBE reason codes, refused filters."""

import time

import pytest

import mqtt_raw as r
from conftest import (uid, props, PacketTypes, SubscribeOptions, mosquitto_deviation, refuses_filters,
                      mosquitto_pub)


def collect_until_marker(sub, marker=b"marker"):
    out = []
    while True:
        p = sub.recv_publish()
        if p.payload == marker:
            return out
        out.append(p)


WILDCARD_CASES = [
    ("+", ["x"], ["x/y", "/x"]),
    ("wc1/+/c", ["wc1/b/c", "wc1//c"], ["wc1/b/x/c", "wc1/c", "wc1/b/c/d"]),
    ("wc2/#", ["wc2", "wc2/b", "wc2/b/c", "wc2/"], ["wc2x", "x/wc2"]),
    ("wc3/+", ["wc3/b", "wc3/"], ["wc3", "wc3/b/c"]),
    ("wc4/+/#", ["wc4/b", "wc4/b/c/d"], ["wc4"]),
    ("+/wc5/+", ["a/wc5/b"], ["wc5/b", "a/wc5", "a/wc5/b/c"]),
    ("#", ["anything/at/all", "x"], []),
]


@pytest.mark.parametrize("filt,matching,other", WILDCARD_CASES, ids=[c[0] for c in WILDCARD_CASES])
def test_wildcard_matching(broker, raw_clients, filt, matching, other):
    sub = raw_clients(broker, r.V5)
    sub.connect_ok(uid())
    marker_topic = "marker/" + uid()
    sub.subscribe([(filt, 1), (marker_topic, 1)])
    pub = raw_clients(broker, r.V5)
    pub.connect_ok(uid())
    for i, t in enumerate(other + matching):
        pub.publish_acked(t, t.encode(), qos=1, pid=i + 1)
    pub.publish_acked(marker_topic, b"marker", qos=1, pid=100)
    got = collect_until_marker(sub)
    received = sorted(p.topic for p in got)
    if filt == "#":  # '#' sees everything, so only check ours are all there
        assert set(matching) <= set(received)
    else:
        assert received == sorted(matching)


def test_dollar_topics_not_matched_by_leading_wildcards(broker_factory, clients):
    b = broker_factory(sys={"interval": 1})
    wild = clients(b)
    for f in ("#", "+/broker/uptime", "+/#"):
        wild.subscribe(f)
    sysw = clients(b)
    sysw.subscribe("$SYS/broker/uptime")
    # wait for a live (non-retained) update: the $SYS tree is being published now
    deadline = time.monotonic() + 5
    while True:
        m = sysw.get(timeout=max(0.01, deadline - time.monotonic()))
        if not m.retain:
            break
    marker = "dollar/marker/" + uid()
    clients(b).publish(marker, b"marker", qos=1)
    before = wild.until("marker")
    leaked = [m.topic for m in before if m.topic.startswith("$")]
    assert leaked == []


def test_dollar_sys_matched_by_explicit_filter(broker_factory, clients):
    b = broker_factory(sys={"interval": 1})
    c = clients(b)
    c.subscribe("$SYS/broker/+")
    m = c.get()
    assert m.topic.startswith("$SYS/broker/")


def test_shared_subscription_distributes_between_members(broker, clients):
    members = [clients(broker) for _ in range(2)]
    for m in members:
        assert m.subscribe("$share/grp/shared/t", qos=1) == [1]
    plain = clients(broker)
    plain.subscribe("shared/t", qos=1)
    pub = clients(broker)
    n = 20
    for i in range(n):
        pub.publish("shared/t", b"%d" % i, qos=1)
    assert sorted(int(m.payload) for m in plain.get_n(n)) == list(range(n))
    got = [[], []]
    deadline = time.monotonic() + 5
    while len(got[0]) + len(got[1]) < n:
        assert time.monotonic() < deadline, "shared group received %d of %d" % (
            len(got[0]) + len(got[1]), n)
        for i, m in enumerate(members):
            try:
                got[i].append(int(m.messages.get(timeout=0.05).payload))
            except Exception:
                pass
    assert sorted(got[0] + got[1]) == list(range(n)), "each message exactly once in the group"
    assert got[0] and got[1], "both members get a share: %r" % got
    for m in members:
        m.expect_none(0.2)


def test_shared_subscription_groups_each_get_a_copy(broker, clients):
    g1, g2 = clients(broker), clients(broker)
    g1.subscribe("$share/one/shared/groups", qos=1)
    g2.subscribe("$share/two/shared/groups", qos=1)
    clients(broker).publish("shared/groups", b"both", qos=1)
    assert g1.get().payload == b"both"
    assert g2.get().payload == b"both"


def test_shared_subscription_wildcard_filter(broker, clients):
    a = clients(broker)
    a.subscribe("$share/wc/shared/wild/+", qos=1)
    clients(broker).publish("shared/wild/x", b"w", qos=1)
    m = a.get()
    assert m.topic == "shared/wild/x" and m.payload == b"w"


def test_no_local_suppresses_own_messages(broker, clients):
    c = clients(broker)
    c.subscribe("nolocal/t", options=SubscribeOptions(qos=1, noLocal=True))
    c.publish("nolocal/t", b"own", qos=1)
    clients(broker).publish("nolocal/t", b"marker", qos=1)
    assert c.until("marker") == []


def test_without_no_local_own_messages_are_delivered(broker, clients):
    c = clients(broker)
    c.subscribe("nolocal/off", options=SubscribeOptions(qos=1, noLocal=False))
    c.publish("nolocal/off", b"own", qos=1)
    assert c.get().payload == b"own"


def test_retain_as_published(broker, clients):
    rap = clients(broker)
    rap.subscribe("rap/t", options=SubscribeOptions(qos=1, retainAsPublished=True))
    plain = clients(broker)
    plain.subscribe("rap/t", options=SubscribeOptions(qos=1, retainAsPublished=False))
    clients(broker).publish("rap/t", b"state", qos=1, retain=True)
    assert rap.get().retain
    assert not plain.get().retain


def _retained(broker, clients, topic):
    clients(broker).publish(topic, b"retained", qos=1, retain=True)


def _subscribe_then_marker(broker, clients, c, topic, rh):
    c.subscribe(topic, options=SubscribeOptions(qos=1, retainHandling=rh))
    clients(broker).publish(topic, b"marker", qos=1)
    return [m.payload for m in c.until("marker")]


def test_retain_handling_0_sends_retained_on_every_subscribe(broker, clients):
    topic = "rh/0/" + uid()
    _retained(broker, clients, topic)
    c = clients(broker)
    assert _subscribe_then_marker(broker, clients, c, topic, 0) == [b"retained"]
    assert _subscribe_then_marker(broker, clients, c, topic, 0) == [b"retained"]


def test_retain_handling_1_sends_retained_only_for_new_subscription(broker, clients):
    topic = "rh/1/" + uid()
    _retained(broker, clients, topic)
    c = clients(broker)
    assert _subscribe_then_marker(broker, clients, c, topic, 1) == [b"retained"]
    assert _subscribe_then_marker(broker, clients, c, topic, 1) == []


def test_retain_handling_2_never_sends_retained(broker, clients):
    topic = "rh/2/" + uid()
    _retained(broker, clients, topic)
    c = clients(broker)
    assert _subscribe_then_marker(broker, clients, c, topic, 2) == []


def test_subscription_identifier_delivered(broker, clients):
    c = clients(broker)
    c.subscribe("subid/t", qos=1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7))
    clients(broker).publish("subid/t", b"x", qos=1)
    m = c.get()
    assert m.properties.SubscriptionIdentifier == [7]


@mosquitto_deviation("sends one copy per matching subscription (spec-allowed; the issue requires one)")
def test_v5_overlapping_subscriptions_one_message_with_all_identifiers(broker, raw_clients, clients):
    s = raw_clients(broker, r.V5)
    s.connect_ok(uid())
    s.subscribe([("ovl/+", 0)], pid=1, props=[("subscription_identifier", 1)])
    s.subscribe([("ovl/#", 1)], pid=2, props=[("subscription_identifier", 2)])
    s.subscribe([("ovl/a", 0)], pid=3)  # no identifier on this one
    pub = clients(broker)
    pub.publish("ovl/a", b"once", qos=2)
    pub.publish("ovl/a", b"marker", qos=2)
    got = collect_until_marker(s)
    assert len(got) == 1, "expected one copy, got %r" % got
    p = got[0]
    assert p.qos == 1, "highest granted QoS of the matching subscriptions"
    assert sorted(p.props.all("subscription_identifier")) == [1, 2]


@mosquitto_deviation("sends one copy but not at the highest QoS [MQTT-3.3.5-1]")
def test_v311_overlapping_subscriptions_one_copy_at_highest_qos(broker, raw_clients, clients):
    s = raw_clients(broker)
    s.connect_ok(uid())
    s.subscribe([("ovl3/+", 0), ("ovl3/#", 2), ("ovl3/a", 1)])
    pub = clients(broker, version=4)
    pub.publish("ovl3/a", b"once", qos=2)
    pub.publish("ovl3/a", b"marker", qos=2)
    got = collect_until_marker(s)
    assert len(got) == 1, "expected one copy, got %r" % got
    assert got[0].qos == 2


def test_resubscribe_replaces_subscription(broker, raw_clients, clients):
    s = raw_clients(broker)
    s.connect_ok(uid())
    assert s.subscribe([("resub/t", 0)], pid=1).reasons == [0]
    assert s.subscribe([("resub/t", 1)], pid=2).reasons == [1]
    pub = clients(broker, version=4)
    pub.publish("resub/t", b"one", qos=1)
    pub.publish("resub/t", b"marker", qos=1)
    got = collect_until_marker(s)
    assert [(p.payload, p.qos) for p in got] == [(b"one", 1)]


def test_suback_grants_requested_qos(broker, raw_clients):
    s = raw_clients(broker, r.V5)
    s.connect_ok(uid())
    ack = s.subscribe([("g/0", 0), ("g/1", 1), ("g/2", 2)])
    assert ack.reasons == [0, 1, 2]


def test_v5_unsubscribe_reason_codes(broker, raw_clients):
    s = raw_clients(broker, r.V5)
    s.connect_ok(uid())
    s.subscribe([("unsub/a", 1)])
    ack = s.unsubscribe(["unsub/a", "unsub/never"], pid=9)
    assert ack.reasons == [r.SUCCESS, r.NO_SUBSCRIPTION_EXISTED]
    # and a second time the first one is gone as well
    assert s.unsubscribe(["unsub/a"], pid=10).reasons == [r.NO_SUBSCRIPTION_EXISTED]


@pytest.mark.parametrize("version", [r.V311, r.V5])
def test_unsubscribe_stops_delivery(broker, raw_clients, clients, version):
    s = raw_clients(broker, version)
    s.connect_ok(uid())
    s.subscribe([("unsub/stop", 1), ("unsub/marker", 1)])
    ack = s.unsubscribe(["unsub/stop"], pid=2)
    assert ack.type == r.UNSUBACK
    pub = clients(broker)
    pub.publish("unsub/stop", b"after-unsubscribe", qos=1)
    pub.publish("unsub/marker", b"marker", qos=1)
    assert collect_until_marker(s) == []


@refuses_filters
def test_v311_refused_filter_gets_suback_0x80(broker, raw_clients, clients):
    s = raw_clients(broker)
    s.connect_ok(uid())
    ack = s.subscribe([("test/nosubscribe", 1), ("allowed/topic", 1)])
    assert ack.reasons == [0x80, 1]
    pub = clients(broker, version=4)
    pub.publish("test/nosubscribe", b"secret", qos=1)
    pub.publish("allowed/topic", b"marker", qos=1)
    assert collect_until_marker(s) == []


@refuses_filters
def test_v5_refused_filter_gets_suback_0x80(broker, raw_clients):
    s = raw_clients(broker, r.V5)
    s.connect_ok(uid())
    ack = s.subscribe([("test/nosubscribe", 1), ("allowed/topic", 1)])
    assert ack.reasons == [0x80, 1]


@pytest.mark.parametrize("version", [r.V311, r.V5])
def test_invalid_filter_is_refused(broker, raw_clients, version):
    s = raw_clients(broker, version)
    s.connect_ok(uid())
    s.send(r.subscribe(1, [("bad/#/filter", 0), ("bad/x+", 0)], version=version))
    try:
        p = s.recv()
    except r.Closed:
        p = None  # closing the connection is an allowed reaction
    if p is not None:
        if p.type == r.SUBACK:
            assert all(code >= 0x80 for code in p.reasons), p
        else:
            assert p.type == r.DISCONNECT and p.reason in (
                r.MALFORMED_PACKET, r.PROTOCOL_ERROR, r.TOPIC_FILTER_INVALID), p
    broker.assert_alive()


def test_mosquitto_sub_wildcard_v5(broker, mosquitto_subs):
    sub = mosquitto_subs(broker, "-V", "mqttv5", "-t", "mosq/+/temp", "-C", "2", "-q", "1")
    mosquitto_pub(broker, "-V", "mqttv5", "-t", "mosq/a/temp", "-m", "21", "-q", "1")
    mosquitto_pub(broker, "-V", "mqttv5", "-t", "mosq/a/pressure", "-m", "no", "-q", "1")
    mosquitto_pub(broker, "-V", "mqttv5", "-t", "mosq/b/temp", "-m", "22", "-q", "1")
    assert sub.payloads(2) == ["21", "22"]
