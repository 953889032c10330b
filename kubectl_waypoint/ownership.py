"""Which control plane owns a data-plane workload: istiod's own rules, as pure functions.

Each rule is read from Istio 1.28.0's sources (istio/istio):
- pkg/revisions/tag_watcher.go: revision tags exist as MutatingWebhookConfigurations
  `istio-revision-tag-<tag>` and, from 1.28, as Services `istiod-revision-tag-<tag>`, both labelled
  `istio.io/tag` and `istio.io/rev`; a Gateway belongs to the revision its `istio.io/rev` label
  names, else its namespace's; "Default tag takes precedence over default revision if they differ".
- manifests/charts/istio-control/istio-discovery/files/waypoint.yaml: every waypoint pod carries the
  annotation `istio.io/rev: <revision or "default">` of the istiod that rendered it.
- manifests/charts/ztunnel/templates/daemonset.yaml: ztunnel has the annotation `istio.io/rev` only
  when the chart's revision is set; `CA_ADDRESS`/`XDS_ADDRESS` are `istiod-<rev>.<ns>.svc:15012`,
  or `istiod.<ns>.svc:15012` without a revision.
- istio-cni never talks to istiod: one CNI serves every revision, so it is held to the newest one.

A workload first yields a `Claim` (what it says, and where that was read); `ControlPlaneIndex`
matches claims to the istiod Deployments found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

DEFAULT = "default"
REV_LABEL = "istio.io/rev"
TAG_LABEL = "istio.io/tag"
ADDRESS_ENV = ("XDS_ADDRESS", "CA_ADDRESS")  # ztunnel's; XDS first: it is the configuration stream
TAG_SERVICE_PREFIX = "istiod-revision-tag-"
ISTIOD_SERVICE = "istiod"

REVISION, SELECTOR, ADDRESS, EVERY = "revision", "selector", "address", "every"


class Plane(Protocol):
    namespace: str
    revision: str
    version: object


@dataclass(frozen=True)
class Claim:
    """What a workload says about its control plane, before it is matched to an istiod.

    kind: `revision` (written by istiod or a chart: a revision's name), `selector` (a label a user
    sets, a tag or a revision; None means the default), `address` (the istiod Service host it
    dials), `every` (istio-cni: serves every revision).
    """

    kind: str
    value: str | None
    via: str

    @property
    def named_revision(self) -> str | None:
        """The revision or tag the workload itself names, for the report; None when it names none."""
        return self.value if self.kind in (REVISION, SELECTOR) else None


ISTIO_CNI_CLAIM = Claim(EVERY, None, "istio-cni serves every revision: judged against the newest control plane in use")


def tag_of(labels: Mapping[str, str]) -> tuple[str, str] | None:
    """(tag, revision) of an object labelled as a revision tag, else None."""
    tag, revision = labels.get(TAG_LABEL), labels.get(REV_LABEL)
    return (tag, revision) if tag and revision else None


def revision_tags(webhook_labels: Iterable[Mapping[str, str]],
                  service_labels: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """tag -> revision, from the tag webhooks and, where no webhook names the tag, the tag Services."""
    tags: dict[str, str] = {}
    for labels in list(webhook_labels) + list(service_labels):
        found = tag_of(labels)
        if found:
            tags.setdefault(*found)
    return tags


def waypoint_claim(pod_annotations: Mapping[str, str], gateway_labels: Mapping[str, str],
                   namespace_labels: Mapping[str, str] | None = None) -> Claim:
    """A waypoint: the revision that rendered its pod, else its Gateway's label, else its namespace's.

    The Gateway's labels are copied onto its pods, so a pod's labels stand in for the Gateway's.
    """
    if pod_annotations.get(REV_LABEL):
        return Claim(REVISION, pod_annotations[REV_LABEL],
                     "pod annotation istio.io/rev (the revision that rendered it)")
    if gateway_labels.get(REV_LABEL):
        return Claim(SELECTOR, gateway_labels[REV_LABEL], "Gateway label istio.io/rev")
    if namespace_labels and namespace_labels.get(REV_LABEL):
        return Claim(SELECTOR, namespace_labels[REV_LABEL], "namespace label istio.io/rev")
    return Claim(SELECTOR, None, "no istio.io/rev on the pod, its Gateway or its namespace")


def ztunnel_claim(pod_annotations: Mapping[str, str], env: Mapping[str, str]) -> Claim:
    """ztunnel: its istio.io/rev annotation, else the istiod host it dials (XDS_ADDRESS, CA_ADDRESS)."""
    if pod_annotations.get(REV_LABEL):
        return Claim(REVISION, pod_annotations[REV_LABEL], "pod annotation istio.io/rev")
    for name in ADDRESS_ENV:
        host = service_host(env.get(name) or "")
        if host:
            return Claim(ADDRESS, f"{host[0]}.{host[1]}", f"{name} {env[name]}")
    return Claim(SELECTOR, None, "no istio.io/rev annotation and no XDS_ADDRESS or CA_ADDRESS")


def service_host(address: str) -> tuple[str, str] | None:
    """(service, namespace) of `istiod-1-28.istio-system.svc:15012`; None for anything else."""
    host = address.strip().rsplit(":", 1)[0] if address.count(":") <= 1 else ""
    parts = host.split(".")
    if len(parts) >= 3 and parts[2] == "svc" and all(parts[:2]):
        return parts[0], parts[1]
    return None


class ControlPlaneIndex:
    """Matches claims to istiod Deployments, through revision tags and istiod's Services."""

    def __init__(self, planes: Sequence[Plane], tags: Mapping[str, str],
                 service_revisions: Mapping[tuple[str, str], str] | None = None):
        self.planes = list(planes)
        self.tags = dict(tags)
        self.service_revisions = dict(service_revisions or {})

    def by_revision(self, revision: str, namespace: str | None = None) -> Plane | None:
        matching = [p for p in self.planes if p.revision == revision]
        in_namespace = [p for p in matching if p.namespace == namespace]
        return (in_namespace or matching or [None])[0]

    def resolve(self, claim: Claim, in_use: Sequence[Plane] = ()) -> tuple[Plane | None, str]:
        """The istiod the claim points at, or None and a sentence saying why."""
        if not self.planes:
            return None, "no istiod Deployment was found in any namespace"
        if claim.kind == EVERY:
            return self._newest(in_use)
        if claim.kind == ADDRESS:
            return self._by_address(claim.value or "")
        if claim.kind == REVISION:
            return self._named(claim.value or DEFAULT, revision_first=True)
        return self._named(claim.value, revision_first=claim.value not in (None, DEFAULT))

    def default_plane(self) -> Plane | None:
        """Who serves workloads that name no revision: the `default` tag, else the `default` revision."""
        return self._named(None, revision_first=False)[0]

    def _named(self, name: str | None, revision_first: bool) -> tuple[Plane | None, str]:
        wanted = name or DEFAULT
        by_tag = self.tags.get(wanted)
        own = self.by_revision(wanted)
        if own is not None and (revision_first or by_tag is None):
            return own, ""
        if by_tag is not None:
            plane = self.by_revision(by_tag)
            if plane is not None:
                return plane, ""
            return None, f'revision tag "{wanted}" points at revision "{by_tag}", which no istiod Deployment runs'
        if name is None and len(self.planes) == 1:
            return self.planes[0], ""
        if name is None:
            return None, ('it names no istio.io/rev and there is no default revision or "default" revision tag '
                          "to judge it against")
        return None, f'revision "{wanted}" matches no istiod Deployment and no revision tag'

    def _by_address(self, host: str) -> tuple[Plane | None, str]:
        service, _, namespace = host.partition(".")
        revision = self.service_revisions.get((namespace, service))
        if revision is not None:
            plane = self.by_revision(revision, namespace)
            if plane is not None:
                return plane, ""
            return None, (f'its istiod Service {namespace}/{service} belongs to revision "{revision}", '
                          "which no istiod Deployment runs")
        if service == ISTIOD_SERVICE:
            return self._named(None, revision_first=False)
        if service.startswith(TAG_SERVICE_PREFIX):
            return self._named(service[len(TAG_SERVICE_PREFIX):], revision_first=False)
        if service.startswith(ISTIOD_SERVICE + "-"):
            return self._named(service[len(ISTIOD_SERVICE) + 1:], revision_first=True)
        return None, f"its istiod address names Service {namespace}/{service}, which belongs to no istiod revision"

    def _newest(self, in_use: Sequence[Plane]) -> tuple[Plane | None, str]:
        candidates = [p for p in (in_use or self.planes) if p.version is not None]
        if not candidates:
            return (in_use or self.planes)[0], ""
        return max(candidates, key=lambda p: p.version.sort_key()), ""
