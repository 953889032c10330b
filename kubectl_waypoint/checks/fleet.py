"""`verify -A`: every waypoint namespace verified as `verify -n` would, with cluster-wide reads done once.

The suite does not know it runs in a fleet: each namespace gets its own VerifyFacts, over a
SharedReads that answers every namespaced list from one list across all namespaces, and shares
the facts about the whole cluster (inventory, istiod's sync view and versions, which pods have
curl). So API list requests do not grow with the number of namespaces. `--wait` retries read
afresh: each retry round gets a new SharedReads, shared by the namespaces retrying in it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from ..kube import resources as r
from ..kube.client import NotFound
from .facts import USE_WAYPOINT, VerifyFacts, VerifyOptions, waypoint_of
from .runner import VerifyRun, run_until, worst


class SharedReads:
    """A read-only view of the cluster for many namespaces: one list per resource and selector.

    Lists are read across all namespaces once and filtered per namespace; a Namespace is got from
    the one list of namespaces. Everything else (exec, access reviews, discovery) goes to the
    cluster as it is.
    """

    def __init__(self, cluster):
        self.cluster = cluster
        self._lock = threading.Lock()
        self._locks: dict[tuple, threading.Lock] = {}
        self._values: dict[tuple, object] = {}

    def __getattr__(self, name):
        return getattr(self.cluster, name)

    def once(self, key: tuple, compute: Callable[[], object]):
        """`compute()` the first time `key` is asked, the same value after, even from many threads."""
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self._values[key] = compute()
            return self._values[key]

    def list(self, resource, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None, transform=lambda item: item, **_paging) -> list:
        items = self.once(("list", resource, label_selector, field_selector),
                          lambda: self.cluster.list(resource, None, label_selector=label_selector,
                                                    field_selector=field_selector))
        if namespace and resource.namespaced:
            items = [i for i in items if ((i.get("metadata") or {}).get("namespace")) == namespace]
        return [transform(i) for i in items]

    def get(self, resource, name: str, namespace: str | None = None) -> dict:
        if resource == r.NAMESPACES:
            for item in self.list(r.NAMESPACES):
                if (item.get("metadata") or {}).get("name") == name:
                    return item
            raise NotFound(f'namespaces "{name}" not found')
        return self.cluster.get(resource, name, namespace)


def waypoint_namespaces(reads: SharedReads) -> list[str]:
    """Namespaces with a waypoint Gateway, or that opt into a waypoint (the namespace or a Service)."""
    found: set[str] = set()
    inventory = VerifyFacts(reads, "", VerifyOptions()).inventory  # kept by `reads` for every namespace
    found |= {g["namespace"] for g in inventory.waypoint_gateways}  # waypoints by their class's controller
    for namespace in reads.list(r.NAMESPACES):
        meta = namespace.get("metadata") or {}
        ref = waypoint_of(meta.get("labels") or {}, meta.get("name") or "")
        if ref:
            found |= {meta.get("name") or "", ref[0]}  # the waypoint may live in another namespace
    for service in reads.list(r.SERVICES, label_selector=USE_WAYPOINT):
        meta = service.get("metadata") or {}
        if waypoint_of(meta.get("labels") or {}, meta.get("namespace") or ""):
            found.add(meta.get("namespace") or "")
    return sorted(n for n in found if n)


@dataclass
class FleetRun:
    runs: dict[str, VerifyRun] = field(default_factory=dict)  # namespace -> its run, in name order

    @property
    def result(self) -> str:
        return worst(run.result for run in self.runs.values()) if self.runs else "inconclusive"


def run_fleet(reads: SharedReads, catalogue, selected, options: VerifyOptions, judges, wait_s: float,
              namespaces: list[str] | None = None) -> FleetRun:
    """Verify every waypoint namespace, `options.parallel` at a time (each probing one route at a time).

    `reads` serves the first attempt of every namespace. One run's false-failure rate stays at
    --alpha: each namespace's route probes share alpha / N.
    """
    cluster = reads.cluster
    rounds: list[SharedReads] = [reads]
    rounds_lock = threading.Lock()
    namespaces = waypoint_namespaces(reads) if namespaces is None else namespaces
    share = replace(options, parallel=1, alpha=options.alpha / max(len(namespaces), 1),
                    fleet_size=max(len(namespaces), 1))

    def reads_for(attempt: int) -> SharedReads:
        with rounds_lock:
            while len(rounds) <= attempt:
                rounds.append(SharedReads(cluster))
            return rounds[attempt]

    def verify(namespace: str) -> VerifyRun:
        attempts = iter(range(1_000_000))
        return run_until(catalogue, selected,
                         lambda: VerifyFacts(reads_for(next(attempts)), namespace, share), judges, wait_s)

    fleet = FleetRun()
    with ThreadPoolExecutor(max_workers=max(options.parallel, 1)) as pool:
        for namespace, run in zip(namespaces, pool.map(verify, namespaces)):
            fleet.runs[namespace] = run
    return fleet
