"""What verify reads from the cluster, gathered lazily and at most once per run.

Each property is one read (or a few); a check asks only for what it judges, so `--only
routing` does not read istiod's sync status. Judging happens in judges.py, never here.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

from ..discovery import WAYPOINT, WAYPOINT_CLASS, MeshInventory, fetch_inventory
from ..errors import WaypointError
from ..kube import resources as r
from ..kube.client import Cluster, NotFound, PermissionDenied
from ..sync import ProxySync, parse_proxy_status, parse_syncz
from .probe_config import ProbeConfig

log = logging.getLogger(__name__)

USE_WAYPOINT = "istio.io/use-waypoint"
USE_WAYPOINT_NAMESPACE = "istio.io/use-waypoint-namespace"
SYNCZ_COMMAND = ["pilot-discovery", "request", "GET", "/debug/syncz"]


@dataclass
class VerifyOptions:
    client: str | None = None
    alpha: float = 0.001
    timeout_s: float = 5.0
    parallel: int = 4  # probes in flight at once (--parallel)
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
        return fetch_inventory(self.cluster, None)

    @functools.cached_property
    def gateway_api(self) -> bool:
        return self.cluster.has_api(r.GATEWAYS)

    @functools.cached_property
    def services(self) -> list[dict]:
        return self.cluster.list(r.SERVICES, self.namespace)

    @functools.cached_property
    def waypoint_gateways(self) -> dict[tuple[str, str], dict]:
        """Every Gateway of class istio-waypoint, by (namespace, name)."""
        return {(g["namespace"], g["name"]): g for g in self.inventory.waypoint_gateways
                if g["className"] == WAYPOINT_CLASS}

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
        """One labelled list per namespace with waypoints, not one read per waypoint."""
        found: dict[tuple[str, str], dict | None] = {(ref.namespace, ref.name): None for ref in self.waypoints}
        for namespace in sorted({ref.namespace for ref in self.waypoints}):
            for deployment in self.cluster.list(r.DEPLOYMENTS, namespace, label_selector=WAYPOINT.selector):
                key = (namespace, (deployment.get("metadata") or {}).get("name"))
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

    @functools.cached_property
    def sync(self) -> SyncSnapshot:
        """From --proxy-status-file when given, else from every istiod pod's /debug/syncz."""
        if self.options.proxy_status_text is not None:
            source = self.options.proxy_status_file or "<proxy-status>"
            records = parse_proxy_status(self.options.proxy_status_text, source)
            return SyncSnapshot({s.proxy: s for s in records}, f"file {source}", [], [source])
        records: dict[str, ProxySync] = {}
        problems, read_from = [], []
        for plane in self.inventory.control_planes:
            for pod in plane.pods:
                if pod.phase != "Running":
                    continue
                try:
                    result = self.cluster.exec(pod.namespace, pod.name, "discovery", SYNCZ_COMMAND, timeout=60)
                except PermissionDenied as exc:
                    problems.append(exc.message)
                    continue
                except WaypointError as exc:
                    problems.append(f"istiod pod {pod.namespace}/{pod.name}: {exc.message}")
                    continue
                if result.returncode != 0:
                    problems.append(f"istiod pod {pod.namespace}/{pod.name}: pilot-discovery request exited "
                                    f"{result.returncode}: {result.stderr.decode('utf-8', 'replace').strip()[:200]}")
                    continue
                try:
                    for record in parse_syncz(result.stdout, pod.name):
                        records.setdefault(record.proxy, record)
                    read_from.append(f"{pod.namespace}/{pod.name}")
                except WaypointError as exc:
                    problems.append(exc.message)
        return SyncSnapshot(records, "istiod /debug/syncz", problems, read_from)
