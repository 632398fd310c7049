"""The Debian package: deploy/package/build-deb.sh builds it from STRATA_BIN, and
this checks its control data and contents, runs its maintainer scripts against
stub commands, and starts the packaged broker the way its systemd unit does.

Nothing is installed on this machine. A real `dpkg -i` would create the strata
user and /var/lib/strata here, and `dpkg --root=DIR --force-script-chrootless`
runs the maintainer scripts outside DIR, against this machine just the same.
So the package is unpacked into a temporary root (dpkg-deb -x / -e); the
maintainer scripts run with a PATH holding only stubs that record their
arguments (a command the stubs lack fails the script instead of running); and
the unit's ExecStart runs with its paths mapped into that root. The unit's
User=strata is not applied (there is no strata user here): the broker runs as
the test's user. Runs as root, as dpkg does, so that the unpacked files keep
the package's ownership (root); skipped otherwise.
"""

import difflib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import STRATA_BIN, TIMEOUT, Broker, MosquittoSub, mosquitto_pub, strata_only, uid

pytestmark = [
    strata_only,
    pytest.mark.skipif(os.geteuid() != 0,
                       reason="the package test runs as root, as dpkg does (run it with sudo): "
                              "unpacked by another user, the files lose the package's root ownership"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is missing (not a Debian system)"),
]

REPO = Path(__file__).resolve().parents[2]
BUILD_DEB = REPO / "deploy" / "package" / "build-deb.sh"
SHIPPED_CONFIG = REPO / "deploy" / "strata.yaml"
SHIPPED_UNIT = REPO / "deploy" / "strata.service"
SCHEMAS = sorted(p.name for p in (REPO / "deploy" / "namespace" / "schemas").glob("*.json"))

CONFFILES = ["/etc/strata/namespace/acme.yaml"] + \
    ["/etc/strata/namespace/schemas/" + s for s in SCHEMAS] + ["/etc/strata/strata.yaml"]
FILES = sorted(CONFFILES + [
    "/usr/bin/strata",
    "/lib/systemd/system/strata.service",
    "/usr/share/doc/strata/copyright",
    "/usr/share/doc/strata/README.Debian",
    "/usr/share/doc/strata/README.namespace.md",
])


def run(argv, **kw):
    r = subprocess.run([str(a) for a in argv], capture_output=True, timeout=120, **kw)
    assert r.returncode == 0, "%s failed (%d): %s" % (argv[0], r.returncode, r.stderr.decode())
    return r.stdout.decode()


def binary_version():
    m = re.fullmatch(r"strata (\d+\.\d+\.\d+)\n", run([STRATA_BIN, "--version"]))
    assert m, "strata --version"
    return m.group(1)


@pytest.fixture(scope="module")
def work():
    d = Path(tempfile.mkdtemp(prefix="strata-package-"))
    try:
        yield d
    finally:
        shutil.rmtree(d)


@pytest.fixture(scope="module")
def deb(work):
    # zstd: seconds instead of xz's ten for an unoptimised binary
    out = run([BUILD_DEB, "--binary", STRATA_BIN, "--out", work / "out", "--compression", "zstd"])
    path = Path(out.strip())
    assert path == work / "out" / ("strata_%s_amd64.deb" % binary_version())
    return path


@pytest.fixture(scope="module")
def root(work, deb):
    """The package unpacked: ROOT/... its files, ROOT/DEBIAN its control files."""
    r = work / "root"
    run(["dpkg-deb", "-x", deb, r])
    run(["dpkg-deb", "-e", deb, r / "DEBIAN"])
    assert {p.stat().st_uid for p in r.rglob("*")} == {0}
    return r


def test_control_fields(deb):
    fields = dict(line.split(": ", 1) for line in
                  run(["dpkg-deb", "-f", deb, "Package", "Version", "Architecture", "Maintainer",
                       "Section", "Priority", "Depends"]).splitlines())
    assert fields["Package"] == "strata"
    assert fields["Version"] == binary_version()
    assert fields["Architecture"] == "amd64"
    assert fields["Maintainer"] == "Strata developers <strata@localhost>"
    assert (fields["Section"], fields["Priority"]) == ("net", "optional")
    depends = [d.split(" ")[0] for d in fields["Depends"].split(", ")]
    for lib in ("adduser", "libc6", "libstdc++6", "librocksdb7.8", "libssl3", "libyaml-cpp0.7",
                "libprometheus-cpp-core1.0"):
        assert lib in depends, fields["Depends"]
    info = run(["dpkg-deb", "--info", deb])
    for script in ("postinst", "prerm", "postrm"):
        assert re.search(r"\*\s+%s\s" % script, info), "%s missing or not executable:\n%s" % (script, info)


def test_conffiles(deb):
    assert run(["dpkg-deb", "--info", deb, "conffiles"]).split() == CONFFILES


def test_contents(deb):
    entries = {}
    for line in run(["dpkg-deb", "--contents", deb]).splitlines():
        perms, owner, size, _, _, path = line.split(None, 5)
        entries[path[1:].rstrip("/") or "/"] = (perms, owner, int(size))
    files = sorted(p for p, (perms, _, _) in entries.items() if perms.startswith("-"))
    assert files == FILES
    assert {owner for _, owner, _ in entries.values()} == {"root/root"}
    assert entries["/usr/bin/strata"][0] == "-rwxr-xr-x"
    assert entries["/etc/strata/strata.yaml"][0] == "-rw-r--r--"  # postinst makes it root:strata 0640
    if shutil.which("strip"):
        assert entries["/usr/bin/strata"][2] < os.path.getsize(STRATA_BIN), "the binary is not stripped"


def test_config_is_the_shipped_one_with_its_store_in_var_lib(root):
    conf = root / "etc" / "strata" / "strata.yaml"
    changed = [l for l in difflib.unified_diff(SHIPPED_CONFIG.read_text().splitlines(),
                                               conf.read_text().splitlines(), lineterm="", n=0)
               if l[:1] in "+-" and l[:3] not in ("+++", "---")]
    assert len(changed) == 6, changed  # persistence.path and two comments on the example model
    assert re.search(r"^  path: /var/lib/strata +#", conf.read_text(), re.M)
    assert run([root / "usr/bin/strata", "--config", conf, "--check-config"]).strip() == "%s: ok" % conf
    model = root / "etc/strata/namespace/acme.yaml"
    assert model.read_bytes() == (REPO / "deploy/namespace/acme.yaml").read_bytes()


def unit_lines(path):
    return [l for l in path.read_text().splitlines() if l and not l.startswith("#")]


def test_unit_runs_the_installed_binary_with_every_hardening_line(root):
    packaged = unit_lines(root / "lib/systemd/system/strata.service")
    shipped = unit_lines(SHIPPED_UNIT)
    assert "ExecStart=/usr/bin/strata --config /etc/strata/strata.yaml" in packaged
    assert [l for l in packaged if not l.startswith("ExecStart=")] == \
        [l for l in shipped if not l.startswith("ExecStart=")]
    assert "User=strata" in packaged and "ProtectSystem=strict" in packaged


# ---------------------------------------------------------------- maintainer scripts

STUBBED = ["getent", "addgroup", "adduser", "deluser", "delgroup", "userdel", "groupdel", "install",
           "chown", "chmod", "rm", "systemctl", "deb-systemd-helper", "deb-systemd-invoke"]

STUB = """#!/bin/sh
echo "${0##*/} $*" >>"$STUB_LOG"
case "${0##*/}" in
    getent) [ -n "$STUB_USER_EXISTS" ] ;;
esac
"""


@pytest.fixture
def scripts(work, root):
    """run(script, *args, user_exists=False) -> the commands the script ran."""
    stubs = work / uid("stubs")
    stubs.mkdir()
    for name in STUBBED:
        (stubs / name).write_text(STUB)
        (stubs / name).chmod(0o755)
    log = stubs / "log"

    def run_script(script, *args, user_exists=False):
        path = root / "DEBIAN" / script
        run(["/bin/sh", "-n", path])
        log.write_text("")
        env = {"PATH": str(stubs), "STUB_LOG": str(log), "STUB_USER_EXISTS": "1" if user_exists else ""}
        r = subprocess.run(["/bin/sh", str(path)] + list(args), env=env, capture_output=True,
                           timeout=TIMEOUT)
        assert r.returncode == 0, "%s %s failed (%d): %s" % (script, args, r.returncode, r.stderr.decode())
        return log.read_text().splitlines()

    yield run_script
    shutil.rmtree(stubs)


SYSTEMD = os.path.isdir("/run/systemd/system")
OWN_STATE = ["install -d -o strata -g strata -m 0750 /var/lib/strata",
             "chown root:strata /etc/strata/strata.yaml",
             "chmod 0640 /etc/strata/strata.yaml"]


def test_postinst_creates_the_user_once_and_owns_the_state(scripts):
    calls = [c for c in scripts("postinst", "configure", "") if not c.startswith(("systemctl", "deb-"))]
    assert calls == ["getent group strata", "addgroup --system --quiet strata", "getent passwd strata",
                     "adduser --system --quiet --ingroup strata --home /var/lib/strata --no-create-home "
                     "--shell /usr/sbin/nologin --gecos Strata MQTT broker strata"] + OWN_STATE
    # again, as on an upgrade: the user exists
    calls = scripts("postinst", "configure", "0.0.9", user_exists=True)
    service = [c for c in calls if c.startswith(("systemctl", "deb-"))]
    assert [c for c in calls if c not in service] == ["getent group strata", "getent passwd strata"] + OWN_STATE
    if SYSTEMD:
        assert service[0] == "systemctl --system daemon-reload"
        assert service[-1] == "deb-systemd-invoke restart strata.service"
    else:
        assert service == [], "systemd is not running, yet: %r" % service


def test_prerm_stops_the_unit_only_under_systemd(scripts):
    expected = ["deb-systemd-invoke stop strata.service"] if SYSTEMD else []
    assert scripts("prerm", "remove") == expected
    assert scripts("prerm", "upgrade", "0.2.0") == []


def test_postrm_purge_removes_data_and_user(scripts):
    reload = ["systemctl --system daemon-reload"] if SYSTEMD else []
    assert scripts("postrm", "remove") == reload
    assert scripts("postrm", "purge", user_exists=True) == reload + [
        "deb-systemd-helper purge strata.service", "deb-systemd-helper unmask strata.service",
        "rm -rf /var/lib/strata",
        "getent passwd strata", "deluser --system --quiet strata",
        "getent group strata", "delgroup --system --quiet strata"]
    # purged again with the user gone
    assert "deluser --system --quiet strata" not in scripts("postrm", "purge")


# ---------------------------------------------------------------- the broker as the unit starts it

class PackagedBroker(Broker):
    """The packaged broker, started from an argv (Broker's config is not used)."""

    def __init__(self, logdir):
        super().__init__(logdir, {})

    def start_argv(self, argv, cwd):
        self._spawn(argv, cwd=cwd)
        self._wait_ready()
        return self


def test_starts_as_the_unit_does_serves_and_stops_on_sigterm(work, root):
    unit = dict(l.split("=", 1) for l in unit_lines(root / "lib/systemd/system/strata.service")
                if "=" in l and not l.startswith("["))

    def in_root(p):
        return str(root) + p if p.startswith("/") else p

    # What postinst makes (the state directory), and the two changes the test
    # needs: the store inside the temporary root, a free port.
    state = root / "var/lib/strata"
    state.mkdir(mode=0o750, parents=True, exist_ok=True)
    conf = root / "etc/strata/strata.yaml"
    text, n = re.subn(r"^(  path: )/var/lib/strata( )", r"\g<1>%s\2" % state, conf.read_text(), flags=re.M)
    assert n == 1
    text, n = re.subn(r'bind: "127\.0\.0\.1:1883"', 'bind: "127.0.0.1:0"', text)
    assert n == 1
    conf.write_text(text)

    argv = [in_root(a) for a in shlex.split(unit["ExecStart"])]
    assert argv == [str(root / "usr/bin/strata"), "--config", str(conf)]
    logs = work / uid("run")
    logs.mkdir()
    broker = PackagedBroker(logs)
    sub = None
    try:
        broker.start_argv(argv, cwd=in_root(unit["WorkingDirectory"]))
        topic = "acme/" + uid("package")
        sub = MosquittoSub(broker, "-t", topic, "-q", "1").start()
        mosquitto_pub(broker, "-t", topic, "-m", "installed", "-q", "1")
        assert sub.payloads(1) == ["installed"]
        assert broker.stop(signal.SIGTERM) == 0, broker.stderr_text()[-4000:]
        broker.assert_clean_exit()
        assert (state / "CURRENT").exists(), "no store in the state directory: %s" % sorted(os.listdir(state))
    finally:
        if sub is not None:
            sub.stop()
        broker.kill()
