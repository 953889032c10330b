"""`SimCluster`: a scenario served as a Kubernetes API on loopback, for the demo, tests and benchmarks."""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import ssl
import tempfile
import threading
from collections.abc import Callable

import yaml

from .access import DEFAULT_USER, AccessRules
from .certs import make_tls_files
from .mesh import Mesh
from .resources import crd_objects
from .podexec import ExecHandler, ExecRequest, ExecStreams, ExecutableNotFound, rules_handler
from .faults import Fault, FaultList
from .images import lacks
from .scenario import Scenario, load_scenario
from .server import RequestRecord, SimHTTPServer
from .syncz import is_pilot_discovery_request, pilot_discovery_handler
from .envoystats import is_stats_request, waypoint_stats_handler
from .store import ObjectStore


class SimCluster:
    """A simulated cluster: HTTP(S) on 127.0.0.1, an ephemeral port, a bearer token.

    Use as a context manager (`with SimCluster("bookinfo") as sim:`) or call start()/stop().
    """

    def __init__(self, scenario: str | Scenario = "bookinfo", *, tls: bool = True, token: str | None = None,
                 user: str = DEFAULT_USER, anonymous: bool = False):
        self.scenario = load_scenario(scenario) if isinstance(scenario, str) else scenario
        self.tls = tls
        self.token = token or secrets.token_urlsafe(24)
        self.user = user
        self.tokens: dict[str, str] = {}  # more bearer tokens -> the user each one authenticates
        self.client_certificates = False  # set before start(): accept client certificates of the CA
        self.anonymous = anonymous
        self.installed = self.scenario.installed
        self.kubernetes_version = self.scenario.kubernetes_version
        listed_crds = {o["metadata"]["name"] for o in self.scenario.objects if o.get("kind") == "CustomResourceDefinition"}
        self.store = ObjectStore(self.scenario.objects + tuple(crd_objects(self.installed, listed_crds)),
                                 created=self.scenario.created)
        self.access = AccessRules()
        self.faults = FaultList()
        self.ca_file: str | None = None
        self.ca_pem: str | None = None
        self.mesh = Mesh(self.store, self.scenario.mesh)  # its proxy starts with the first curl
        self._rules_handler = rules_handler(self.scenario.exec_rules)
        self._default_handler: ExecHandler = self._builtin_exec
        self._exec_handler: ExecHandler = self._default_handler
        self._requests: list[RequestRecord] = []
        self._requests_lock = threading.Lock()
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._folder: str | None = None
        self._stopped = threading.Event()

    # -------------------------------------------------------------- lifecycle

    def start(self) -> SimCluster:
        if self._server is not None:
            return self
        context = None
        if self.tls:
            self._folder = tempfile.mkdtemp(prefix="waypoint-sim-")
            files = make_tls_files(self._folder)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(files.server_cert, files.server_key)
            context.set_alpn_protocols(["http/1.1"])
            self.ca_file = files.ca_cert
            with open(files.ca_cert, encoding="ascii") as f:
                self.ca_pem = f.read()
        self._server = SimHTTPServer(self, context)
        self._stopped.clear()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"sim-{self.scenario.name}")
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()
        self.mesh.stop()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        self._stopped.set()

    def serve_forever(self) -> None:
        """Start (if needed) and block until stop() is called from elsewhere, or Ctrl-C."""
        self.start()
        try:
            while not self._stopped.wait(0.5):
                pass
        finally:
            self.stop()

    def __enter__(self) -> SimCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -------------------------------------------------------------- where and how to connect

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulated cluster is not running; call start()")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path: str, context: str = "simulated", namespace: str | None = None,
                         token: str | None = None, insecure: bool = False) -> str:
        """Write a kubeconfig for this cluster (CA embedded as certificate-authority-data); returns path."""
        cluster: dict = {"server": self.url}
        if self.tls:
            if insecure:
                cluster["insecure-skip-tls-verify"] = True
            else:
                cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem.encode()).decode()
        context_entry: dict = {"cluster": context, "user": context}
        if namespace:
            context_entry["namespace"] = namespace
        config = {"apiVersion": "v1", "kind": "Config", "preferences": {},
                  "clusters": [{"name": context, "cluster": cluster}],
                  "users": [{"name": context, "user": {"token": token or self.token}}],
                  "contexts": [{"name": context, "context": context_entry}],
                  "current-context": context}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f, sort_keys=False)
        return path

    # -------------------------------------------------------------- behaviour tests change

    def set_exec_handler(self, handler: Callable[[ExecRequest, ExecStreams], int] | None) -> None:
        """Decide what exec'd commands do; None restores the scenario's exec rules."""
        self._exec_handler = handler or self._default_handler

    @property
    def exec_handler(self) -> ExecHandler:
        return self._exec_handler

    def default_exec_handler(self, request: ExecRequest, streams: ExecStreams) -> int:
        """The scenario's exec rules and built-in programs, for handlers that add to them."""
        return self._default_handler(request, streams)

    def _builtin_exec(self, request: ExecRequest, streams: ExecStreams) -> int:
        """A matching scenario exec rule answers first; then a built-in program the container's image
        has (sim/images.py); else "not found"."""
        if any(rule.matches(request) for rule in self.scenario.exec_rules):
            return self._rules_handler(request, streams)
        if lacks(request.pod, request.container, request.argv):
            raise ExecutableNotFound(request.argv[0])
        for handles, handler in self._builtin_programs():
            if handles(request):
                return handler(request, streams)
        raise ExecutableNotFound(request.argv[0] if request.argv else "")

    def _builtin_programs(self) -> tuple[tuple[Callable[[ExecRequest], bool], ExecHandler], ...]:
        """Programs simulated containers run without an exec rule, as (handles, handler); first wins.

        The one place to chain built-in behaviour: curl goes through the simulated mesh, istiod's
        `pilot-discovery request GET /debug/syncz` (and /version) answers from the live store
        (sim/syncz.py), and so does a waypoint's `pilot-agent request GET stats/prometheus`
        (sim/envoystats.py).
        """
        return ((self.mesh.handles, self.mesh.exec_handler),
                (lambda request: is_pilot_discovery_request(request.argv),
                 pilot_discovery_handler(self.store, self.scenario.syncz)),
                (is_stats_request, self._waypoint_stats))

    def _waypoint_stats(self, request: ExecRequest, streams: ExecStreams) -> int:
        """A waypoint's `pilot-agent request GET stats/prometheus`: Envoy's xDS stats, then istio_requests_total."""
        code = waypoint_stats_handler(self.scenario.syncz)(request, streams)
        return self.mesh.stats_handler(request, streams) if code == 0 else code

    def deny(self, verb: str, resource: str, namespace: str | None = None, group: str = "",
             user: str | None = None) -> None:
        """Answer matching requests 403 Forbidden ("*" matches any verb, resource or group; `user`
        limits the rule to one user, impersonated or not)."""
        self.access.deny(verb, resource, namespace, group, user)

    def add_fault(self, method: str | None = "GET", path: str = ".*", status: int | None = 503,
                  retry_after: int | None = None, delay: float = 0.0, times: int | None = None,
                  reason: str | None = None, close: bool = False, expired_continue: bool = False,
                  message: str | None = None) -> Fault:
        """Make the next `times` requests matching method and path (a regex) fail; returns the fault."""
        return self.faults.add(Fault(method, re.compile(path), status, retry_after, delay, times, reason, message,
                                     close, expired_continue))

    def clear_faults(self) -> None:
        self.faults.clear()

    # -------------------------------------------------------------- request log

    def _log_request(self, record: RequestRecord) -> None:
        with self._requests_lock:
            self._requests.append(record)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request served so far, oldest first (a copy)."""
        with self._requests_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()

    def writes(self) -> list[RequestRecord]:
        """Requests that tried to change the cluster (exec and access reviews are not changes)."""
        return [r for r in self.requests if r.is_write]
