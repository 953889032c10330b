"""The simulated upgrade over time: what a watch, `skew`, `verify` and the mesh see at each step."""

from __future__ import annotations

import json
import random

import pytest
import requests

from kubectl_waypoint.sim import SimCluster
from kubectl_waypoint.sim.mesh import Caller
from kubectl_waypoint.sim.timeline import FROM_TAG, TO_TAG, upgrade_timeline

CURL = Caller("curl", "curl-pod", "curl", enrolled=True)


@pytest.fixture
def sim():
    with SimCluster("bookinfo") as cluster:
        yield cluster


def _tags(sim, prefix):
    return sorted(p["spec"]["containers"][0]["image"].rsplit(":", 1)[1]
                  for p in sim.store.list("pods") if p["metadata"]["name"].startswith(prefix))


def _step_at(timeline, text):
    return next(step.at for step in timeline.steps if text in step.what)


def test_the_upgrade_unfolds_in_the_order_controllers_make_it(sim):
    timeline = upgrade_timeline(sim, pace=1.0)
    assert _tags(sim, "ztunnel") == [FROM_TAG] * 3 and _tags(sim, "istiod") == [FROM_TAG]
    order = [_step_at(timeline, f"{name}: image") for name in ("istiod", "istio-cni-node", "ztunnel", "waypoint")]
    assert order == sorted(order)
    timeline.advance(_step_at(timeline, "ztunnel: image"))
    first_node = next(s for s in timeline.steps if s.what.startswith("pod istio-system/ztunnel") and "ready" in s.what)
    timeline.advance(first_node.at)
    assert _tags(sim, "ztunnel") == [FROM_TAG, FROM_TAG, TO_TAG] and _tags(sim, "istiod") == [TO_TAG]
    status = sim.store.get("daemonsets", "istio-system", "ztunnel")["status"]
    assert (status["updatedNumberScheduled"], status["numberReady"], status["desiredNumberScheduled"]) == (1, 3, 3)
    timeline.advance(timeline.duration)
    assert timeline.done and _tags(sim, "ztunnel") == [TO_TAG] * 3 and _tags(sim, "waypoint") == [TO_TAG]
    deployment = sim.store.get("deployments", "bookinfo", "waypoint")["status"]
    assert deployment["updatedReplicas"] == deployment["readyReplicas"] == 1


def test_a_node_agent_pod_is_not_ready_before_it_is_ready(sim):
    timeline = upgrade_timeline(sim, pace=1.0)
    created = next(s for s in timeline.steps if s.what.startswith("pod istio-system/ztunnel") and "created" in s.what)
    timeline.advance(created.at)
    status = sim.store.get("daemonsets", "istio-system", "ztunnel")["status"]
    assert (status["numberReady"], status["numberUnavailable"], status["currentNumberScheduled"]) == (2, 1, 3)
    new = sim.store.get("pods", "istio-system", created.what.split("/")[1].split()[0])
    assert [c["status"] for c in new["status"]["conditions"] if c["type"] == "Ready"] == ["False"]


def test_a_watch_sees_every_step_as_it_happens(sim):
    timeline = upgrade_timeline(sim, pace=0.05)
    start = sim.store.resource_version
    timeline.play()
    response = requests.get(sim.url + "/api/v1/namespaces/istio-system/pods",
                            params={"watch": "1", "resourceVersion": str(start), "timeoutSeconds": "3"},
                            headers={"Authorization": f"Bearer {sim.token}"}, verify=sim.ca_file, stream=True, timeout=10)
    events = [json.loads(line) for line in response.iter_lines() if line]
    timeline.stop()
    assert timeline.done
    ztunnel = [(e["type"], e["object"]["spec"]["nodeName"]) for e in events
               if e["object"]["metadata"]["name"].startswith("ztunnel")]
    # per node: the old pod goes (DELETED), the new one comes (ADDED, not ready), then is ready (MODIFIED)
    assert [kind for kind, _ in ztunnel] == ["DELETED", "ADDED", "MODIFIED"] * 3
    assert [node for _, node in ztunnel[::3]] == ["worker-1", "worker-2", "worker-3"]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and versions[0] > start


def test_a_waypoint_outage_follows_the_same_clock(sim):
    timeline = upgrade_timeline(sim, pace=1.0, waypoint_outage=5.0)
    rng = random.Random(7)

    def through_waypoint():
        return sim.mesh.answer(CURL, "GET", "http://reviews.bookinfo:9080/reviews/0", rng)

    def programmed():
        gateway = sim.store.get("gateways", "bookinfo", "waypoint")
        return next(c["status"] for c in gateway["status"]["conditions"] if c["type"] == "Programmed")

    timeline.advance(_step_at(timeline, "waypoint: image"))
    assert through_waypoint().reason == "routed" and programmed() == "True"
    deleted = next(s.what for s in timeline.steps if s.what.startswith("pod bookinfo/waypoint-") and s.what.endswith(" deleted"))
    timeline.advance(_step_at(timeline, deleted))
    assert {through_waypoint().reason for _ in range(5)} == {"outage"} and programmed() == "False"
    ready = next(s for s in timeline.steps if s.what.startswith("pod bookinfo/waypoint") and "ready" in s.what)
    assert ready.at - _step_at(timeline, deleted) == pytest.approx(5.0)
    timeline.advance(ready.at)
    assert through_waypoint().reason == "routed" and programmed() == "True"


def test_skew_sees_the_rollout_halfway_and_verify_passes_at_the_end(run_cli, sim, tmp_path):
    kubeconfig = sim.write_kubeconfig(str(tmp_path / "kubeconfig"), namespace="bookinfo")
    timeline = upgrade_timeline(sim, pace=1.0, waypoint_outage=1.0)
    first_node = next(s for s in timeline.steps if s.what.startswith("pod istio-system/ztunnel") and "ready" in s.what)
    timeline.advance(first_node.at)
    halfway = run_cli("skew", "--kubeconfig", kubeconfig, "-o", "json").json
    assert [cp["version"] for cp in halfway["controlPlanes"]] == [TO_TAG]
    ztunnel = sorted((c["version"], len(c["pods"])) for c in halfway["components"] if c["kind"] == "ztunnel")
    assert ztunnel == [(FROM_TAG, 2), (TO_TAG, 1)]
    timeline.advance(timeline.duration)
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--skip", "routing,authorization", "-o", "json").json
    assert doc["result"] == "pass", [c for c in doc["checks"] if c["status"] != "pass"]


def test_play_applies_steps_in_real_time_until_stopped(sim):
    timeline = upgrade_timeline(sim, pace=0.01)
    assert timeline.play(speed=1.0).wait(timeout=30)  # ~0.3 s of steps
    slow = upgrade_timeline(SimCluster("bookinfo"), pace=60.0).play(speed=1.0)
    slow.stop()
    assert not slow.done and slow.steps[0].at == 60.0
