"""The informer-style client (kube/watch.py) against the simulated cluster over real HTTPS.

Faults are the simulator's own: watches hung up mid-stream, a compacted revision (410), 503s.
"""

from __future__ import annotations

import pytest

from kubectl_waypoint.kube.client import Cluster
from kubectl_waypoint.kube.config import ClusterFlags, resolve_target
from kubectl_waypoint.kube.resources import DAEMONSETS, PODS, SAIL_ZTUNNELS
from kubectl_waypoint.kube.watch import Follower, Informer, Source
from kubectl_waypoint.sim import SimCluster
from kubectl_waypoint.sim.timeline import upgrade_timeline


@pytest.fixture
def sim():
    with SimCluster("bookinfo") as cluster:
        yield cluster


@pytest.fixture
def cluster(sim, tmp_path):
    return Cluster(resolve_target(ClusterFlags(kubeconfig=sim.write_kubeconfig(str(tmp_path / "kubeconfig")))))


def _collect(follower, count, timeout=10.0):
    events = []
    while len(events) < count:
        event = follower.next(timeout)
        assert event is not None, f"only {len(events)} events arrived: {[(e.type, e.message) for e in events]}"
        events.append(event)
    return events


def _drain(follower):
    """Events until none came for a second."""
    events = []
    while (event := follower.next(1.0)) is not None:
        events.append(event)
    return events


def _names(events, kind=None):
    return [(e.type, e.obj["metadata"]["name"]) for e in events if kind is None or e.type == kind]


def test_one_list_then_watches_follow_a_whole_upgrade(sim, cluster):
    timeline = upgrade_timeline(sim, pace=0.02)
    follower = Follower(cluster, [Source(PODS, "istio-system"), Source(DAEMONSETS, "istio-system")]).start()
    initial = _collect(follower, 9)  # 7 pods and 2 DaemonSets, as they were
    assert {e.type for e in initial} == {"ADDED"}
    timeline.play().wait(timeout=30)
    changes = _drain(follower)
    follower.stop()
    pods = [e.type for e in changes if e.source.resource == PODS and e.obj["metadata"]["name"].startswith("ztunnel")]
    assert pods == ["DELETED", "ADDED", "MODIFIED"] * 3
    ztunnel = [e.obj for e in changes if e.source.resource == DAEMONSETS and e.obj["metadata"]["name"] == "ztunnel"]
    # the new template first, its status not yet observed; then the controller's counts, node by node
    assert ztunnel[0]["status"]["observedGeneration"] < ztunnel[0]["metadata"]["generation"]
    updated = [d["status"]["updatedNumberScheduled"] for d in ztunnel[1:]]
    assert updated == sorted(updated) and updated[0] == 0 and updated[-1] == 3
    assert ztunnel[-1]["status"]["numberReady"] == 3
    assert {e.type for e in changes} == {"ADDED", "MODIFIED", "DELETED"}
    lists = [r for r in sim.requests if r.verb == "list"]
    watches = [r for r in sim.requests if r.verb == "watch"]
    assert len(lists) == 2 and len(watches) == 2  # no re-list, no polling
    assert all(int(w.query["resourceVersion"]) > 0 and w.query["allowWatchBookmarks"] == "true" for w in watches)


def test_a_dropped_watch_resumes_from_the_last_resource_version_without_a_list(sim, cluster):
    informer = Informer(cluster, Source(PODS, "bookinfo"), sleep=lambda s: None)
    stream = informer.events()
    assert len([next(stream) for _ in range(7)]) == 7  # the list
    pod = sim.store.list("pods", "bookinfo")[0]
    sim.store.put(pod)
    assert next(stream).type == "MODIFIED"
    seen = informer.resource_version
    sim.store.events.drop_watches()
    sim.store.put(pod)  # while no watch is open
    gap = next(stream)
    assert gap.type == "GAP" and "interrupted" in gap.message
    resumed = next(stream)
    assert (resumed.type, resumed.obj["metadata"]["name"]) == ("MODIFIED", pod["metadata"]["name"])
    watches = [r for r in sim.requests if r.verb == "watch"]
    assert [w.query["resourceVersion"] for w in watches][-1] == seen
    assert informer.lists == 1


def test_a_compacted_revision_lists_again_and_reports_only_the_differences(sim, cluster):
    informer = Informer(cluster, Source(PODS, "bookinfo"), sleep=lambda s: None)
    stream = informer.events()
    for _ in range(7):
        next(stream)  # the list; the watch starts with the next event asked for
    gone = sim.store.list("pods", "bookinfo")[0]["metadata"]["name"]
    sim.store.delete("pods", "bookinfo", gone)
    sim.store.events.compact()  # the deletion is no longer in the log: the watch gets 410
    gap = next(stream)
    assert gap.type == "GAP" and "listed pods in bookinfo again" in gap.message
    assert _names([next(stream)]) == [("DELETED", gone)]
    assert informer.lists == 2 and len(informer.known) == 6


def test_failing_watches_back_off_and_recover(sim, cluster):
    slept = []
    informer = Informer(cluster, Source(PODS, "bookinfo"), sleep=slept.append)
    stream = informer.events()
    for _ in range(7):
        next(stream)
    sim.add_fault(path="/pods$", status=503, times=3)
    pod = sim.store.list("pods", "bookinfo")[0]
    sim.store.put(pod)
    gaps = [next(stream) for _ in range(3)]  # three refused watches
    assert [g.type for g in gaps] == ["GAP"] * 3 and "503" in gaps[-1].message
    assert _names([next(stream)]) == [("MODIFIED", pod["metadata"]["name"])]  # nothing lost meanwhile
    # growing, jittered between half and all of 0.5 s, 1 s, 2 s
    assert len(slept) == 3 and all(0.25 * 2 ** i <= s <= 0.5 * 2 ** i for i, s in enumerate(slept))
    assert informer.lists == 1


def test_a_resource_that_is_not_installed_is_not_followed(sim, cluster):
    follower = Follower(cluster, [Source(SAIL_ZTUNNELS), Source(PODS, "curl")]).start()
    (event,) = _collect(follower, 1)
    assert _names([event]) == [("ADDED", sim.store.list("pods", "curl")[0]["metadata"]["name"])]
    assert follower.next(0.5) is None  # the Sail resource ended quietly
    follower.stop()


def test_an_api_server_restart_is_survived_without_a_new_list(sim, cluster):
    """A restart as a client sees it: open watches cut, then connections closed without an answer."""
    informer = Informer(cluster, Source(PODS, "bookinfo"), sleep=lambda s: None)
    stream = informer.events()
    for _ in range(7):
        next(stream)
    pod = sim.store.list("pods", "bookinfo")[0]
    sim.store.put(pod)
    assert next(stream).type == "MODIFIED"  # the watch is open now
    sim.add_fault(path="/pods$", close=True, times=2)
    sim.store.events.drop_watches()
    sim.store.put(pod)
    gaps = [next(stream) for _ in range(3)]
    assert [g.type for g in gaps] == ["GAP"] * 3
    assert "closing the connection" in gaps[-1].message
    assert _names([next(stream)]) == [("MODIFIED", pod["metadata"]["name"])]
    assert informer.lists == 1
