"""Test certificates made with the `openssl` command in a temporary directory.

Nothing here is committed: every test session makes its own CA, server and client
certificates (EC P-256 keys, valid for two days unless asked otherwise).
"""

import os
import ssl
import subprocess

import mqtt_raw

OPENSSL = "/usr/bin/openssl"


def _run(*args, cwd):
    r = subprocess.run([OPENSSL] + list(args), cwd=str(cwd), capture_output=True, timeout=30)
    assert r.returncode == 0, "openssl %s failed: %s" % (" ".join(args), r.stderr.decode())


class Authority:
    """A CA in `directory` that issues certificates into the same directory."""

    def __init__(self, directory, name="ca", cn="Strata Test CA"):
        self.dir = directory
        self.name = name
        os.makedirs(str(directory), exist_ok=True)
        self.cert = str(directory / (name + ".crt"))
        self.key = str(directory / (name + ".key"))
        _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)

    def issue(self, name, cn, san=None, client=False, days=2):
        """Issues `name`.crt / `name`.key; returns (cert, key) paths. `days` may be
        negative: the certificate then expired before it was made."""
        key = str(self.dir / (name + ".key"))
        csr = str(self.dir / (name + ".csr"))
        cert = str(self.dir / (name + ".crt"))
        ext = self.dir / (name + ".ext")
        lines = ["basicConstraints=CA:FALSE",
                 "extendedKeyUsage=" + ("clientAuth" if client else "serverAuth")]
        if san:
            lines.append("subjectAltName=" + ",".join(san))
        ext.write_text("\n".join(lines) + "\n")
        _run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=" + cn, cwd=self.dir)
        _run("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
             "-out", cert, "-days", str(days), "-extfile", str(ext), cwd=self.dir)
        return cert, key


class Pki:
    """The usual set: a CA, a server certificate for 127.0.0.1/localhost, a client
    certificate with CN and SANs, an expired client certificate, and a client
    certificate from a CA the broker does not trust."""

    def __init__(self, directory):
        self.dir = directory
        self.ca = Authority(directory)
        self.server_cert, self.server_key = self.ca.issue(
            "server", "strata-a", san=["IP:127.0.0.1", "DNS:localhost"])
        self.client_cert, self.client_key = self.ca.issue(
            "client", "press-7", san=["URI:urn:acme:press-7", "DNS:press-7.acme.local"], client=True)
        self.expired_cert, self.expired_key = self.ca.issue("expired", "old-press", client=True, days=-1)
        self.rogue = Authority(directory, name="rogue-ca", cn="Rogue CA")
        self.rogue_cert, self.rogue_key = self.rogue.issue("rogue", "intruder", client=True)

    def tls_config(self, client_ca=True, **kw):
        cfg = {"cert": self.server_cert, "key": self.server_key}
        if client_ca:
            cfg["client_ca"] = self.ca.cert
        cfg.update(kw)
        return cfg

    def client_context(self, cert=None, key=None, minimum=None, maximum=None, seclevel0=False):
        """A Python TLS client context that trusts the test CA."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.ca.cert)
        if cert:
            ctx.load_cert_chain(cert, key)
        if seclevel0:
            # Lets this client offer old protocol versions, so that a refusal
            # comes from the broker and not from the client's own policy.
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
        return ctx


class TlsRaw(mqtt_raw.RawClient):
    """The raw MQTT client over TLS (the handshake happens in the constructor)."""

    def __init__(self, target, context, version=mqtt_raw.V311, timeout=5.0):
        super().__init__(target.port, target.host, version=version, timeout=timeout)
        self.sock = context.wrap_socket(self.sock, server_hostname="127.0.0.1")
