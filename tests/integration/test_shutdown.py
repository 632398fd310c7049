"""Graceful shutdown: SIGTERM/SIGINT stop the broker, 5.0 clients get DISCONNECT
0x8B, 3.1.1 clients are closed, the process exits 0 within a bounded time."""

import signal
import time

import mqtt_raw as r
from conftest import uid, mosquitto_deviation


@mosquitto_deviation("closes 5.0 clients without DISCONNECT 0x8B")
def test_sigterm_sends_disconnect_0x8b_to_v5_clients(broker, raw_clients):
    v5 = [raw_clients(broker, r.V5) for _ in range(2)]
    for c in v5:
        c.connect_ok(uid())
    broker.send_signal(signal.SIGTERM)
    for c in v5:
        packets = c.wait_closed(timeout=8)
        assert [(p.type, p.reason) for p in packets] == [(r.DISCONNECT, r.SERVER_SHUTTING_DOWN)]
    assert broker.wait_exit() == 0


def test_sigterm_closes_v311_clients_and_exits_0(broker, raw_clients):
    c = raw_clients(broker)
    c.connect_ok(uid())
    broker.send_signal(signal.SIGTERM)
    assert c.wait_closed(timeout=8) == []
    assert broker.wait_exit() == 0


def test_sigint_exits_0(broker, raw_clients):
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid())
    broker.send_signal(signal.SIGINT)
    c.wait_closed(timeout=8)
    assert broker.wait_exit() == 0


def test_shutdown_is_bounded_with_busy_clients(broker_factory, raw_clients, clients):
    b = broker_factory(shutdown={"grace_ms": 1000})
    # a subscriber that never reads or acknowledges, with a backlog of QoS 1 messages
    stuck = raw_clients(b, r.V5)
    stuck.connect_ok(uid(), props=[("receive_maximum", 1)])
    stuck.subscribe([("shutdown/backlog", 1)])
    pub = clients(b)
    for _ in range(50):
        pub.publish("shutdown/backlog", b"x" * 1000, qos=1)
    t0 = time.monotonic()
    b.send_signal(signal.SIGTERM)
    assert b.wait_exit(timeout=8) == 0
    assert time.monotonic() - t0 < 6.0


def test_sigterm_with_idle_broker_exits_0(broker):
    t0 = time.monotonic()
    broker.send_signal(signal.SIGTERM)
    assert broker.wait_exit() == 0
    assert time.monotonic() - t0 < 5.0
