"""QoS 0/1/2 flows in both directions and both versions, QoS downgrade, ordering."""

import pytest

import mqtt_raw as r
from conftest import uid, mosquitto_pub


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_paho_publish_subscribe_each_qos(broker, clients, version, qos):
    sub = clients(broker, version=version)
    assert sub.subscribe("qos/paho", qos=qos) == [qos]
    pub = clients(broker, version=version)
    pub.publish("qos/paho", b"payload-%d" % qos, qos=qos)
    m = sub.get()
    assert (m.topic, m.payload, m.qos) == ("qos/paho", b"payload-%d" % qos, qos)


@pytest.mark.parametrize("version", [r.V311, r.V5])
def test_inbound_qos1_flow(broker, raw_clients, clients, version):
    sub = clients(broker)
    sub.subscribe("qos/in1", qos=1)
    c = raw_clients(broker, version)
    c.connect_ok(uid())
    c.publish("qos/in1", b"one", qos=1, pid=42)
    ack = c.expect(r.PUBACK)
    assert ack.pid == 42 and ack.reason == 0
    assert sub.get().payload == b"one"


def test_v5_puback_without_subscribers_reports_success_or_no_match(broker, raw_clients):
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid())
    c.publish("qos/nobody/" + uid(), b"x", qos=1, pid=3)
    ack = c.expect(r.PUBACK)
    assert ack.pid == 3 and ack.reason in (r.SUCCESS, r.NO_MATCHING_SUBSCRIBERS)


@pytest.mark.parametrize("version", [r.V311, r.V5])
def test_inbound_qos2_flow(broker, raw_clients, clients, version):
    sub = clients(broker)
    sub.subscribe("qos/in2", qos=2)
    c = raw_clients(broker, version)
    c.connect_ok(uid())
    c.publish("qos/in2", b"two", qos=2, pid=0x1234)
    rec = c.expect(r.PUBREC)
    assert rec.pid == 0x1234 and rec.reason == 0
    c.send(r.pubrel(0x1234, version=version))
    comp = c.expect(r.PUBCOMP)
    assert comp.pid == 0x1234 and comp.reason == 0
    m = sub.get()
    assert m.payload == b"two" and m.qos == 2


def test_inbound_qos2_duplicate_publish_delivered_once(broker, raw_clients, clients):
    sub = clients(broker, version=4)
    sub.subscribe("qos/dup2", qos=2)
    c = raw_clients(broker)
    c.connect_ok(uid())
    c.publish("qos/dup2", b"exactly-once", qos=2, pid=5)
    assert c.expect(r.PUBREC).pid == 5
    c.publish("qos/dup2", b"exactly-once", qos=2, pid=5, dup=True)
    assert c.expect(r.PUBREC).pid == 5
    c.send(r.pubrel(5))
    assert c.expect(r.PUBCOMP).pid == 5
    c.publish_acked("qos/dup2", b"marker", qos=2, pid=6)
    assert [m.payload for m in sub.until("marker")] == [b"exactly-once"]


def test_pubrel_for_unknown_packet_id_gets_pubcomp(broker, raw_clients):
    c = raw_clients(broker, r.V5)
    c.connect_ok(uid())
    c.send(r.pubrel(999, version=r.V5))
    comp = c.expect(r.PUBCOMP)
    # 5.0: 0x92 Packet Identifier not found (0x00 tolerated as in 3.1.1)
    assert comp.pid == 999 and comp.reason in (0x00, 0x92)


@pytest.mark.parametrize("version", [r.V311, r.V5])
def test_outbound_qos1_flow(broker, raw_clients, clients, version):
    s = raw_clients(broker, version)
    s.connect_ok(uid())
    assert s.subscribe([("qos/out1", 1)]).reasons == [1]
    clients(broker).publish("qos/out1", b"to-you", qos=1)
    p = s.recv_publish(ack=False)
    assert p.qos == 1 and p.pid and not p.dup and p.payload == b"to-you"
    s.send(r.puback(p.pid, version=version))
    s.expect_nothing(0.3)  # acknowledged: no retry on the same connection


@pytest.mark.parametrize("version", [r.V311, r.V5])
def test_outbound_qos2_flow(broker, raw_clients, clients, version):
    s = raw_clients(broker, version)
    s.connect_ok(uid())
    assert s.subscribe([("qos/out2", 2)]).reasons == [2]
    clients(broker).publish("qos/out2", b"to-you-2", qos=2)
    p = s.recv_publish(ack=False)
    assert p.qos == 2 and p.pid and p.payload == b"to-you-2"
    s.send(r.pubrec(p.pid, version=version))
    rel = s.expect(r.PUBREL)
    assert rel.pid == p.pid and rel.flags == 0x2
    s.send(r.pubcomp(p.pid, version=version))
    s.expect_nothing(0.3)


def test_delivery_qos_is_minimum_of_publish_and_subscription(broker, raw_clients, clients):
    s = raw_clients(broker)
    s.connect_ok(uid())
    s.subscribe([("qos/min/sub1", 1), ("qos/min/sub0", 0), ("qos/min/sub2", 2)])
    pub = clients(broker, version=4)
    pub.publish("qos/min/sub1", b"a", qos=2)
    pub.publish("qos/min/sub0", b"b", qos=2)
    pub.publish("qos/min/sub2", b"c", qos=1)
    got = {}
    for _ in range(3):
        p = s.recv_publish()
        got[p.topic] = p.qos
    assert got == {"qos/min/sub1": 1, "qos/min/sub0": 0, "qos/min/sub2": 1}


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_in_order_delivery_per_topic(broker, raw_clients, clients, qos):
    s = raw_clients(broker, r.V5)
    s.connect_ok(uid())
    s.subscribe([("qos/order", qos)])
    pub = raw_clients(broker, r.V5)
    pub.connect_ok(uid())
    n = 200
    for i in range(n):
        pub.publish("qos/order", b"%d" % i, qos=qos, pid=(i % 1000) + 1)
        if qos == 1:
            pub.expect(r.PUBACK)
        elif qos == 2:
            pub.expect(r.PUBREC)
            pub.send(r.pubrel((i % 1000) + 1, version=r.V5))
            pub.expect(r.PUBCOMP)
    got = [int(s.recv_publish().payload) for _ in range(n)]
    assert got == list(range(n))


def test_mosquitto_clients_in_order_v311_to_v5(broker, mosquitto_subs):
    sub = mosquitto_subs(broker, "-V", "mqttv5", "-q", "1", "-t", "qos/mosq", "-C", "100")
    lines = "".join("line-%03d\n" % i for i in range(100)).encode()
    mosquitto_pub(broker, "-V", "mqttv311", "-q", "1", "-t", "qos/mosq", "-l", input=lines)
    assert sub.payloads(100) == ["line-%03d" % i for i in range(100)]
    assert sub.wait() == 0


def test_mosquitto_clients_qos2_v5_to_v311(broker, mosquitto_subs):
    sub = mosquitto_subs(broker, "-V", "mqttv311", "-q", "2", "-t", "qos/mosq2", "-C", "1")
    mosquitto_pub(broker, "-V", "mqttv5", "-q", "2", "-t", "qos/mosq2", "-m", "exactly")
    assert sub.payloads(1) == ["exactly"]
    assert sub.wait() == 0
