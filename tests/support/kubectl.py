"""The real kubectl for comparisons, and client certificates the simulated cluster's CA signs."""

from __future__ import annotations

import functools
import glob
import os
import subprocess

from conftest import kubectl_binary


@functools.cache
def real_kubectl() -> str:
    """kubectl itself; where PATH's is the Google Cloud SDK dispatcher, the versioned kubectl beside it.

    The dispatcher sends its own `GET /version` before running a versioned binary (see
    domain-facts), which would add a request to every comparison.
    """
    binary = kubectl_binary()
    version = subprocess.run([binary, "version", "--client"], capture_output=True, text=True, check=False).stdout
    if "-dispatcher" not in version:
        return binary
    folder = os.path.dirname(os.path.realpath(binary))
    for candidate in (os.path.join(folder, "kubectl.1.32"), *sorted(glob.glob(os.path.join(folder, "kubectl.1.*")))):
        if os.access(candidate, os.X_OK):
            return candidate
    return binary


def run_kubectl(args: list[str], env: dict[str, str], cache_dir: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """kubectl with its discovery cache in `cache_dir` (never the developer's ~/.kube/cache)."""
    return subprocess.run([real_kubectl(), "--cache-dir", cache_dir, *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def client_certificate(sim, folder: str, user: str, group: str = "") -> tuple[str, str]:
    """A client certificate for `user` (CN) and `group` (O) signed by the simulated cluster's CA."""
    ca_dir = os.path.dirname(sim.ca_file)
    key, csr, cert = (os.path.join(folder, f"{user}.{ext}") for ext in ("key", "csr", "crt"))
    subject = f"/CN={user}" + (f"/O={group}" if group else "")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-subj", subject, "-keyout", key, "-out", csr], check=True, capture_output=True)
    extensions = os.path.join(folder, "client.ext")
    with open(extensions, "w") as stream:
        stream.write("basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(ca_dir, "ca.crt"), "-CAkey",
                    os.path.join(ca_dir, "ca.key"), "-CAcreateserial", "-days", "1", "-sha256", "-extfile", extensions,
                    "-out", cert], check=True, capture_output=True)
    return cert, key
