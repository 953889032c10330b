"""The simulated cluster serves watches like kube-apiserver: the real kubectl and raw HTTP watch it."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
import requests

from conftest import kubectl_binary
from kubectl_waypoint.sim import SimCluster


@pytest.fixture
def sim():
    with SimCluster("bookinfo") as cluster:
        yield cluster


def _pod(sim, name="details"):
    return next(p for p in sim.store.list("pods", "bookinfo") if p["metadata"]["name"].startswith(name))


def _watch(sim, path, **params):
    """A raw watch over HTTPS: yields each event as sent, until the server ends the stream."""
    response = requests.get(sim.url + path, params={"watch": "1", **params}, stream=True, timeout=10,
                            headers={"Authorization": f"Bearer {sim.token}"}, verify=sim.ca_file)
    assert response.status_code == 200, response.text
    for line in response.iter_lines():
        if line:
            yield json.loads(line)


def _later(seconds, action):
    thread = threading.Timer(seconds, action)
    thread.start()
    return thread


def test_real_kubectl_follows_changes_with_watch_events(sim, tmp_path):
    kubeconfig = sim.write_kubeconfig(str(tmp_path / "kubeconfig"))
    pod = _pod(sim)
    name = pod["metadata"]["name"]

    def change():
        pod["status"]["phase"] = "Pending"
        sim.store.put(pod)
        sim.store.delete("pods", "bookinfo", name)

    _later(1.5, change)
    done = subprocess.run([kubectl_binary(), "--kubeconfig", kubeconfig, "get", "pods", "-n", "bookinfo", "-w",
                           "--output-watch-events", "--request-timeout=4s"],
                          capture_output=True, text=True, timeout=60)
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    assert [row[0] for row in rows if row[1] == name] == ["ADDED", "MODIFIED", "DELETED"], done.stdout
    assert [row[3] for row in rows if row[1] == name][1] == "Pending"
    watches = [r for r in sim.requests if r.verb == "watch"]
    assert len(watches) == 1 and int(watches[0].query["resourceVersion"]) > 0


def test_a_watch_resumes_after_its_resource_version_and_applies_selectors(sim):
    start = sim.store.resource_version
    pod = _pod(sim, "ratings")
    pod["metadata"]["labels"]["watched"] = "yes"
    sim.store.put(pod)  # enters the selector: ADDED
    del pod["metadata"]["labels"]["watched"]
    sim.store.put(pod)  # leaves it: DELETED
    sim.store.put(_pod(sim, "reviews"))  # never matched: unseen
    events = list(_watch(sim, "/api/v1/namespaces/bookinfo/pods", resourceVersion=str(start),
                         labelSelector="watched=yes", timeoutSeconds="1"))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", pod["metadata"]["name"]), ("DELETED", pod["metadata"]["name"])]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert start < versions[0] < versions[1] <= sim.store.resource_version
    assert events[0]["object"]["kind"] == "Pod" and events[0]["object"]["apiVersion"] == "v1"


def test_a_watch_without_resource_version_replays_the_current_objects_first(sim):
    started = time.monotonic()
    events = list(_watch(sim, "/apis/apps/v1/namespaces/istio-system/daemonsets", timeoutSeconds="1"))
    assert time.monotonic() - started >= 1  # held open until timeoutSeconds, then ended cleanly
    assert sorted(e["object"]["metadata"]["name"] for e in events) == ["istio-cni-node", "ztunnel"]
    assert {e["type"] for e in events} == {"ADDED"}


def test_a_too_old_resource_version_is_gone(sim):
    sim.store.put(_pod(sim))
    old = sim.store.resource_version - 1
    sim.store.events.compact()
    events = list(_watch(sim, "/api/v1/pods", resourceVersion=str(old)))
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    assert (events[0]["object"]["code"], events[0]["object"]["reason"]) == (410, "Expired")
    assert f"too old resource version: {old}" in events[0]["object"]["message"]


def test_bookmarks_tell_where_to_resume_and_close_a_timed_out_watch(sim):
    sim.store.events.bookmark_seconds = 0.2
    start = sim.store.resource_version
    _later(0.5, lambda: sim.store.put(_pod(sim)))
    events = list(_watch(sim, "/api/v1/namespaces/bookinfo/pods", resourceVersion=str(start),
                         allowWatchBookmarks="true", timeoutSeconds="2"))
    kinds = [e["type"] for e in events]
    assert "MODIFIED" in kinds and kinds[-1] == "BOOKMARK" and kinds.count("BOOKMARK") >= 3
    assert events[-1]["object"]["metadata"]["resourceVersion"] == str(sim.store.resource_version)
    assert events[-1]["object"]["kind"] == "Pod"


def test_a_dropped_watch_ends_without_the_closing_chunk(sim):
    _later(0.5, sim.store.events.drop_watches)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        list(_watch(sim, "/api/v1/pods", resourceVersion=str(sim.store.resource_version), timeoutSeconds="10"))


def test_bad_watch_parameters_are_refused(sim):
    response = requests.get(sim.url + "/api/v1/pods", params={"watch": "1", "resourceVersion": "abc"}, timeout=10,
                            headers={"Authorization": f"Bearer {sim.token}"}, verify=sim.ca_file)
    assert response.status_code == 400 and "resourceVersion" in response.json()["message"]
