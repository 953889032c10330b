"""What happened during an upgrade, from watch events and probe results (pure: no I/O, no clock).

The `watch` command feeds every object change and every request outcome in with the seconds since
it started; this module keeps only what a person reads afterwards: one version count per
component, rollout and Programmed states, and the timeline events and outages derived from
them. Raw objects and individual requests are not kept, so memory stays flat over a long upgrade.
"""

from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass, field

from .versions import IstioVersion, parse_version, version_from_image

API_VERSION = "kubectl-waypoint/v1"
CONFIRMING_SUCCESSES = 2  # successes in a row that end an outage
MAX_EVENTS = 5_000  # a report past this many lines says how many it left out
_WAYPOINT = "gateway.istio.io/managed"
_SAIL_KINDS = {"istios": "Istio", "istiorevisions": "IstioRevision", "istiocnis": "IstioCNI", "ztunnels": "ZTunnel"}


# ------------------------------------------------------------------------------------ components

def component_of(obj: dict) -> tuple[str, str] | None:
    """(component name, unit) for a mesh pod or workload, from its labels; None: not a mesh part."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get("app") == "istiod":
        revision = labels.get("istio.io/rev") or "default"
        return ("istiod" if revision == "default" else f"istiod-{revision}"), "pods"
    if labels.get("app") == "ztunnel" or labels.get("app.kubernetes.io/name") == "ztunnel":  # pods; the DaemonSet
        return "ztunnel", "nodes"
    if labels.get("k8s-app") == "istio-cni-node":
        return "istio-cni", "nodes"
    if _WAYPOINT in labels:
        meta = obj["metadata"]
        gateway = labels.get("gateway.networking.k8s.io/gateway-name") or meta.get("name", "")
        return f"waypoint {meta.get('namespace', '')}/{gateway}", "pods"
    return None


def pod_version(pod: dict) -> str | None:
    """The Istio version of a mesh pod: the first container image tag that is one."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        version = version_from_image(str(container.get("image") or ""))
        if version is not None:
            return version.raw
    return None


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def rollout_state(workload: dict, daemonset: bool) -> tuple[bool, int]:
    """(still rolling, desired replicas or nodes) as the Deployment or DaemonSet status says."""
    meta, spec, status = workload.get("metadata") or {}, workload.get("spec") or {}, workload.get("status") or {}
    unobserved = int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0)
    if daemonset:
        desired = int(status.get("desiredNumberScheduled") or 0)
        behind = int(status.get("updatedNumberScheduled") or 0) < desired or int(status.get("numberReady") or 0) < desired
    else:
        desired = int(spec.get("replicas", 1))
        behind = (int(status.get("updatedReplicas") or 0) < desired or int(status.get("readyReplicas") or 0) < desired
                  or int(status.get("replicas") or 0) > desired)
    return unobserved or behind, desired


def at_target(version: str | None, target: IstioVersion) -> bool:
    """A version is at the target when every part the target names matches (1.28 matches 1.28.6-asm-r3)."""
    found = parse_version(version) if version else None
    if found is None or found.minor_version != target.minor_version:
        return False
    return all(want is None or want == got for want, got in
               ((target.patch, found.patch), (target.prerelease, found.prerelease), (target.vendor, found.vendor)))


def _newest(versions) -> str:
    return max(versions, key=lambda v: parse_version(v).sort_key())


# ------------------------------------------------------------------------------------ the record

@dataclass(frozen=True)
class TimelineEvent:
    time: float  # seconds since the watch started
    kind: str
    object: str
    message: str
    from_version: str | None = None
    to_version: str | None = None


@dataclass
class Outage:
    route: str
    start: float
    end: float | None = None
    failed: int = 0
    rolling: list[str] = field(default_factory=list)
    recovering: float | None = None  # the first success since the last failure
    successes: int = 0

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


@dataclass
class _Component:
    unit: str
    pods: dict[str, tuple[str | None, bool]] = field(default_factory=dict)  # pod -> (version, ready)
    baseline: str | None = None  # the newest version when first seen
    announced: tuple[str | None, int] = (None, 0)  # the newest version and its ready pods, last reported
    desired: int = 0
    rolling: bool = False
    rolling_since: float = 0.0
    rollouts: list[list] = field(default_factory=list)  # [start, end or None] of each rollout seen
    lane: list[tuple[float, dict[str, int]]] = field(default_factory=list)  # ready pods per version, over time

    def ready_counts(self, fallback: str | None = None) -> dict[str, int]:
        """Ready pods per version; `fallback` for pods whose image says none (Sail's spec.version)."""
        return dict(Counter(v or fallback or "unknown" for v, ready in self.pods.values() if ready))


class UpgradeTimeline:
    """Everything seen, reduced as it arrives."""

    def __init__(self, target: IstioVersion | None, started_at: datetime.datetime):
        self.target = target
        self.started_at = started_at
        self.components: dict[str, _Component] = {}
        self.gateways: dict[str, bool] = {}
        self.sail: dict[str, str | None] = {}  # "Kind/name" -> spec.version
        self.events: list[TimelineEvent] = []
        self.events_left_out = 0
        self.outages: list[Outage] = []
        self._open: dict[str, Outage] = {}
        self.routes: dict[str, list[list]] = {}  # route -> [[start, end, ok, requests]] runs
        self.requests = Counter()  # route -> requests

    # ---------------------------------------------------------------- input

    def observe(self, change: str, plural: str, obj: dict, at: float, initial: bool = False) -> list[TimelineEvent]:
        """One watch event (ADDED, MODIFIED, DELETED) for a pod, Deployment, DaemonSet or Gateway.

        `initial`: the object was there when the watch started (its first list), not created since.
        """
        if plural == "gateways":
            return self._gateway(change, obj, at)
        if plural in _SAIL_KINDS:
            return self._sail(_SAIL_KINDS[plural], change, obj, at)
        found = component_of(obj)
        if found is None and plural == "pods" and change == "DELETED":
            found = self._component_with_pod(obj)
        if found is None:
            return []
        name, unit = found
        component = self.components.setdefault(name, _Component(unit))
        if plural == "pods":
            return self._pod(name, component, change, obj, at, initial)
        return self._workload(name, component, change, obj, plural == "daemonsets", at)

    def gap(self, message: str, at: float) -> list[TimelineEvent]:
        return self._emit(at, "WatchGap", "", message)

    def request(self, route: str, ok: bool, at: float) -> list[TimelineEvent]:
        """One probe request's outcome; failures open an outage, the next success closes it."""
        self.requests[route] += 1
        runs = self.routes.setdefault(route, [])
        if runs and runs[-1][2] == ok:
            runs[-1][1] = at
            runs[-1][3] += 1
        else:
            runs.append([at, at, ok, 1])
        outage = self._open.get(route)
        if not ok:
            if outage is None:
                outage = Outage(route, at, rolling=self.rolling_during(at, at))
                self._open[route] = outage
                self.outages.append(outage)
                rolling = f" while {', '.join(outage.rolling)} rolled" if outage.rolling else ""
                outage.failed += 1
                return self._emit(at, "OutageStarted", route, f"outage on {route} started{rolling}")
            outage.failed += 1
            outage.recovering, outage.successes = None, 0
            return []
        if outage is None:
            return []
        # Results of neighbouring requests can arrive out of order (curl reports a failure before the
        # result of the request before it): an outage ends only on a second success in a row.
        if outage.recovering is None:
            outage.recovering = at
        outage.successes += 1
        if outage.successes < CONFIRMING_SUCCESSES:
            return []
        outage.end = outage.recovering
        outage.rolling = self.rolling_during(outage.start, outage.end)
        del self._open[route]
        return self._emit(at, "OutageEnded", route,
                          f"outage on {route} ended after {outage.duration:.1f}s ({outage.failed} failed requests)")

    # ---------------------------------------------------------------- state

    def rolling(self) -> list[str]:
        """Components whose rollout is under way now."""
        return sorted(name for name, c in self.components.items() if c.rolling)

    def rolling_during(self, start: float, end: float) -> list[str]:
        """Components whose rollout overlapped [start, end] (results arrive a moment after the fact)."""
        return sorted(name for name, c in self.components.items()
                      if any(s <= end and (e is None or e >= start) for s, e in c.rollouts))

    def pending(self) -> list[str]:
        """Why the upgrade is not finished yet (empty: it is)."""
        reasons = []
        versions = set()
        for name, component in sorted(self.components.items()):
            counts = Counter(v or self._sail_version(name) for v, _ in component.pods.values())
            versions.update(counts)
            if component.rolling:
                reasons.append(f"{name} is still rolling out")
            not_ready = sum(1 for _, ready in component.pods.values() if not ready)
            if not_ready:
                reasons.append(f"{name} has {not_ready} pod(s) not ready")
            if self.target is not None:
                behind = sum(n for v, n in counts.items() if not at_target(v, self.target))
                if behind:
                    reasons.append(f"{name} has {behind} pod(s) not at {self.target}")
        if not self.components:
            reasons.append("no mesh component seen yet")
        if self.target is None:
            if len(versions) > 1:
                reasons.append(f"components run {len(versions)} versions: {', '.join(sorted(map(str, versions)))}")
            elif not any(e.kind == "VersionChange" for e in self.events):
                reasons.append("no version change seen yet (give --target-version to check an upgrade already done)")
        return reasons

    def longest_outage(self, now: float) -> float:
        return max(((o.end if o.end is not None else now) - o.start for o in self.outages), default=0.0)

    # ---------------------------------------------------------------- reductions

    def _pod(self, name: str, component: _Component, change: str, pod: dict, at: float,
             initial: bool) -> list[TimelineEvent]:
        meta = pod.get("metadata") or {}
        pod_name = meta.get("name", "")
        node = (pod.get("spec") or {}).get("nodeName")
        where = f" on {node}" if node else ""
        label = f"{meta.get('namespace', '')}/{pod_name}"
        before = component.pods.get(pod_name)
        events: list[TimelineEvent] = []
        if change == "DELETED":
            if component.pods.pop(pod_name, None) is not None:
                events += self._emit(at, "PodDeleted", label, f"{name} pod {label}{where} deleted")
        else:
            # A digest-pinned pod runs what Sail asked for when it was created; kept, not re-read later.
            state = (pod_version(pod) or self._sail_version(name), _ready(pod))
            component.pods[pod_name] = state
            if before is None and not initial:
                events += self._emit(at, "PodCreated", label, f"{name} pod {label}{where} created ({state[0]})")
            if before is not None and before[1] != state[1]:
                events += self._emit(at, "PodReady" if state[1] else "PodNotReady", label,
                                     f"{name} pod {label}{where} {'ready' if state[1] else 'not ready'}")
        return events + self._versions(name, component, at)

    def _versions(self, name: str, component: _Component, at: float) -> list[TimelineEvent]:
        counts = component.ready_counts(self._sail_version(name))
        if not component.lane or component.lane[-1][1] != counts:
            component.lane.append((at, counts))
        known = [v for v in counts if v != "unknown"]
        if not known:
            return []
        newest = _newest(known)
        if component.baseline is None:
            component.baseline = newest
        if newest == component.baseline or component.announced == (newest, counts[newest]):
            return []
        component.announced = (newest, counts[newest])
        total = component.desired or sum(counts.values())
        return self._emit(at, "VersionChange", name,
                          f"{name} {component.baseline} -> {newest} on {counts[newest]}/{total} {component.unit}",
                          component.baseline, newest)

    def _workload(self, name: str, component: _Component, change: str, workload: dict, daemonset: bool,
                  at: float) -> list[TimelineEvent]:
        if change == "DELETED":
            return []
        rolling, component.desired = rollout_state(workload, daemonset)
        meta = workload.get("metadata") or {}
        label = f"{'daemonset' if daemonset else 'deployment'} {meta.get('namespace', '')}/{meta.get('name', '')}"
        if rolling == component.rolling:
            return []
        component.rolling = rolling
        if rolling:
            component.rolling_since = at
            component.rollouts.append([at, None])
            return self._emit(at, "RolloutStarted", name, f"{name}: {label} rollout started")
        if component.rollouts:
            component.rollouts[-1][1] = at
        return self._emit(at, "RolloutFinished", name,
                          f"{name}: {label} rollout finished after {at - component.rolling_since:.1f}s")

    def _gateway(self, change: str, gateway: dict, at: float) -> list[TimelineEvent]:
        meta = gateway.get("metadata") or {}
        label = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        if change == "DELETED":
            self.gateways.pop(label, None)
            return self._emit(at, "GatewayDeleted", label, f"waypoint Gateway {label} deleted")
        programmed = any(c.get("type") == "Programmed" and c.get("status") == "True"
                         for c in (gateway.get("status") or {}).get("conditions") or [])
        before = self.gateways.get(label)
        self.gateways[label] = programmed
        if before == programmed or (before is None and programmed):
            return []
        if programmed:
            return self._emit(at, "GatewayProgrammed", label, f"waypoint Gateway {label} Programmed again")
        return self._emit(at, "GatewayNotProgrammed", label, f"waypoint Gateway {label} lost Programmed")

    def _sail(self, kind: str, change: str, obj: dict, at: float) -> list[TimelineEvent]:
        """A Sail CR's spec.version: what the operator is asked to roll out."""
        label = f"{kind}/{(obj.get('metadata') or {}).get('name', '')}"
        if change == "DELETED":
            self.sail.pop(label, None)
            return []
        version = (obj.get("spec") or {}).get("version")
        version = str(version) if version is not None else None
        known = label in self.sail
        before, self.sail[label] = self.sail.get(label), version
        if not known or before == version:
            return []
        return self._emit(at, "SailVersionChange", label, f"Sail {label}: spec.version {before} -> {version}",
                          before, version)

    def _sail_version(self, component: str) -> str | None:
        """The version Sail was asked for, for pods pinned by digest (as `skew` reads it too)."""
        if component in ("ztunnel", "istio-cni"):
            kind = "ZTunnel" if component == "ztunnel" else "IstioCNI"
            versions = {v for label, v in self.sail.items() if label.startswith(kind + "/") and v}
        elif component.startswith("istiod"):
            revision = component.partition("-")[2] or "default"
            versions = {v for label, v in self.sail.items() if label == f"IstioRevision/{revision}" and v}
        else:
            return None
        return versions.pop().lstrip("v") if len(versions) == 1 else None

    def _component_with_pod(self, pod: dict) -> tuple[str, str] | None:
        pod_name = (pod.get("metadata") or {}).get("name")
        for name, component in self.components.items():
            if pod_name in component.pods:
                return name, component.unit
        return None

    def _emit(self, at: float, kind: str, obj: str, message: str, from_version: str | None = None,
              to_version: str | None = None) -> list[TimelineEvent]:
        event = TimelineEvent(round(at, 3), kind, obj, message, from_version, to_version)
        if len(self.events) < MAX_EVENTS:
            self.events.append(event)
        else:
            self.events_left_out += 1
        return [event]

    # ---------------------------------------------------------------- the document

    def timestamp(self, at: float) -> str:
        moment = self.started_at + datetime.timedelta(seconds=at)
        return moment.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def report(self, namespace: str, result: str, reason: str, now: float, final_verify: dict | None,
               max_outage: float | None) -> dict:
        """The WatchReport document (-o json|yaml)."""
        events = []
        for e in self.events:
            entry = {"time": e.time, "timestamp": self.timestamp(e.time), "kind": e.kind, "object": e.object,
                     "message": e.message}
            if e.to_version is not None:
                entry.update({"from": e.from_version, "to": e.to_version})
            events.append(entry)
        outages = [{"route": o.route, "start": round(o.start, 3), "startTimestamp": self.timestamp(o.start),
                    "end": None if o.end is None else round(o.end, 3),
                    "endTimestamp": None if o.end is None else self.timestamp(o.end),
                    "durationSeconds": round((o.end if o.end is not None else now) - o.start, 3),
                    "failedRequests": o.failed, "rolling": list(o.rolling)} for o in self.outages]
        return {
            "apiVersion": API_VERSION, "kind": "WatchReport", "namespace": namespace, "result": result,
            "reason": reason, "targetVersion": str(self.target) if self.target else None,
            "startedAt": self.timestamp(0.0), "durationSeconds": round(now, 3),
            "maxOutageSeconds": max_outage, "longestOutageSeconds": round(self.longest_outage(now), 3),
            "components": [{"name": name, "versions": c.ready_counts(self._sail_version(name)), "rolling": c.rolling}
                           for name, c in sorted(self.components.items())],
            "pending": self.pending(),
            "requests": dict(sorted(self.requests.items())),
            "events": events, "eventsLeftOut": self.events_left_out,
            "outages": outages, "finalVerify": final_verify,
        }
