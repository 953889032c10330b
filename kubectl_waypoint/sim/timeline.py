"""An upgrade over time on the simulated cluster, step by step as the controllers would make it.

`upgrade_timeline` first turns the mesh back to the old version (every istiod, istio-cni, ztunnel
and waypoint image), then plans the upgrade the way it unfolds on a real cluster: istiod's image
changes and its pods are replaced (surge: new pod, ready, old pod gone); then istio-cni and ztunnel
node by node (old pod gone, new pod not ready, then ready); then each waypoint Deployment is
rolled. Deployment and DaemonSet status fields follow the pods after every step, so a watch sees
what it would see on a cluster. A waypoint rolled with `waypoint_outage` > 0 loses its only pod
before the new one is ready: its Gateway reports Programmed=False and the simulated mesh resets
requests through it until the new pod is ready, on the same clock.

The clock is the caller's: `advance(seconds)` applies what is due (tests), `play(speed)` applies
steps on a thread in real time, compressed `speed` times (the demo). ReplicaSets are not
simulated during the upgrade; nothing outside the simulator reads them.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .mesh import Outage

if TYPE_CHECKING:
    from .cluster import SimCluster
    from .store import ObjectStore

FROM_TAG = "1.27.3-asm-r2"
TO_TAG = "1.28.6-asm-r3"
_WAYPOINT_LABEL = "gateway.istio.io/managed"
_NODE_AGENTS = ("istio-cni-node", "ztunnel")  # rolled in this order, after istiod
# The mesh's outage setting that means "from now on, until removed" (sim/mesh.py `Outage`).
_WAYPOINT_DOWN = Outage(after_requests=-1, seconds=float("inf"))


@dataclass(frozen=True)
class Step:
    """One change a controller makes, `at` seconds after the upgrade starts."""

    at: float
    what: str
    change: Callable[[SimCluster], None]


class Timeline:
    """Steps applied in order, on the caller's clock or in (compressed) real time."""

    def __init__(self, sim: SimCluster, steps: list[Step]):
        self.sim = sim
        self.steps = sorted(steps, key=lambda s: s.at)
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def duration(self) -> float:
        return self.steps[-1].at if self.steps else 0.0

    @property
    def done(self) -> bool:
        return self._next >= len(self.steps)

    def advance(self, seconds: float) -> list[Step]:
        """Apply every step due by `seconds` after the start; returns them."""
        applied = []
        with self._lock:
            while self._next < len(self.steps) and self.steps[self._next].at <= seconds:
                step = self.steps[self._next]
                step.change(self.sim)
                applied.append(step)
                self._next += 1
        return applied

    def play(self, speed: float = 1.0, clock: Callable[[], float] = time.monotonic) -> Timeline:
        """Apply the steps on a thread, `speed` times faster than their `at` says; stop() ends it."""
        started = clock()

        def run() -> None:
            while not self.done and not self._stop.is_set():
                elapsed = (clock() - started) * speed
                self.advance(elapsed)
                if not self.done:
                    self._stop.wait(max(0.0, (self.steps[self._next].at - elapsed) / speed))

        self._thread = threading.Thread(target=run, daemon=True, name="sim-timeline")
        self._thread.start()
        return self

    def play_when(self, ready: Callable[[], bool], speed: float = 1.0) -> Timeline:
        """Play as soon as `ready()` says so (say, when a watcher is listening), checked every 50 ms."""
        def wait_then_play() -> None:
            while not ready():
                if self._stop.wait(0.05):
                    return
            self.play(speed)

        threading.Thread(target=wait_then_play, daemon=True, name="sim-timeline-start").start()
        return self

    def watchers(self) -> int:
        """Watch requests the simulated cluster has served so far."""
        return sum(1 for request in self.sim.requests if request.verb == "watch")

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a playing timeline to finish; True when every step was applied."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


# ------------------------------------------------------------------------------------ the plan

def upgrade_timeline(sim: SimCluster, from_tag: str = FROM_TAG, to_tag: str = TO_TAG, pace: float = 1.0,
                     waypoint_outage: float = 0.0) -> Timeline:
    """Rewind the mesh to `from_tag`, and plan its upgrade to `to_tag`, one step every `pace` seconds."""
    store = sim.store
    rewind(store, to_tag, from_tag)
    plan = _Plan(store, pace)
    for deployment in _mesh_deployments(store, waypoints=False):
        plan.roll_deployment(deployment, from_tag, to_tag, outage=0.0)
    for name in _NODE_AGENTS:  # in whichever namespace they run (Sail puts ztunnel in its own)
        for daemonset in store.list("daemonsets"):
            if daemonset["metadata"]["name"] == name and _is_mesh_component(daemonset):
                plan.roll_daemonset(daemonset, from_tag, to_tag)
    for deployment in _mesh_deployments(store, waypoints=True):
        plan.roll_deployment(deployment, from_tag, to_tag, outage=waypoint_outage)
    return Timeline(sim, plan.steps)


def rewind(store: ObjectStore, to_tag: str, from_tag: str) -> None:
    """Every mesh component's images back at `from_tag`: the cluster before the upgrade."""
    for plural in ("deployments", "daemonsets", "pods"):
        for obj in store.list(plural):
            if _is_mesh_component(obj) and to_tag in str(_containers(obj)):
                store.put(_retag(obj, to_tag, from_tag))


class _Plan:
    def __init__(self, store: ObjectStore, pace: float):
        self.store = store
        self.pace = pace
        self.at = 0.0
        self.steps: list[Step] = []

    def add(self, what: str, change: Callable[[SimCluster], None], after: float = 1.0) -> None:
        self.at += self.pace * after
        self.steps.append(Step(round(self.at, 3), what, change))

    def roll_deployment(self, deployment: dict, from_tag: str, to_tag: str, outage: float) -> None:
        meta = deployment["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        self.add(f"deployment {namespace}/{name}: image {to_tag}",
                 lambda sim: _new_template(sim.store, "deployments", namespace, name, from_tag, to_tag))
        new_hash = _token(f"{namespace}/{name}/{to_tag}", 10)
        for pod in _pods_of(deployment, self.store.list("pods", namespace)):
            old = pod["metadata"]["name"]
            new = f"{name}-{new_hash}-{_token(f'{old}/{to_tag}', 5)}"
            if outage > 0:  # the old pod goes first: nothing serves until the new one is ready
                self.add(f"pod {namespace}/{old} deleted", _delete_pod(namespace, old, deployment, gateway_down=True))
                self.add(f"pod {namespace}/{new} created", _create_pod(pod, new, deployment, from_tag, to_tag,
                                                                     {"pod-template-hash": new_hash}), after=0)
                self.add(f"pod {namespace}/{new} ready", _ready_pod(namespace, new, deployment, gateway_up=True),
                         after=outage / self.pace)
            else:  # surge: the new pod is ready before the old one goes
                self.add(f"pod {namespace}/{new} created", _create_pod(pod, new, deployment, from_tag, to_tag,
                                                                     {"pod-template-hash": new_hash}))
                self.add(f"pod {namespace}/{new} ready", _ready_pod(namespace, new, deployment))
                self.add(f"pod {namespace}/{old} deleted", _delete_pod(namespace, old, deployment))

    def roll_daemonset(self, daemonset: dict, from_tag: str, to_tag: str) -> None:
        meta = daemonset["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        self.add(f"daemonset {namespace}/{name}: image {to_tag}",
                 lambda sim: _new_template(sim.store, "daemonsets", namespace, name, from_tag, to_tag))
        generation = str(int(meta.get("generation", 1)) + 1)
        revision_hash = _token(f"{namespace}/{name}/{to_tag}", 10)
        pods = sorted(_pods_of(daemonset, self.store.list("pods", namespace)),
                      key=lambda p: p["spec"].get("nodeName", ""))
        for pod in pods:  # maxUnavailable 1: node by node, the old pod gone before the new one starts
            old = pod["metadata"]["name"]
            node = pod["spec"].get("nodeName", "")
            new = f"{name}-{_token(f'{old}/{to_tag}', 5)}"
            labels = {"controller-revision-hash": revision_hash, "pod-template-generation": generation}
            self.add(f"pod {namespace}/{old} on {node} deleted", _delete_pod(namespace, old, daemonset))
            self.add(f"pod {namespace}/{new} on {node} created",
                     _create_pod(pod, new, daemonset, from_tag, to_tag, labels), after=0.25)
            self.add(f"pod {namespace}/{new} on {node} ready", _ready_pod(namespace, new, daemonset))


# ------------------------------------------------------------------------------------ changes

def _new_template(store: ObjectStore, plural: str, namespace: str, name: str, from_tag: str, to_tag: str) -> None:
    obj = _retag(store.get(plural, namespace, name), from_tag, to_tag)
    meta = obj["metadata"]
    meta["generation"] = int(meta.get("generation", 1)) + 1
    store.put(obj)
    _refresh_status(store, plural, namespace, name)


def _create_pod(old: dict, new: str, owner: dict, from_tag: str, to_tag: str,
                labels: dict[str, str]) -> Callable[[SimCluster], None]:
    """The replacement of `old` (as it was when planned: it may be gone by then), not ready yet."""
    template = copy.deepcopy(old)

    def change(sim: SimCluster) -> None:
        pod = _retag(template, from_tag, to_tag)
        meta = pod["metadata"]
        meta["name"] = new
        meta.update(creationTimestamp=_now(), labels={**meta.get("labels", {}), **labels})
        for key in ("uid", "resourceVersion"):
            meta.pop(key, None)
        if "pod-template-hash" in labels:
            for ref in meta.get("ownerReferences", []):
                ref["name"] = f"{owner['metadata']['name']}-{labels['pod-template-hash']}"
                ref.pop("uid", None)
        _set_ready(pod, False)
        sim.store.put(pod)
        _refresh_owner(sim, owner)

    return change


def _ready_pod(namespace: str, name: str, owner: dict, gateway_up: bool = False) -> Callable[[SimCluster], None]:
    def change(sim: SimCluster) -> None:
        pod = sim.store.get("pods", namespace, name)
        _set_ready(pod, True)
        sim.store.put(pod)
        _refresh_owner(sim, owner)
        if gateway_up:
            _set_programmed(sim, owner, True)
            sim.mesh.settings = dataclasses.replace(
                sim.mesh.settings, outages=tuple(o for o in sim.mesh.settings.outages if o is not _WAYPOINT_DOWN))

    return change


def _delete_pod(namespace: str, name: str, owner: dict, gateway_down: bool = False) -> Callable[[SimCluster], None]:
    def change(sim: SimCluster) -> None:
        sim.store.delete("pods", namespace, name)
        _refresh_owner(sim, owner)
        if gateway_down:
            sim.mesh.settings = dataclasses.replace(sim.mesh.settings,
                                                    outages=sim.mesh.settings.outages + (_WAYPOINT_DOWN,))
            _set_programmed(sim, owner, False)

    return change


def _set_programmed(sim: SimCluster, deployment: dict, programmed: bool) -> None:
    """The waypoint's Gateway, as istiod reports it while its Deployment has (no) ready pod."""
    meta = deployment["metadata"]
    gateway_name = meta.get("labels", {}).get("gateway.networking.k8s.io/gateway-name", meta["name"])
    gateway = sim.store.get("gateways", meta["namespace"], gateway_name)
    if gateway is None:
        return
    for condition in gateway.get("status", {}).get("conditions", []):
        if condition.get("type") == "Programmed":
            condition.update(status="True" if programmed else "False", lastTransitionTime=_now(),
                             reason="Programmed" if programmed else "Pending",
                             message="Resource programmed" if programmed
                             else f"Deployment {meta['name']} has no ready replicas")
    sim.store.put(gateway)


def _set_ready(pod: dict, ready: bool) -> None:
    status = pod.setdefault("status", {})
    status["phase"] = "Running"
    for condition in status.get("conditions", []):
        if condition.get("type") in ("Ready", "ContainersReady"):
            condition.update(status="True" if ready else "False", lastTransitionTime=_now())
    for container in status.get("containerStatuses", []):
        container.update(ready=ready, started=True, state={"running": {"startedAt": _now()}}, restartCount=0)


def _refresh_owner(sim: SimCluster, owner: dict) -> None:
    meta = owner["metadata"]
    _refresh_status(sim.store, "deployments" if owner["kind"] == "Deployment" else "daemonsets",
                    meta["namespace"], meta["name"])


def _refresh_status(store: ObjectStore, plural: str, namespace: str, name: str) -> None:
    """The status fields the Deployment or DaemonSet controller would write for the pods now there."""
    obj = store.get(plural, namespace, name)
    pods = _pods_of(obj, store.list("pods", namespace))
    images = [c.get("image") for c in _containers(obj)]
    updated = [p for p in pods if [c.get("image") for c in p["spec"].get("containers", [])] == images]
    ready = [p for p in pods if _is_ready(p)]
    status = obj.setdefault("status", {})
    status["observedGeneration"] = obj["metadata"].get("generation", 1)
    if plural == "deployments":
        desired = int(obj["spec"].get("replicas", 1))
        status.update(replicas=len(pods), updatedReplicas=len(updated), readyReplicas=len(ready),
                      availableReplicas=len(ready))
        status.pop("unavailableReplicas", None)
        if len(ready) < desired:
            status["unavailableReplicas"] = desired - len(ready)
        finished = len(updated) == len(pods) == desired and all(_is_ready(p) for p in updated)
        for condition in status.get("conditions", []):
            if condition.get("type") == "Progressing":
                condition.update(lastUpdateTime=_now(), reason="NewReplicaSetAvailable" if finished else "ReplicaSetUpdated")
            if condition.get("type") == "Available":
                condition["status"] = "True" if ready else "False"
    else:
        status.update(currentNumberScheduled=len(pods), updatedNumberScheduled=len(updated),
                      numberReady=len(ready), numberAvailable=len(ready))
        unavailable = int(status.get("desiredNumberScheduled", len(pods))) - len(ready)
        status.pop("numberUnavailable", None)
        if unavailable > 0:
            status["numberUnavailable"] = unavailable
    store.put(obj)


# ------------------------------------------------------------------------------------ reading objects

def _mesh_deployments(store: ObjectStore, waypoints: bool) -> list[dict]:
    return [d for d in store.list("deployments") if _is_mesh_component(d)
            and (_WAYPOINT_LABEL in d["metadata"].get("labels", {})) == waypoints]


def _is_mesh_component(obj: dict) -> bool:
    """istiod, ztunnel, istio-cni or a waypoint, by its own labels or its pods' (the rendered ztunnel
    DaemonSet carries only app.kubernetes.io labels; its pods carry app=ztunnel)."""
    template = obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
    labels = {**template, **obj["metadata"].get("labels", {})}
    return (labels.get("app") in ("istiod", "ztunnel") or labels.get("k8s-app") == "istio-cni-node"
            or _WAYPOINT_LABEL in labels)


def _containers(obj: dict) -> list[dict]:
    spec = obj.get("spec", {})
    return spec.get("template", {}).get("spec", spec).get("containers", [])


def _pods_of(owner: dict, pods: list[dict]) -> list[dict]:
    selector = owner["spec"].get("selector", {}).get("matchLabels", {})
    return [p for p in pods if all(p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]


def _is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []))


def _retag(obj: dict, old: str, new: str) -> dict:
    """A copy with `:old` image tags (spec and status) replaced by `:new`."""
    obj = copy.deepcopy(obj)
    containers = _containers(obj) + obj.get("status", {}).get("containerStatuses", [])
    for container in containers:
        image = container.get("image", "")
        if image.endswith(":" + old):
            container["image"] = image[: -len(old)] + new
            container.pop("imageID", None)
    return obj


def _token(seed: str, length: int) -> str:
    """A stable lowercase name part, like the controllers' random suffixes."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")
    out = []
    for _ in range(length):
        number, digit = divmod(number, len(alphabet))
        out.append(alphabet[digit])
    return "".join(out)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
