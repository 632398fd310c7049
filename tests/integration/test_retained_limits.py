"""Retained messages within bounds.

Replay on SUBSCRIBE: the retained messages a subscription receives go through the
session's queue within its limits and as fast as the client reads (a client that
does not read holds a bounded queue, and gets everything once it reads); a filter
listed twice in one SUBSCRIBE is one subscription.

The retained store: limits.max_retained_messages / max_retained_bytes broker-wide and
auth.limits.retained / retained_bytes per identity refuse a retained message that
would exceed them (5.0: 0x97 with a reason string; 3.1.1: acknowledged and dropped;
QoS 0: dropped), counted; clearing a topic and replacing a value with one no larger
always work; a store already over the limits is loaded whole at start-up.
"""

import time

import pytest

import mqtt_raw as r
from conftest import IS_MOSQUITTO, uid, wait_retained, wait_until
from test_http import basic, make_passwd, request, scrape, start_http_broker, value

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="Strata limits and admin API")

ADMIN = {"Authorization": basic("ops", "ops-pw-1")}
ROLES = {
    "roles": {
        "admin": [{"allow": "admin", "on": "#"}],
        "anyone": [{"allow": "subscribe", "on": "#"}, {"allow": "publish", "on": "#"},
                   {"allow": "subscribe", "on": "$SYS/#"}],
    },
    "users": {"ops": ["admin"], "plc": ["anyone"], "anonymous": ["anyone"]},
}


def start_admin_broker(broker_factory, tmp_path, auth=None, **over):
    """A broker with an http listener (/metrics; the admin API with HTTP Basic for
    "ops"); anonymous clients and "plc" may publish and subscribe anywhere, $SYS
    included."""
    a = {"allow_anonymous": True,
         "password_file": str(make_passwd(tmp_path, {"ops": "ops-pw-1", "plc": "plc-pw-1"}))}
    a.update(auth or {})
    return start_http_broker(broker_factory, auth=a, access=[], **ROLES, **over)


def publish_retained(raw_clients, b, items, qos=1, chunk=500):
    """Publishes (topic, payload) pairs retained over one 5.0 connection, pipelined in
    chunks; returns the PUBACK reason codes (QoS 1) in order."""
    c = raw_clients(b, r.V5)
    c.connect_ok(uid("pub"))
    reasons = []
    for start in range(0, len(items), chunk):
        part = items[start:start + chunk]
        c.send(b"".join(r.publish(t, p, qos=qos, retain=True, pid=i + 1, version=r.V5)
                        for i, (t, p) in enumerate(part)))
        if qos == 1:
            for i in range(len(part)):
                ack = c.expect(r.PUBACK)
                assert ack.pid == i + 1
                reasons.append(ack.reason)
    c.disconnect()
    return reasons


def session_info(b, client_id):
    status, _, body = request(b.web, "/api/v1/sessions", headers=ADMIN)
    assert status == 200, body
    found = [s for s in body if s["client_id"] == client_id]
    assert len(found) == 1, body
    return found[0]


def v5_ack(c, topic, payload, qos=1, pid=1, retain=True):
    """Publishes and returns the PUBACK (5.0)."""
    c.publish(topic, payload, qos=qos, retain=retain, pid=pid)
    ack = c.expect(r.PUBACK)
    assert ack.pid == pid
    return ack


def received_before_marker(c, marker_topic, publisher):
    """(topic, payload) of what subscriber `c` receives before a marker published now
    on `marker_topic` (a topic it subscribed to)."""
    publisher.publish(marker_topic, b"marker", qos=0)
    return [(p.topic, p.payload) for p in c.until(b"marker")]


# ---------------------------------------------------------------- replay on SUBSCRIBE

def test_retained_replay_to_a_client_that_does_not_acknowledge_stays_within_the_queue(
        broker_factory, raw_clients, tmp_path):
    b = start_admin_broker(broker_factory, tmp_path, limits={"max_queued_messages": 100, "max_inflight": 10})
    n = 1000
    items = [("replay/%d" % i, b"%04d" % i + b"." * 100) for i in range(n)]
    assert all(code < 0x80 for code in publish_retained(raw_clients, b, items))

    sub = raw_clients(b, r.V5)
    cid = uid("slow")
    sub.connect_ok(cid, keepalive=0)  # it sends nothing for a while
    assert sub.subscribe([("replay/#", 1)]).reasons == [1]
    # It reads nothing and acknowledges nothing: 10 in flight, the rest must wait
    # within the queue's limit.
    wait_until(lambda: session_info(b, cid)["inflight"] == 10, what="10 messages in flight")
    # Steady from here: nothing moves until the client acknowledges.
    info = session_info(b, cid)
    assert info["queued"] <= 100, info
    assert info.get("retained_pending", 0) > 0, info
    assert info["queued"] + info["inflight"] + info["retained_pending"] == n, info
    b.assert_alive()

    # As it reads and acknowledges, it gets every one of them, once.
    got = [sub.recv_publish() for _ in range(n)]
    assert sorted(p.topic for p in got) == sorted(t for t, _ in items)
    assert all(p.retain and p.qos == 1 for p in got)
    assert {p.topic: p.payload for p in got} == dict(items)
    sub.expect_nothing(0.3)
    info = session_info(b, cid)
    assert (info["queued"], info["inflight"], info["retained_pending"], info["dropped"]) == (0, 0, 0, 0), info


def test_retained_replay_to_a_client_that_does_not_read_follows_the_socket(
        broker_factory, raw_clients, tmp_path):
    b = start_admin_broker(broker_factory, tmp_path, limits={"max_queued_messages": 100})
    # 10 MB: more than the kernel's socket buffers of both ends hold.
    n = 10000
    items = [("flood/%d" % i, b"%05d" % i + b"x" * 1019) for i in range(n)]
    assert all(code < 0x80 for code in publish_retained(raw_clients, b, items))

    sub = raw_clients(b, r.V5)
    cid = uid("stuck")
    sub.connect_ok(cid, keepalive=0)  # it sends nothing for a while
    assert sub.subscribe([("flood/#", 0)]).reasons == [0]

    # Bounded poll until the broker has stopped sending: the socket is full.
    last = [None, time.monotonic()]

    def stalled():
        s = session_info(b, cid)
        state = (s["queued"], s.get("retained_pending"))
        if state != last[0]:
            last[0], last[1] = state, time.monotonic()
            return None
        return s if time.monotonic() - last[1] > 0.5 else None

    info = wait_until(stalled, timeout=30, interval=0.1, what="the replay to stall")
    assert info["queued"] <= 100, info
    assert (info.get("retained_pending") or 0) > 1000, "the replay did not wait for the client: %r" % info
    b.assert_alive()

    got = {}
    while len(got) < n:
        p = sub.recv_publish()
        assert p.topic not in got, "sent twice: " + p.topic
        got[p.topic] = p.payload
    assert got == dict(items)
    assert session_info(b, cid)["retained_pending"] == 0


def test_a_filter_listed_100_times_is_one_subscription(broker_factory, raw_clients, tmp_path):
    b = start_admin_broker(broker_factory, tmp_path)
    n = 200
    items = [("dup/%d" % i, b"v%d" % i) for i in range(n)]
    publish_retained(raw_clients, b, items)

    sub = raw_clients(b, r.V5)
    cid = uid("dup")
    sub.connect_ok(cid)
    ack = sub.subscribe([("dup/#", 1)] * 100)
    assert ack.reasons == [1] * 100, "one reason code per filter listed"
    got = [sub.recv_publish() for _ in range(n)]
    assert sorted(p.topic for p in got) == sorted(t for t, _ in items)
    sub.expect_nothing(1.0)  # not once per listing

    # The last listing wins; every listing is answered with its outcome.
    ack = sub.subscribe([("dup/x", 0), ("dup/x", 2)], pid=2)
    assert ack.reasons == [2, 2]
    status, _, subs = request(b.web, "/api/v1/subscriptions?client_id=" + cid, headers=ADMIN)
    assert status == 200
    assert sorted((s["filter"], s["qos"]) for s in subs) == [("dup/#", 1), ("dup/x", 2)]
    b.assert_alive()


# ---------------------------------------------------------------- the retained store's limits

def test_max_retained_messages_refuses_new_topics_with_0x97(broker_factory, raw_clients, clients, tmp_path):
    b = start_admin_broker(broker_factory, tmp_path, limits={"max_retained_messages": 5}, sys={"interval": 1})
    watcher = raw_clients(b, r.V5)
    watcher.connect_ok(uid("watch"))
    watcher.subscribe([("lim/#", 0)])
    pub = raw_clients(b, r.V5)
    pub.connect_ok(uid("pub"))
    for i in range(5):
        assert v5_ack(pub, "lim/%d" % i, b"v").reason == r.SUCCESS
    refused = v5_ack(pub, "lim/5", b"v")
    assert refused.reason == r.QUOTA_EXCEEDED
    assert "max_retained_messages" in refused.props.get("reason_string", "")
    pub.publish("lim/6", b"v", qos=0, retain=True)  # QoS 0: dropped
    # Refused means no effect at all: not delivered either.
    got = received_before_marker(watcher, "lim/marker", pub)
    assert sorted(t for t, _ in got) == ["lim/%d" % i for i in range(5)]

    # Replacing a value and clearing a topic always work; then there is room.
    assert v5_ack(pub, "lim/0", b"w").reason == r.SUCCESS
    assert v5_ack(pub, "lim/1", b"").reason == r.SUCCESS
    assert v5_ack(pub, "lim/5", b"v").reason == r.SUCCESS
    assert v5_ack(pub, "lim/6", b"v").reason == r.QUOTA_EXCEEDED

    late = raw_clients(b, r.V5)
    late.connect_ok(uid("late"))
    late.subscribe([("lim/#", 0)])
    assert sorted(received_before_marker(late, "lim/marker", pub)) == [
        ("lim/0", b"w"), ("lim/2", b"v"), ("lim/3", b"v"), ("lim/4", b"v"), ("lim/5", b"v")]

    wait_retained(clients, b, "$SYS/broker/retained messages/refused", lambda v: int(v) == 3)
    samples, _ = scrape(b)
    assert value(samples, "strata_retained_refused_total", limit="messages") == 3
    assert value(samples, "strata_retained_bytes") == 5 * 6


def test_max_retained_bytes_refuses_growth_and_311_is_acknowledged(broker_factory, raw_clients, tmp_path):
    b = start_admin_broker(broker_factory, tmp_path, limits={"max_retained_bytes": 2048})
    watcher = raw_clients(b, r.V5)
    watcher.connect_ok(uid("watch"))
    watcher.subscribe([("b/#", 0)])
    pub = raw_clients(b, r.V5)
    pub.connect_ok(uid("pub"))
    assert v5_ack(pub, "b/1", b"a" * 1000).reason == r.SUCCESS   # 1003 bytes
    assert v5_ack(pub, "b/2", b"b" * 900).reason == r.SUCCESS    # 903: 1906
    over = v5_ack(pub, "b/3", b"c" * 200)
    assert over.reason == r.QUOTA_EXCEEDED
    assert "max_retained_bytes" in over.props.get("reason_string", "")
    assert v5_ack(pub, "b/1", b"a" * 1200).reason == r.QUOTA_EXCEEDED  # grows by 200
    assert v5_ack(pub, "b/1", b"a" * 100).reason == r.SUCCESS          # shrinks: 1006
    assert v5_ack(pub, "b/3", b"c" * 200).reason == r.SUCCESS

    # 3.1.1 cannot say no: acknowledged, and dropped.
    old = raw_clients(b, r.V311)
    old.connect_ok(uid("v311"))
    ack = old.publish_acked("b/4", b"d" * 1500, qos=1, retain=True)
    assert ack.type == r.PUBACK
    got = received_before_marker(watcher, "b/marker", pub)
    assert [t for t, _ in got] == ["b/1", "b/2", "b/1", "b/3"]

    late = raw_clients(b, r.V5)
    late.connect_ok(uid("late"))
    late.subscribe([("b/#", 0)])
    assert sorted(t for t, _ in received_before_marker(late, "b/marker", pub)) == ["b/1", "b/2", "b/3"]


def test_by_default_one_anonymous_client_cannot_fill_the_retained_store(broker_factory, raw_clients):
    """The issue's case: one anonymous client storing retained topics as fast as it
    can. With the defaults it stops at its share, auth.limits.retained (100,000)."""
    b = broker_factory(sys={"interval": 0})
    c = raw_clients(b, r.V5)
    c.connect_ok(uid("flood"), keepalive=0)
    share = 100000
    for start in range(0, share, 10000):
        c.send(b"".join(r.publish("flood/%d/%d" % (i // 1000, i % 1000), b"v", retain=True, version=r.V5)
                        for i in range(start, start + 10000)))
    # Handled in order: this one's PUBACK comes after all of the above.
    ack = v5_ack(c, "flood/over", b"v")
    assert ack.reason == r.QUOTA_EXCEEDED, ack
    assert "auth.limits.retained" in ack.props.get("reason_string", "")
    assert v5_ack(c, "flood/0/0", b"w", pid=2).reason < 0x80  # replacing still works


def test_each_identity_has_its_share_of_retained_topics(broker_factory, raw_clients, tmp_path):
    b = start_admin_broker(broker_factory, tmp_path, auth={"limits": {"retained": 3}})
    watcher = raw_clients(b, r.V5)  # (so that an accepted message is acknowledged 0x00)
    watcher.connect_ok(uid("watch"))
    watcher.subscribe([("share/#", 0)])
    anon = raw_clients(b, r.V5)
    anon.connect_ok(uid("anon"))
    plc = raw_clients(b, r.V5)
    plc.connect_ok(uid("plc"), username="plc", password=b"plc-pw-1")
    for i in range(3):
        assert v5_ack(anon, "share/anon/%d" % i, b"v").reason == r.SUCCESS
    refused = v5_ack(anon, "share/anon/3", b"v")
    assert refused.reason == r.QUOTA_EXCEEDED
    assert "auth.limits.retained" in refused.props.get("reason_string", "")
    assert v5_ack(anon, "share/anon/0", b"w").reason == r.SUCCESS  # its own topic again
    # Another identity has a share of its own.
    for i in range(3):
        assert v5_ack(plc, "share/plc/%d" % i, b"v").reason == r.SUCCESS
    assert v5_ack(plc, "share/plc/3", b"v").reason == r.QUOTA_EXCEEDED
    # A topic counts for whoever set it last; a cleared one counts for nobody.
    assert v5_ack(plc, "share/anon/1", b"p").reason == r.SUCCESS
    assert v5_ack(anon, "share/anon/3", b"v").reason == r.SUCCESS
    assert v5_ack(plc, "share/plc/0", b"").reason == r.SUCCESS
    assert v5_ack(plc, "share/plc/0", b"v").reason == r.QUOTA_EXCEEDED  # still 3: plc/1, plc/2, anon/1
    assert v5_ack(plc, "share/plc/1", b"").reason == r.SUCCESS
    assert v5_ack(plc, "share/plc/0", b"v").reason == r.SUCCESS
    samples, _ = scrape(b)
    assert value(samples, "strata_retained_refused_total", limit="identity_messages") == 3


def test_a_store_over_the_limits_is_loaded_whole_at_start(broker_factory, raw_clients, tmp_path):
    data = tmp_path / "data"
    first = start_admin_broker(broker_factory, tmp_path, persistence={"path": str(data)})
    items = [("kept/%d" % i, b"v%d" % i) for i in range(8)]
    publish_retained(raw_clients, first, items)
    first.stop()
    first.assert_clean_exit()

    b = start_admin_broker(broker_factory, tmp_path, persistence={"path": str(data)},
                           limits={"max_retained_messages": 5})
    assert "over limits.max_retained_messages" in b.stderr_text()
    sub = raw_clients(b, r.V5)
    sub.connect_ok(uid("sub"))
    sub.subscribe([("kept/#", 0)])
    pub = raw_clients(b, r.V5)
    pub.connect_ok(uid("pub"))
    assert sorted(received_before_marker(sub, "kept/marker", pub)) == sorted(items)
    assert v5_ack(pub, "kept/new", b"n").reason == r.QUOTA_EXCEEDED
    assert v5_ack(pub, "kept/0", b"w").reason == r.SUCCESS  # replacing works
    for i in range(4):
        assert v5_ack(pub, "kept/%d" % i, b"").reason == r.SUCCESS
    assert v5_ack(pub, "kept/new", b"n").reason == r.SUCCESS
