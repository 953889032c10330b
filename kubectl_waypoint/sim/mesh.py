"""The simulated mesh: `curl` exec'd in a pod runs for real, and a loopback proxy plays ztunnel and waypoints.

The exec handler runs the pod's exact argv with this machine's curl (no shell), with only the
proxy variables pointing at a loopback HTTP proxy. The proxy credentials are a per-exec token,
so the proxy knows the calling pod, its namespace and its service account (its mesh identity).

The proxy then does what the mesh would with each request: resolves the Host against the
scenario's Services (`svc`, `svc.ns`, `svc.ns.svc.cluster.local`, a ClusterIP), and for a Service
served by a waypoint (`istio.io/use-waypoint` on the Service or its namespace) enforces the
AuthorizationPolicies bound to it with `targetRefs` (L7: 403 `RBAC: access denied`) and the
HTTPRoute whose parentRef is the Service (weights, seeded randomness). Policies bound with a
`selector` (or to a whole namespace) are ztunnel's: a denial resets the connection (curl exit
56), and their L7 fields fail closed, as ztunnel cannot see them. The answering pod replies like
Bookinfo: productpage's page names the reviews pod that served it, other apps name their own pod.

Each connection draws its own random generator from the seeded one (ztunnel picks per
connection) and `Connection: close` closes it. Each waypoint pod counts what it served as Envoy's
istio stats filter does (`istio_requests_total{reporter="waypoint",...}` with Istio's label set),
and `pilot-agent request GET stats/prometheus` in its istio-proxy container prints the counters.
Scenario knobs (`mesh:` in the YAML, see scenarios/README.md) make the mesh misbehave: split
ignored, authorization ignored, outages, an exec stream cut mid-run. Simplifications: L4 policies
see the original caller, not the waypoint; https is not simulated (CONNECT is refused).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import random
import re
import secrets
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .podexec import ExecRequest, ExecStreams, ExecutableNotFound
from .store import ObjectStore

log = logging.getLogger(__name__)

RBAC_DENIED = b"RBAC: access denied"
UPSTREAM_FAILURE = b"upstream connect error or disconnect/reset before headers. reset reason: connection failure"
CLUSTER_DOMAIN = "svc.cluster.local"
TRUST_DOMAIN = "cluster.local"
_MAX_HEAD_BYTES = 64 * 1024
_RECORDS_KEPT = 20_000
# curl options that would take the request around the proxy: the simulation cannot honour them.
_BYPASSING_OPTIONS = frozenset({"--noproxy", "-x", "--proxy", "--preproxy", "--resolve", "--connect-to",
                                "--unix-socket", "--abstract-unix-socket", "--socks4", "--socks4a",
                                "--socks5", "--socks5-hostname", "--interface", "--dns-servers"})
_SHELLS = frozenset({"sh", "/bin/sh", "bash", "/bin/bash"})
_KNOWN_KNOBS = {"seed", "splitIgnored", "authorizationIgnored", "outages", "hangUpExec"}
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"


# ------------------------------------------------------------------------------------ settings

@dataclass(frozen=True)
class Outage:
    """The waypoints answer nothing after the mesh has seen `after_requests` requests: for `seconds`,
    or, when `requests` is set, for exactly that many requests (whatever the machine's speed)."""

    after_requests: int
    seconds: float
    answer: str = "reset"  # or an HTTP status such as "503"
    requests: int | None = None

    @classmethod
    def from_dict(cls, doc: Mapping) -> Outage:
        answer = str(doc.get("answer", "reset"))
        if answer != "reset" and not re.fullmatch(r"[1-5][0-9][0-9]", answer):
            raise ValueError(f"mesh outage answer {answer!r}: use reset or an HTTP status")
        if ("seconds" in doc) == ("requests" in doc):
            raise ValueError("a mesh outage lasts either seconds or requests: give one of them")
        requests = int(doc["requests"]) if "requests" in doc else None
        return cls(int(doc["afterRequests"]), float(doc.get("seconds", 0)), answer, requests)


@dataclass(frozen=True)
class MeshSettings:
    """The scenario's `mesh:` knobs."""

    seed: int = 1
    split_ignored: bool = False
    authorization_ignored: bool = False
    outages: tuple[Outage, ...] = ()
    hang_up_exec_after: int | None = None

    @classmethod
    def from_dict(cls, doc: Mapping | None) -> MeshSettings:
        doc = doc or {}
        unknown = set(doc) - _KNOWN_KNOBS
        if unknown:
            raise ValueError(f"unknown keys in mesh: {', '.join(sorted(unknown))}")
        hang_up = doc.get("hangUpExec") or {}
        return cls(seed=int(doc.get("seed", 1)), split_ignored=bool(doc.get("splitIgnored", False)),
                   authorization_ignored=bool(doc.get("authorizationIgnored", False)),
                   outages=tuple(Outage.from_dict(o) for o in doc.get("outages") or ()),
                   hang_up_exec_after=int(hang_up["afterRequests"]) if hang_up else None)


# ------------------------------------------------------------------------------------ records

@dataclass(frozen=True)
class Caller:
    """The pod that exec'd curl: its mesh identity is ns/<namespace>/sa/<service_account>."""

    namespace: str
    pod: str
    service_account: str
    enrolled: bool

    @property
    def principal(self) -> str | None:
        return f"{TRUST_DOMAIN}/ns/{self.namespace}/sa/{self.service_account}" if self.enrolled else None


@dataclass(frozen=True)
class Answer:
    """What the mesh did with one request: an HTTP answer, or a reset connection."""

    status: int | None  # None: connection reset
    body: bytes = b""
    content_type: str = "text/plain"
    backend_pod: str | None = None
    reason: str = ""  # why, for tests and debugging: "routed", "l7-denied", "l4-denied", "outage", ...


@dataclass(frozen=True)
class ProxyRecord:
    """One request exactly as it reached the simulated mesh, and the answer it got."""

    connection: int
    caller: Caller | None
    method: str
    target: str  # the request target as sent (absolute-form through a proxy)
    headers: tuple[tuple[str, str], ...]  # as received, minus the proxy's own credentials
    body: bytes
    answer: Answer


@dataclass
class _Exec:
    caller: Caller
    hang_up: threading.Event = field(default_factory=threading.Event)


# ------------------------------------------------------------------------------------ the mesh

class Mesh:
    """The loopback proxy and the exec handler that sends a pod's curl through it."""

    def __init__(self, store: ObjectStore, settings: MeshSettings):
        self.store = store
        self.settings = settings
        self.allow_shell = False  # benchmarks only: lets `sh -c '... curl ...'` run through the mesh
        self._random = random.Random(settings.seed)
        self._lock = threading.Lock()
        self._execs: dict[str, _Exec] = {}
        self._records: deque[ProxyRecord] = deque(maxlen=_RECORDS_KEPT)
        self._served = 0  # requests from pods, for outages and the exec hang-up
        self._outage_started: dict[int, float] = {}
        self._hung_up = False
        self._connections = 0
        self._server: _ProxyServer | None = None
        self._requests_total: dict[str, Counter] = {}  # waypoint pod "ns/name" -> label tuple -> count

    # -------------------------------------------------------------- lifecycle

    def start(self) -> Mesh:
        with self._lock:
            if self._server is None:
                self._server = _ProxyServer(self)
                threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                 daemon=True, name="sim-mesh").start()
        return self

    def stop(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    @property
    def proxy_port(self) -> int:
        return self.start()._server.server_address[1]

    @property
    def records(self) -> list[ProxyRecord]:
        """What reached the mesh from pods, oldest first (a copy)."""
        with self._lock:
            return list(self._records)

    def clear_records(self) -> None:
        with self._lock:
            self._records.clear()

    # -------------------------------------------------------------- exec

    def handles(self, request: ExecRequest) -> bool:
        """Whether this is a command the mesh runs: curl, or a shell when a benchmark allowed it."""
        program = request.argv[0] if request.argv else ""
        return os.path.basename(program) == "curl" or (self.allow_shell and program in _SHELLS)

    def exec_handler(self, request: ExecRequest, streams: ExecStreams) -> int:
        """Run the pod's exact argv with the real curl, its traffic going through the mesh."""
        bypass = sorted(_BYPASSING_OPTIONS.intersection(request.argv))
        if bypass:
            streams.write_stderr(f"simulated mesh: curl {bypass[0]} would go around the mesh, "
                                 "which the simulation cannot follow\n")
            return 2
        if shutil.which("curl") is None:
            streams.write_stderr("simulated mesh: this machine has no curl; install it to simulate requests\n")
            return 127
        token = secrets.token_hex(16)
        session = _Exec(self._caller(request))
        with self._lock:
            self._execs[token] = session
        proxy = f"http://{token}:x@127.0.0.1:{self.proxy_port}"
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": "/nonexistent",
               "http_proxy": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy, "HTTPS_PROXY": proxy,
               "all_proxy": proxy, "ALL_PROXY": proxy, "no_proxy": "", "NO_PROXY": ""}
        try:
            return _run(request.argv, env, streams, session.hang_up)
        finally:
            with self._lock:
                self._execs.pop(token, None)

    def stats_handler(self, request: ExecRequest, streams: ExecStreams) -> int:
        streams.write_stdout("".join(line + "\n" for line in self.requests_total_lines(request.namespace,
                                                                                    request.pod_name)))
        return 0

    def requests_total_lines(self, namespace: str, pod: str) -> list[str]:
        """The pod's `istio_requests_total` counters as Prometheus text lines (Envoy prints none before a request)."""
        with self._lock:
            counts = dict(self._requests_total.get(f"{namespace}/{pod}", {}))
        if not counts:
            return []
        lines = ["# TYPE istio_requests_total counter"]
        for labels, value in sorted(counts.items()):
            rendered = ",".join(f'{key}="{_escape_label(value_)}"' for key, value_ in labels)
            lines.append(f"istio_requests_total{{{rendered}}} {value}")
        return lines

    def _count_request(self, waypoint_pod: dict | None, caller: Caller, destination: dict | None,
                       backend: dict | None, status: int, flags: str) -> None:
        """What the waypoint's stats filter records for one request it handled."""
        if waypoint_pod is None:
            return
        view = _View(self.store)
        source = view.pod(caller.namespace, caller.pod)
        labels = {
            "reporter": "waypoint", "request_protocol": "http", "response_code": str(status),
            "response_flags": flags, "connection_security_policy": "mutual_tls", "grpc_response_status": "",
            **_workload_labels("source", view, source, caller.namespace,
                               f"spiffe://{caller.principal}" if caller.principal else None),
            **_workload_labels("destination", view, destination, _namespace(destination) if destination else "unknown",
                               _principal(destination) if destination else None),
            "destination_service": f"{_name(backend)}.{_namespace(backend)}.{CLUSTER_DOMAIN}" if backend else "unknown",
            "destination_service_name": _name(backend) if backend else "unknown",
            "destination_service_namespace": _namespace(backend) if backend else "unknown",
            "source_cluster": "Kubernetes", "destination_cluster": "Kubernetes" if destination else "unknown",
        }
        key = f"{_namespace(waypoint_pod)}/{_name(waypoint_pod)}"
        with self._lock:
            self._requests_total.setdefault(key, Counter())[tuple(sorted(labels.items()))] += 1

    def _caller(self, request: ExecRequest) -> Caller:
        labels = request.labels
        namespace = self.store.get("namespaces", None, request.namespace) or {}
        mode = labels.get("istio.io/dataplane-mode") or \
            ((namespace.get("metadata") or {}).get("labels") or {}).get("istio.io/dataplane-mode")
        return Caller(request.namespace, request.pod_name, request.service_account, mode == "ambient")

    # -------------------------------------------------------------- requests from the proxy

    def _exec_for(self, proxy_authorization: str | None) -> tuple[str, _Exec] | None:
        if not proxy_authorization or not proxy_authorization.startswith("Basic "):
            return None
        try:
            token = base64.b64decode(proxy_authorization[6:]).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            return None
        with self._lock:
            session = self._execs.get(token)
        return (token, session) if session else None

    def _new_connection(self) -> tuple[int, random.Random]:
        """Each connection gets its own generator, drawn in order from the seeded one."""
        with self._lock:
            self._connections += 1
            return self._connections, random.Random(self._random.getrandbits(64))

    def _serve_from_pod(self, connection: int, rng: random.Random, session: _Exec | None, method: str,
                        target: str, headers: list[tuple[str, str]], body: bytes) -> Answer:
        with self._lock:
            self._served += 1
            served = self._served
        if session is None:
            answer = Answer(407, b"simulated mesh: this proxy serves only curl exec'd in a simulated pod\n",
                            reason="unknown-caller")
        else:
            answer = self.answer(session.caller, method, target, rng)
        kept = tuple((k, v) for k, v in headers if k.lower() != "proxy-authorization")
        with self._lock:
            self._records.append(ProxyRecord(connection, session.caller if session else None, method, target,
                                             kept, body, answer))
            cut = (session is not None and not self._hung_up and self.settings.hang_up_exec_after is not None
                   and served >= self.settings.hang_up_exec_after)
            if cut:
                self._hung_up = True
        if cut:
            session.hang_up.set()
        return answer

    def answer(self, caller: Caller, method: str, target: str, rng: random.Random) -> Answer:
        """What the mesh makes of one request from `caller` (public for tests of the mesh itself)."""
        url = urlsplit(target)
        host, port = url.hostname or "", url.port or 80
        view = _View(self.store)
        service = view.service_for(host, port, caller.namespace)
        if service is None:
            return Answer(502, f"simulated mesh: no Service {host}:{port} (as seen from namespace "
                               f"{caller.namespace})\n".encode(), reason="unknown-service")
        path = url.path or "/"
        waypoint = view.waypoint_for(service)
        if waypoint:
            return self._through_waypoint(view, caller, service, waypoint, method, path, rng)
        pods = view.ready_pods(service)
        if not pods:
            return Answer(503, b"no healthy upstream", reason="no-endpoints")
        pod = rng.choice(pods)
        if not self.settings.authorization_ignored and \
                not view.allowed(view.ztunnel_policies(pod), caller, method, path, l7=False):
            return Answer(None, backend_pod=_name(pod), reason="l4-denied")
        return self._application(view, pod, path, rng)

    def _through_waypoint(self, view: _View, caller: Caller, service: dict, waypoint: str, method: str, path: str,
                          rng: random.Random) -> Answer:
        """The waypoint's part: a replica (picked per connection), policy, route, and its own count."""
        replicas = view.waypoint_pods(service, waypoint)
        replica = rng.choice(replicas) if replicas else None
        outage = self._outage_now()
        if outage is not None:
            if outage.answer == "reset":
                return Answer(None, reason="outage")
            self._count_request(replica, caller, None, None, int(outage.answer), "UF")
            return Answer(int(outage.answer), UPSTREAM_FAILURE, reason="outage")
        if not self.settings.authorization_ignored and \
                not view.allowed(view.waypoint_policies(service, waypoint), caller, method, path, l7=True):
            self._count_request(replica, caller, None, service, 403, "-")
            return Answer(403, RBAC_DENIED, reason="l7-denied")
        backend = self._route(view, service, rng)
        if backend is None:
            self._count_request(replica, caller, None, service, 500, "NR")
            return Answer(500, b"no healthy upstream", reason="all-weights-zero")
        pods = view.ready_pods(backend)
        if not pods:
            self._count_request(replica, caller, None, backend, 503, "UH")
            return Answer(503, b"no healthy upstream", reason="no-endpoints")
        pod = rng.choice(pods)
        if not self.settings.authorization_ignored and \
                not view.allowed(view.ztunnel_policies(pod), caller, method, path, l7=False):
            return Answer(None, backend_pod=_name(pod), reason="l4-denied")
        answer = self._application(view, pod, path, rng)
        self._count_request(replica, caller, pod, backend, answer.status or 0, "-")
        return answer

    def _outage_now(self) -> Outage | None:
        now = time.monotonic()
        with self._lock:
            for index, outage in enumerate(self.settings.outages):
                if outage.requests is not None:
                    if outage.after_requests < self._served <= outage.after_requests + outage.requests:
                        return outage
                elif self._served > outage.after_requests:
                    started = self._outage_started.setdefault(index, now)
                    if now - started < outage.seconds:
                        return outage
        return None

    def _route(self, view: _View, service: dict, rng: random.Random) -> dict | None:
        """The backend Service the waypoint sends to: the HTTPRoute's weighted pick, else the Service."""
        refs = view.route_backends(service)
        if refs is None:
            return service
        namespace = _namespace(service)
        weights = [1.0 if self.settings.split_ignored else float(ref.get("weight", 1)) for ref in refs]
        if not sum(weights):
            return None
        chosen = rng.choices(refs, weights)[0]
        return view.service(chosen.get("namespace", namespace), chosen["name"]) or service

    def _application(self, view: _View, pod: dict, path: str, rng: random.Random) -> Answer:
        """The answer of the Bookinfo app (or a generic one) running in `pod`."""
        name = _name(pod)
        app = (pod["metadata"].get("labels") or {}).get("app", "")
        if app == "productpage":
            if not path.startswith("/productpage"):
                return Answer(200, b"<html><head><title>Simple Bookstore App</title></head></html>\n",
                              "text/html; charset=utf-8", name, "routed")
            caller = Caller(_namespace(pod), name, pod["spec"].get("serviceAccountName", "default"), True)
            reviews = self.answer(caller, "GET", f"http://reviews.{_namespace(pod)}:9080/reviews/0", rng)
            return Answer(200, _product_page(name, reviews), "text/html; charset=utf-8", name, "routed")
        bodies = {
            "reviews": {"id": "0", "podname": name, "clustername": "null",
                        "reviews": [{"reviewer": "Reviewer1", "text": "An extremely entertaining play by Shakespeare."},
                                    {"reviewer": "Reviewer2", "text": "Absolutely fun and entertaining."}]},
            "ratings": {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}, "podname": name},
            "details": {"id": 0, "author": "William Shakespeare", "year": 1595, "type": "paperback",
                        "pages": 200, "publisher": "PublisherA", "language": "English", "podname": name},
        }
        if app in bodies:
            return Answer(200, json.dumps(bodies[app]).encode() + b"\n", "application/json", name, "routed")
        return Answer(200, f"hello from {name}\n".encode(), "text/plain", name, "routed")


def _product_page(pod: str, reviews: Answer) -> bytes:
    if reviews.status == 200:
        served_by = json.loads(reviews.body)["podname"]
        section = f'<h4>Book Reviews</h4>\n<dl><dt>Reviews served by:</dt><dd><u>{served_by}</u></dd></dl>'
    else:
        section = "<h4>Error fetching product reviews</h4>\n<p>Sorry, product reviews are currently " \
                  "unavailable for this book.</p>"
    return (f"<!DOCTYPE html>\n<html><head><title>Simple Bookstore App</title></head><body>\n"
            f"<h3>The Comedy of Errors</h3>\n{section}\n<!-- productpage pod {pod} -->\n</body></html>\n").encode()


# ------------------------------------------------------------------------------------ cluster view

def _name(obj: dict) -> str:
    return obj["metadata"]["name"]


def _namespace(obj: dict) -> str:
    return obj["metadata"].get("namespace", "")


def _labels(obj: dict) -> dict:
    return obj["metadata"].get("labels") or {}


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _principal(pod: dict) -> str:
    account = pod["spec"].get("serviceAccountName") or "default"
    return f"spiffe://{TRUST_DOMAIN}/ns/{_namespace(pod)}/sa/{account}"


def _workload_labels(side: str, view: _View, pod: dict | None, namespace: str, principal: str | None) -> dict:
    """Istio's workload labels of one side of a request; "unknown" where there is no pod."""
    labels = _labels(pod) if pod else {}
    workload = view.workload_of(pod) if pod else "unknown"
    canonical = labels.get("service.istio.io/canonical-name") or labels.get("app") or workload
    return {
        f"{side}_workload": workload, f"{side}_workload_namespace": namespace if pod else "unknown",
        f"{side}_principal": principal or "unknown",
        f"{side}_canonical_service": canonical if pod else "unknown",
        f"{side}_canonical_revision": labels.get("service.istio.io/canonical-revision") or labels.get("version")
        or ("latest" if pod else "unknown"),
        f"{side}_app": labels.get("app", "unknown"), f"{side}_version": labels.get("version", "unknown"),
    }


def _selected(selector: Mapping | None, labels: Mapping) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class _View:
    """The objects the mesh reads, fetched from the store on demand for one request."""

    def __init__(self, store: ObjectStore):
        self.store = store

    def service(self, namespace: str, name: str) -> dict | None:
        return self.store.get("services", namespace, name)

    def pod(self, namespace: str, name: str) -> dict | None:
        return self.store.get("pods", namespace, name)

    def workload_of(self, pod: dict) -> str:
        """The pod's controller, following a ReplicaSet up to its Deployment; else the pod itself."""
        owners = pod["metadata"].get("ownerReferences") or []
        if not owners:
            return _name(pod)
        owner = owners[0]
        if owner.get("kind") == "ReplicaSet":
            replica_set = self.store.get("replicasets", _namespace(pod), owner["name"]) or {"metadata": {}}
            parents = replica_set["metadata"].get("ownerReferences") or []
            if parents:
                return parents[0]["name"]
        return owner["name"]

    def waypoint_pods(self, service: dict, waypoint: str) -> list[dict]:
        """Running pods of the waypoint (by its gateway-name label, in its namespace)."""
        namespace = self.store.get("namespaces", None, _namespace(service)) or {"metadata": {}}
        where = _labels(service).get("istio.io/use-waypoint-namespace") or \
            _labels(namespace).get("istio.io/use-waypoint-namespace") or _namespace(service)
        return sorted((pod for pod in self.store.list("pods", where)
                       if _labels(pod).get(GATEWAY_NAME_LABEL) == waypoint
                       and pod.get("status", {}).get("phase") == "Running"), key=_name)

    def service_for(self, host: str, port: int, caller_namespace: str) -> dict | None:
        """The Service a pod in `caller_namespace` reaches at host:port, as cluster DNS resolves it."""
        try:
            ip = str(ipaddress.ip_address(host))
        except ValueError:
            ip = None
        if ip:
            candidates = [s for s in self.store.list("services") if ip in (s["spec"].get("clusterIPs") or [])]
        else:
            labels = host.lower().rstrip(".").split(".")
            if len(labels) == 1:
                name, namespace = labels[0], caller_namespace
            elif len(labels) == 2 or ".".join(labels[2:]) in ("svc", CLUSTER_DOMAIN):
                name, namespace = labels[0], labels[1]
            else:
                return None
            found = self.service(namespace, name)
            candidates = [found] if found else []
        for service in candidates:
            if any(p.get("port") == port for p in service["spec"].get("ports") or []):
                return service
        return None

    def waypoint_for(self, service: dict) -> str | None:
        """The waypoint serving a Service (label on the Service, else its namespace), or None."""
        label = "istio.io/use-waypoint"
        value = _labels(service).get(label)
        if value is None:
            namespace = self.store.get("namespaces", None, _namespace(service)) or {"metadata": {}}
            value = _labels(namespace).get(label)
        return None if value in (None, "", "none") else value

    def ready_pods(self, service: dict) -> list[dict]:
        selector = service["spec"].get("selector")
        return [pod for pod in self.store.list("pods", _namespace(service))
                if _selected(selector, _labels(pod)) and pod.get("status", {}).get("phase") == "Running"
                and any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in pod.get("status", {}).get("conditions") or [])]

    def route_backends(self, service: dict) -> list[dict] | None:
        """backendRefs of the first rule of the HTTPRoute attached to the Service, or None."""
        for route in self.store.list("httproutes", _namespace(service)):
            for parent in route["spec"].get("parentRefs") or []:
                if parent.get("kind") == "Service" and parent.get("name") == _name(service) and \
                        parent.get("namespace", _namespace(route)) == _namespace(service):
                    for rule in route["spec"].get("rules") or []:
                        if rule.get("backendRefs"):
                            return rule["backendRefs"]
        return None

    def _policies(self, namespace: str) -> list[dict]:
        return self.store.list("authorizationpolicies", namespace)

    def waypoint_policies(self, service: dict, waypoint: str) -> list[dict]:
        """Policies the waypoint enforces for this Service: targetRefs naming it or the waypoint."""
        bound = []
        for policy in self._policies(_namespace(service)):
            for ref in policy.get("spec", {}).get("targetRefs") or []:
                if (ref.get("kind"), ref.get("name")) in (("Service", _name(service)), ("Gateway", waypoint)):
                    bound.append(policy)
                    break
        return bound

    def ztunnel_policies(self, pod: dict) -> list[dict]:
        """Policies ztunnel enforces for a pod: selector-bound to it, or namespace-wide."""
        bound = []
        for policy in self._policies(_namespace(pod)):
            spec = policy.get("spec", {})
            if spec.get("targetRefs"):
                continue
            selector = (spec.get("selector") or {}).get("matchLabels")
            if not spec.get("selector") or _selected(selector, _labels(pod)):
                bound.append(policy)
        return bound

    @staticmethod
    def allowed(policies: list[dict], caller: Caller, method: str, path: str, *, l7: bool) -> bool:
        """Istio's order: a matching DENY denies; with ALLOW policies, one must match; else allow."""
        by_action: dict[str, list[dict]] = {}
        for policy in policies:
            by_action.setdefault(policy.get("spec", {}).get("action", "ALLOW"), []).append(policy)
        if any(_policy_matches(p, caller, method, path, l7, deny=True) for p in by_action.get("DENY", [])):
            return False
        allows = by_action.get("ALLOW", [])
        return not allows or any(_policy_matches(p, caller, method, path, l7, deny=False) for p in allows)


def _policy_matches(policy: dict, caller: Caller, method: str, path: str, l7: bool, deny: bool) -> bool:
    rules = policy.get("spec", {}).get("rules")
    if rules is None:
        return False  # ALLOW without rules allows nothing; DENY without rules denies nothing
    return any(_rule_matches(rule or {}, caller, method, path, l7, deny) for rule in rules)


def _rule_matches(rule: dict, caller: Caller, method: str, path: str, l7: bool, deny: bool) -> bool:
    for source in rule.get("from") or []:
        s = source.get("source") or {}
        principal, namespace = caller.principal, caller.namespace if caller.enrolled else None
        if not (_field(s, "principals", principal) and _field(s, "namespaces", namespace)):
            return False
    for target in rule.get("to") or []:
        operation = target.get("operation") or {}
        layer7 = {k: v for k, v in operation.items() if k in ("methods", "notMethods", "paths", "notPaths", "hosts")}
        if layer7 and not l7:
            return deny  # ztunnel cannot see L7 fields: fail closed (DENY matches, ALLOW does not)
        if not (_field(operation, "methods", method) and _field(operation, "paths", path)):
            return False
    return True


def _field(spec: Mapping, key: str, value: str | None) -> bool:
    """Istio's string match: exact, `prefix*`, `*suffix` or `*`; `not<Key>` excludes."""
    positive = spec.get(key)
    negative = spec.get("not" + key[0].upper() + key[1:])
    if positive is not None and not (value is not None and any(_glob(p, value) for p in positive)):
        return False
    return not (negative and value is not None and any(_glob(p, value) for p in negative))


def _glob(pattern: str, value: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


# ------------------------------------------------------------------------------------ running curl

def _run(argv: list[str], env: dict[str, str], streams: ExecStreams, hang_up: threading.Event) -> int:
    """Run argv, streaming its output live; stop it when the client leaves or the stream is cut."""
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=env, start_new_session=True)
    except FileNotFoundError:
        raise ExecutableNotFound(argv[0]) from None
    pumps = [threading.Thread(target=_pump, args=(pipe, write), daemon=True)
             for pipe, write in ((process.stdout, streams.write_stdout), (process.stderr, streams.write_stderr))]
    for pump in pumps:
        pump.start()
    try:
        while process.poll() is None:
            if hang_up.is_set():
                streams.hang_up()
                break
            if streams.wait_closed(0.02):
                break
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        for pump in pumps:
            pump.join(timeout=2)
    return process.returncode


def _pump(pipe, write) -> None:
    fd = pipe.fileno()
    try:
        while chunk := os.read(fd, 65536):
            write(chunk)
    finally:
        pipe.close()


# ------------------------------------------------------------------------------------ the proxy

class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mesh: Mesh):
        self.mesh = mesh
        super().__init__(("127.0.0.1", 0), _ProxyConnection)


class _ProxyConnection(socketserver.BaseRequestHandler):
    """One client connection: HTTP/1.1 requests in absolute form, as curl sends them to a proxy."""

    server: _ProxyServer

    def handle(self) -> None:
        mesh = self.server.mesh
        connection, rng = mesh._new_connection()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = self.request.makefile("rb")
        while True:
            head = _read_head(reader)
            if head is None:
                return
            method, target, version, headers = head
            if method == "CONNECT":
                self._send(405, b"simulated mesh: https through the mesh is not simulated\n", "text/plain", True)
                return
            lookup = {k.lower(): v for k, v in headers}
            if lookup.get("transfer-encoding"):
                self._send(411, b"simulated mesh: send a Content-Length\n", "text/plain", True)
                return
            body = reader.read(int(lookup.get("content-length") or 0))
            found = mesh._exec_for(lookup.get("proxy-authorization"))
            answer = mesh._serve_from_pod(connection, rng, found[1] if found else None, method, target, headers, body)
            if answer.status is None:
                self._reset()
                return
            close = "close" in lookup.get("connection", "").lower() or version == "HTTP/1.0"
            self._send(answer.status, answer.body, answer.content_type, close)
            if close:
                return

    def _send(self, status: int, body: bytes, content_type: str, close: bool) -> None:
        phrase = {200: "OK", 403: "Forbidden", 405: "Method Not Allowed", 407: "Proxy Authentication Required",
                  411: "Length Required", 500: "Internal Server Error", 502: "Bad Gateway",
                  503: "Service Unavailable"}.get(status, "Status")
        head = (f"HTTP/1.1 {status} {phrase}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
                f"server: istio-envoy\r\n" + ("connection: close\r\n" if close else "") + "\r\n")
        self.request.sendall(head.encode("ascii") + body)

    def _reset(self) -> None:
        """Close with RST, as ztunnel does on an L4 denial: curl reports exit 56."""
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.request.close()


def _read_head(reader) -> tuple[str, str, str, list[tuple[str, str]]] | None:
    """Request line and headers, exactly as received (latin-1); None at the end of the connection."""
    line = reader.readline(_MAX_HEAD_BYTES)
    if not line:
        return None
    try:
        method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    except ValueError:
        return None
    headers: list[tuple[str, str]] = []
    while True:
        raw = reader.readline(_MAX_HEAD_BYTES)
        text = raw.decode("latin-1").rstrip("\r\n")
        if not text:
            return method, target, version, headers
        name, _, value = text.partition(":")
        headers.append((name, value.strip(" \t")))
