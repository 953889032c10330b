"""The credential each request carries, kept fresh the way client-go keeps it.

- a token file (kubeconfig `tokenFile`, the in-cluster service account) is read again whenever
  it changes on disk (bound service account tokens rotate); while it is missing, the kubeconfig's
  `token` stands in, as in client-go;
- an exec plugin's credential is cached until its `expirationTimestamp` (however short), then
  the plugin runs again;
- after a 401, `refresh()` fetches a new credential (plugin re-run, file re-read) and says
  whether it differs, so the caller retries once.

Thread-safe: probes run several exec sessions at once.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Mapping

from ..errors import ClusterUnavailable
from .config import run_exec_plugin, stdin_is_terminal
from .connection import Connection


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate an exec plugin returned (PEM); the transport loads it into TLS."""

    cert_pem: bytes
    key_pem: bytes


class CredentialSource:
    """Authorization header and exec-issued client certificate for one connection."""

    def __init__(self, connection: Connection, environ: Mapping[str, str],
                 clock: Callable[[], float] = time.time):
        self._connection = connection
        self._credentials = connection.credentials
        self._environ = environ
        self._clock = clock
        self._lock = threading.Lock()
        self._file_state: tuple | None = None  # (inode, mtime_ns, size) of the token file last read
        self._file_token: str | None = None
        self._exec_status: dict | None = None
        self._exec_expiry: float | None = None  # epoch seconds; None = until a 401

    # -- what requests carry ------------------------------------------------------------------

    def authorization(self) -> str | None:
        with self._lock:
            return self._authorization(force=False)

    def client_certificate(self) -> ClientCertificate | None:
        """The exec plugin's client certificate, if it issues one (runs the plugin when due)."""
        if not self._uses_exec():
            return None
        with self._lock:
            status = self._exec(force=False)
        if status.get("clientCertificateData"):
            return ClientCertificate(str(status["clientCertificateData"]).encode(),
                                     str(status["clientKeyData"]).encode())
        return None

    def refresh(self, rejected: str | None) -> bool:
        """After a 401 for the Authorization `rejected`: fetch the credential again (re-run the exec
        plugin, re-read the token file); True when it changed, so one retry is worth it."""
        with self._lock:
            issued = self._exec_status
            return self._authorization(force=True) != rejected or self._exec_status != issued

    # -- the sources ------------------------------------------------------------------------

    def _uses_exec(self) -> bool:
        credentials = self._credentials
        return credentials.exec_config is not None and not (credentials.token or credentials.token_file)

    def _authorization(self, force: bool) -> str | None:
        credentials = self._credentials
        if credentials.token_file:
            token = self._read_token_file(force) or credentials.token
            return f"Bearer {token}" if token else None
        if credentials.token:
            return f"Bearer {credentials.token}"
        if credentials.oidc_id_token:
            return f"Bearer {credentials.oidc_id_token}"
        if credentials.username or credentials.password:
            pair = f"{credentials.username or ''}:{credentials.password or ''}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        if self._uses_exec():
            token = self._exec(force).get("token")
            return f"Bearer {token}" if token else None
        return None

    def _read_token_file(self, force: bool) -> str | None:
        path = self._credentials.token_file
        try:
            info = os.stat(path)
            state = (info.st_ino, info.st_mtime_ns, info.st_size)
            if force or state != self._file_state:
                with open(path, encoding="utf-8") as stream:
                    self._file_token = stream.read().strip() or None
                self._file_state = state
        except OSError:
            if self._credentials.token:
                return None  # client-go falls back to the kubeconfig's token without a word
            raise ClusterUnavailable(f'the token file "{path}" of {self._connection.who} cannot be read: '
                                     "check that it exists and is readable") from None
        return self._file_token

    def _exec(self, force: bool) -> dict:
        due = self._exec_status is None or force or (
            self._exec_expiry is not None and self._clock() >= self._exec_expiry)
        if due:
            status = run_exec_plugin(self._credentials.exec_config, who=self._connection.who,
                                     cluster=self._connection.cluster_entry, environ=self._environ,
                                     stdin_is_terminal=stdin_is_terminal())
            self._exec_expiry = _expiry(status.get("expirationTimestamp"), self._connection.who)
            self._exec_status = status
        return self._exec_status


def _expiry(timestamp: object, who: str) -> float | None:
    if not timestamp:
        return None
    try:
        return datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ClusterUnavailable(f"the exec credential plugin of {who} returned an expirationTimestamp that is not "
                                 "RFC 3339: fix or update the plugin") from None
