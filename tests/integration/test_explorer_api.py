"""The explorer's side in the broker (broker/ops/explorer.hpp): the page at /,
logins with tokens, /api/v1/me, /api/v1/topic, /api/v1/alerts, the state's
class and fields, and the CONNECT property that filters wide subscriptions.
The page itself is driven in a browser by test_explorer.py."""
import json
import signal
import types
import urllib.parse

import pytest

from certs import Pki
from conftest import IS_MOSQUITTO, Client, PacketTypes, props, wait_until
from test_http import REPO, basic, get, make_passwd, request, start_http_broker, state_pages

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="Strata's explorer")

TS = "2026-01-01T00:00:00Z"
PASSWORDS = {"ana": "ana-pw-2", "olga": "olga-pw-3", "nobody": "nobody-pw-4"}
ROLES = {
    "analyst": [{"allow": "subscribe", "class": "oee"}],
    "operator": [{"allow": "subscribe", "where": {"site": "dresden", "area": "press-shop", "line": "line-2"}},
                 {"allow": "command", "where": {"site": "dresden", "area": "press-shop", "line": "line-2"}}],
    "feeder": [{"allow": "publish", "on": "#"}],
}
USERS = {"ana": ["analyst"], "olga": ["operator"], "anonymous": ["feeder"]}
PRESS = "acme/dresden/press-shop/line-2/press-7"


def explorer_broker(broker_factory, tmp_path, **over):
    over.setdefault("namespace", {"model": str(REPO / "deploy/namespace/acme.yaml")})
    over.setdefault("roles", ROLES)
    over.setdefault("users", USERS)
    return start_http_broker(
        broker_factory,
        auth={"allow_anonymous": True, "password_file": str(make_passwd(tmp_path, PASSWORDS))},
        access=[], **over)


def login(b, user):
    status, _, body = request(b.web, "/api/v1/login", "POST", headers={"Authorization": basic(user, PASSWORDS[user])})
    assert status == 200, body
    return {"Authorization": "Bearer " + body["token"]}


def topic_info(b, topic, headers):
    return request(b.web, "/api/v1/topic?topic=" + urllib.parse.quote(topic, safe=""), headers=headers)


def feed(b, retained):
    c = Client(b, version=5).connect()
    for topic, payload in retained.items():
        c.publish(topic, payload if isinstance(payload, bytes) else json.dumps(payload).encode(), qos=1, retain=True)
    c.disconnect()


def test_the_page_is_served_with_a_strict_policy(broker_factory, tmp_path):
    b = start_http_broker(broker_factory)
    status, ctype, body = get(b.web, "/")
    assert status == 200 and ctype == "text/html; charset=utf-8" and b"<html" in body.lower()
    status, r, _ = request(b.web, "/")
    csp = r.getheader("Content-Security-Policy")
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.getheader("X-Content-Type-Options") == "nosniff"
    assert get(b.web, "/web/index.html")[0] == 200
    for bad in ("/web/nothing.js", "/web/../CMakeLists.txt", "/web/%2e%2e%2fCMakeLists.txt", "/web/.hidden",
                "/web/", "/web/a/b.js"):
        status, ctype, _ = get(b.web, bad)
        assert (status, ctype) == (404, "application/json"), bad
    assert get(b.web, "/", method="POST")[0] == 405
    b.assert_alive()


def test_the_built_in_page_is_broker_web_as_built(broker_factory, tmp_path):
    """Every file of broker/web is built into the binary as it is in the tree."""
    b = start_http_broker(broker_factory)
    files = sorted(p for p in (REPO / "broker/web").iterdir() if p.is_file())
    assert any(p.name == "index.html" for p in files) and any(p.suffix == ".js" for p in files)
    for p in files:
        status, _, body = get(b.web, "/web/" + p.name)
        assert (status, body) == (200, p.read_bytes()), p.name
    assert get(b.web, "/")[2] == (REPO / "broker/web/index.html").read_bytes()


def test_a_page_directory_replaces_the_built_in_page(broker_factory, tmp_path):
    root = tmp_path / "page"
    root.mkdir()
    (root / "index.html").write_text("<html>our own page</html>")
    (root / "app.js").write_text("console.log(1)")
    b = start_http_broker(broker_factory, web={"root": str(root)})
    assert get(b.web, "/")[2] == b"<html>our own page</html>"
    status, ctype, body = get(b.web, "/web/app.js")
    assert (status, ctype, body) == (200, "text/javascript; charset=utf-8", b"console.log(1)")
    assert get(b.web, "/web/missing.css")[0] == 404


def test_the_explorer_can_be_switched_off(broker_factory, tmp_path):
    b = start_http_broker(broker_factory, web={"enabled": False})
    assert get(b.web, "/")[0] == 404
    assert get(b.web, "/api/v1/me")[0] == 404
    assert get(b.web, "/healthz")[0] == 200


def test_login_me_and_logout(broker_factory, tmp_path):
    b = explorer_broker(broker_factory, tmp_path)
    olga = login(b, "olga")
    status, _, me = request(b.web, "/api/v1/me", headers=olga)
    assert status == 200
    assert (me["identity"], me["login"], me["roles"], me["roles_active"], me["may_admin"]) == \
        ("olga", "token", ["operator"], True, False)
    assert me["model"]["levels"] == ["enterprise", "site", "area", "line", "cell", "equipment"]
    assert me["model"]["classes"]["cmd"]["command"] is True
    assert me["model"]["classes"]["telemetry"]["expected_period_s"] == 10
    assert me["model"]["dead_letter"] == "uns/quarantine" and me["model"]["name"] == "acme.yaml"

    # without credentials: the anonymous identity this broker admits
    status, _, me = request(b.web, "/api/v1/me")
    assert status == 200 and (me["identity"], me["login"], me["roles"]) == ("anonymous", "anonymous", ["feeder"])

    # a wrong password: 401 with a challenge that opens no browser dialog
    status, r, body = request(b.web, "/api/v1/login", "POST", headers={"Authorization": basic("olga", "wrong")})
    assert status == 401 and "bad user name or password" in body["error"]
    assert r.getheader("WWW-Authenticate").startswith("Bearer")
    assert request(b.web, "/api/v1/login", headers={"Authorization": basic("olga", PASSWORDS["olga"])})[0] == 405
    assert request(b.web, "/api/v1/login", "POST")[0] == 400  # anonymous has nothing to log in with

    for token in ("Bearer nonsense", "Bearer ", "Bearer " + "A" * 5000):
        status, r, body = request(b.web, "/api/v1/me", headers={"Authorization": token})
        assert status == 401 and "error" in body, (token[:20], status)
    assert request(b.web, "/api/v1/logout", "POST", headers=olga)[0] == 200
    status, _, body = request(b.web, "/api/v1/me", headers=olga)
    assert status == 401 and "log in again" in body["error"]
    status, r, _ = request(b.web, "/api/v1/bridges", headers=olga)  # an admin endpoint: the same challenge
    assert status == 401 and r.getheader("WWW-Authenticate").startswith("Bearer")
    # the admin endpoints take a token too, and still need the admin grant
    olga = login(b, "olga")
    status, _, body = request(b.web, "/api/v1/bridges", headers=olga)
    assert status == 403 and "admin grant" in body["error"]
    b.assert_alive()


def test_a_client_certificate_is_the_identity_on_https(broker_factory, tmp_path):
    """On https a verified client certificate logs in without a password: /me
    names it, the topic detail follows its grants, and a login gives it a token."""
    pki = Pki(tmp_path / "pki")
    olga_cert, olga_key = pki.ca.issue("olga-cert", "olga", client=True)
    b = explorer_broker(broker_factory, tmp_path, more_listeners=[
        {"name": "webs", "protocol": "https", "bind": "127.0.0.1:0", "tls": pki.tls_config(require_client_cert=False)}])
    feed(b, {PRESS + "/state": {"state": "running", "ts": TS}})
    host, port = b.listeners["webs"]
    webs = types.SimpleNamespace(host=host, port=port)
    by_cert = pki.client_context(olga_cert, olga_key)
    status, _, me = request(webs, "/api/v1/me", context=by_cert)
    assert status == 200 and (me["identity"], me["login"], me["roles"]) == ("olga", "certificate", ["operator"])
    status, _, t = request(webs, "/api/v1/topic?topic=" + urllib.parse.quote(PRESS + "/state", safe=""), context=by_cert)
    assert status == 200 and t["class"] == "state" and t["retained"] is not None
    status, _, body = request(webs, "/api/v1/login", "POST", context=by_cert)
    assert status == 200 and body["identity"] == "olga"
    status, _, me = request(webs, "/api/v1/me", headers={"Authorization": "Bearer " + body["token"]}, context=by_cert)
    assert status == 200 and me["login"] == "token"
    # without a certificate on https: the anonymous identity (admitted on loopback here)
    status, _, me = request(webs, "/api/v1/me", context=pki.client_context())
    assert status == 200 and me["identity"] == "anonymous"
    b.assert_alive()


def test_logins_are_bounded(broker_factory, tmp_path):
    b = explorer_broker(broker_factory, tmp_path, web={"max_logins": 18})
    tokens = [login(b, "olga") for _ in range(16)]
    assert request(b.web, "/api/v1/me", headers=tokens[0])[0] == 200  # used: now the most recent
    login(b, "olga")  # the 17th: olga's least recently used login ends
    assert request(b.web, "/api/v1/me", headers=tokens[1])[0] == 401
    assert request(b.web, "/api/v1/me", headers=tokens[0])[0] == 200
    login(b, "ana")
    login(b, "ana")
    status, r, body = request(b.web, "/api/v1/login", "POST", headers={"Authorization": basic("nobody", PASSWORDS["nobody"])})
    assert status == 503 and r.getheader("Retry-After") == "60" and "too many logins" in body["error"]
    b.assert_alive()


def test_topic_shows_reading_class_verdict_and_command(broker_factory, tmp_path):
    b = explorer_broker(broker_factory, tmp_path)
    oee = {"availability": 0.9, "performance": 0.8, "quality": 0.99, "oee": 0.71, "ts": TS}
    feed(b, {PRESS + "/state": {"state": "running", "ts": TS}, PRESS + "/oee": oee,
             # Leipzig warns: the wrong payload is kept, and its verdict shows why
             "acme/leipzig/assembly/line-1/oee": {"oee": "high"}})
    olga, ana = login(b, "olga"), login(b, "ana")

    status, _, t = topic_info(b, PRESS + "/state", olga)
    assert status == 200
    assert [(l["level"], l["name"]) for l in t["levels"]] == [
        ("enterprise", "acme"), ("site", "dresden"), ("area", "press-shop"), ("line", "line-2"), ("equipment", "press-7")]
    assert t["class"] == "state" and t["free"] is False and t["schema"]["type"] == "object"
    assert t["verdict"] == {"ok": True} and json.loads(t["retained"]["payload"])["state"] == "running"
    assert t["retained"]["retain"] is True and t["command"] is None and t["may_command"] is False

    status, _, node = topic_info(b, PRESS, olga)
    assert status == 200 and node["class"] is None and node["retained"] is None
    assert node["command"]["topic_prefix"] == PRESS + "/cmd/" and node["command"]["class"] == "cmd"
    assert node["command"]["reply_prefix"] == PRESS + "/reply/" and node["may_command"] is True
    assert "command" in node["command"]["schema"]["properties"]
    status, _, cmd = topic_info(b, PRESS + "/cmd/start", olga)
    assert status == 200 and cmd["may_command"] is True and cmd["class"] == "cmd"

    # the analyst sees OEE only, and gets no command form
    assert topic_info(b, PRESS + "/state", ana)[0] == 403
    status, _, node = topic_info(b, PRESS, ana)
    assert status == 200 and node["command"] is None
    status, _, t = topic_info(b, "acme/leipzig/assembly/line-1/oee", ana)
    assert status == 200 and t["verdict"]["ok"] is False and t["verdict"]["mode"] == "warn" and t["verdict"]["reason"]
    assert topic_info(b, "acme/leipzig/assembly/line-1/oee", olga)[0] == 403

    for bad in ("", "a%2F%2B%2Fb", "a%2F%23", "%zz", "%00"):
        status, _, body = request(b.web, "/api/v1/topic?topic=" + bad, headers=olga)
        assert status == 400 and "error" in body, bad
    assert topic_info(b, "sandbox/free/topic", {})[0] == 403  # anonymous (publish only) may not look
    b.assert_alive()


def test_state_by_class_and_topics_only(broker_factory, tmp_path):
    b = explorer_broker(broker_factory, tmp_path)
    oee = {"availability": 0.9, "performance": 0.8, "quality": 0.99, "oee": 0.71, "ts": TS}
    feed(b, {PRESS + "/state": {"state": "running", "ts": TS}, PRESS + "/oee": oee,
             "acme/dresden/press-shop/line-2/oee": oee})
    olga = login(b, "olga")
    got = [m for page in state_pages(b.web, "#", 1, headers=olga) for m in page]
    assert {m["topic"] for m in got} == {PRESS + "/state", PRESS + "/oee", "acme/dresden/press-shop/line-2/oee"}
    status, _, body = request(b.web, "/api/v1/state?filter=%23&class=oee&fields=topic", headers=olga)
    assert status == 200 and body["messages"] == [{"topic": "acme/dresden/press-shop/line-2/oee"}, {"topic": PRESS + "/oee"}]
    assert request(b.web, "/api/v1/state?filter=%23&class=nope", headers=olga)[0] == 400
    assert request(b.web, "/api/v1/state?filter=%23&fields=payload", headers=olga)[0] == 400


def test_alerts_follow_the_grants(broker_factory, tmp_path):
    b = explorer_broker(broker_factory, tmp_path, alerts={"stale": [{"filter": "acme/#", "max_silence_s": 1}]})
    feed(b, {PRESS + "/state": {"state": "running", "ts": TS},
             "acme/dresden/press-shop/line-1/press-3/state": {"state": "running", "ts": TS}})
    olga, ana = login(b, "olga"), login(b, "ana")

    def stale(headers):
        status, _, body = request(b.web, "/api/v1/alerts", headers=headers)
        assert status == 200, body
        return sorted(a["subject"] for a in body["alerts"] if a["kind"] == "stale")

    wait_until(lambda: stale(olga) == [PRESS + "/state"], what="olga's stale alert")
    assert stale(ana) == []
    b.assert_alive()


def test_wide_subscriptions_filtered_on_request(broker_factory, tmp_path):
    """A client that sends the CONNECT user property strata-wide-subscriptions:
    filter gets `#` accepted and filtered by its grants, also after a reload;
    one that does not is refused as auth.wide_subscriptions: refuse says."""
    b = explorer_broker(broker_factory, tmp_path)
    oee = json.dumps({"availability": 0.9, "performance": 0.8, "quality": 0.99, "oee": 0.71, "ts": TS}).encode()
    feed(b, {PRESS + "/state": {"state": "running", "ts": TS}, PRESS + "/oee": oee})

    plain = Client(b, version=5)
    plain.c.username_pw_set("ana", PASSWORDS["ana"])
    plain.connect()
    assert plain.subscribe("#", qos=1) == [0x87]

    wide = Client(b, version=5, connect_props=props(PacketTypes.CONNECT, UserProperty=[("strata-wide-subscriptions", "filter")]))
    wide.c.username_pw_set("ana", PASSWORDS["ana"])
    wide.connect()
    assert wide.subscribe("#", qos=1) == [1]
    assert wide.get().topic == PRESS + "/oee"
    wide.expect_none(0.3)

    # a reload applies every session's grants again: the subscription stays, filtered
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: "roles and users reloaded" in b.stderr_text(), what="the reload")
    feeder = Client(b, version=5).connect()
    feeder.publish(PRESS + "/state", json.dumps({"state": "stopped", "ts": TS}).encode(), qos=1, retain=True)
    feeder.publish(PRESS + "/oee", oee, qos=1, retain=True)
    m = wide.get()
    assert m.topic == PRESS + "/oee"
    for c in (plain, wide, feeder):
        c.disconnect()
    b.assert_alive()
