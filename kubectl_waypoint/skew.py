"""Judge every data-plane workload against its own control plane by the n-1 rule (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from .discovery import ControlPlane, DataPlaneWorkload, MeshInventory
from .ownership import EVERY, ControlPlaneIndex
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
    owner_source: str = ""  # where its control plane was read (ownership.Claim.via)


@dataclass
class SkewResult:
    control_planes: list[ControlPlane]
    components: list[SkewComponent]
    result: str  # pass | fail | inconclusive
    summary: str


def control_plane_index(inventory: MeshInventory) -> ControlPlaneIndex:
    return ControlPlaneIndex(inventory.control_planes, inventory.tags, inventory.service_revisions)


def planes_in_use(inventory: MeshInventory, index: ControlPlaneIndex) -> list[ControlPlane]:
    """Control planes that own a waypoint or ztunnel, or serve workloads naming no revision."""
    owners = [index.resolve(w.claim)[0] for w in inventory.data_plane if w.claim.kind != EVERY]
    owners.append(index.default_plane())
    return [p for p in inventory.control_planes if any(p is o for o in owners)]


def judge_component(workload: DataPlaneWorkload, index: ControlPlaneIndex,
                    in_use: list[ControlPlane] = ()) -> SkewComponent:
    plane, problem = index.resolve(workload.claim, in_use)
    name = workload.kind if workload.kind != "waypoint" else f"waypoint {workload.namespace}/{workload.workload}"
    shown_version = workload.version.raw if workload.version else workload.version_text
    judgement = judge_skew(plane.version if plane else None, workload.version)
    if plane is None:
        message = f"{name}: {problem} ({workload.claim.via}); check its istio.io/rev label or annotation"
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
        source=workload.version_source, owner_source=workload.claim.via,
    )


def judge_workloads(inventory: MeshInventory, kinds: tuple[str, ...] | None = None) -> list[SkewComponent]:
    """Each workload (of `kinds`, or all) judged against its own control plane."""
    index = control_plane_index(inventory)
    in_use = planes_in_use(inventory, index)
    return [judge_component(w, index, in_use) for w in inventory.data_plane if kinds is None or w.kind in kinds]


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
    components = judge_workloads(inventory)
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
