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
import subprocess
import types

import pytest

import mqtt_raw
from certs import Pki
from conftest import IS_MOSQUITTO, STRATA_BIN, TIMEOUT, Client, PacketTypes, SubscribeOptions, props, uid, wait_until

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


def test_every_metric_the_grafana_dashboard_uses_exists(broker_factory):
    """deploy/grafana/strata-dashboard.json queries only metrics /metrics serves (with a
    model, a bridge and the alerts configured, so that their families are there too)."""
    with open(pathlib.Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "strata-dashboard.json") as f:
        dashboard = json.load(f)
    exprs = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("expr", "query", "definition") and isinstance(v, str):
                    exprs.append(v)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(dashboard)
    used = set()
    for e in exprs:
        used.update(re.findall(r"\b(strata_[a-z0-9_]+)", e))
    assert len(used) >= 20, sorted(used)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    acme = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "namespace" / "acme.yaml"
    b = start_http_broker(broker_factory, alerts={"enabled": True}, namespace={"model": str(acme)},
                          bridges=[{"name": "up", "remote": "mqtt://127.0.0.1:%d" % closed,
                                    "forward": [{"local": "a/#", "remote": "a/#"}]}])
    samples, kinds = scrape(b)
    served = {name for name, _ in samples} | set(kinds)
    # Histograms and summaries are queried by their _bucket/_sum/_count series.
    missing = sorted(m for m in used if m not in served and re.sub(r"_(bucket|sum|count)$", "", m) not in kinds)
    assert not missing, "the dashboard queries metrics /metrics does not serve: %s" % missing


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
    version = subprocess.run([STRATA_BIN, "--version"], capture_output=True, check=True).stdout.decode().split()[1]
    assert value(samples, "strata_build_info", version=version) == 1
    assert value(samples, "strata_login_failures_total") == 0
    assert value(samples, "strata_logins_blocked_total") == 0
    assert value(samples, "strata_blocked_addresses") == 0
    assert value(samples, "strata_publishes_refused_total", reason="not_authorized") == 0
    assert value(samples, "strata_publishes_refused_total", reason="rate_limited") == 0
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
    assert [(s["client_id"], s["filter"], s["qos"]) for s in json.loads(body)] == [(c.client_id, "plant/#", 1)]

    # no roles configured: an admin identity sees every retained message
    status, _, body = get(target, "/api/v1/state?filter=plant%2F%2B%2Fstate", context=admin)
    assert status == 200
    page = json.loads(body)
    assert page["next_cursor"] is None
    assert [m["topic"] for m in page["messages"]] == ["plant/a/state", "plant/b/state"]
    state = {m["topic"]: m for m in page["messages"]}
    assert state["plant/a/state"]["payload"] == "running" and state["plant/a/state"]["qos"] == 1
    assert state["plant/a/state"]["payload_encoding"] == "utf-8"
    assert (state["plant/b/state"]["payload"], state["plant/b/state"]["payload_encoding"]) == ("//4=", "base64")
    # a certificate that is not an admin identity reads the state as its MQTT
    # client would: without roles, everything
    status, _, body = get(target, "/api/v1/state?filter=%23", context=pki.client_context(analyst_cert, analyst_key))
    assert status == 200 and len(json.loads(body)["messages"]) == 3
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


def config_error(tmp_path, text):
    """Starts the broker with config `text`; returns its stderr (it must exit 2)."""
    import subprocess
    import conftest
    cfg = tmp_path / "strata.yaml"
    cfg.write_text(text + "\n")
    r = subprocess.run([conftest.STRATA_BIN, "--config", str(cfg)], capture_output=True, timeout=TIMEOUT * 3)
    assert r.returncode == 2, (text, r.stderr)
    return r.stderr


def test_admin_listener_config_errors(tmp_path):
    err = config_error(tmp_path, 'listeners: [{name: w, protocol: http, bind: "127.0.0.1:0", admin_identities: [ops]}]')
    assert b"admin_identities needs protocol https with tls.client_ca" in err, err
    err = config_error(tmp_path, 'listeners: [{name: m, protocol: mqtt, bind: "127.0.0.1:0", admin_over_plain_http: true}]')
    assert b"admin_over_plain_http is for protocol http" in err, err


# ---------------------------------------------------------------- admin API: HTTP Basic

ADMIN_PASSWORDS = {"ops": "ops-pw-1", "ana": "ana-pw-2"}
ADMIN_ROLES = {
    "roles": {
        "admin": [{"allow": "admin", "on": "#"}, {"allow": "subscribe", "on": "#"}],
        "viewer": [{"allow": "subscribe", "on": "plant/#"}, {"allow": "publish", "on": "plant/#"}],
        "anyone": [{"allow": "subscribe", "on": "#"}, {"allow": "publish", "on": "#"}],
    },
    "users": {"ops": ["admin"], "ana": ["viewer"], "anonymous": ["anyone"]},
}


def make_passwd(tmp_path, users=ADMIN_PASSWORDS):
    import subprocess
    import conftest
    path = tmp_path / "passwd"
    for user, password in users.items():
        p = subprocess.run([conftest.STRATA_BIN, "passwd", "--iterations", "1000", str(path), user],
                           input=(password + "\n").encode(), capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr.decode()
    return path


def basic(user, password):
    import base64
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def request(target, path, method="GET", headers=None, context=None, body=None):
    """(status, headers, parsed JSON body or raw bytes)."""
    if context is None:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=TIMEOUT)
    else:
        conn = http.client.HTTPSConnection(target.host, target.port, timeout=TIMEOUT, context=context)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        if r.getheader("Content-Type") == "application/json":
            data = json.loads(data)
        return r.status, r, data
    finally:
        conn.close()


def start_basic_broker(broker_factory, tmp_path, **over):
    auth = {"allow_anonymous": True, "password_file": str(make_passwd(tmp_path))}
    auth.update(over.pop("auth", {}))
    return start_http_broker(broker_factory, auth=auth, access=[], **ADMIN_ROLES, **over)


def test_admin_api_with_http_basic(broker_factory, tmp_path):
    b = start_basic_broker(broker_factory, tmp_path)
    status, r, body = request(b.web, "/api/v1/sessions")
    assert status == 401 and "error" in body
    assert r.getheader("WWW-Authenticate").startswith("Basic realm=")
    status, r, body = request(b.web, "/api/v1/sessions", headers={"Authorization": basic("ops", "wrong")})
    assert status == 401 and body["error"] == "bad user name or password"
    assert r.getheader("WWW-Authenticate").startswith("Basic")
    status, _, _ = request(b.web, "/api/v1/sessions", headers={"Authorization": basic("nobody", "x")})
    assert status == 401
    status, _, body = request(b.web, "/api/v1/sessions", headers={"Authorization": "Basic !!notbase64"})
    assert status == 401 and "malformed" in body["error"]
    status, _, body = request(b.web, "/api/v1/sessions", headers={"Authorization": "Bearer abc"})
    assert status == 401
    # a known identity without the admin grant
    status, _, body = request(b.web, "/api/v1/sessions", headers={"Authorization": basic("ana", "ana-pw-2")})
    assert status == 403 and body["identity"] == "ana" and "admin grant" in body["error"]

    c = Client(b, client_id=uid("basic-seen"), version=5).connect()
    status, _, body = request(b.web, "/api/v1/sessions", headers={"Authorization": basic("ops", "ops-pw-1")})
    assert status == 200
    assert c.client_id in {s["client_id"] for s in body}
    # keep-alive: the next request on the same connection authenticates again
    conn = http.client.HTTPConnection(b.web.host, b.web.port, timeout=TIMEOUT)
    for path in ("/api/v1/sessions", "/api/v1/subscriptions"):
        conn.request("GET", path, headers={"Authorization": basic("ops", "ops-pw-1")})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
    conn.close()
    c.disconnect()
    b.assert_alive()


def test_admin_basic_failures_back_off_like_mqtt_logins(broker_factory, tmp_path):
    b = start_basic_broker(broker_factory, tmp_path,
                           auth={"login_backoff": {"free_attempts": 2, "initial_ms": 60000}})
    # free_attempts: 2 means two passwords are checked; the second failure blocks
    for _ in range(2):
        assert request(b.web, "/api/v1/sessions", headers={"Authorization": basic("ops", "bad")})[0] == 401
    # blocked now, even with the right password, and for MQTT logins from this address too
    status, r, body = request(b.web, "/api/v1/sessions", headers={"Authorization": basic("ops", "ops-pw-1")})
    assert status == 429 and "too many failed logins" in body["error"]
    assert int(r.getheader("Retry-After")) >= 1
    raw = b.raw()
    raw.send(mqtt_raw.connect(uid("blocked"), version=mqtt_raw.V5, username="ops", password=b"ops-pw-1"))
    assert raw.recv().reason == 0x8A
    raw.close()


def test_admin_api_basic_over_https_and_certificates_still_work(broker_factory, tmp_path):
    pki = Pki(tmp_path / "pki")
    b = start_basic_broker(broker_factory, tmp_path, more_listeners=[
        {"name": "admin", "protocol": "https", "bind": "127.0.0.1:0",
         "tls": pki.tls_config(require_client_cert=False), "admin_identities": ["press-7"]}])
    host, port = b.listeners["admin"]
    target = types.SimpleNamespace(host=host, port=port)
    status, _, _ = request(target, "/api/v1/sessions", context=pki.client_context(),
                           headers={"Authorization": basic("ops", "ops-pw-1")})
    assert status == 200
    status, _, _ = request(target, "/api/v1/sessions", context=pki.client_context(pki.client_cert, pki.client_key))
    assert status == 200
    status, _, _ = request(target, "/api/v1/sessions", context=pki.client_context())
    assert status == 401


def test_admin_endpoints(broker_factory, tmp_path):
    import time
    b = start_basic_broker(broker_factory, tmp_path, bridges=[
        {"name": "up", "remote": "mqtt://127.0.0.1:1", "forward": [{"local": "plant/#", "remote": "x/plant/#"}],
         "reconnect": {"min_ms": 1000, "max_ms": 1000}}])
    auth = {"Authorization": basic("ops", "ops-pw-1")}

    def api(path, method="GET"):
        return request(b.web, path, method=method, headers=auth)

    online = Client(b, client_id=uid("online"), version=5).connect()
    assert online.subscribe("plant/#", qos=1) == [1]
    offline = Client(b, client_id=uid("offline"), version=5, clean=False,
                     connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=300)).connect()
    assert offline.subscribe("other/+", qos=0) == [0]
    offline.disconnect()

    status, _, body = api("/api/v1/clients")
    assert status == 200
    ids = {s["client_id"] for s in body}
    assert online.client_id in ids and offline.client_id not in ids
    status, _, body = api("/api/v1/sessions")
    sessions = {s["client_id"]: s for s in body}
    assert sessions[offline.client_id]["connected"] is False
    assert sessions[online.client_id]["identity"] == ""

    status, _, body = api("/api/v1/subscriptions?client_id=" + offline.client_id)
    assert status == 200 and [(s["client_id"], s["filter"]) for s in body] == [(offline.client_id, "other/+")]
    assert api("/api/v1/subscriptions?nonsense=1")[0] == 400

    before = int(time.time() * 1000)
    online.publish("plant/line/state", b"running", qos=1, retain=True)
    online.get()
    after = int(time.time() * 1000)
    status, _, body = api("/api/v1/state?filter=plant/%23")
    assert status == 200 and len(body["messages"]) == 1 and body["next_cursor"] is None
    m = body["messages"][0]
    assert (m["topic"], m["payload"], m["qos"], m["retain"]) == ("plant/line/state", "running", 1, True)
    assert before - 5 <= m["received_ms"] <= after + 5
    assert m["received"].endswith("Z") and m["received"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(before / 1000)))

    status, _, body = api("/api/v1/bridges")
    assert status == 200 and len(body) == 1
    assert body[0]["name"] == "up" and body[0]["connected"] is False
    assert set(body[0]["backlog"]) == {"messages", "bytes", "in_store_only", "oldest_age_seconds"}

    # bad requests: 4xx JSON, the broker carries on
    for path, method, expected in [
            ("/api/v1/bridges", "POST", 405), ("/api/v1/clients", "DELETE", 405),
            ("/api/v1/reload", "GET", 405), ("/api/v1/state?filter=", "GET", 400),
            ("/api/v1/state?filter=a/%23/b", "GET", 400), ("/api/v1/state?filter=%zz", "GET", 400),
            ("/api/v1/clients/%zz/disconnect", "POST", 400), ("/api/v1/clients//disconnect", "POST", 404),
            ("/api/v1/clients/x/disconnect", "GET", 405), ("/api/v2/sessions", "GET", 404),
            ("/api/v1/sessions/../reload", "POST", 404)]:
        status, _, body = api(path, method)
        assert status == expected and "error" in body, (path, method, status, body)
    assert api("/api/v1/reload", "POST")[0] == 200
    status, _, body = api("/api/v1/clients/%s/disconnect" % online.client_id, "POST")
    assert status == 202
    assert online.disconnected.wait(TIMEOUT)
    online.close()
    b.assert_alive()


def test_admin_subscriptions_show_their_options(broker_factory, tmp_path):
    b = start_basic_broker(broker_factory, tmp_path)
    auth = {"Authorization": basic("ops", "ops-pw-1")}
    v5 = Client(b, client_id=uid("opts5"), version=5).connect()
    assert v5.subscribe("plant/+/state", options=SubscribeOptions(
        qos=2, noLocal=True, retainAsPublished=True, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB),
        properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=42)) == [2]
    assert v5.subscribe("$share/dash/plant/#", qos=1) == [1]
    v3 = Client(b, client_id=uid("opts3"), version=3).connect()
    assert v3.subscribe("other/#", qos=0) == [0]

    status, _, body = request(b.web, "/api/v1/subscriptions?client_id=" + v5.client_id, headers=auth)
    assert status == 200
    assert body == [
        {"client_id": v5.client_id, "filter": "$share/dash/plant/#", "qos": 1, "no_local": False,
         "retain_as_published": False, "retain_handling": 0, "subscription_identifier": None,
         "shared_group": "dash"},
        {"client_id": v5.client_id, "filter": "plant/+/state", "qos": 2, "no_local": True,
         "retain_as_published": True, "retain_handling": 1, "subscription_identifier": 42,
         "shared_group": None},
    ]
    status, _, body = request(b.web, "/api/v1/subscriptions", headers=auth)
    mine = [s for s in body if s["client_id"] == v3.client_id]
    assert mine == [{"client_id": v3.client_id, "filter": "other/#", "qos": 0, "no_local": False,
                     "retain_as_published": False, "retain_handling": 0, "subscription_identifier": None,
                     "shared_group": None}]
    # A changed subscription shows its new options.
    assert v5.subscribe("plant/+/state", qos=0) == [0]
    status, _, body = request(b.web, "/api/v1/subscriptions?client_id=" + v5.client_id, headers=auth)
    changed = next(s for s in body if s["filter"] == "plant/+/state")
    assert (changed["qos"], changed["no_local"], changed["subscription_identifier"]) == (0, False, None)
    v5.close()
    v3.close()
    b.assert_alive()


def test_state_of_recovered_retained_messages_has_the_recovery_time(broker_factory, tmp_path):
    import time
    data = str(tmp_path / "data")
    b = start_basic_broker(broker_factory, tmp_path, persistence={"path": data})
    c = Client(b, version=5).connect()
    c.publish("kept/value", b"1", qos=1, retain=True)
    c.disconnect()
    published = int(time.time() * 1000)
    b.stop()
    b.assert_clean_exit()
    b = start_basic_broker(broker_factory, tmp_path, persistence={"path": data})
    status, _, body = request(b.web, "/api/v1/state?filter=kept/%23", headers={"Authorization": basic("ops", "ops-pw-1")})
    assert status == 200 and [m["topic"] for m in body["messages"]] == ["kept/value"]
    assert body["messages"][0]["received_ms"] >= published


# ---------------------------------------------------------------- the state API

def state_pages(target, filt, limit, headers=None, context=None, between=None):
    """Every page of GET /api/v1/state for `filt` (percent-encoded), following
    next_cursor; `between(i)` runs after page i."""
    import urllib.parse
    pages, cursor = [], None
    while True:
        path = "/api/v1/state?filter=%s&limit=%d" % (urllib.parse.quote(filt, safe=""), limit)
        if cursor is not None:
            path += "&cursor=" + cursor
        status, _, body = request(target, path, headers=headers, context=context)
        assert status == 200, body
        pages.append(body["messages"])
        assert len(body["messages"]) <= limit
        if between:
            between(len(pages))
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor), cursor


def level_key(topic):
    return topic.split("/")


def test_state_follows_the_subscribe_grants(broker_factory, tmp_path):
    """With roles configured the state answers by subscribe grants: an analyst
    granted the model's `oee` class sees only OEE topics, a viewer with a
    subtree minus a denied machine sees the rest; a filter they may not
    subscribe to gets 403; no admin grant is needed, and admin endpoints still
    need one. A client certificate (not an admin identity) reads by its grants too."""
    pki = Pki(tmp_path / "pki")
    ana_cert, ana_key = pki.ca.issue("ana-cert", "ana", client=True)
    b = start_http_broker(
        broker_factory,
        namespace={"model": str(REPO / "deploy/namespace/acme.yaml")},
        auth={"allow_anonymous": True, "password_file": str(make_passwd(
            tmp_path, {"ana": "ana-pw-2", "vic": "vic-pw-3"}))},
        access=[],
        roles={
            "analyst": [{"allow": "subscribe", "class": "oee"}],
            "viewer": [{"allow": "subscribe", "on": "acme/dresden/#"},
                       {"deny": "subscribe", "on": "acme/dresden/press-shop/line-2/press-7/#"}],
            "feeder": [{"allow": "publish", "on": "#"}],
        },
        users={"ana": ["analyst"], "vic": ["viewer"], "anonymous": ["feeder"]},
        more_listeners=[{"name": "webs", "protocol": "https", "bind": "127.0.0.1:0",
                         "tls": pki.tls_config(require_client_cert=False), "admin_identities": ["ops-console"]}])
    ts = "2026-01-01T00:00:00Z"
    oee = json.dumps({"availability": 0.9, "performance": 0.8, "quality": 0.99, "oee": 0.71, "ts": ts}).encode()
    state = json.dumps({"state": "running", "ts": ts}).encode()
    retained = {
        "acme/dresden/press-shop/line-2/press-7/state": state,
        "acme/dresden/press-shop/line-2/press-7/oee": oee,
        "acme/dresden/press-shop/line-2/oee": oee,
        "acme/dresden/press-shop/line-1/press-3/state": state,
        "acme/leipzig/assembly/line-1/oee": oee,
    }
    feeder = Client(b, version=5).connect()
    for topic, payload in retained.items():
        feeder.publish(topic, payload, qos=1, retain=True)  # acknowledged once stored
    ana = {"Authorization": basic("ana", "ana-pw-2")}
    vic = {"Authorization": basic("vic", "vic-pw-3")}

    got = [m["topic"] for page in state_pages(b.web, "acme/#", 1000, headers=ana) for m in page]
    assert got == ["acme/dresden/press-shop/line-2/oee", "acme/dresden/press-shop/line-2/press-7/oee",
                   "acme/leipzig/assembly/line-1/oee"]
    got = [m["topic"] for page in state_pages(b.web, "acme/#", 1000, headers=vic) for m in page]
    assert got == ["acme/dresden/press-shop/line-1/press-3/state", "acme/dresden/press-shop/line-2/oee"]

    status, _, body = request(b.web, "/api/v1/state?filter=acme/dresden/press-shop/line-2/press-7/state", headers=ana)
    assert status == 403 and body["filter"] == "acme/dresden/press-shop/line-2/press-7/state"
    assert "may not subscribe" in body["error"] and body["identity"] == "ana"
    assert request(b.web, "/api/v1/state?filter=acme/leipzig/%23", headers=vic)[0] == 403
    assert request(b.web, "/api/v1/state?filter=acme/dresden/press-shop/line-2/press-7/%23", headers=vic)[0] == 403
    # the other endpoints still need the admin grant
    status, _, body = request(b.web, "/api/v1/sessions", headers=ana)
    assert status == 403 and "admin grant" in body["error"]
    # no credentials: the anonymous identity, admitted here, has no subscribe grant
    assert request(b.web, "/api/v1/state?filter=acme/%23")[0] == 403

    host, port = b.listeners["webs"]
    webs = types.SimpleNamespace(host=host, port=port)
    by_cert = pki.client_context(ana_cert, ana_key)
    got = [m["topic"] for page in state_pages(webs, "acme/#", 2, context=by_cert) for m in page]
    assert got == ["acme/dresden/press-shop/line-2/oee", "acme/dresden/press-shop/line-2/press-7/oee",
                   "acme/leipzig/assembly/line-1/oee"]
    assert request(webs, "/api/v1/sessions", context=by_cert)[0] == 403
    feeder.disconnect()
    b.assert_alive()


def test_state_pages_return_each_message_once_while_others_are_published(broker_factory, tmp_path):
    b = start_basic_broker(broker_factory, tmp_path)
    auth = {"Authorization": basic("ops", "ops-pw-1")}
    pub = Client(b, version=5).connect()
    topics = ["site/a%d/line-%d/m%d" % (a, l, m) for a in range(3) for l in range(4) for m in range(12)]
    topics += ["site/a1", "site/a1/", "site/a1-b/x", "site//x", "elsewhere/x"]
    for t in topics:
        pub.publish(t, t.encode(), qos=1, retain=True)
    expected = sorted((t for t in topics if t.startswith("site/")), key=level_key)

    added = []

    def publish_more(i):
        # new topics before and after the cursor, and a change to one already returned
        for t in ("site/a0/new-%d" % i, "site/a2/line-9/new-%d" % i):
            pub.publish(t, b"new", qos=1, retain=True)
            added.append(t)
        pub.publish(expected[0], b"changed-%d" % i, qos=1, retain=True)

    pages = state_pages(b.web, "site/#", 25, headers=auth, between=publish_more)
    assert len(pages) >= len(expected) // 25
    got = [m["topic"] for page in pages for m in page]
    assert got == sorted(got, key=level_key) and len(got) == len(set(got))
    assert [t for t in got if t not in added] == expected
    assert set(got) - set(expected) <= set(added)
    for page in pages:
        for m in page:
            if m["topic"] not in added and m["topic"] != expected[0]:
                assert m["payload"] == m["topic"]

    # the largest limit is allowed, and returns everything at once
    status, _, body = request(b.web, "/api/v1/state?filter=site/%23&limit=10000", headers=auth)
    assert status == 200 and body["next_cursor"] is None
    assert len(body["messages"]) == len(expected) + len(added)

    # bad limits and cursors: 400 with a clear error
    for query in ("limit=0", "limit=10001", "limit=abc", "limit=-1", "limit=", "limit=1e3", "limit=99999999999999999999",
                  "cursor=", "cursor=%21%21", "cursor=abc", "cursor=eHNpdGUvYQ", "cursor=dHNpdGUvIw",
                  "cursor=" + "A" * 5000):
        status, _, body = request(b.web, "/api/v1/state?filter=site/%23&" + query, headers=auth)
        assert status == 400 and ("limit" in body["error"] or "cursor" in body["error"]), (query, status, body)
    pub.disconnect()
    b.assert_alive()


def test_state_binary_payload_and_properties(broker_factory, tmp_path):
    import base64
    b = start_basic_broker(broker_factory, tmp_path)
    auth = {"Authorization": basic("ops", "ops-pw-1")}
    pub = Client(b, version=5).connect()
    raw = bytes(range(256))
    pub.publish("bin/blob", raw, qos=1, retain=True,
                properties=props(PacketTypes.PUBLISH, ContentType="application/octet-stream",
                                 PayloadFormatIndicator=0, UserProperty=[("line", "2"), ("line", "3")],
                                 CorrelationData=b"\x00\x01"))
    pub.publish("bin/nul", b"a\x00b", qos=1, retain=True)
    pub.publish("bin/text", "Grüße".encode(), qos=0, retain=True,
                properties=props(PacketTypes.PUBLISH, PayloadFormatIndicator=1))
    wait_until(lambda: len(request(b.web, "/api/v1/state?filter=bin/%23", headers=auth)[2]["messages"]) == 3)
    status, _, body = request(b.web, "/api/v1/state?filter=bin/%23", headers=auth)
    m = {x["topic"]: x for x in body["messages"]}
    assert m["bin/blob"]["payload_encoding"] == "base64"
    assert base64.b64decode(m["bin/blob"]["payload"]) == raw
    assert m["bin/blob"]["properties"] == {
        "content_type": "application/octet-stream", "payload_format_indicator": 0,
        "user_properties": [["line", "2"], ["line", "3"]], "correlation_data": "AAE="}
    assert (m["bin/nul"]["payload_encoding"], base64.b64decode(m["bin/nul"]["payload"])) == ("base64", b"a\x00b")
    assert (m["bin/text"]["payload_encoding"], m["bin/text"]["payload"]) == ("utf-8", "Grüße")
    assert m["bin/text"]["properties"] == {"payload_format_indicator": 1}
    assert m["bin/text"]["qos"] == 0 and "properties" not in m["bin/nul"]
    pub.disconnect()


def test_admin_actions_and_refusals_are_audited(broker_factory, tmp_path):
    log = tmp_path / "audit.log"
    b = start_basic_broker(broker_factory, tmp_path, audit={"file": str(log)})
    ops = {"Authorization": basic("ops", "ops-pw-1")}
    ana = {"Authorization": basic("ana", "ana-pw-2")}
    c = Client(b, client_id=uid("kicked"), version=5).connect()
    assert request(b.web, "/api/v1/clients/%s/disconnect" % c.client_id, "POST", headers=ops)[0] == 202
    assert c.disconnected.wait(TIMEOUT)
    c.close()
    assert request(b.web, "/api/v1/reload", "POST", headers=ops)[0] == 200
    assert request(b.web, "/api/v1/reload", "POST", headers=ana)[0] == 403
    assert request(b.web, "/api/v1/state?filter=other/%23", headers=ana)[0] == 403

    def lines():
        if not log.exists():
            return []
        return [json.loads(l) for l in log.read_text().splitlines() if l.strip()]

    def find(action):
        return [l for l in lines() if l["action"] == action]

    wait_until(lambda: find("admin-disconnect") and find("admin-reload") and find("admin-state")
               and [l for l in find("admin-login") if l["outcome"] == "refused"], what="audit lines")
    kick, = find("admin-disconnect")
    assert (kick["identity"], kick["outcome"], kick["client_id"]) == ("ops", "allowed", c.client_id)
    assert kick["roles"] == ["admin"] and kick["address"] == "127.0.0.1"
    reload, = find("admin-reload")
    assert (reload["identity"], reload["outcome"], reload["topic"]) == ("ops", "allowed", "/api/v1/reload")
    refused, = [l for l in find("admin-login") if l["outcome"] == "refused"]
    assert (refused["identity"], refused["topic"], refused["reason"]) == ("ana", "/api/v1/reload", "no admin grant")
    state, = find("admin-state")
    assert (state["identity"], state["outcome"], state["topic"]) == ("ana", "refused", "other/#")
