"""The strata command line: --help, --version, and start-up errors (bad config,
taken port): one error line naming the file / key / address, exit code 2."""

import re
import socket
import subprocess
import tempfile

from conftest import STRATA_BIN, DEFAULT_CONFIG, merge, to_yaml, strata_only

pytestmark = strata_only


# Where a broker started without a persistence path would create ./data: not the
# source tree.
RUN_DIR = tempfile.mkdtemp(prefix="strata-cli-")


def run(*args, timeout=15):
    return subprocess.run([STRATA_BIN] + list(args), capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=RUN_DIR)


def error_lines(proc):
    return [l for l in proc.stderr.decode(errors="replace").splitlines() if l.strip()]


def config_file(tmp_path, text=None, **overrides):
    path = tmp_path / "strata.yaml"
    if text is None:
        cfg = merge(DEFAULT_CONFIG, overrides)
        cfg["persistence"] = {"path": str(tmp_path / "data")}
        text = to_yaml(cfg)
    path.write_text(text)
    return path


def assert_config_error(proc, *must_mention):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert b"strata ready" not in proc.stdout
    lines = error_lines(proc)
    assert len(lines) == 1, "expected one error line, got %r" % lines
    for word in must_mention:
        assert word in lines[0], "%r does not mention %r" % (lines[0], word)


def test_help_exits_0():
    p = run("--help")
    assert p.returncode == 0
    assert b"--config" in p.stdout + p.stderr


def test_version_exits_0():
    p = run("--version")
    assert p.returncode == 0
    assert re.search(rb"\d+\.\d+\.\d+", p.stdout + p.stderr)


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert_config_error(run("--config", str(missing)), "nope.yaml")


def test_invalid_yaml_syntax(tmp_path):
    path = config_file(tmp_path, "listeners: [{name: default, bind: \"127.0.0.1:0\"\nlimits: {\n")
    assert_config_error(run("--config", str(path)), "strata.yaml")


def test_unknown_key_is_an_error(tmp_path):
    path = config_file(tmp_path, limits={"max_conections": 5})
    assert_config_error(run("--config", str(path)), "strata.yaml", "max_conections")


def test_wrong_value_type_names_the_key(tmp_path):
    path = config_file(tmp_path, limits={"max_packet_size": "lots"})
    assert_config_error(run("--config", str(path)), "strata.yaml", "max_packet_size")


def test_bad_bind_address_names_the_key(tmp_path):
    path = config_file(tmp_path, listeners=[{"name": "default", "protocol": "mqtt",
                                             "bind": "127.0.0.1:notaport"}])
    assert_config_error(run("--config", str(path)), "strata.yaml", "bind")


def test_taken_port_names_the_address(tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        path = config_file(tmp_path, listeners=[{"name": "default", "protocol": "mqtt",
                                                 "bind": "127.0.0.1:%d" % port}])
        p = run("--config", str(path))
    finally:
        holder.close()
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert b"strata ready" not in p.stdout
    # log lines before it are fine; exactly one line names the address
    naming = [l for l in error_lines(p) if "127.0.0.1:%d" % port in l]
    assert len(naming) == 1, error_lines(p)
