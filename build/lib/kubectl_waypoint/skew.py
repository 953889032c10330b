"""Judge every data-plane workload against its own control plane by the n-1 rule (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from .discovery import DEFAULT_REVISION, ControlPlane, DataPlaneWorkload, MeshInventory
from .versions import judge_skew

KIND_ORDER = {"waypoint": 0, "ztunnel": 1, "istio-cni": 2}


@dataclass
class SkewComponent:
    kind: str
    namespace: str
    workload: str
    pods: list[str]
    revision: str | None
    version: str | None
    control_plane_version: str | None
    control_plane: str | None  # "<namespace>/<revision>" of the istiod it is judged against
    minor_skew: int | None
    status: str  # ok | ahead | too-old | unknown
    message: str
    source: str


@dataclass
class SkewResult:
    control_planes: list[ControlPlane]
    components: list[SkewComponent]
    result: str  # pass | fail | inconclusive
    summary: str


def resolve_control_plane(revision: str | None, planes: list[ControlPlane],
                          tags: dict[str, str]) -> tuple[ControlPlane | None, str]:
    """The istiod a workload belongs to: its istio.io/rev (a revision or a tag), else the default."""
    by_revision = {}
    for plane in planes:
        by_revision.setdefault(plane.revision, plane)
    if revision:
        if revision in by_revision:
            return by_revision[revision], ""
        if revision in tags and tags[revision] in by_revision:
            return by_revision[tags[revision]], ""
        if revision in tags:
            return None, (f'revision tag "{revision}" points at revision "{tags[revision]}", '
                          "which no istiod Deployment runs")
        return None, f'revision "{revision}" matches no istiod Deployment and no revision tag'
    if DEFAULT_REVISION in by_revision:
        return by_revision[DEFAULT_REVISION], ""
    if DEFAULT_REVISION in tags and tags[DEFAULT_REVISION] in by_revision:
        return by_revision[tags[DEFAULT_REVISION]], ""
    if len(by_revision) == 1:
        return next(iter(by_revision.values())), ""
    if not planes:
        return None, "no istiod Deployment was found in any namespace"
    return None, ('it sets no istio.io/rev and there is no default revision or "default" revision tag '
                  "to judge it against")


def judge_component(workload: DataPlaneWorkload, planes: list[ControlPlane], tags: dict[str, str]) -> SkewComponent:
    plane, problem = resolve_control_plane(workload.revision, planes, tags)
    name = workload.kind if workload.kind != "waypoint" else f"waypoint {workload.namespace}/{workload.workload}"
    shown_version = workload.version.raw if workload.version else workload.version_text
    judgement = judge_skew(plane.version if plane else None, workload.version)
    if plane is None:
        message = f"{name}: {problem}; check its istio.io/rev label or annotation"
    elif not workload.pods:
        message = f"{name}: {workload.version_source}; check the Deployment and istiod's logs"
    elif workload.version is None:
        message = (f"{name}: version unknown ({workload.version_source}); "
                   "pin the image by tag, or check the version with istioctl proxy-status")
    elif plane.version is None:
        message = (f"{name}: the version of control plane {plane.namespace}/{plane.revision} is unknown "
                   f"({plane.version_source})")
    else:
        message = _rule_message(name, workload, plane, judgement.minor_skew or 0, judgement.status)
    return SkewComponent(
        kind=workload.kind, namespace=workload.namespace, workload=workload.workload,
        pods=sorted(p.name for p in workload.pods), revision=workload.revision,
        version=shown_version,
        control_plane_version=plane.version.raw if plane and plane.version else None,
        control_plane=f"{plane.namespace}/{plane.revision}" if plane else None,
        minor_skew=judgement.minor_skew, status=judgement.status, message=message,
        source=workload.version_source,
    )


def _minor(version) -> str:
    return f"{version.major}.{version.minor}"


def _rule_message(name: str, workload: DataPlaneWorkload, plane: ControlPlane, skew: int, status: str) -> str:
    dp, cp = _minor(workload.version), _minor(plane.version)
    against = f"control plane {cp} (revision {plane.revision})"
    if status == "ahead":
        return (f"{name} {dp} is ahead of {against}: upgrade the control plane first, "
                f"or roll {workload.kind} back to {cp}")
    if status == "too-old":
        fix = ("istiod should roll it after an InPlace upgrade: check the waypoint Deployment's rollout and istiod's logs"
               if workload.kind == "waypoint" else f"upgrade {workload.kind} to {cp} now")
        return (f"{name} {dp} is {skew} minor versions behind {against}, more than the one allowed: {fix}")
    if skew == 1:
        return f"{name} {dp} is one minor version behind {against}: allowed; upgrade it to {cp} to finish the upgrade"
    return f"{name} {dp} matches {against}"


def judge_inventory(inventory: MeshInventory) -> SkewResult:
    components = [judge_component(w, inventory.control_planes, inventory.tags) for w in inventory.data_plane]
    components.sort(key=lambda c: (KIND_ORDER.get(c.kind, 9), c.namespace, c.workload, c.version or ""))
    failed = [c for c in components if c.status in ("ahead", "too-old")]
    unknown = [c for c in components if c.status == "unknown"]
    if failed:
        result = "fail"
    elif unknown or not inventory.control_planes:
        result = "inconclusive"
    else:
        result = "pass"
    counts = ", ".join(
        f"{sum(1 for c in components if c.status == s)} {s}"
        for s in ("ok", "ahead", "too-old", "unknown") if any(c.status == s for c in components)
    )
    if not inventory.control_planes:
        summary = "no istiod Deployment (label app=istiod) was found in any namespace: is Istio installed, and is this the right --context?"
    elif not components:
        summary = "no waypoint, ztunnel or istio-cni workloads found"
        result = "inconclusive" if result == "pass" else result
    else:
        summary = f"{len(components)} data-plane workloads: {counts}"
    return SkewResult(inventory.control_planes, components, result, summary)
