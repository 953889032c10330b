"""A throwaway CA and serving certificate for the simulated API server, made with the openssl CLI.

The `cryptography` package is not a dependency, and the stdlib cannot create certificates, so
the `openssl` command does it (three quick calls, EC P-256 keys). The certificate is valid for
127.0.0.1 and localhost, with the key identifiers strict verifiers (Go, Python 3.13) expect.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass

_CA_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = kubectl-waypoint simulated cluster CA
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
"""

_SERVER_EXTENSIONS = """\
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""

_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-sha256"]


@dataclass(frozen=True)
class TLSFiles:
    ca_cert: str
    server_cert: str
    server_key: str


class CertificateError(RuntimeError):
    """openssl is missing or failed; the simulated cluster can still serve plain HTTP."""


def _openssl(openssl: str, args: list[str], cwd: str) -> None:
    result = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CertificateError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def make_tls_files(folder: str) -> TLSFiles:
    """Create ca.crt, server.crt and server.key in `folder` (valid for 7 days)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise CertificateError("the openssl command is needed to serve HTTPS; install it or use tls=False")
    with open(os.path.join(folder, "ca.cnf"), "w") as f:
        f.write(_CA_CONFIG)
    with open(os.path.join(folder, "server.ext"), "w") as f:
        f.write(_SERVER_EXTENSIONS)
    _openssl(openssl, ["req", "-x509", "-config", "ca.cnf", *_EC_KEY, "-days", "7",
                       "-keyout", "ca.key", "-out", "ca.crt"], folder)
    _openssl(openssl, ["req", "-new", "-config", "ca.cnf", *_EC_KEY, "-subj", "/CN=kube-apiserver",
                       "-keyout", "server.key", "-out", "server.csr"], folder)
    _openssl(openssl, ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                       "-set_serial", "0x" + secrets.token_hex(8), "-days", "7", "-sha256",
                       "-extfile", "server.ext", "-out", "server.crt"], folder)
    return TLSFiles(os.path.join(folder, "ca.crt"), os.path.join(folder, "server.crt"),
                    os.path.join(folder, "server.key"))
