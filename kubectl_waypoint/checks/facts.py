"""What verify reads from the cluster, gathered lazily and at most once per run.

Each property is one read (or a few); a check asks only for what it judges, so `--only
routing` does not read istiod's sync status. Judging happens in judges.py, never here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from .. import logs
from ..discovery import GATEWAY_NAME_LABEL, WAYPOINT, MeshInventory, fetch_inventory
from ..errors import WaypointError
from ..kube import resources as r
from ..kube.client import Cluster, NotFound, PermissionDenied
from ..envoystats import ProxyXds, read_proxy_xds
from ..prometheus import PROXY_CONTAINER, STATS_COMMAND
from ..sync import DebugEndpointOff, ProxySync, parse_istiod_version, parse_proxy_status, parse_syncz
from .probe_config import ProbeConfig

log = logs.getLogger(__name__)

USE_WAYPOINT = "istio.io/use-waypoint"
USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace"
SYNCZ_COMMAND = ["pilot-discovery", "request", "GET", "/debug/syncz"]
VERSION_COMMAND = ["pilot-discovery", "request", "GET", "/version"]
ISTIOD_CONTAINER = "discovery"


@dataclass
class VerifyOptions:
    client: str | None = None
    alpha: float = 0.001
    timeout_s: float = 5.0
    parallel: int = 4  # probes in flight at once (--parallel)
    # A route's sequential test stops near 130-250 requests when healthy; at a cap of 450, 3-5% of
    # healthy 50/50 and three-way routes ended undecided (exit 4), at 900 about 0.2% (docs/statistics.md).
    max_requests: int = 900
    fleet_size: int = 1  # namespaces sharing the run's alpha (verify -A); `alpha` is already this one's share
    probe_config: ProbeConfig = field(default_factory=ProbeConfig)
    proxy_status_file: str | None = None
    proxy_status_text: str | None = None


@dataclass(frozen=True)
class WaypointRef:
    """A waypoint that serves the namespace, and who said so."""

    namespace: str
    name: str
    sources: tuple[str, ...]


@dataclass
class SyncSnapshot:
    """Sync records by proxy ("<pod>.<namespace>"), where they came from, and what could not be read."""

    records: dict[str, ProxySync]
    source: str
    problems: list[str]
    read_from: list[str]
    debug_off: list[str] = field(default_factory=list)  # istiod pods answering 404 (ENABLE_DEBUG_ON_HTTP=false)

    @property
    def complete(self) -> bool:
        """Every istiod answered, so a proxy missing from the records is connected to none."""
        return not self.problems


@dataclass(frozen=True)
class IstiodVersion:
    """An istiod pod's version as it reports it (/version), beside the one its image tag claims."""

    pod: str
    namespace: str
    reported: str | None
    image: str | None
    problem: str | None  # why /version could not be read


def waypoint_of(labels: dict, default_namespace: str) -> tuple[str, str] | None:
    """The (namespace, name) an istio.io/use-waypoint label points at; None for unset or "none"."""
    name = (labels or {}).get(USE_WAYPOINT)
    if not name or name == "none":
        return None
    return (labels.get(USE_WAYPOINT_NAMESPACE) or default_namespace, name)


class VerifyFacts:
    def __init__(self, cluster: Cluster, namespace: str, options: VerifyOptions):
        self.cluster = cluster
        self.namespace = namespace
        self.options = options

    def _cluster_wide(self, name: str, compute):
        """A fact about the whole cluster: read once per run, or once for every namespace of `verify -A`
        (whose SharedReads, in checks/fleet.py, keeps it)."""
        once = getattr(self.cluster, "once", None)
        return once((name,), compute) if once else compute()

    @functools.cached_property
    def namespace_object(self) -> dict | None:
        try:
            return self.cluster.get(r.NAMESPACES, self.namespace)
        except NotFound:
            return None

    @functools.cached_property
    def namespace_labels(self) -> dict:
        return ((self.namespace_object or {}).get("metadata") or {}).get("labels") or {}

    @functools.cached_property
    def inventory(self) -> MeshInventory:
        return self._cluster_wide("inventory", lambda: fetch_inventory(self.cluster, None))

    @functools.cached_property
    def gateway_api(self) -> bool:
        return self.cluster.has_api(r.GATEWAYS)

    @functools.cached_property
    def services(self) -> list[dict]:
        return self.cluster.list(r.SERVICES, self.namespace)

    @functools.cached_property
    def waypoint_gateways(self) -> dict[tuple[str, str], dict]:
        """Every waypoint Gateway (its class's controller is istio.io/mesh-controller), by (namespace, name)."""
        return {(g["namespace"], g["name"]): g for g in self.inventory.waypoint_gateways}

    @functools.cached_property
    def waypoints(self) -> list[WaypointRef]:
        """Waypoints serving the namespace: its label, its services' labels, Gateways inside it."""
        sources: dict[tuple[str, str], list[str]] = {}
        own = waypoint_of(self.namespace_labels, self.namespace)
        if own:
            sources.setdefault(own, []).append(f"namespace label {USE_WAYPOINT}={own[1]}")
        for service in self.services:
            meta = service.get("metadata") or {}
            ref = waypoint_of(meta.get("labels") or {}, self.namespace)
            if ref:
                sources.setdefault(ref, []).append(f"service {meta.get('name')} label {USE_WAYPOINT}={ref[1]}")
        for (namespace, name) in self.waypoint_gateways:
            if namespace == self.namespace:
                sources.setdefault((namespace, name), []).append("Gateway in the namespace")
        return [WaypointRef(ns, name, tuple(why)) for (ns, name), why in sorted(sources.items())]

    def service_waypoint(self, service: dict) -> tuple[str, str] | None:
        """The waypoint a Service's traffic goes through: its own label first, then the namespace's."""
        labels = (service.get("metadata") or {}).get("labels") or {}
        if labels.get(USE_WAYPOINT):
            return waypoint_of(labels, self.namespace)
        return waypoint_of(self.namespace_labels, self.namespace)

    def service(self, name: str) -> dict | None:
        return next((s for s in self.services if (s.get("metadata") or {}).get("name") == name), None)

    @functools.cached_property
    def waypoint_deployments(self) -> dict[tuple[str, str], dict | None]:
        """One labelled list per namespace with waypoints, not one read per waypoint; a Deployment is
        its Gateway's by the gateway-name label, not by name (gateway.istio.io/name-override renames it)."""
        found: dict[tuple[str, str], dict | None] = {(ref.namespace, ref.name): None for ref in self.waypoints}
        for namespace in sorted({ref.namespace for ref in self.waypoints}):
            for deployment in self.cluster.list(r.DEPLOYMENTS, namespace, label_selector=WAYPOINT.selector):
                labels = (deployment.get("metadata") or {}).get("labels") or {}
                key = (namespace, labels.get(GATEWAY_NAME_LABEL))
                if key in found:
                    found[key] = deployment
        return found

    def waypoint_pods(self, ref: WaypointRef) -> list:
        return [pod for w in self.inventory.data_plane
                if w.kind == "waypoint" and (w.namespace, w.workload) == (ref.namespace, ref.name)
                for pod in w.pods]

    @functools.cached_property
    def httproutes(self) -> list[dict]:
        if not self.cluster.has_api(r.HTTPROUTES):
            return []
        return self.cluster.list(r.HTTPROUTES, self.namespace)

    @functools.cached_property
    def authorization_policies(self) -> list[dict]:
        if not self.cluster.has_api(r.AUTHORIZATION_POLICIES):
            return []
        return self.cluster.list(r.AUTHORIZATION_POLICIES, self.namespace)

    @functools.cached_property
    def client_candidates(self) -> list:
        """Ready, mesh-enrolled pods usable as probe clients: the namespace's own first, then the
        namespaces the authorization policies name (allowed clients often live elsewhere, like curl)."""
        from ..probe.engine import find_client_pods
        from .traffic import principal_namespaces

        namespaces = [self.namespace] + sorted(principal_namespaces(self.authorization_policies) - {self.namespace})
        return [pod for ns in namespaces for pod in find_client_pods(self.cluster, namespace=ns)]

    def _exec(self, what: str, namespace: str, pod: str, container: str, command: list[str]) -> bytes:
        """stdout of a command in a pod; WaypointError with one sentence naming the pod otherwise."""
        subject = f"{what} {namespace}/{pod}"
        try:
            result = self.cluster.exec(namespace, pod, container, command, timeout=60)
        except PermissionDenied:
            raise WaypointError(
                f"cannot exec into {subject}: a WebSocket exec needs get (and from Kubernetes 1.35 also create) on "
                f'pods/exec in namespace "{namespace}"; grant get and create on pods/exec') from None
        except WaypointError as exc:
            raise WaypointError(f"{subject}: {exc.message}") from None
        if result.returncode != 0:
            raise WaypointError(f"{subject}: {' '.join(command[:2])} exited {result.returncode}: "
                                f"{result.stderr.decode('utf-8', 'replace').strip()[:200]}")
        return result.stdout

    def _running_istiods(self):
        return [pod for plane in self.inventory.control_planes for pod in plane.pods if pod.phase == "Running"]

    @functools.cached_property
    def curl(self):
        """Which client containers run curl, asked once per container for the whole run."""
        from .clients import CurlCapability

        return self._cluster_wide("curl", lambda: CurlCapability(self.cluster))

    @functools.cached_property
    def sync(self) -> SyncSnapshot:
        return self._cluster_wide("sync", self._read_sync)

    def _read_sync(self) -> SyncSnapshot:
        """From --proxy-status-file when given, else from every istiod pod's /debug/syncz."""
        if self.options.proxy_status_text is not None:
            source = self.options.proxy_status_file or "<proxy-status>"
            records = parse_proxy_status(self.options.proxy_status_text, source)
            return SyncSnapshot({s.proxy: s for s in records}, f"file {source}", [], [source])
        snapshot = SyncSnapshot({}, "istiod /debug/syncz", [], [])
        for pod in self._running_istiods():
            try:
                answer = self._exec("istiod pod", pod.namespace, pod.name, ISTIOD_CONTAINER, SYNCZ_COMMAND)
                for record in parse_syncz(answer, pod.name):
                    snapshot.records.setdefault(record.proxy, record)
            except DebugEndpointOff as exc:
                snapshot.debug_off.append(f"{pod.namespace}/{pod.name}")
                snapshot.problems.append(exc.message)
            except WaypointError as exc:
                snapshot.problems.append(exc.message)
            else:
                snapshot.read_from.append(f"{pod.namespace}/{pod.name}")
        return snapshot

    @functools.cached_property
    def istiod_versions(self) -> dict[str, IstiodVersion]:
        return self._cluster_wide("istiod_versions", self._read_istiod_versions)

    def _read_istiod_versions(self) -> dict[str, IstiodVersion]:
        """Each running istiod pod's own version (by pod name): from its /version, or with
        --proxy-status-file from the identifier in the file (no exec, as the user asked)."""
        versions = {}
        for pod in self._running_istiods():
            reported, problem = None, None
            if self.options.proxy_status_text is not None:
                reported = next((r.istiod_version for r in self.sync.records.values()
                                 if r.istiod == pod.name and r.istiod_version), None)
                problem = None if reported else "its version is not in the proxy-status file (-o json carries it)"
                versions[pod.name] = IstiodVersion(pod.name, pod.namespace, reported, pod.image, problem)
                continue
            try:
                answer = self._exec("istiod pod", pod.namespace, pod.name, ISTIOD_CONTAINER, VERSION_COMMAND)
                reported = parse_istiod_version(answer, pod.name)
            except WaypointError as exc:
                problem = exc.message
            versions[pod.name] = IstiodVersion(pod.name, pod.namespace, reported, pod.image, problem)
        return versions

    @functools.cached_property
    def _proxy_xds(self) -> dict[tuple[str, str], ProxyXds | WaypointError]:
        return {}

    def proxy_xds(self, pod) -> ProxyXds:
        """A waypoint pod's xDS state from its own Envoy stats (read once); WaypointError if unreadable."""
        key = (pod.namespace, pod.name)
        if key not in self._proxy_xds:
            try:
                answer = self._exec("waypoint pod", pod.namespace, pod.name, PROXY_CONTAINER, STATS_COMMAND)
                self._proxy_xds[key] = read_proxy_xds(answer.decode("utf-8", "replace"), pod.name, pod.namespace)
            except WaypointError as exc:
                self._proxy_xds[key] = exc
        found = self._proxy_xds[key]
        if isinstance(found, WaypointError):
            raise found
        return found
