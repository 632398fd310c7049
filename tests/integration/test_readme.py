"""The README's commands, run as written, and the documentation's links.

README.md marks its command blocks by their fence's info string (GitHub highlights by
the first word and ignores the rest):

  ```sh setup     deploy/setup.sh: installs packages and builds; not run here (.ci/run
                  is `deploy/setup.sh test`)
  ```sh tour      the five-minute tour: run in order, in one working directory, against
                  the broker the tour itself starts
  ```sh example   a command on its own (no broker), run in a fresh working directory
  ```text output  follows a command block: every line of it must appear in the output
                  (stdout and stderr) of that block or of a command still running in
                  the background; `exit=N` is the exit code of the block's commands
                  (default 0)

A block holds one command per line (a trailing backslash continues it). A command that
serves until stopped (`build/broker/strata --config ...`, `mosquitto_sub` without -C/-W)
is started in the background and stopped by its PID at the end, the broker with SIGINT
(Ctrl-C), after which it must exit 0.

The working directory looks like the repository: `build/broker/strata` is STRATA_BIN,
`deploy/` links to the repository's files, except that deploy/tour.yaml is copied with
its listeners on port 0. The ports the broker then prints replace the README's
(127.0.0.1:1883, :8080) in the commands and in the expected output, and mosquitto_pub
and mosquitto_sub get `-h 127.0.0.1 -p PORT`. Nothing else is changed.
"""

import os
import re
import shlex
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import IS_MOSQUITTO, START_TIMEOUT, STOP_TIMEOUT, STRATA_BIN, TIMEOUT, wait_until

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
STRATA_IN_README = "build/broker/strata"
COMMAND_KINDS = {"setup", "tour", "example"}

# The commands talk to 127.0.0.1 only: no proxy in between (curl would use one).
ENV = {k: v for k, v in os.environ.items()
       if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))

strata_only = pytest.mark.skipif(IS_MOSQUITTO, reason="runs the README's own broker commands")


# ---------------------------------------------------------------- reading the README

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)


def fenced_blocks(text):
    """[(info words, body)] in document order."""
    return [(m.group(1).split(), m.group(2)) for m in FENCE.finditer(text)]


def commands(body):
    """The block's commands: one per line, a trailing backslash continues it."""
    out, cur = [], ""
    for line in body.splitlines():
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        cur += line
        if cur.strip() and not cur.strip().startswith("#"):
            out.append(cur.strip())
        cur = ""
    assert not cur.strip(), "a command block ends in a backslash"
    return out


def steps(kind):
    """[(commands, expected lines, expected exit)] of the README's `sh KIND` blocks, each
    with the `text output` block that follows it (before the next command block)."""
    result = []
    for info, body in fenced_blocks(README.read_text()):
        if info[:1] == ["sh"] and len(info) > 1:
            result.append([info[1], commands(body), [], 0])
        elif info[:2] == ["text", "output"]:
            assert result, "a `text output` block before any command block"
            for word in info[2:]:
                if word.startswith("exit="):
                    result[-1][3] = int(word[len("exit="):])
            result[-1][2] += [l.rstrip() for l in body.splitlines() if l.strip()]
    return [(c, e, x) for k, c, e, x in result if k == kind]


def is_server(argv):
    """Commands that run until stopped."""
    if argv[0] == STRATA_IN_README:
        return "--config" in argv and not any(a.startswith("--check") for a in argv)
    if argv[0] == "mosquitto_sub":
        return not {"-C", "-W"} & set(argv)
    return False


# ---------------------------------------------------------------- the working directory

def workdir(root, tour_config=None):
    """A directory that looks like the repository to the README's commands."""
    root.mkdir()
    (root / "build" / "broker").mkdir(parents=True)
    os.symlink(os.path.abspath(STRATA_BIN), root / "build" / "broker" / "strata")
    (root / "deploy").mkdir()
    for entry in (REPO / "deploy").iterdir():
        if entry.name != "tour.yaml":
            os.symlink(entry, root / "deploy" / entry.name)
    text = (REPO / "deploy" / "tour.yaml").read_text()
    if tour_config is not None:
        text = tour_config(text)
    (root / "deploy" / "tour.yaml").write_text(text)
    return root


class Process:
    """A background command with its output (stdout and stderr) collected by a thread."""

    def __init__(self, command, cwd):
        self.command = command
        # Line-buffered output for the clients (mosquitto_sub); the broker
        # flushes its own lines, and stdbuf's preloaded library would come
        # before the sanitizer runtime of a test build.
        prefix = "exec " if command.startswith(STRATA_IN_README) else "exec stdbuf -oL "
        self.proc = subprocess.Popen(["bash", "-c", prefix + command], cwd=cwd,
                                     env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._lines = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            with self._lock:
                self._lines.append(raw.decode("utf-8", "replace").rstrip())

    def lines(self):
        with self._lock:
            return list(self._lines)

    def stop(self, sig=signal.SIGTERM):
        """Signals the process by its PID; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        finally:
            self._reader.join(TIMEOUT)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------- the tour

LISTENING = re.compile(r"^strata listening (\S+) (\S+) (\S+)$")


def readme_binds():
    """name -> bind of the tour config's listeners, as the README shows them."""
    config = yaml.safe_load((REPO / "deploy" / "tour.yaml").read_text())
    return {l["name"]: (l.get("protocol", "mqtt"), l["bind"]) for l in config["listeners"]}


class Tour:
    def __init__(self, cwd):
        self.cwd = cwd
        self.background = []
        self.binds = readme_binds()
        self.addresses = {}       # README's host:port -> the broker's
        self.mqtt_port = None
        self.http_port = None
        self.broker = None
        self.subscribers = []

    # ports ------------------------------------------------------------
    def learn_ports(self, broker):
        actual = {}
        for line in broker.lines():
            m = LISTENING.match(line)
            if m:
                actual[m.group(1)] = m.group(3)
        assert set(actual) == set(self.binds), "listeners printed: %r" % actual
        for name, (protocol, bind) in self.binds.items():
            self.addresses[bind] = actual[name]
            port = int(actual[name].rsplit(":", 1)[1])
            if protocol == "mqtt" and self.mqtt_port is None:
                self.mqtt_port = port
            if protocol == "http" and self.http_port is None:
                self.http_port = port

    def localise(self, text):
        for readme, actual in self.addresses.items():
            text = text.replace(readme, actual)
        return text

    def command(self, command):
        command = self.localise(command)
        argv = shlex.split(command)
        if argv[0] in ("mosquitto_pub", "mosquitto_sub"):
            assert "-p" not in argv and "-h" not in argv, \
                "the tour's MQTT clients use the default host and port: " + command
            command = "%s -h 127.0.0.1 -p %d%s" % (argv[0], self.mqtt_port,
                                                   command[len(argv[0]):])
        return command

    # the broker's metrics ----------------------------------------------
    def metric(self, name):
        body = LOCAL.open("http://127.0.0.1:%d/metrics" % self.http_port,
                                      timeout=TIMEOUT).read().decode()
        m = re.search(r"^%s (\S+)$" % re.escape(name), body, re.M)
        return float(m.group(1)) if m else 0.0

    # running ------------------------------------------------------------
    def all_lines(self, foreground):
        lines = list(foreground)
        for p in self.background:
            lines += p.lines()
        return lines

    def start(self, command):
        argv = shlex.split(command)
        if argv[0] == STRATA_IN_README:
            assert self.broker is None, "the tour starts one broker"
            self.broker = Process(command, self.cwd)
            self.background.append(self.broker)
            wait_until(lambda: self.broker.proc.poll() is not None or
                       "strata ready" in self.broker.lines(),
                       timeout=START_TIMEOUT, what="the tour's broker to be ready")
            assert self.broker.proc.poll() is None, \
                "the broker exited:\n" + "\n".join(self.broker.lines()[-40:])
            self.learn_ports(self.broker)
            return
        assert self.broker is not None, "a command before the tour started its broker"
        before = self.metric("strata_subscriptions")
        command = self.command(command)
        p = Process(command, self.cwd)
        self.background.append(p)
        if argv[0] == "mosquitto_sub":
            self.subscribers.append(p)
            # subscribed once the broker counts one more subscription
            wait_until(lambda: p.proc.poll() is not None or
                       self.metric("strata_subscriptions") > before,
                       what="the subscription of: " + command)
            assert p.proc.poll() is None, "%s exited: %r" % (command, p.lines())

    def run(self, command, expected_exit, as_written=True):
        if as_written:
            command = self.command(command)
        r = subprocess.run(["bash", "-c", command], cwd=self.cwd, env=ENV, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=3 * TIMEOUT)
        out = r.stdout.decode("utf-8", "replace")
        assert r.returncode == expected_exit, "%s: exit %d, expected %d\n%s" % (
            command, r.returncode, expected_exit, out)
        return command, [l.rstrip() for l in out.splitlines()]

    def expect(self, expected, foreground, what):
        expected = [self.localise(l) for l in expected]

        def missing():
            have = set(self.all_lines(foreground))
            return [l for l in expected if l not in have]

        try:
            wait_until(lambda: not missing(), what=what)
        except AssertionError:
            raise AssertionError("%s: missing output lines %r\nforeground: %r\nbackground: %r" % (
                what, missing(), foreground, [p.lines()[-20:] for p in self.background]))

    def stop(self):
        """The broker by SIGINT (the README's Ctrl-C), the others by SIGTERM."""
        for p in self.background:
            if p is not self.broker:
                p.stop()
        if self.broker is not None:
            rc = self.broker.stop(signal.SIGINT)
            out = "\n".join(self.broker.lines())
            assert rc == 0, "broker exit code %r:\n%s" % (rc, out[-4000:])
            for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
                assert marker not in out, out[-6000:]

    def kill(self):
        for p in self.background:
            p.kill()


@strata_only
def test_tour(tmp_path):
    tour_steps = steps("tour")
    assert tour_steps, "README.md has no `sh tour` blocks"
    cwd = workdir(tmp_path / "repo",
                  lambda text: re.sub(r'bind: "127\.0\.0\.1:\d+"', 'bind: "127.0.0.1:0"', text))
    tour = Tour(cwd)
    refused = []      # (client command, payload) of publishes the broker refused
    delivered = []    # client commands whose message was delivered
    try:
        for cmds, expected, expected_exit in tour_steps:
            foreground = []
            for c in cmds:
                if is_server(shlex.split(c)):
                    tour.start(c)
                    continue
                command, out = tour.run(c, expected_exit)
                foreground += out
                argv = shlex.split(command)
                if argv[0] == "mosquitto_pub":
                    payload = argv[argv.index("-m") + 1]
                    (refused if any("failed" in l for l in out) else delivered).append(
                        (command, payload))
            tour.expect(expected, foreground, "tour step %r" % cmds)

        # What a refused publish promised: it never reached a subscriber. Once the
        # first accepted publish, sent again, has arrived everywhere, anything sent
        # before it has been routed (one session's messages arrive in order).
        assert refused, "the tour shows no refused message"
        assert delivered and tour.subscribers, "the tour shows no delivered message"
        command, payload = delivered[0]
        counts = {id(s): sum(payload in l for l in s.lines()) for s in tour.subscribers}
        tour.run(command, 0, as_written=False)
        for s in tour.subscribers:
            wait_until(lambda: sum(payload in l for l in s.lines()) > counts[id(s)],
                       what="the repeated publish to reach " + s.command)
            for _, bad in refused:
                assert not any(bad in l for l in s.lines()), \
                    "refused payload %r delivered to %s" % (bad, s.command)
        tour.stop()
    finally:
        tour.kill()


@strata_only
def test_examples(tmp_path):
    examples = steps("example")
    assert examples, "README.md has no `sh example` blocks"
    for n, (cmds, expected, expected_exit) in enumerate(examples):
        cwd = workdir(tmp_path / ("example%d" % n))
        for c in cmds:
            assert not is_server(shlex.split(c)), "an example that runs until stopped: " + c
            r = subprocess.run(["bash", "-c", c], cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=3 * TIMEOUT)
            out = [l.rstrip() for l in r.stdout.decode("utf-8", "replace").splitlines()]
            assert r.returncode == expected_exit, "%s: exit %d, expected %d\n%s" % (
                c, r.returncode, expected_exit, "\n".join(out))
            missing = [l for l in expected if l not in out]
            assert not missing, "%s: missing output lines %r in\n%s" % (c, missing, "\n".join(out))


def test_every_command_block_is_marked():
    """A shell block the tests would not run cannot slip into the README: every one is
    `sh setup`, `sh tour` or `sh example`, and the set-up ones only call deploy/setup.sh."""
    shells = {"sh", "bash", "shell", "console", "shell-session"}
    for info, body in fenced_blocks(README.read_text()):
        if not info or info[0] in shells:
            assert info and len(info) > 1 and info[1] in COMMAND_KINDS, \
                "README.md: a command block without a mark (%s):\n%s" % (
                    " ".join(COMMAND_KINDS), body)
        if info[:2] == ["sh", "setup"]:
            for c in commands(body):
                assert c.startswith("deploy/setup.sh "), c
    # no indented (unfenced) code blocks either: a blank line, then 4 spaces
    text = FENCE.sub("", README.read_text())
    assert not re.search(r"\n\n(    |\t)\S", text), "README.md: an indented code block"


# ---------------------------------------------------------------- links

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def github_anchor(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to '-'."""
    h = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip())
    h = re.sub(r"[^\w\- ]", "", h.lower())
    return h.replace(" ", "-")


def anchors(path):
    text = FENCE.sub("", path.read_text())
    return {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def doc_pages():
    return [README] + sorted((REPO / "docs").glob("*.md"))


def test_relative_links_resolve():
    """Every relative link in README.md and docs/*.md names an existing file, and an
    anchor into a Markdown page names one of its headings."""
    broken = []
    for page in doc_pages():
        text = FENCE.sub("", page.read_text())
        text = re.sub(r"`[^`\n]*`", "", text)
        for target in LINK.findall(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue          # https:, mailto:
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append("%s: %s (no such file)" % (page.relative_to(REPO), target))
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append("%s: %s (no such heading)" % (page.relative_to(REPO), target))
    assert not broken, "\n".join(broken)


def test_docs_pages_are_linked_from_the_readme():
    readme = README.read_text()
    for page in sorted((REPO / "docs").glob("*.md")):
        assert "(docs/%s)" % page.name in readme, "README.md does not link docs/" + page.name
