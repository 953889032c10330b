"""`kubectl waypoint watch` end to end: a simulated upgrade played while the real command follows it."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import threading

import pytest

from conftest import one_line_error
from kubectl_waypoint.sim import SimCluster
from kubectl_waypoint.sim.timeline import FROM_TAG, TO_TAG, upgrade_timeline
from kubectl_waypoint.watch import mesh_sources, sail_sources

FAST = ("--interval", "200ms")


@pytest.fixture
def upgrade(tmp_path):
    """A simulated cluster before the upgrade; `play()` starts the upgrade once the watch is listening."""
    started = []

    def make(pace=0.25, waypoint_outage=0.0, scenario="bookinfo", tags=(FROM_TAG, TO_TAG)):
        sim = SimCluster(scenario).start()
        started.append(sim)
        timeline = upgrade_timeline(sim, *tags, pace=pace, waypoint_outage=waypoint_outage)
        kubeconfig = sim.write_kubeconfig(str(tmp_path / "kubeconfig"), namespace="bookinfo")

        def play_when_watched(watchers=len(mesh_sources("bookinfo"))):  # once everything is watched
            timeline.play_when(lambda: timeline.watchers() >= watchers)

        return sim, timeline, kubeconfig, play_when_watched

    yield make
    for sim in started:
        assert sim.writes() == []
        sim.stop()


def _events(doc, kind):
    return [e for e in doc["events"] if e["kind"] == kind]


def test_a_whole_upgrade_with_a_waypoint_outage(run_cli, upgrade):
    sim, timeline, kubeconfig, play = upgrade(waypoint_outage=1.5)
    play()
    doc = run_cli("watch", "--kubeconfig", kubeconfig, "--target-version", TO_TAG, "--timeout", "60s", *FAST,
                  "-o", "json").json
    assert (doc["kind"], doc["result"], doc["targetVersion"]) == ("WatchReport", "pass", TO_TAG)
    changes = {e["object"]: e for e in _events(doc, "VersionChange")}
    assert set(changes) == {"istiod", "istio-cni", "ztunnel", "waypoint bookinfo/waypoint"}
    assert changes["ztunnel"]["message"] == f"ztunnel {FROM_TAG} -> {TO_TAG} on 3/3 nodes"
    assert (changes["ztunnel"]["from"], changes["ztunnel"]["to"]) == (FROM_TAG, TO_TAG)
    # every stream through the waypoint fails while it has no pod, except the one that must be refused:
    # a reset is a refusal too, so no false outage there
    assert sorted(o["route"] for o in doc["outages"]) == [
        "AuthorizationPolicy productpage-waypoint -> Service productpage (allowed)",
        "HTTPRoute reviews -> Service reviews"], doc["outages"]
    outage = next(o for o in doc["outages"] if o["route"].startswith("HTTPRoute"))
    assert outage["rolling"] == ["waypoint bookinfo/waypoint"]
    assert 1.0 <= outage["durationSeconds"] <= 5.0 and outage["end"] > outage["start"]
    assert [e["kind"] for e in doc["events"] if e["kind"].startswith("Gateway")] == [
        "GatewayNotProgrammed", "GatewayProgrammed"]
    assert doc["finalVerify"]["kind"] == "VerifyReport" and doc["finalVerify"]["result"] == "pass"
    assert all(e["timestamp"].endswith("Z") for e in doc["events"])
    # watch connections, not repeated lists: one watch per followed resource, never a re-list (which
    # only a 410 causes, and always reports as a WatchGap)
    assert len([r for r in sim.requests if r.verb == "watch"]) == len(mesh_sources("bookinfo"))
    assert _events(doc, "WatchGap") == [], [e["message"] for e in _events(doc, "WatchGap")]


def test_the_table_prints_each_event_with_its_time(run_cli, upgrade):
    _, _, kubeconfig, play = upgrade(pace=0.2)
    play()
    out = run_cli("watch", "--kubeconfig", kubeconfig, "--target-version", TO_TAG, "--timeout", "60s", *FAST).stdout
    lines = out.splitlines()
    assert lines[0].startswith(f"Watching the upgrade to {TO_TAG} from namespace bookinfo: 3 request stream(s), one request every 0.2s each")
    ztunnel = [line for line in lines if f"ztunnel {FROM_TAG} -> {TO_TAG} on" in line]
    assert [line.split()[-2] for line in ztunnel] == ["1/3", "2/3", "3/3"]
    assert all(line.split()[0].endswith("s") for line in ztunnel)
    assert "Result: pass" in out and "Final verify: pass" in out and "No failed request" in out


def test_an_outage_longer_than_max_outage_fails(run_cli, upgrade):
    _, _, kubeconfig, play = upgrade(waypoint_outage=1.5)
    play()
    doc = run_cli("watch", "--kubeconfig", kubeconfig, "--target-version", TO_TAG, "--max-outage", "500ms", *FAST,
                  "-o", "json", expect=1).json
    assert doc["result"] == "fail" and "--max-outage 0.5s" in doc["reason"]


def test_timeout_before_the_upgrade_finishes_says_what_is_left(run_cli, upgrade):
    _, _, kubeconfig, play = upgrade(pace=30.0)
    play()
    result = run_cli("watch", "--kubeconfig", kubeconfig, "--target-version", TO_TAG, "--timeout", "3s", *FAST,
                     expect=4)
    assert "Result: inconclusive - --timeout 3s reached before the upgrade finished" in result.stdout
    assert f"ztunnel has 3 pod(s) not at {TO_TAG}" in result.stdout


def test_without_a_target_one_version_after_a_change_is_done(run_cli, upgrade):
    _, _, kubeconfig, play = upgrade(pace=0.1)
    play()
    doc = run_cli("watch", "--kubeconfig", kubeconfig, "--timeout", "60s", *FAST, "-o", "yaml").yaml
    assert doc["result"] == "pass" and doc["targetVersion"] is None
    assert {v for c in doc["components"] for v in c["versions"]} == {TO_TAG}


def test_dropped_watches_and_a_replaced_client_pod_are_gaps_not_outages(run_cli, upgrade, monkeypatch):
    # The simulated cluster keeps an exec session running when its pod is deleted (a real kubelet
    # ends it): short probe sessions make the prober meet the deletion on its next exec instead.
    monkeypatch.setattr("kubectl_waypoint.watch.PROBE_SESSION_S", 1.0)
    sim, timeline, kubeconfig, play = upgrade(pace=0.3)
    client = sorted(p["metadata"]["name"] for p in sim.store.list("pods", "bookinfo")
                    if p["metadata"]["name"].startswith("ratings"))[0]  # the first pod with curl

    replacement = copy.deepcopy(sim.store.get("pods", "bookinfo", client))
    replacement["metadata"]["name"] = client[:-5] + "zz9zz"
    for key in ("uid", "resourceVersion"):
        replacement["metadata"].pop(key, None)

    def faults():
        sim.store.events.drop_watches()
        sim.store.delete("pods", "bookinfo", client)  # the probe's client pod goes during the rollout,
        sim.store.put(replacement)  # and its ReplicaSet starts another, as a real one would

    threading.Timer(2.0, faults).start()
    play()
    doc = run_cli("watch", "--kubeconfig", kubeconfig, "--target-version", TO_TAG, "--timeout", "60s", *FAST,
                  "-o", "json").json
    assert doc["result"] == "pass" and doc["outages"] == []
    gaps = [e["message"] for e in _events(doc, "WatchGap")]
    assert any("interrupted" in g for g in gaps)
    assert any(f"probe client bookinfo/{client}" in g and "probing from" in g for g in gaps)
    ztunnel_lists = [r for r in sim.requests if r.verb == "list" and r.resource == "daemonsets"
                     and r.query.get("labelSelector") == "app.kubernetes.io/name=ztunnel"]
    assert len(ztunnel_lists) == 1  # resumed from its resourceVersion, not listed again


@pytest.mark.parametrize(("args", "message"), [
    (("--target-version", "latest"), '--target-version "latest" is not an Istio version'),
    (("--interval", "0"), "--interval 0 is too short"),
    (("--timeout", "soon"), 'invalid value "soon" for --timeout'),
    (("--report", "/nonexistent-folder/upgrade.html"), "cannot write --report /nonexistent-folder/upgrade.html"),
])
def test_bad_flags_are_usage_errors_before_any_request(run_cli, upgrade, args, message):
    sim, _, kubeconfig, _ = upgrade()
    sim.clear_requests()
    result = run_cli("watch", "--kubeconfig", kubeconfig, *args, expect=2)
    assert message in one_line_error(result.stderr) and sim.requests == []


def test_ctrl_c_prints_the_report_so_far(upgrade):
    _, _, kubeconfig, play = upgrade(pace=30.0)
    play()
    process = subprocess.Popen([sys.executable, "-m", "kubectl_waypoint", "watch", "--kubeconfig", kubeconfig,
                                "--target-version", TO_TAG, *FAST], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    first = process.stdout.readline()  # the command is watching
    assert first.startswith("Watching the upgrade")
    threading.Event().wait(2.0)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 4, err
    assert "Result: inconclusive - interrupted before the upgrade finished" in out and "Traceback" not in err


def test_demo_watch_follows_a_whole_simulated_upgrade(run_cli, monkeypatch):
    from kubectl_waypoint import demo

    full = demo.watch_demo
    monkeypatch.setattr(demo, "watch_demo", lambda **kw: full(**kw, pace=0.2))  # the same upgrade, 5x faster
    doc = run_cli("demo", "--watch", "-o", "json").json
    assert doc["result"] == "pass" and doc["targetVersion"] == TO_TAG
    assert {tuple(o["rolling"]) for o in doc["outages"]} == {("waypoint bookinfo/waypoint",)}


def test_a_forbidden_watch_is_a_cluster_error_naming_the_permission(run_cli, upgrade):
    sim, _, kubeconfig, _ = upgrade()
    sim.deny("watch", "daemonsets", group="apps")
    result = run_cli("watch", "--kubeconfig", kubeconfig, "--timeout", "30s", *FAST, expect=3)
    line = one_line_error(result.stderr)  # the preflight asks before following anything
    assert "watch lacks 1 permission it needs: watch daemonsets.apps in every namespace" in line
    assert "kubectl waypoint rbac --command watch" in line


def test_a_watch_refused_without_a_preflight_still_names_the_permission(run_cli, upgrade):
    sim, _, kubeconfig, _ = upgrade()
    sim.deny("watch", "daemonsets", group="apps")
    sim.deny("create", "selfsubjectaccessreviews", group="authorization.k8s.io")  # nothing can be asked in advance
    result = run_cli("watch", "--kubeconfig", kubeconfig, "--timeout", "30s", *FAST, expect=3)
    assert "permission denied: you cannot watch daemonsets.apps at the cluster scope" in result.stderr


def test_a_sail_cluster_is_followed_through_its_crs_too(run_cli, upgrade):
    sim, _, kubeconfig, play = upgrade(scenario="sail", tags=("1.27.3", "1.28.6"), pace=0.1)
    play(watchers=len(mesh_sources("bookinfo")) + len(sail_sources()))
    doc = run_cli("watch", "--kubeconfig", kubeconfig, "--target-version", "1.28.6", "--timeout", "60s", *FAST,
                  "-o", "json").json
    assert doc["result"] == "pass"
    versions = {c["name"]: c["versions"] for c in doc["components"]}
    assert versions["ztunnel"] == {"1.28.6": 3}  # pinned by digest: the version Sail's ZTunnel asks for
    watched = {r.resource for r in sim.requests if r.verb == "watch"}
    assert {"istios", "istiorevisions", "istiocnis", "ztunnels"} <= watched


def test_a_final_verify_that_fails_is_exit_1_and_an_unenforced_policy_an_open_outage(run_cli, upgrade):
    _, _, kubeconfig, play = upgrade(scenario="authz-not-enforced", pace=0.1)
    play()
    doc = run_cli("watch", "--kubeconfig", kubeconfig, "--target-version", TO_TAG, "--timeout", "60s", *FAST,
                  "-o", "json", expect=1).json
    assert (doc["result"], doc["reason"]) == ("fail", "the upgrade finished but the final verify failed")
    assert doc["finalVerify"]["result"] == "fail"
    (outage,) = doc["outages"]  # the denied principal was answered from the start, and still is
    assert outage["route"].endswith("(denied principal)") and outage["end"] is None
