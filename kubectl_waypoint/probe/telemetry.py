"""Who served a probe's requests, as the waypoint itself counted them.

Waypoints report `istio_requests_total{reporter="waypoint"}` with the source and destination
workload of every request (Istio's pilot/pkg/model/telemetry.go). Read from every pod of the
waypoint in front of the route (`pilot-agent request GET stats/prometheus` in its `istio-proxy`
container) before the probe and after each batch, the increase of the counters whose source is
the probe client's workload, per `destination_workload`, says which backend served, whatever the
application answers. Requests the waypoint failed itself carry `response_flags` (UH, UF, NR, ...).

Anything that keeps the counters from being trusted (no waypoint, no permission to exec, text
that is not Prometheus, other pods of the client's workload sending to the same backends) raises
TelemetryUnavailable with the reason; the probe then reads the response bodies instead.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..errors import WaypointError
from ..kube.client import ExecFailed, NotFound, PermissionDenied
from ..kube.resources import HTTPROUTES, NAMESPACES, PODS, SERVICES
from ..prometheus import PROXY_CONTAINER, STATS_COMMAND, MetricsError, parse
from .expectations import Served

REQUESTS_METRIC = "istio_requests_total"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
USE_WAYPOINT = "istio.io/use-waypoint"
USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace"
NO_FLAGS = ("-", "")
# The counters are updated when the waypoint logs a request, just after the client got its answer.
SETTLE_READS = 3
SETTLE_PAUSE_S = 0.2



class TelemetryUnavailable(Exception):
    """The waypoint's counters cannot say who served; `reason` is one sentence for the report."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ------------------------------------------------------------------------------------ parsing (pure)

def parse_requests_total(text: str) -> list[tuple[dict[str, str], float]]:
    """The `istio_requests_total` samples of Prometheus text: (labels, value).

    Every line is checked, so an answer that is not Prometheus text at all (an error page, a cut
    stream) is refused rather than read as "no requests".
    """
    try:
        samples = parse(text)
    except MetricsError as error:
        raise TelemetryUnavailable(f"line {error.line} of the waypoint's metrics {error.problem} "
                                   f"({error.shown!r})") from None
    return [(dict(s.labels), s.value) for s in samples if s.name == REQUESTS_METRIC]


def workload_name(pod: dict) -> str:
    """The workload Istio names a pod after: its Deployment (ReplicaSet minus the template hash), else its owner."""
    meta = pod.get("metadata") or {}
    owners = [o for o in meta.get("ownerReferences") or [] if o.get("controller")] or meta.get("ownerReferences") or []
    if not owners:
        return meta.get("name", "")
    owner = owners[0]
    template_hash = (meta.get("labels") or {}).get("pod-template-hash")
    if owner.get("kind") == "ReplicaSet" and template_hash and owner["name"].endswith("-" + template_hash):
        return owner["name"][: -len(template_hash) - 1]
    return owner.get("name", "")


@dataclass(frozen=True)
class Snapshot:
    """The client's requests through the waypoint so far: counts by (destination namespace, workload, flags)."""

    ours: Counter
    others: float  # requests from every other source


def snapshot(texts: Mapping[str, str], source_workload: str, source_namespace: str) -> Snapshot:
    """Sum the waypoint pods' counters (keyed by pod, so a restarted pod's reset shows)."""
    ours: Counter = Counter()
    others = 0.0
    for pod, text in texts.items():
        for labels, value in parse_requests_total(text):
            if labels.get("reporter") != "waypoint":
                continue
            if (labels.get("source_workload"), labels.get("source_workload_namespace")) == \
                    (source_workload, source_namespace):
                key = (pod, labels.get("destination_workload_namespace", ""), labels.get("destination_workload", ""),
                       labels.get("response_flags", "-") not in NO_FLAGS)
                ours[key] += value
            else:
                others += value
    return Snapshot(ours, others)


def served_between(before: Snapshot, after: Snapshot, backends: Mapping[tuple[str, str], str]) -> Served:
    """Per backend, how many of the client's requests the waypoint sent there between two snapshots.

    A counter that went down belongs to a restarted waypoint pod: its new value is the increase.
    """
    served: Counter = Counter()
    failures, elsewhere = 0, Counter()
    for key, value in after.ours.items():
        pod, namespace, workload, flagged = key
        increase = value - before.ours.get(key, 0.0)
        if increase < 0:
            increase = value
        if not increase:
            continue
        backend = backends.get((namespace, workload))
        if flagged and (backend is not None or workload in ("", "unknown")):
            failures += int(increase)
        elif backend is not None:
            served[backend] += int(increase)
        elif not flagged:
            elsewhere[f"{namespace}/{workload}"] += int(increase)
    notes = []
    if elsewhere:
        where = ", ".join(f"{name} x{n}" for name, n in sorted(elsewhere.items()))
        notes.append(f"The waypoint also counted requests from the client's workload to workloads outside the "
                     f"split ({where}); they were not counted.")
    foreign = after.others - before.others
    if foreign > 0:
        notes.append(f"The waypoint served {int(foreign)} requests from other clients meanwhile; only the "
                     "probe client's were counted.")
    return Served(dict(served), failures, tuple(notes))


# ------------------------------------------------------------------------------------ reading (I/O)

@dataclass
class Telemetry:
    """The waypoint pods in front of a route and the workloads behind its backends."""

    cluster: object
    waypoint: str  # namespace/name, for messages
    pods: list[str]  # namespace/name of each waypoint pod
    source_workload: str
    source_namespace: str
    backends: Mapping[tuple[str, str], str]  # (namespace, workload) -> backend name
    sleep: Callable[[float], None] = time.sleep
    _baseline: Snapshot | None = field(default=None, init=False)

    def start(self) -> None:
        self._baseline = self._read()

    def served(self, answered: int) -> Served:
        """The client's requests the waypoint counted since start(); waits briefly for late counts."""
        if self._baseline is None:
            raise RuntimeError("start() first")
        for attempt in range(SETTLE_READS):
            result = served_between(self._baseline, self._read(), self.backends)
            counted = sum(result.backends.values()) + result.waypoint_failures
            if counted > answered:
                raise TelemetryUnavailable(
                    f"waypoint {self.waypoint} counted {counted} requests from workload "
                    f"{self.source_namespace}/{self.source_workload} for {answered} answered by the probe, so other "
                    "pods of that workload send there too")
            if counted == answered:
                return result
            if attempt < SETTLE_READS - 1:
                self.sleep(SETTLE_PAUSE_S)
        if answered and not counted:
            raise TelemetryUnavailable(
                f"waypoint {self.waypoint} counted none of the {answered} answered requests from workload "
                f"{self.source_namespace}/{self.source_workload}, so it is not the proxy that served them")
        return result

    def _read(self) -> Snapshot:
        texts = {}
        for pod in self.pods:
            namespace, name = pod.split("/", 1)
            try:
                result = self.cluster.exec(namespace, name, PROXY_CONTAINER, STATS_COMMAND, timeout=30)
            except PermissionDenied:
                raise TelemetryUnavailable(f"no permission to exec into waypoint pod {pod} (needs get and create "
                                           f"on pods/exec in namespace {namespace})") from None
            except (ExecFailed, NotFound, WaypointError) as error:
                raise TelemetryUnavailable(f"could not read the metrics of waypoint pod {pod} "
                                           f"({getattr(error, 'message', error)})") from None
            if result.returncode != 0:
                said = result.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
                raise TelemetryUnavailable(f"pilot-agent in waypoint pod {pod} exited {result.returncode}"
                                           + (f" ({said[0][:120]})" if said else ""))
            texts[pod] = result.stdout.decode("utf-8", "replace")
        return snapshot(texts, self.source_workload, self.source_namespace)


def for_route(cluster, namespace: str, route: str, client_workload: str, client_namespace: str,
              backends: Iterable[str]) -> Telemetry:
    """Telemetry of the waypoint in front of HTTPRoute namespace/route (its Service parentRef's)."""
    try:
        document = cluster.get(HTTPROUTES, route, namespace)
    except (NotFound, WaypointError):
        raise TelemetryUnavailable(f"HTTPRoute {namespace}/{route} could not be read") from None
    for parent in (document.get("spec") or {}).get("parentRefs") or []:
        if parent.get("kind") == "Service" and parent.get("group", "") in ("", "core"):
            service = _service(cluster, parent.get("namespace", namespace), parent["name"])
            return _for_service(cluster, service, client_workload, client_namespace, namespace, backends)
    raise TelemetryUnavailable(f"HTTPRoute {namespace}/{route} has no Service parent, so no waypoint is in front of it")


def for_url(cluster, url: str, client_workload: str, client_namespace: str, backends: Iterable[str]) -> Telemetry:
    """Telemetry of the waypoint in front of the Service the URL's host names (svc, svc.ns, svc.ns.svc...)."""
    host = (urlsplit(url if "://" in url else "http://" + url).hostname or "").rstrip(".")
    labels = host.split(".")
    if len(labels) == 1:
        name, namespace = labels[0], client_namespace
    elif len(labels) == 2 or ".".join(labels[2:]) in ("svc", "svc.cluster.local"):
        name, namespace = labels[0], labels[1]
    else:
        raise TelemetryUnavailable(f"the URL's host {host} names no Service, so its waypoint is unknown")
    service = _service(cluster, namespace, name)
    return _for_service(cluster, service, client_workload, client_namespace, namespace, backends)


def _service(cluster, namespace: str, name: str) -> dict:
    try:
        return cluster.get(SERVICES, name, namespace)
    except (NotFound, WaypointError):
        raise TelemetryUnavailable(f"Service {namespace}/{name} could not be read") from None


def _for_service(cluster, service: dict, client_workload: str, client_namespace: str, backend_namespace: str,
                 backends: Iterable[str]) -> Telemetry:
    meta = service["metadata"]
    where = f"{meta['namespace']}/{meta['name']}"
    try:
        namespace_labels = (cluster.get(NAMESPACES, meta["namespace"]).get("metadata") or {}).get("labels") or {}
    except (NotFound, WaypointError):
        namespace_labels = {}
    labels = meta.get("labels") or {}
    waypoint = labels.get(USE_WAYPOINT) or namespace_labels.get(USE_WAYPOINT)
    if waypoint in (None, "", "none"):
        raise TelemetryUnavailable(f"Service {where} uses no waypoint ({USE_WAYPOINT} is not set)")
    waypoint_namespace = labels.get(USE_WAYPOINT_NAMESPACE) or namespace_labels.get(USE_WAYPOINT_NAMESPACE) \
        or meta["namespace"]
    pods = _list(cluster, PODS, waypoint_namespace, f"{GATEWAY_NAME_LABEL}={waypoint}", "status.phase=Running")
    if not pods:
        raise TelemetryUnavailable(f"waypoint {waypoint_namespace}/{waypoint} has no running pod")
    return Telemetry(cluster, f"{waypoint_namespace}/{waypoint}",
                     [f"{waypoint_namespace}/{p['metadata']['name']}" for p in pods],
                     client_workload, client_namespace,
                     backend_workloads(cluster, backend_namespace, backends))


def backend_workloads(cluster, namespace: str, backends: Iterable[str]) -> dict[tuple[str, str], str]:
    """(namespace, workload) -> backend Service, from the pods each backend selects; one workload, one backend."""
    found: dict[tuple[str, str], str] = {}
    for backend in backends:
        selector = (_service(cluster, namespace, backend).get("spec") or {}).get("selector") or {}
        if not selector:
            continue
        query = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        for pod in _list(cluster, PODS, namespace, query, None):
            key = (namespace, workload_name(pod))
            if found.setdefault(key, backend) != backend:
                raise TelemetryUnavailable(f"workload {key[0]}/{key[1]} is behind both {found[key]} and {backend}, "
                                           "so the waypoint's counts cannot tell them apart")
    if not found:
        raise TelemetryUnavailable(f"no pods are behind the backends ({', '.join(backends)})")
    return found


def _list(cluster, resource, namespace: str, label_selector: str, field_selector: str | None) -> list[dict]:
    try:
        return cluster.list(resource, namespace, label_selector=label_selector, field_selector=field_selector)
    except PermissionDenied:
        raise TelemetryUnavailable(f"no permission to list {resource.plural} in namespace {namespace}") from None
    except WaypointError as error:
        raise TelemetryUnavailable(f"could not list {resource.plural} in namespace {namespace} "
                                   f"({error.message})") from None
