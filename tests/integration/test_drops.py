"""A message dropped because a subscriber's queue is full: the subscriber matched, so
the 5.0 PUBACK says 0x00 (0x10 No matching subscribers only when nothing matched),
and the drop is counted for that session: the admin API's `dropped`, $SYS
(sessions/dropping, sessions/most_dropped) and /metrics."""

import json

import pytest

import mqtt_raw as r
from conftest import IS_MOSQUITTO, uid, wait_retained
from test_http import request, scrape, value
from test_retained_limits import ADMIN, start_admin_broker

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="Strata admin API, $SYS and metrics")


def test_a_drop_for_a_full_queue_is_acknowledged_0x00_and_counted_per_session(
        broker_factory, raw_clients, clients, tmp_path):
    b = start_admin_broker(broker_factory, tmp_path, limits={"max_queued_messages": 5}, sys={"interval": 1})
    # An offline persistent session with room for 5.
    cid = uid("offline")
    sub = raw_clients(b, r.V5)
    sub.connect_ok(cid, props=[("session_expiry_interval", 3600)])
    assert sub.subscribe([("drop/t", 1)]).reasons == [1]
    sub.disconnect(wait=True)

    pub = raw_clients(b, r.V5)
    pub.connect_ok(uid("pub"))
    reasons = [pub.publish_acked("drop/t", b"m%d" % i, qos=1, pid=i + 1).reason for i in range(10)]
    assert reasons == [r.SUCCESS] * 10, "matched, then dropped for a full queue: still 0x00; got %r" % reasons
    assert pub.publish_acked("nobody/here", b"x", qos=1, pid=11).reason == r.NO_MATCHING_SUBSCRIBERS

    status, _, sessions = request(b.web, "/api/v1/sessions", headers=ADMIN)
    assert status == 200
    mine = [s for s in sessions if s["client_id"] == cid]
    assert len(mine) == 1 and mine[0]["dropped"] == 5 and mine[0]["queued"] == 5, mine
    assert all(s["dropped"] == 0 for s in sessions if s["client_id"] != cid), sessions

    wait_retained(clients, b, "$SYS/broker/sessions/dropping", lambda v: v == "1")
    top = json.loads(wait_retained(clients, b, "$SYS/broker/sessions/most_dropped", lambda v: cid in v))
    assert top == [{"client_id": cid, "dropped": 5}]
    samples, kinds = scrape(b)
    assert value(samples, "strata_session_dropped_messages_total", client_id=cid) == 5
    assert kinds["strata_session_dropped_messages_total"] == "counter"
    assert value(samples, "strata_sessions_dropping") == 1
    assert value(samples, "strata_messages_dropped_total", reason="queue_full") == 5

    # What was queued is still delivered.
    back = raw_clients(b, r.V5)
    assert back.connect_ok(cid, clean=False, props=[("session_expiry_interval", 3600)]).session_present
    assert [back.recv_publish().payload for _ in range(5)] == [b"m%d" % i for i in range(5)]
