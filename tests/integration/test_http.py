"""The HTTP listener: /metrics in the Prometheus text format (scraped and parsed after
known traffic), /healthz and /readyz, JSON errors, https, and malformed requests that
close only their own connection.
"""

import http.client
import json
import pathlib
import re
import socket
import ssl
import types

import pytest

import mqtt_raw
from certs import Pki
from conftest import IS_MOSQUITTO, TIMEOUT, Client, uid, wait_until

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="Strata listener configuration")

REPO = pathlib.Path(__file__).resolve().parents[2]


def start_http_broker(broker_factory, **over):
    over.setdefault("sys", {"interval": 0})  # no $SYS retained messages in the counts
    b = broker_factory(listeners=[
        {"name": "mqtt", "protocol": "mqtt", "bind": "127.0.0.1:0"},
        {"name": "web", "protocol": "http", "bind": "127.0.0.1:0"},
    ] + over.pop("more_listeners", []), **over)
    host, port = b.listeners["web"]
    b.web = types.SimpleNamespace(host=host, port=port)
    return b


def get(target, path, method="GET", context=None):
    if context is None:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=TIMEOUT)
    else:
        conn = http.client.HTTPSConnection(target.host, target.port, timeout=TIMEOUT, context=context)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        conn.close()


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset(labels)): value} and {name: type} from the text format."""
    samples, types_ = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types_[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, "not a Prometheus sample line: %r" % line
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples, types_


def scrape(b):
    status, ctype, body = get(b.web, "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    return parse_metrics(body.decode())


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def test_metrics_after_known_traffic(broker_factory):
    b = start_http_broker(broker_factory)
    sub = Client(b, version=5).connect()
    assert sub.subscribe("m/#", qos=1) == [1]
    pub = Client(b, version=5).connect()
    for i in range(5):
        pub.publish("m/zero", b"a" * 10, qos=0)
    for i in range(3):
        pub.publish("m/one", b"b" * 20, qos=1)
    pub.publish("m/two", b"c" * 7, qos=2)
    pub.publish("m/two/retained", b"c" * 7, qos=2, retain=True)
    assert len(sub.get_n(10)) == 10
    refused = b.raw()
    refused.send(mqtt_raw.connect("", clean=False))  # 3.1.1: an empty id needs clean session
    assert refused.recv().reason != 0
    refused.close()

    samples, kinds = scrape(b)
    assert value(samples, "strata_messages_received_total", qos="0") == 5
    assert value(samples, "strata_messages_received_total", qos="1") == 3
    assert value(samples, "strata_messages_received_total", qos="2") == 2
    assert value(samples, "strata_payload_received_bytes_total", qos="0") == 50
    assert value(samples, "strata_payload_received_bytes_total", qos="1") == 60
    assert value(samples, "strata_payload_received_bytes_total", qos="2") == 14
    # the subscription's QoS 1 caps the deliveries
    assert value(samples, "strata_messages_sent_total", qos="0") == 5
    assert value(samples, "strata_messages_sent_total", qos="1") == 5
    assert value(samples, "strata_messages_sent_total", qos="2") == 0
    assert value(samples, "strata_payload_sent_bytes_total", qos="1") == 74
    assert value(samples, "strata_connections_accepted_total") == 3
    assert value(samples, "strata_connections_refused_total", reason="protocol") == 1
    assert value(samples, "strata_connections_refused_total", reason="limit") == 0
    assert value(samples, "strata_clients_connected") == 2
    assert value(samples, "strata_sessions") == 2
    assert value(samples, "strata_subscriptions") == 1
    assert value(samples, "strata_retained_messages") == 1
    assert value(samples, "strata_queued_messages") == 0
    assert value(samples, "strata_messages_dropped_total", reason="queue_full") == 0
    assert value(samples, "strata_ready") == 1
    assert value(samples, "strata_process_resident_memory_bytes") > 1e6
    assert value(samples, "strata_process_open_fds") >= 5
    assert value(samples, "strata_process_cpu_seconds_total") > 0
    for name, kind in kinds.items():
        assert name.startswith("strata_"), name
        assert name.endswith("_total") == (kind == "counter"), (name, kind)

    # counters move with more traffic
    pub.publish("m/zero", b"a" * 10, qos=0)
    sub.get()
    samples, _ = scrape(b)
    assert value(samples, "strata_messages_received_total", qos="0") == 6
    sub.disconnect()
    pub.disconnect()


def test_store_metrics(broker_factory):
    b = start_http_broker(broker_factory)
    pub = Client(b, version=5).connect()
    for i in range(3):
        pub.publish("store/r%d" % i, b"v", qos=1, retain=True)  # acknowledged once committed
    samples, kinds = scrape(b)
    assert kinds["strata_store_commit_seconds"] == "histogram"
    count = value(samples, "strata_store_commit_seconds_count")
    assert count >= 1
    assert value(samples, "strata_store_commit_seconds_bucket", le="+Inf") == count
    assert value(samples, "strata_store_commits_total") == count
    assert value(samples, "strata_store_operations_total") >= 3
    assert value(samples, "strata_store_healthy") == 1
    assert value(samples, "strata_store_write_errors_total") == 0
    assert value(samples, "strata_publishes_refused_unstorable_total") == 0


def test_namespace_violations_by_subtree_and_outcome(broker_factory):
    b = start_http_broker(broker_factory, namespace={"model": str(REPO / "deploy/namespace/acme.yaml")})
    c = Client(b, version=5).connect()
    c.publish("elsewhere/topic", b"{}", qos=1)  # outside the model: rejected
    samples, _ = scrape(b)
    rejected = {k: v for k, v in samples.items()
                if k[0] == "strata_namespace_messages_total" and ("outcome", "rejected") in k[1]}
    assert sum(rejected.values()) == 1, samples
    c.disconnect()


def test_health_and_readiness(broker_factory):
    b = start_http_broker(broker_factory)
    status, ctype, body = get(b.web, "/healthz")
    assert (status, ctype, json.loads(body)) == (200, "application/json", {"status": "alive"})
    status, _, body = get(b.web, "/readyz")
    assert (status, json.loads(body)) == (200, {"status": "ready"})


def test_json_errors(broker_factory):
    b = start_http_broker(broker_factory)
    status, ctype, body = get(b.web, "/nowhere?x=1")
    assert (status, ctype) == (404, "application/json")
    assert json.loads(body) == {"error": "not found", "path": "/nowhere"}
    status, _, body = get(b.web, "/metrics", method="POST")
    assert status == 405 and "error" in json.loads(body)
    status, _, body = get(b.web, "/mqtt")
    assert status == 426 and "error" in json.loads(body)


def test_keep_alive_serves_several_requests(broker_factory):
    b = start_http_broker(broker_factory)
    conn = http.client.HTTPConnection(b.web.host, b.web.port, timeout=TIMEOUT)
    for path in ("/healthz", "/readyz", "/metrics"):
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        assert r.status == 200
    conn.close()


def raw_http(target, data):
    """Sends `data`, returns everything read until the broker closes the connection."""
    s = socket.create_connection((target.host, target.port), timeout=TIMEOUT)
    try:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def test_malformed_requests_close_only_their_connection(broker_factory):
    b = start_http_broker(broker_factory)
    mqtt_client = Client(b, version=5).connect()
    keeper = http.client.HTTPConnection(b.web.host, b.web.port, timeout=TIMEOUT)
    keeper.request("GET", "/healthz")
    keeper.getresponse().read()

    reply = raw_http(b.web, b"THIS IS NOT HTTP\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400"), reply
    reply = raw_http(b.web, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 431"), reply
    reply = raw_http(b.web, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000)
    assert reply.startswith(b"HTTP/1.1 413"), reply
    reply = raw_http(b.web, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400"), reply

    # the other HTTP connection and the MQTT side carry on
    keeper.request("GET", "/readyz")
    assert keeper.getresponse().status == 200
    keeper.close()
    assert mqtt_client.subscribe("x/#") == [0]
    b.assert_alive()
    mqtt_client.disconnect()


def test_https_listener(broker_factory, tmp_path):
    pki = Pki(tmp_path / "pki")
    b = start_http_broker(broker_factory, more_listeners=[
        {"name": "webs", "protocol": "https", "bind": "127.0.0.1:0", "tls": pki.tls_config(client_ca=False)}])
    host, port = b.listeners["webs"]
    target = types.SimpleNamespace(host=host, port=port)
    status, _, body = get(target, "/healthz", context=pki.client_context())
    assert status == 200 and json.loads(body) == {"status": "alive"}
    status, ctype, _ = get(target, "/metrics", context=pki.client_context())
    assert status == 200
    # a plain-text request to the https port is not served, and the broker goes on
    reply = raw_http(target, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"alive" not in reply
    status, _, _ = get(target, "/healthz", context=pki.client_context())
    assert status == 200
    samples, _ = scrape(b)
    assert value(samples, "strata_connections_refused_total", reason="tls_handshake") >= 1


# ---------------------------------------------------------------- admin API

def test_admin_api_with_client_certificates(broker_factory, tmp_path):
    pki = Pki(tmp_path / "pki")
    analyst_cert, analyst_key = pki.ca.issue("analyst", "analyst", client=True)
    b = start_http_broker(broker_factory, more_listeners=[
        {"name": "admin", "protocol": "https", "bind": "127.0.0.1:0",
         "tls": pki.tls_config(require_client_cert=False), "admin_identities": ["press-7"]}])
    host, port = b.listeners["admin"]
    target = types.SimpleNamespace(host=host, port=port)
    admin = pki.client_context(pki.client_cert, pki.client_key)

    # who may call it
    assert get(b.web, "/api/v1/sessions")[0] == 401          # plain http: no certificate
    assert get(target, "/api/v1/sessions", context=pki.client_context())[0] == 401
    status, _, body = get(target, "/api/v1/sessions", context=pki.client_context(analyst_cert, analyst_key))
    assert status == 403 and "error" in json.loads(body)

    c = Client(b, client_id=uid("admin-seen"), version=5).connect()
    assert c.subscribe("plant/#", qos=1) == [1]
    c.publish("plant/a/state", b"running", qos=1, retain=True)
    c.publish("plant/b/state", b"\xff\xfe", qos=0, retain=True)   # not UTF-8
    c.publish("other/x", b"no", retain=True)
    c.get_n(2)

    status, ctype, body = get(target, "/api/v1/sessions", context=admin)
    assert (status, ctype) == (200, "application/json")
    sessions = {s["client_id"]: s for s in json.loads(body)}
    assert sessions[c.client_id]["connected"] is True
    assert sessions[c.client_id]["subscriptions"] == 1
    status, _, body = get(target, "/api/v1/subscriptions", context=admin)
    assert {"client_id": c.client_id, "filter": "plant/#"} in json.loads(body)

    status, _, body = get(target, "/api/v1/state?filter=plant%2F%2B%2Fstate", context=admin)
    assert status == 200
    state = {m["topic"]: m for m in json.loads(body)}
    assert set(state) == {"plant/a/state", "plant/b/state"}
    assert state["plant/a/state"]["payload"] == "running" and state["plant/a/state"]["qos"] == 1
    assert get(target, "/api/v1/state", context=admin)[0] == 400
    assert get(target, "/api/v1/state?filter=a/%23/b", context=admin)[0] == 400
    assert get(target, "/api/v1/state?filter=%zz", context=admin)[0] == 400

    assert get(target, "/api/v1/reload", method="POST", context=admin)[0] == 200
    assert get(target, "/api/v1/sessions", method="DELETE", context=admin)[0] == 405
    assert get(target, "/api/v1/nothing", context=admin)[0] == 404
    assert get(target, "/api/v1/clients/nobody/disconnect", method="POST", context=admin)[0] == 404

    status, _, body = get(target, "/api/v1/clients/%s/disconnect" % c.client_id, method="POST", context=admin)
    assert status == 202 and json.loads(body) == {"disconnected": c.client_id}
    assert c.disconnected.wait(TIMEOUT)
    assert c.disconnect_rc == 0x98
    c.close()
    status, _, body = get(target, "/api/v1/sessions", context=admin)
    b.assert_alive()


def test_admin_identities_need_https_with_client_ca(tmp_path):
    import subprocess
    import conftest
    cfg = tmp_path / "strata.yaml"
    cfg.write_text('listeners: [{name: w, protocol: http, bind: "127.0.0.1:0", admin_identities: [ops]}]\n')
    r = subprocess.run([conftest.STRATA_BIN, "--config", str(cfg)], capture_output=True, timeout=TIMEOUT * 3)
    assert r.returncode == 2
    assert b"admin_identities needs protocol https with tls.client_ca" in r.stderr, r.stderr
