"""The container image's first start: deploy/container-entrypoint.sh with the
image's config, deploy/container.yaml, run outside a container (no image is
built). The entrypoint's paths point into a temporary directory (the volume)
and at STRATA_BIN; the config is the image's with those paths and its
listeners on free loopback ports. The config refuses clients without
credentials on every listener (allow_anonymous: false), so that refusing them
here, on loopback, is what a client from outside gets too.
"""

import os
import queue
import re
import signal
import subprocess
import types
from pathlib import Path

import pytest
import yaml

import mqtt_raw as r
from conftest import STRATA_BIN, TIMEOUT, Broker, Client, strata_only, uid
from test_http import basic, request

pytestmark = strata_only

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "deploy" / "container-entrypoint.sh"
CONFIG = REPO / "deploy" / "container.yaml"
CONTAINERFILE = REPO / "deploy" / "Containerfile"

FIRST_START = re.compile(r"^strata first start: admin password ([A-Za-z0-9]{24}) \(shown only this once\)$")
BAD_CREDENTIALS = 0x86
NOT_AUTHORIZED = 0x87


class Container:
    """One volume and the image's config, started through the entrypoint."""

    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.data = tmp_path / "volume"
        self.data.mkdir()
        text = CONFIG.read_text()
        text, n = re.subn(r'bind: "0\.0\.0\.0:\d+"', 'bind: "127.0.0.1:0"', text)
        assert n == 2, "the image's config should have two listeners on 0.0.0.0"
        text, n = re.subn(r"/var/lib/strata/", str(self.data) + "/", text)
        assert n == 2, "the image's config should keep the store and the password file in the volume"
        self.config = tmp_path / "strata.yaml"
        self.config.write_text(text)
        self.started = []

    def start(self, secret=""):
        """Runs the entrypoint up to "strata ready"; secret: the secret file, or none."""
        logs = self.dir / ("start%d" % (len(self.started) + 1))
        logs.mkdir()
        b = Broker(logs, {})
        self.started.append(b)
        env = dict(os.environ, STRATA_BIN=STRATA_BIN, STRATA_CONFIG=str(self.config),
                   STRATA_DATA=str(self.data), STRATA_ADMIN_PASSWORD_FILE=str(secret))
        b._spawn([str(ENTRYPOINT)], env=env)
        b._wait_ready()
        b.web = types.SimpleNamespace(host=b.listeners["web"][0], port=b.listeners["web"][1])
        # The entrypoint exec'd the broker: signals to this PID reach it.
        assert os.path.realpath("/proc/%d/exe" % b.proc.pid) == os.path.realpath(STRATA_BIN)
        return b

    def stop(self, b):
        """Stops the broker by its PID (SIGTERM) and returns everything it printed."""
        assert b.stop(signal.SIGTERM) == 0, b.stderr_text()[-4000:]
        b.assert_clean_exit()
        lines = list(b.startup_lines)
        while True:
            try:
                line = b.stdout_lines.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError("stdout not closed after exit")
            if line is None:
                break
            lines.append(line)
        return "\n".join(lines) + "\n" + b.stderr_text()


@pytest.fixture
def container(tmp_path):
    c = Container(tmp_path)
    yield c
    for b in c.started:
        b.kill()


def first_start_password(b):
    found = [m.group(1) for m in map(FIRST_START.match, b.startup_lines) if m]
    assert len(found) == 1, "expected one first-start password line: %r" % b.startup_lines
    return found[0]


def connack(b, username=None, password=None, version=r.V5):
    c = b.raw(version)
    try:
        return c.connect(uid("c"), username=username,
                         password=None if password is None else password.encode()).reason
    finally:
        c.close()


def admin_api(b, password):
    headers = {} if password is None else {"Authorization": basic("admin", password)}
    status, _, _ = request(b.web, "/api/v1/sessions", headers=headers)
    return status


def assert_no_password_line(output):
    assert "first start" not in output and "admin password" not in output, output[-4000:]


def test_first_start_prints_a_password_once_for_an_admin_who_may_do_everything(container):
    b = container.start()
    password = first_start_password(b)

    assert connack(b, "admin", password) == 0
    assert connack(b, "admin", password, version=r.V311) == 0
    assert connack(b, "admin", "not-" + password) == BAD_CREDENTIALS
    # without credentials: refused on every listener, this loopback one too
    assert connack(b) == NOT_AUTHORIZED
    assert connack(b, version=r.V311) == 5
    assert admin_api(b, password) == 200
    assert admin_api(b, None) == 401

    # the whole tree and $SYS
    c = Client(b)
    c.c.username_pw_set("admin", password)
    try:
        c.connect()
        assert c.subscribe("#", qos=1) == [1]
        assert c.subscribe("$SYS/#") == [0]
        topic = "acme/dresden/%s/state" % uid("line")
        c.publish(topic, b"running", qos=1, retain=True)
        before = c.until(b"running")
        assert before and all(m.topic.startswith("$SYS/broker/") for m in before)
    finally:
        c.close()

    output = container.stop(b)
    assert output.count(password) == 1, output[-4000:]
    # only its hash is stored
    for f in container.data.rglob("*"):
        if f.is_file():
            assert password.encode() not in f.read_bytes(), f
    assert (container.data / "passwd").stat().st_mode & 0o077 == 0


def test_a_later_start_prints_nothing_and_keeps_the_password(container):
    b = container.start()
    password = first_start_password(b)
    container.stop(b)
    before = (container.data / "passwd").read_bytes()

    b = container.start()
    assert connack(b, "admin", password) == 0
    assert admin_api(b, password) == 200
    assert_no_password_line(container.stop(b))
    assert (container.data / "passwd").read_bytes() == before


def test_a_secret_file_gives_the_password_on_every_start(container, tmp_path):
    secret = tmp_path / "strata_admin_password"
    secret.write_text("first-secret-7f3a\nnot part of it\n")
    b = container.start(secret)
    assert connack(b, "admin", "first-secret-7f3a") == 0
    assert admin_api(b, "first-secret-7f3a") == 200
    output = container.stop(b)
    assert_no_password_line(output)
    assert "-secret-" not in output, output[-4000:]

    # a new secret replaces the password, without a newline at its end too
    secret.write_text("second-secret-c21e")
    b = container.start(secret)
    assert connack(b, "admin", "first-secret-7f3a") == BAD_CREDENTIALS
    assert connack(b, "admin", "second-secret-c21e") == 0
    output = container.stop(b)
    assert_no_password_line(output)
    assert "-secret-" not in output, output[-4000:]


def test_a_named_secret_file_that_is_missing_stops_the_start(container, tmp_path):
    env = dict(os.environ, STRATA_BIN=STRATA_BIN, STRATA_CONFIG=str(container.config),
               STRATA_DATA=str(container.data), STRATA_ADMIN_PASSWORD_FILE=str(tmp_path / "missing"))
    p = subprocess.run([str(ENTRYPOINT)], env=env, capture_output=True, stdin=subprocess.DEVNULL,
                       timeout=30)
    assert p.returncode == 2
    assert p.stdout == b""
    assert p.stderr.decode() == "strata entrypoint: STRATA_ADMIN_PASSWORD_FILE: no file %s\n" % (tmp_path / "missing")
    assert list(container.data.iterdir()) == []


def test_the_image_runs_the_entrypoint_on_its_config():
    image = CONTAINERFILE.read_text()
    script = ENTRYPOINT.read_text()
    assert os.access(ENTRYPOINT, os.X_OK)
    assert script.startswith("#!/bin/sh\n")
    subprocess.run(["/bin/sh", "-n", str(ENTRYPOINT)], check=True, timeout=TIMEOUT)
    assert 'ENTRYPOINT ["/usr/local/bin/strata-entrypoint"]' in image
    # where the image puts things is where the script looks by default
    assert "COPY deploy/container-entrypoint.sh /usr/local/bin/strata-entrypoint\n" in image
    assert "COPY --from=build /src/build/broker/strata /usr/local/bin/strata\n" in image
    assert "COPY deploy/container.yaml /etc/strata/strata.yaml\n" in image
    assert 'strata="${STRATA_BIN:-/usr/local/bin/strata}"' in script
    assert 'config="${STRATA_CONFIG:-/etc/strata/strata.yaml}"' in script
    assert 'data="${STRATA_DATA:-/var/lib/strata}"' in script
    assert "install -d -o strata -g strata -m 0750 /var/lib/strata" in image
    assert re.search(r'^exec "\$strata" --config "\$config" "\$@"$', script, re.M)
    # the config: the volume's password file, no anonymous clients, admin's role
    cfg = yaml.safe_load(CONFIG.read_text())
    assert cfg["auth"]["password_file"] == "/var/lib/strata/passwd"
    assert cfg["persistence"]["path"] == "/var/lib/strata/store"
    assert cfg["auth"]["allow_anonymous"] is False
    assert cfg["users"] == {"admin": ["admin"]}
