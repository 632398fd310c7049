"""Live configuration (issue "Operator experience"): SIGHUP and POST /api/v1/reload
read the config file again and put every section that can change live in force
without dropping a client; what needs a restart is reported and left as it runs; a
config that does not load or fit changes nothing.

Each test starts a broker with an MQTT and an HTTP listener, rewrites its config
file and reloads it through the admin API (its answer comes once the reload is
done) or SIGHUP (its log lines are polled). Remote brokers, proxies and the OPC UA
peer are the ones of test_bridges.py and test_opcua.py; every process is stopped by
its PID in teardown.
"""

import json
import signal

import pytest

import mqtt_raw
from conftest import IS_MOSQUITTO, PacketTypes, merge, props, to_yaml, uid, wait_retained, wait_until
from test_bridges import assert_in_order, bridge_cfg, proxies, receive_all  # noqa: F401 (proxies: a fixture)
from test_http import ADMIN_PASSWORDS, basic, make_passwd, request
from test_opcua import PREFIX, peers, source, trusted_pki, values  # noqa: F401 (peers: a fixture)

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="Strata's config")

OPS = {"Authorization": basic("ops", ADMIN_PASSWORDS["ops"])}
# Roles so that the admin API has a caller (ops); everyone else, the bridges' and
# OPC UA sources' identities included, may do everything.
ROLES = {
    "roles": {
        "admin": [{"allow": "admin", "on": "#"}],
        "anyone": [{"allow": "subscribe", "on": "#"}, {"allow": "publish", "on": "#"},
                   {"allow": "subscribe", "on": "$SYS/#"}],
    },
    "users": {"ops": ["admin"], "anonymous": ["anyone"], "up": ["anyone"], "plc1": ["anyone"]},
}


@pytest.fixture
def start(broker_factory, tmp_path):
    passwd = make_passwd(tmp_path)

    def make(**over):
        over.setdefault("sys", {"interval": 1})
        auth = {"allow_anonymous": True, "password_file": str(passwd)}
        auth.update(over.pop("auth", {}))
        b = broker_factory(listeners=[{"name": "mqtt", "protocol": "mqtt", "bind": "127.0.0.1:0"},
                                      {"name": "web", "protocol": "http", "bind": "127.0.0.1:0"}],
                           auth=auth, **merge(ROLES, over))
        host, port = b.listeners["web"]
        b.web = type("web", (), {"host": host, "port": port})
        return b

    return make


def rewrite(b, **over):
    """The broker's config file with `over` merged in (a list replaces a list)."""
    b.config = merge(b.config, over)
    b.config_path.write_text(to_yaml(b.config))


def reload(b, **over):
    """Rewrites the config and reloads it over the admin API: (status, answer)."""
    rewrite(b, **over)
    status, _, body = request(b.web, "/api/v1/reload", "POST", headers=OPS)
    return status, body


def quiet(c, seconds):
    """Whether no message reached `c` within `seconds` (one that did is consumed)."""
    try:
        c.get(timeout=seconds)
    except AssertionError:
        return True
    return False


def assert_still_receiving(pub, sub, topic):
    """`sub`, connected before the reload, is still connected and gets what `pub` sends."""
    payload = uid("still")
    pub.publish(topic, payload, qos=1)
    sub.until(payload.encode())


# ------------------------------------------------------------------ limits

def test_limits_apply_to_new_connections_and_queues_to_live_sessions(start, clients, raw_clients):
    b = start()
    sub = clients(b)
    sub.subscribe("plant/#", qos=1)
    pub = clients(b)
    before = raw_clients(b, mqtt_raw.V5)
    assert before.connect_ok(uid("before")).props.get("maximum_packet_size") == 1024 ** 2
    assert before.subscribe("s/1").reasons == [0]
    # An offline persistent session: its queue limit changes live.
    offline_id = uid("offline")
    offline = clients(b, client_id=offline_id, clean=False,
                      connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=600))
    offline.subscribe("queue/#", qos=1)
    offline.disconnect()

    status, r = reload(b, limits={"max_packet_size": 4096, "max_queued_messages": 3,
                                  "max_subscriptions_per_client": 2})
    assert status == 200 and r["reloaded"], r
    assert "max_packet_size 1048576 -> 4096" in r["changed"]["limits"]
    assert "max_queued_messages 1000 -> 3" in r["changed"]["limits"]
    assert r["needs_restart"] == [] and r["failed"] == []

    # A new connection is told the new maximum; the one connected before keeps its own.
    late = raw_clients(b, mqtt_raw.V5)
    assert late.connect_ok(uid("late")).props.get("maximum_packet_size") == 4096
    big = b"x" * 10000
    assert before.publish_acked("plant/big", big).reason == 0
    assert sub.until(big) == []
    # Subscriptions: at most 2 from the next SUBSCRIBE on, for clients connected before too.
    assert before.subscribe([("s/2", 0), ("s/3", 0)]).reasons == [0, 0x97]
    # The offline session's queue holds 3 now.
    for i in range(10):
        pub.publish("queue/x", "q%d" % i, qos=1)
    back = clients(b, client_id=offline_id, clean=False,
                   connect_props=props(PacketTypes.CONNECT, SessionExpiryInterval=600))
    got = back.get_n(3)
    assert [m.payload for m in got] == [b"q0", b"q1", b"q2"]
    back.expect_none(0.3)
    assert_still_receiving(pub, sub, "plant/after")


# ------------------------------------------------------------------ access, auth.limits

def test_access_rules_apply_to_connected_clients(start, clients, raw_clients):
    b = start()
    sub = clients(b)
    sub.subscribe("plant/#", qos=1)
    pub = raw_clients(b, mqtt_raw.V5)
    pub.connect_ok(uid("pub"))
    assert pub.publish_acked("plant/secret", b"before").reason == 0
    sub.until(b"before")

    status, r = reload(b, access=[{"deny": "publish", "on": "plant/secret"}])
    assert status == 200 and r["changed"]["access"] == "1 rules -> 1 rules", r

    assert pub.publish_acked("plant/secret", b"after", pid=2).reason == 0x87  # not authorized
    assert pub.publish_acked("plant/open", b"open", pid=3).reason == 0
    assert sub.until(b"open") == []  # "after" never came


def test_identity_rates_apply_to_connected_clients(start, clients, raw_clients):
    b = start(auth={"limits": {"publish_rate": 10000}})
    sub = clients(b)
    sub.subscribe("plant/#", qos=1)
    pub = raw_clients(b, mqtt_raw.V5)
    pub.connect_ok(uid("pub"))
    assert [pub.publish_acked("plant/fast", b"m", pid=i + 1).reason for i in range(20)] == [0] * 20

    status, r = reload(b, auth={"limits": {"publish_rate": 2}})
    assert status == 200 and r["changed"]["auth.limits"] == "publish_rate 10000 -> 2", r
    codes = [pub.publish_acked("plant/slow", b"s", pid=i + 1).reason for i in range(20)]
    assert 0x97 in codes, codes  # quota exceeded: over the identity's new rate
    wait_until(lambda: pub.publish_acked("plant/slow", b"later", pid=99).reason == 0, interval=0.6,
               what="the rate's tokens to come back")
    sub.until(b"later")


# ------------------------------------------------------------------ alerts, audit

def test_alerts_settings_apply_live(start, clients):
    b = start(alerts={"reconnect_loop": {"count": 1000, "window_s": 60}})
    sub = clients(b)
    sub.subscribe("$SYS/broker/alerts/#")
    pub = clients(b)
    watch = clients(b)
    watch.subscribe("plant/#", qos=1)

    status, r = reload(b, alerts={"reconnect_loop": {"count": 3, "window_s": 60}})
    assert status == 200 and r["changed"]["alerts"] == "reconnect_loop.count 1000 -> 3", r
    flappy = uid("flappy")
    for _ in range(3):
        c = clients(b, client_id=flappy)
        c.disconnect()
    m = sub.get(timeout=10)
    alert = json.loads(m.payload)
    assert m.topic == "$SYS/broker/alerts/reconnect_loop/" + flappy and alert["active"], alert
    assert_still_receiving(pub, watch, "plant/after")

    # Disabled: the alerts raised are cleared.
    status, r = reload(b, alerts={"enabled": False})
    assert status == 200 and r["changed"]["alerts"] == "enabled true -> false", r
    cleared = json.loads(sub.get(timeout=10).payload)
    assert cleared["active"] is False


def test_audit_starts_with_a_reload(start, clients, tmp_path):
    b = start()
    sub = clients(b)
    sub.subscribe("audit/#")
    audit_file = tmp_path / "audit.log"
    status, r = reload(b, audit={"file": str(audit_file), "topic": "audit/lines"})
    assert status == 200, r
    assert r["changed"]["audit"] == "file (none) -> %s, topic (none) -> audit/lines" % audit_file
    # The reload itself is audited under the new settings, and so is a login.
    clients(b, client_id="after-reload")
    def lines():
        return [json.loads(x) for x in audit_file.read_text().splitlines()] if audit_file.exists() else []

    wait_until(lambda: any(l.get("client_id") == "after-reload" for l in lines()), what="the login's audit line")
    lines = lines()
    assert any(l["action"] == "admin-reload" and l["identity"] == "ops" for l in lines), lines
    published = json.loads(sub.get().payload)
    assert published["action"] in ("admin-reload", "login")


# ------------------------------------------------------------------ bridges

def publish_backlog(pub, n, prefix):
    expected = ["%s%03d" % (prefix, i) for i in range(n)]
    for p in expected:
        pub.publish("acme/dresden/press-7/count", p, qos=1)
    return expected


def test_changed_bridge_reconnects_with_its_backlog(broker_factory, start, clients, proxies):
    enterprise = broker_factory()
    up = clients(enterprise)
    up.subscribe("acme/dresden/#", qos=1)
    proxy = proxies(enterprise.port)
    proxy.cut()  # the remote is unreachable
    plant = start(bridges=[bridge_cfg(proxy.port)])
    local = clients(plant)
    local.subscribe("acme/#", qos=1)
    pub = clients(plant)
    expected = publish_backlog(pub, 50, "b")
    wait_retained(clients, plant, "$SYS/broker/bridges/up/backlog/messages", lambda v: int(v) >= 50, timeout=10)

    # The bridge now goes straight to the enterprise: same name, same outbox.
    status, r = reload(plant, bridges=[bridge_cfg(enterprise.port)])
    assert status == 200 and r["changed"]["bridges"] == "changed up", r
    assert_in_order(receive_all(up, expected), expected)
    wait_retained(clients, plant, "$SYS/broker/bridges/up/backlog/messages", lambda v: v == "0", timeout=10)
    assert_still_receiving(pub, local, "acme/after")


def test_bridge_added_removed_and_added_again_keeps_its_backlog(broker_factory, start, clients, proxies):
    enterprise = broker_factory()
    up = clients(enterprise)
    up.subscribe("acme/dresden/#", qos=1)
    proxy = proxies(enterprise.port)
    proxy.cut()
    plant = start()
    local = clients(plant)
    local.subscribe("acme/#", qos=1)
    pub = clients(plant)

    status, r = reload(plant, bridges=[bridge_cfg(proxy.port)])
    assert status == 200 and r["changed"]["bridges"] == "added up", r
    expected = publish_backlog(pub, 20, "a")
    wait_retained(clients, plant, "$SYS/broker/bridges/up/backlog/messages", lambda v: int(v) >= 20, timeout=10)

    status, r = reload(plant, bridges=[])
    assert status == 200 and r["changed"]["bridges"] == "removed up", r
    assert "wait for a bridge of this name" in plant.stderr_text()
    # Removed: what is published now is not queued for it.
    pub.publish("acme/dresden/press-7/count", "while-removed", qos=1)

    status, r = reload(plant, bridges=[bridge_cfg(enterprise.port)])
    assert status == 200 and r["changed"]["bridges"] == "added up", r
    got = receive_all(up, expected)
    assert_in_order(got, expected)
    assert "while-removed" not in got
    assert_still_receiving(pub, local, "acme/after")


# ------------------------------------------------------------------ OPC UA

def test_opcua_source_added_and_removed(start, clients, peers, tmp_path):
    peer = peers()
    b = start()
    sub = clients(b)
    sub.subscribe(PREFIX + "/telemetry/#")
    status, r = reload(b, opcua=[source(peer, trusted_pki(tmp_path, peer), writes=[])])
    assert status == 200 and r["changed"]["opcua"] == "added plc1", r
    assert values(sub, PREFIX + "/telemetry/count", 2)
    wait_retained(clients, b, "$SYS/broker/opcua/plc1/connected", lambda v: v == "1", timeout=30)

    status, r = reload(b, opcua=[])
    assert status == 200 and r["changed"]["opcua"] == "removed plc1", r
    # Once the values in flight when it stopped are in (a quiet half second;
    # it published every 200 ms), none follows.
    wait_until(lambda: quiet(sub, 0.5), timeout=10, what="the values in flight")
    sub.expect_none(1.5)
    assert sub.connected.is_set()


# ------------------------------------------------------------------ restart-only keys, broken configs

def test_listener_change_needs_restart_and_is_left_as_it_runs(start, clients):
    b = start()
    sub = clients(b)
    sub.subscribe("plant/#", qos=1)
    pub = clients(b)
    listeners = [{"name": "mqtt", "protocol": "mqtt", "bind": "127.0.0.1:%d" % b.port},
                 {"name": "web", "protocol": "http", "bind": "127.0.0.1:0"}]
    rewrite(b, listeners=listeners, threads=3, limits={"max_connections": 500})
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload: limits: max_connections 100000 -> 500" in b.stderr_text(), what="the reload log")
    text = b.stderr_text()
    assert "reload: needs restart: listeners[0].bind (left as it was)" in text
    assert "reload: needs restart: threads (left as it was)" in text
    # The listener runs as it was: the same port, and new clients still connect.
    assert_still_receiving(pub, sub, "plant/x")
    clients(b)

    status, _, r = request(b.web, "/api/v1/reload", "POST", headers=OPS)
    assert status == 200, r
    assert r["needs_restart"] == ["listeners[0].bind", "threads"], r
    assert "limits" not in r["changed"]  # in force since the SIGHUP


@pytest.mark.parametrize("broken", ["syntax", "does not fit"])
def test_a_broken_config_changes_nothing(start, clients, broken):
    b = start()
    sub = clients(b)
    sub.subscribe("plant/#", qos=1)
    pub = clients(b)
    if broken == "syntax":
        b.config_path.write_text(to_yaml(merge(b.config, {"limits": {"max_subscriptions_per_client": 1}}))
                                 + "limits: {max_inflight: many}\n")
        where = "strata.yaml:"
    else:
        # Parses, but a bridge rule names a class and there is no model.
        rewrite(b, limits={"max_subscriptions_per_client": 1},
                bridges=[bridge_cfg(1, forward=[{"class": "telemetry", "local": "a/#", "remote": "a/#"}])])
        where = "class: names the namespace model's classes"
    status, _, r = request(b.web, "/api/v1/reload", "POST", headers=OPS)
    assert status == 422 and not r["reloaded"], r
    assert where in r["error"] and "strata.yaml" in r["error"], r
    assert r["changed"] == {} and r["needs_restart"] == []
    assert "the config is not reloaded, nothing changed" in b.stderr_text()
    # Nothing changed: more than one subscription per client still works.
    sub.subscribe("more/1")
    sub.subscribe("more/2")
    assert_still_receiving(pub, sub, "plant/x")


# ------------------------------------------------------------------ sources through the admin API

def put(b, path, entry):
    status, _, body = request(b.web, path, "PUT", headers=dict(OPS, **{"Content-Type": "application/json"}),
                              body=json.dumps(entry))
    return status, body


def test_admin_api_adds_changes_and_removes_a_bridge_kept_in_the_sources_file(broker_factory, start, clients, tmp_path):
    enterprise = broker_factory()
    up = clients(enterprise)
    up.subscribe("acme/dresden/#", qos=1)
    sources = tmp_path / "sources.json"
    plant = start(sources_file=str(sources))
    pub = clients(plant)

    status, r = put(plant, "/api/v1/bridges/up", bridge_cfg(enterprise.port))
    assert status == 200 and r["changed"]["bridges"] == "added up", r
    assert json.loads(sources.read_text())["bridges"][0]["name"] == "up"
    pub.publish("acme/dresden/press-7/count", "via-api", qos=1)
    up.until(b"via-api")
    status, _, got = request(plant.web, "/api/v1/bridges/up", headers=OPS)
    assert status == 200 and got["config"]["remote"] == "mqtt://127.0.0.1:%d" % enterprise.port, got
    assert got["kept_by"].startswith("admin API")

    # A change the config refuses changes nothing, the file included.
    kept = sources.read_text()
    status, r = put(plant, "/api/v1/bridges/up", bridge_cfg(enterprise.port, forward=[{"local": "a/#/b", "remote": "a/#"}]))
    assert status == 422 and "sources.json" in r["error"] and "forward[0]: 'a/#/b' is not a valid topic filter" in r["error"], r
    assert sources.read_text() == kept
    # The one in the main config cannot be changed here.
    status, r = put(plant, "/api/v1/bridges/other", bridge_cfg(enterprise.port, name="other"))
    assert status == 200, r
    b2 = start(sources_file=str(tmp_path / "none-yet.json"), bridges=[bridge_cfg(enterprise.port, name="fixed")])
    status, _, r = request(b2.web, "/api/v1/bridges/fixed", "DELETE", headers=OPS)
    assert status == 409 and "strata.yaml" in r["error"], r

    # Kept across a restart: the plant comes back with both bridges.
    plant.stop()
    again = start(sources_file=str(sources), persistence={"path": plant.config["persistence"]["path"]})
    status, _, listed = request(again.web, "/api/v1/bridges", headers=OPS)
    assert sorted(b["name"] for b in listed) == ["other", "up"], listed
    status, _, r = request(again.web, "/api/v1/bridges/other", "DELETE", headers=OPS)
    assert status == 200 and r["changed"]["bridges"] == "removed other", r
    assert [b["name"] for b in json.loads(sources.read_text())["bridges"]] == ["up"]


def test_admin_api_adds_and_removes_an_opcua_source(start, clients, peers, tmp_path):
    peer = peers()
    sources = tmp_path / "sources.json"
    b = start(sources_file=str(sources), audit={"file": str(tmp_path / "audit.log")})
    sub = clients(b)
    sub.subscribe(PREFIX + "/telemetry/#")
    status, r = put(b, "/api/v1/opcua/plc1", source(peer, trusted_pki(tmp_path, peer), writes=[]))
    assert status == 200 and r["changed"]["opcua"] == "added plc1", r
    assert values(sub, PREFIX + "/telemetry/count", 2)
    status, _, listed = request(b.web, "/api/v1/opcua", headers=OPS)
    assert [o["name"] for o in listed] == ["plc1"], listed
    status, _, r = request(b.web, "/api/v1/opcua/plc1", "DELETE", headers=OPS)
    assert status == 200 and r["changed"]["opcua"] == "removed plc1", r

    def changes():
        lines = [json.loads(x) for x in (tmp_path / "audit.log").read_text().splitlines()]
        return [(a["action"], a["outcome"], a["reason"]) for a in lines if a["action"] == "admin-opcua"]

    wait_until(lambda: len(changes()) == 2, what="the audit lines")
    assert changes() == [("admin-opcua", "allowed", "added"), ("admin-opcua", "allowed", "removed")]
