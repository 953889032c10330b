"""Find the mesh's control planes and data-plane workloads and read their versions.

Everything is found by label in every namespace, never by a fixed namespace (Helm puts ztunnel in
istio-system, Sail in `ztunnel`). Pods are reduced to small records page by page, so a DaemonSet
on thousands of nodes costs a few pages of requests and little memory. The judging is elsewhere
(skew.py); this module only gathers facts and says where each version was read from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import logs
from .kube import resources as r
from .kube.client import NotFound, PermissionDenied
from .ownership import (ADDRESS_ENV, DEFAULT as DEFAULT_REVISION, ISTIO_CNI_CLAIM, REV_LABEL, SELECTOR, TAG_LABEL,
                        Claim, revision_tags, waypoint_claim, ztunnel_claim)
from .versions import IstioVersion, parse_version, version_from_image

if TYPE_CHECKING:
    from .kube.client import Cluster

log = logs.getLogger(__name__)

# A Gateway is a waypoint when its GatewayClass names this controller, whatever the class is called
# (pilot/pkg/config/kube/gateway); the class names below are only what is assumed when classes
# cannot be read: Istio's default class and 1.31's experimental agentgateway waypoint class.
MESH_CONTROLLER = "istio.io/mesh-controller"
KNOWN_WAYPOINT_CLASSES = frozenset({"istio-waypoint", "istio-agentgateway-waypoint"})
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"


@dataclass(frozen=True)
class DataPlaneKind:
    """How one kind of data-plane workload is recognised and where its version lives."""

    name: str
    selector: str
    container: str
    alternatives: tuple[str, ...] = ()  # other names the proxy container has (agentgateway waypoints)

    @property
    def containers(self) -> tuple[str, ...]:
        return (self.container,) + self.alternatives


# istiod labels a waypoint's Deployment and pods gateway.istio.io/managed=<controller, "/" as "-">
# (manifests/charts/istio-control/istio-discovery/files/waypoint.yaml).
WAYPOINT = DataPlaneKind("waypoint", "gateway.istio.io/managed=istio.io-mesh-controller", "istio-proxy",
                         ("agentgateway",))
ZTUNNEL = DataPlaneKind("ztunnel", "app=ztunnel", "istio-proxy")
ISTIO_CNI = DataPlaneKind("istio-cni", "k8s-app=istio-cni-node", "install-cni")
DATA_PLANE_KINDS = (WAYPOINT, ZTUNNEL, ISTIO_CNI)
ISTIOD_SELECTOR = "app=istiod"
ISTIOD_CONTAINER = "discovery"


@dataclass
class PodRecord:
    """The few fields of a pod the checks need."""

    name: str
    namespace: str
    workload: str
    node: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    image: str | None
    status_image: str | None
    phase: str
    ready: bool
    restarts: int
    service_account: str | None
    started: str | None
    containers: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # of the chosen container: only istiod's addresses

    @property
    def revision(self) -> str | None:
        return self.labels.get(REV_LABEL) or self.annotations.get(REV_LABEL)


@dataclass
class ControlPlane:
    namespace: str
    revision: str
    deployment: str
    version: IstioVersion | None
    version_source: str
    replicas: int
    ready_replicas: int
    pods: list[PodRecord] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass
class DataPlaneWorkload:
    """Pods of one workload that run one version (a rollout in progress gives two of these)."""

    kind: str
    namespace: str
    workload: str
    claim: Claim  # what it says about its control plane (ownership.py)
    version: IstioVersion | None
    version_text: str | None  # what to show when the version could not be parsed
    version_source: str
    pods: list[PodRecord]

    @property
    def revision(self) -> str | None:
        """The revision or tag the workload names; None when it names none."""
        return self.claim.named_revision


@dataclass
class SailResources:
    """Sail operator custom resources, when the operator is installed."""

    istios: list[dict] = field(default_factory=list)
    revisions: list[dict] = field(default_factory=list)
    cnis: list[dict] = field(default_factory=list)
    ztunnels: list[dict] = field(default_factory=list)

    @property
    def installed(self) -> bool:
        return bool(self.istios or self.revisions or self.cnis or self.ztunnels)


@dataclass
class MeshInventory:
    control_planes: list[ControlPlane]
    tags: dict[str, str]  # tag -> revision
    data_plane: list[DataPlaneWorkload]
    sail: SailResources
    gateway_api: bool
    waypoint_gateways: list[dict]
    service_revisions: dict[tuple[str, str], str] = field(default_factory=dict)  # istiod Services' istio.io/rev


# -- reducing raw objects ------------------------------------------------------------------


def reduce_pod(pod: dict, container: str | tuple[str, ...] | None = None) -> PodRecord:
    """Keep what the checks read; `container` (or the first present of several) is whose image is the version."""
    meta, spec, status = _field(pod, "metadata"), _field(pod, "spec"), _field(pod, "status")
    containers = _entries(spec, "containers")
    statuses = _entries(status, "containerStatuses")
    names = (container,) if isinstance(container, str) else (container or ())
    chosen = next((c for c in (_by_name(containers, n) for n in names) if c), None) if names else \
        (containers[0] if containers else None)
    chosen_status = _by_name(statuses, (chosen or {}).get("name"))
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in _entries(status, "conditions")
    )
    return PodRecord(
        name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or ""),
        workload=_workload_name(meta),
        node=spec.get("nodeName"),
        labels=_str_map(meta.get("labels")),
        annotations=_str_map(meta.get("annotations")),
        image=_text((chosen or {}).get("image")),
        status_image=_text((chosen_status or {}).get("image")),
        phase=str(status.get("phase") or "Unknown"),
        ready=ready,
        restarts=sum(int(c.get("restartCount") or 0) for c in statuses if isinstance(c.get("restartCount"), int)),
        service_account=spec.get("serviceAccountName"),
        started=status.get("startTime"),
        containers=[str(c.get("name")) for c in containers],
        env={str(e.get("name")): e["value"] for e in _entries(chosen or {}, "env")
             if e.get("name") in ADDRESS_ENV and isinstance(e.get("value"), str)},
    )


def _by_name(items: list[dict], name: str | None) -> dict | None:
    return next((item for item in items if item.get("name") == name), None)


def _field(obj, key: str) -> dict:
    """obj[key] when it is a mapping, else {}: a malformed object must not end the run."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def _entries(obj, key: str) -> list[dict]:
    """The mappings in the list obj[key]; anything else there is ignored."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _str_map(value) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _workload_name(meta: dict) -> str:
    """The owning Deployment/DaemonSet name (a ReplicaSet name minus its pod-template-hash)."""
    labels = _field(meta, "labels")
    if labels.get(GATEWAY_NAME_LABEL):
        return str(labels[GATEWAY_NAME_LABEL])
    for owner in _entries(meta, "ownerReferences"):
        name = str(owner.get("name") or "")
        if owner.get("kind") == "ReplicaSet":
            pod_hash = str(labels.get("pod-template-hash") or "")
            if pod_hash and name.endswith("-" + pod_hash):
                return name[: -len(pod_hash) - 1]
            return name.rsplit("-", 1)[0] if "-" in name else name
        if name:
            return name
    return str(meta.get("name") or "")


def image_version(image: str | None, container: str) -> tuple[IstioVersion | None, str]:
    """The version an image tag carries, and a sentence saying where it was read."""
    if not image:
        return None, f"container {container} not found"
    version = version_from_image(image)
    if version is None:
        if "@" in image and ":" not in image.rsplit("/", 1)[-1].split("@", 1)[0]:
            return None, f"image {image} is pinned by digest only and carries no version"
        return None, f"image {image} of container {container} carries no version tag"
    return version, f"image tag of container {container} ({image})"


def pod_version(pod: PodRecord, container: str) -> tuple[IstioVersion | None, str]:
    """From the pod spec's image, else the image the kubelet reports running."""
    version, source = image_version(pod.image, container)
    if version is None and pod.status_image and pod.status_image != pod.image:
        running, running_source = image_version(pod.status_image, container)
        if running is not None:
            return running, running_source.replace("image tag", "running image tag")
    return version, source


# -- gathering -----------------------------------------------------------------------------


def fetch_inventory(cluster: "Cluster", namespace: str | None = None) -> MeshInventory:
    """Every control plane, and every data-plane workload (in `namespace`, or all when None).

    The first request goes alone (it connects, and runs a credential plugin if there is one);
    the reads after it depend on none another, and are made together (Cluster.together).
    """
    cluster.has_api(r.SAIL_ISTIOS)
    sail, (gateway_api, gateways), control_plane_objects, services, webhooks, *pods_of_kinds = (
        cluster.together([  # the longest chains first: Sail's (none if not installed), then 3, 2, 1 requests
            lambda: fetch_sail(cluster),
            lambda: fetch_waypoint_gateways(cluster, namespace),
            lambda: read_control_planes(cluster),
            lambda: fetch_istiod_services(cluster),
            lambda: fetch_tag_webhooks(cluster),
            *(lambda kind=kind: cluster.list(r.PODS, namespace, label_selector=kind.selector,
                                             transform=lambda pod, c=kind.containers: reduce_pod(pod, c))
              for kind in DATA_PLANE_KINDS),
        ]))
    service_revisions, tag_services = services
    tags = revision_tags(webhooks, tag_services)
    control_planes = control_planes_from(*control_plane_objects, sail)
    for cp in control_planes:
        cp.tags = sorted(tag for tag, rev in tags.items() if rev == cp.revision)
    data_plane: list[DataPlaneWorkload] = []
    for kind, pods in zip(DATA_PLANE_KINDS, pods_of_kinds):
        data_plane.extend(group_workloads(kind, pods, sail))
    data_plane.extend(_waypoints_without_pods(gateways, data_plane))
    _add_namespace_claims(cluster, data_plane)
    return MeshInventory(control_planes, tags, data_plane, sail, gateway_api, gateways, service_revisions)


def fetch_waypoint_gateways(cluster: "Cluster", namespace: str | None) -> tuple[bool, list[dict]]:
    """(whether the Gateway API is served, the Gateways of a waypoint class)."""
    if not cluster.has_api(r.GATEWAYS):
        return False, []
    classes = fetch_waypoint_classes(cluster)
    gateways = cluster.list(r.GATEWAYS, namespace, transform=_reduce_gateway)
    return True, [gateway for gateway in gateways if gateway["className"] in classes]


def fetch_waypoint_classes(cluster: "Cluster") -> frozenset[str]:
    """Names of the GatewayClasses whose controllerName is istio.io/mesh-controller.

    Where classes cannot be read (no permission), Istio's own waypoint class names are assumed.
    """
    try:
        classes = cluster.list(r.GATEWAY_CLASSES, transform=lambda o: (
            _field(o, "metadata").get("name"), _field(o, "spec").get("controllerName")))
    except PermissionDenied as exc:
        log.warning("%s; assuming the waypoint classes are %s", exc.message, ", ".join(sorted(KNOWN_WAYPOINT_CLASSES)))
        return KNOWN_WAYPOINT_CLASSES
    return frozenset(name for name, controller in classes if isinstance(name, str) and controller == MESH_CONTROLLER)


def _reduce_gateway(obj: dict) -> dict:
    meta, spec, status = _field(obj, "metadata"), _field(obj, "spec"), _field(obj, "status")
    return {
        "name": str(meta.get("name") or ""),
        "namespace": str(meta.get("namespace") or ""),
        "labels": _str_map(meta.get("labels")),
        "className": _text(spec.get("gatewayClassName")),
        "listeners": _entries(spec, "listeners"),
        "conditions": _entries(status, "conditions"),
    }


def _waypoints_without_pods(gateways: list[dict], found: list[DataPlaneWorkload]) -> list[DataPlaneWorkload]:
    """A waypoint Gateway with no pods has no version: say so instead of hiding it."""
    with_pods = {(w.namespace, w.workload) for w in found if w.kind == WAYPOINT.name}
    return [
        DataPlaneWorkload(WAYPOINT.name, g["namespace"], g["name"], waypoint_claim({}, g["labels"]), None, None,
                          "the Gateway has no running waypoint pods", [])
        for g in gateways if (g["namespace"], g["name"]) not in with_pods
    ]


def _add_namespace_claims(cluster: "Cluster", data_plane: list[DataPlaneWorkload]) -> None:
    """A waypoint naming no revision belongs to its namespace's istio.io/rev: read only those namespaces."""
    labels_of: dict[str, dict[str, str]] = {}
    for workload in data_plane:
        if workload.kind != WAYPOINT.name or workload.claim.kind != SELECTOR or workload.claim.value:
            continue
        if workload.namespace not in labels_of:
            labels_of[workload.namespace] = _namespace_labels(cluster, workload.namespace)
        workload.claim = waypoint_claim({}, {}, labels_of[workload.namespace])


def _namespace_labels(cluster: "Cluster", namespace: str) -> dict[str, str]:
    try:
        return _str_map(_field(cluster.get(r.NAMESPACES, namespace), "metadata").get("labels"))
    except (NotFound, PermissionDenied) as exc:
        log.debug("labels of namespace %s not read: %s", namespace, exc)
        return {}


def fetch_tag_webhooks(cluster: "Cluster") -> list[dict[str, str]]:
    """Labels of the MutatingWebhookConfigurations istio-revision-tag-<tag>."""
    return cluster.list(r.MUTATING_WEBHOOKS, label_selector=TAG_LABEL,
                        transform=lambda o: _str_map(_field(o, "metadata").get("labels")))


def fetch_istiod_services(cluster: "Cluster") -> tuple[dict[tuple[str, str], str], list[dict[str, str]]]:
    """Services labelled istio.io/rev: istiod's own (by (namespace, name) -> revision, where ztunnel's
    XDS_ADDRESS leads) and the revision tag Services istiod-revision-tag-<tag> (their labels).

    Optional: without permission to list Services, tags come from the webhooks alone and addresses
    are matched by name.
    """
    try:
        services = cluster.list(r.SERVICES, label_selector=REV_LABEL, transform=lambda o: _field(o, "metadata"))
    except PermissionDenied as exc:
        log.warning("%s; revision tags are read from webhooks only", exc.message)
        return {}, []
    revisions, tag_labels = {}, []
    for meta in services:
        labels = _str_map(meta.get("labels"))
        if labels.get(TAG_LABEL):
            tag_labels.append(labels)
        if labels.get("app") == "istiod" and labels.get(REV_LABEL):
            revisions[(str(meta.get("namespace") or ""), str(meta.get("name") or ""))] = labels[REV_LABEL]
    return revisions, tag_labels


def read_control_planes(cluster: "Cluster") -> tuple[list[dict], list[PodRecord]]:
    """istiod's Deployments and pods, in every namespace."""
    deployments = cluster.list(r.DEPLOYMENTS, label_selector=ISTIOD_SELECTOR)
    pods = cluster.list(r.PODS, label_selector=ISTIOD_SELECTOR,
                        transform=lambda pod: reduce_pod(pod, ISTIOD_CONTAINER))
    return deployments, pods


def control_planes_from(deployments: list[dict], pods: list[PodRecord], sail: SailResources) -> list[ControlPlane]:
    """Every istiod Deployment, with its revision and version."""
    sail_versions = {
        _field(rev, "metadata").get("name"): _text(_field(rev, "spec").get("version"))
        for rev in sail.revisions
    }
    planes = []
    for deployment in deployments:
        meta, spec, status = _field(deployment, "metadata"), _field(deployment, "spec"), _field(deployment, "status")
        template = _field(spec, "template")
        template_labels = _str_map(_field(template, "metadata").get("labels"))
        revision = _str_map(meta.get("labels")).get(REV_LABEL) or template_labels.get(REV_LABEL) or DEFAULT_REVISION
        containers = _entries(_field(template, "spec"), "containers")
        container = _by_name(containers, ISTIOD_CONTAINER) or (containers[0] if containers else {})
        version, source = image_version(_text(container.get("image")), ISTIOD_CONTAINER)
        namespace = str(meta.get("namespace") or "")
        own_pods = [p for p in pods if p.namespace == namespace and (p.revision or DEFAULT_REVISION) == revision]
        if version is None:
            version, source = _fallback_version(own_pods, sail_versions.get(revision), f"IstioRevision {revision}", source)
        planes.append(ControlPlane(
            namespace=namespace, revision=revision, deployment=str(meta.get("name") or ""),
            version=version, version_source=source,
            replicas=_int(spec.get("replicas"), 1), ready_replicas=_int(status.get("readyReplicas"), 0),
            pods=own_pods,
        ))
    planes.sort(key=lambda cp: (cp.namespace, cp.revision))
    return planes


def _fallback_version(pods: list[PodRecord], sail_version: str | None, sail_name: str,
                      source: str) -> tuple[IstioVersion | None, str]:
    for pod in pods:
        version, pod_source = pod_version(pod, ISTIOD_CONTAINER)
        if version is not None:
            return version, f"pod {pod.name}: {pod_source}"
    if sail_version:
        version = parse_version(sail_version)
        if version is not None:
            return version, f"Sail {sail_name} spec.version ({sail_version})"
    return None, source


def fetch_sail(cluster: "Cluster") -> SailResources:
    """Sail operator resources; an empty record when the operator is not installed."""
    found = SailResources()
    if not cluster.has_api(r.SAIL_ISTIOS):
        return found
    found.istios = cluster.list(r.SAIL_ISTIOS)
    for attr, resources in (("revisions", (r.SAIL_REVISIONS,)), ("cnis", (r.SAIL_CNIS,)),
                            ("ztunnels", (r.SAIL_ZTUNNELS, r.SAIL_ZTUNNELS_V1ALPHA1))):
        served = next((resource for resource in resources if cluster.has_api(resource)), None)
        if served is not None:
            setattr(found, attr, cluster.list(served))
    return found


def group_workloads(kind: DataPlaneKind, pods: list[PodRecord], sail: SailResources) -> list[DataPlaneWorkload]:
    """One entry per workload, version and owner claim, so 5,000 ztunnel pods on one version are one line."""
    groups: dict[tuple, DataPlaneWorkload] = {}
    for pod in pods:
        version, source = pod_version(pod, _chosen_name(pod, kind))
        if version is None:
            version, source = _sail_version(kind, pod.namespace, sail, source)
        claim = claim_of(kind, pod)
        key = (pod.namespace, pod.workload, version.raw if version else None, claim)
        group = groups.get(key)
        if group is None:
            group = groups[key] = DataPlaneWorkload(
                kind.name, pod.namespace, pod.workload, claim, version,
                None if version else _tag_text(pod.image), source, [],
            )
        group.pods.append(pod)
    return list(groups.values())


def _chosen_name(pod: PodRecord, kind: DataPlaneKind) -> str:
    """Which of the kind's container names this pod has (for messages)."""
    return next((name for name in kind.containers if name in pod.containers), kind.container)


def claim_of(kind: DataPlaneKind, pod: PodRecord) -> Claim:
    """What a pod says about its control plane (ownership.py has the rules)."""
    if kind.name == WAYPOINT.name:
        return waypoint_claim(pod.annotations, pod.labels)
    if kind.name == ZTUNNEL.name:
        return ztunnel_claim(pod.annotations, pod.env)
    return ISTIO_CNI_CLAIM


def _sail_version(kind: DataPlaneKind, namespace: str, sail: SailResources,
                  source: str) -> tuple[IstioVersion | None, str]:
    """Sail's IstioCNI / ZTunnel spec.version, for pods whose image says nothing."""
    crs, cr_kind, default_ns = {
        ZTUNNEL.name: (sail.ztunnels, "ZTunnel", "ztunnel"),
        ISTIO_CNI.name: (sail.cnis, "IstioCNI", "istio-cni"),
    }.get(kind.name, ([], "", ""))
    for cr in crs:
        spec = _field(cr, "spec")
        if (spec.get("namespace") or default_ns) == namespace and spec.get("version"):
            version = parse_version(str(spec["version"]))
            if version is not None:
                name = _field(cr, "metadata").get("name")
                return version, f"{source}; version from Sail {cr_kind} {name} spec.version ({spec['version']})"
    return None, source


def _tag_text(image: str | None) -> str | None:
    if not image:
        return None
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "@" + last.split("@", 1)[1][:19]
    return last.split(":", 1)[1] if ":" in last else None


def _int(value, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
