"""The pure upgrade timeline (kubectl_waypoint/timeline.py), fed the simulated controllers' real changes."""

from __future__ import annotations

import datetime
import json

import pytest

from kubectl_waypoint.plan import parse_target
from kubectl_waypoint.sim import SimCluster
from kubectl_waypoint.sim.resources import resource_named
from kubectl_waypoint.sim.store import with_typemeta
from kubectl_waypoint.sim.timeline import FROM_TAG, TO_TAG, upgrade_timeline
from kubectl_waypoint.timeline import UpgradeTimeline, at_target

STARTED = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
FOLLOWED = ("pods", "deployments", "daemonsets", "gateways")


def _feed_initial(sim, model):
    for plural in FOLLOWED:
        for obj in sim.store.list(plural):
            model.observe("ADDED", plural, obj, 0.0, initial=True)


def _feed_changes(sim, model, since, at):
    """Every change the simulated controllers made after revision `since`, as a watch delivers it."""
    for change in sim.store.events.since(since):
        if change.plural in FOLLOWED:
            obj = json.loads(with_typemeta(resource_named(change.plural), change.entry.bare))
            model.observe(change.type, change.plural, obj, at)
    return sim.store.resource_version


def _upgrade(target=None, waypoint_outage=0.0):
    sim = SimCluster("bookinfo")
    timeline = upgrade_timeline(sim, pace=1.0, waypoint_outage=waypoint_outage)
    model = UpgradeTimeline(parse_target(target) if target else None, STARTED)
    _feed_initial(sim, model)
    return sim, timeline, model


def _play(sim, timeline, model, until=None, on_step=None):
    revision = sim.store.resource_version
    for step in timeline.steps:
        if until is not None and step.at > until:
            break
        timeline.advance(step.at)
        revision = _feed_changes(sim, model, revision, step.at)
        if on_step:
            on_step(step)


def test_version_changes_read_like_the_issue_says():
    sim, timeline, model = _upgrade(TO_TAG)
    _play(sim, timeline, model)
    changes = [e.message for e in model.events if e.kind == "VersionChange"]
    assert changes == [f"istiod {FROM_TAG} -> {TO_TAG} on 1/1 pods",
                       *[f"istio-cni {FROM_TAG} -> {TO_TAG} on {n}/3 nodes" for n in (1, 2, 3)],
                       *[f"ztunnel {FROM_TAG} -> {TO_TAG} on {n}/3 nodes" for n in (1, 2, 3)],
                       f"waypoint bookinfo/waypoint {FROM_TAG} -> {TO_TAG} on 1/1 pods"]
    rollouts = [(e.kind, e.object) for e in model.events if e.kind.startswith("Rollout")]
    assert rollouts == [(kind, name) for name in ("istiod", "istio-cni", "ztunnel", "waypoint bookinfo/waypoint")
                        for kind in ("RolloutStarted", "RolloutFinished")]
    assert model.pending() == [] and model.rolling() == []


def test_not_finished_halfway_says_what_is_left():
    sim, timeline, model = _upgrade(TO_TAG)
    _play(sim, timeline, model, until=next(s.at for s in timeline.steps if "ztunnel: image" in s.what) + 1.5)
    assert model.pending() == [f"waypoint bookinfo/waypoint has 1 pod(s) not at {TO_TAG}",
                               "ztunnel is still rolling out", "ztunnel has 1 pod(s) not ready",
                               f"ztunnel has 2 pod(s) not at {TO_TAG}"]
    assert model.rolling() == ["ztunnel"]


def test_without_a_target_it_is_finished_once_everything_moved_to_one_version():
    sim, timeline, model = _upgrade()
    assert "no version change seen yet" in " ".join(model.pending())
    _play(sim, timeline, model, until=timeline.steps[-2].at)
    assert any("versions" in p for p in model.pending())
    _play(sim, timeline, model)
    assert model.pending() == []


def test_a_waypoint_outage_names_the_component_rolling_and_the_gateway_events():
    sim, timeline, model = _upgrade(TO_TAG, waypoint_outage=3.0)
    deleted = next(s.at for s in timeline.steps if s.what.startswith("pod bookinfo/waypoint") and "deleted" in s.what)
    ready = next(s.at for s in timeline.steps if s.what.startswith("pod bookinfo/waypoint") and "ready" in s.what)

    def probe(step):  # a request on each step: failing while the mesh resets them
        model.request("curl -> reviews:9080", not (deleted <= step.at < ready), step.at)

    _play(sim, timeline, model, on_step=probe)
    model.request("curl -> reviews:9080", True, ready + 0.5)  # the second success in a row confirms the end
    (outage,) = model.outages
    assert (outage.start, outage.end, outage.duration) == (deleted, ready, pytest.approx(3.0))
    assert outage.rolling == ["waypoint bookinfo/waypoint"]
    kinds = [(e.kind, e.time) for e in model.events if e.kind.startswith(("Gateway", "Outage"))]
    assert kinds == [("GatewayNotProgrammed", deleted), ("OutageStarted", deleted), ("GatewayProgrammed", ready),
                     ("OutageEnded", ready + 0.5)]
    assert model.longest_outage(now=ready + 10) == pytest.approx(3.0)


def test_the_report_document():
    sim, timeline, model = _upgrade(TO_TAG, waypoint_outage=2.0)
    model.request("curl -> reviews:9080", False, 21.5)
    model.request("curl -> reviews:9080", True, 23.0)
    model.request("curl -> reviews:9080", True, 23.5)
    _play(sim, timeline, model)
    doc = model.report("bookinfo", "pass", "every component at the target", 30.0, {"kind": "VerifyReport"}, None)
    assert (doc["apiVersion"], doc["kind"], doc["result"], doc["targetVersion"]) == (
        "kubectl-waypoint/v1", "WatchReport", "pass", TO_TAG)
    first = doc["events"][0]
    assert first["timestamp"] == (STARTED + datetime.timedelta(seconds=first["time"])).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
    change = next(e for e in doc["events"] if e["kind"] == "VersionChange")
    assert (change["from"], change["to"]) == (FROM_TAG, TO_TAG)
    (outage,) = doc["outages"]
    assert (outage["start"], outage["end"], outage["durationSeconds"]) == (21.5, 23.0, 1.5)
    assert outage["startTimestamp"] == "2026-01-02T03:04:26.500Z"
    assert doc["finalVerify"] == {"kind": "VerifyReport"} and doc["pending"] == []
    assert {c["name"]: c["versions"] for c in doc["components"]}["ztunnel"] == {TO_TAG: 3}


def test_results_arriving_out_of_order_do_not_split_an_outage():
    model = UpgradeTimeline(None, STARTED)
    for at, ok in [(1.0, True), (2.0, False), (2.0, True), (2.2, False), (2.4, False), (2.6, True), (2.8, True)]:
        model.request("a -> b:80", ok, at)
    (outage,) = model.outages
    assert (outage.start, outage.end, outage.failed) == (2.0, 2.6, 3)
    assert model.pending() == ["no mesh component seen yet", "no version change seen yet (give --target-version "
                               "to check an upgrade already done)"]


def test_memory_is_flat_over_many_requests():
    model = UpgradeTimeline(None, STARTED)
    for second in range(36_000):
        model.request("a -> b:80", True, second * 0.1)
    assert model.routes["a -> b:80"] == [[0.0, 3599.9, True, 36_000]] and model.events == []


@pytest.mark.parametrize(("version", "target", "expected"), [
    ("1.28.6-asm-r3", "1.28.6-asm-r3", True), ("1.28.6-asm-r3", "1.28.6", True), ("1.28.6-asm-r3", "1.28", True),
    ("1.28.5-asm-r3", "1.28.6", False), ("1.28.6-asm-r2", "1.28.6-asm-r3", False), ("1.27.3", "1.28", False),
    (None, "1.28", False)])
def test_at_target(version, target, expected):
    assert at_target(version, parse_target(target)) is expected


def test_the_table_never_passes_a_terminal_control_sequence():
    from kubectl_waypoint.render.watch import event_line, render_watch_summary

    model = UpgradeTimeline(None, STARTED)
    hostile = "\x1b]0;pwned\x07\x1b[2J"
    pod = {"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "istiod", "istio.io/rev": hostile}},
           "spec": {"containers": [{"image": "x/pilot:1.28.0"}]}}
    model.observe("ADDED", "pods", pod, 0.0, initial=True)
    (event,) = model.request(hostile, False, 1.0)
    text = render_watch_summary(model.report("ns", "inconclusive", hostile, 2.0, None, None)) + \
        event_line(event.time, event.message)
    assert "\x1b" not in text and "\x07" not in text and "\\x1b]0;pwned" in text


def test_a_sail_version_change_is_an_event():
    sim = SimCluster("sail")
    model = UpgradeTimeline(None, STARTED)
    for plural in ("istiorevisions", "ztunnels"):
        for obj in sim.store.list(plural):
            model.observe("ADDED", plural, obj, 0.0, initial=True)
    ztunnel = sim.store.list("ztunnels")[0]
    ztunnel["spec"]["version"] = "v1.29.0"
    (event,) = model.observe("MODIFIED", "ztunnels", ztunnel, 4.0)
    assert (event.kind, event.message) == ("SailVersionChange", "Sail ZTunnel/default: spec.version v1.28.6 -> v1.29.0")
    assert model.observe("MODIFIED", "ztunnels", ztunnel, 5.0) == []  # status updates alone say nothing


def test_digest_pinned_pods_take_the_version_sail_asked_for_when_they_were_created():
    sim = SimCluster("sail")  # ztunnel pinned by digest, ZTunnel.spec.version v1.28.6
    model = UpgradeTimeline(parse_target("1.28.6"), STARTED)
    for plural in ("ztunnels", "pods", "daemonsets"):
        for obj in sim.store.list(plural):
            model.observe("ADDED", plural, obj, 0.0, initial=True)
    assert {c["name"]: c["versions"] for c in model.report("x", "pass", "", 1.0, None, None)["components"]}[
        "ztunnel"] == {"1.28.6": 3}
    ztunnel = sim.store.list("ztunnels")[0]
    ztunnel["spec"]["version"] = "v1.29.0"
    model.observe("MODIFIED", "ztunnels", ztunnel, 2.0)
    assert not any(p.startswith("ztunnel") for p in model.pending())  # the running pods did not change


def test_a_provisional_failure_taken_back_by_its_result_is_not_a_failure():
    from kubectl_waypoint.watch import ConfirmedResults

    counts = ConfirmedResults()
    # (ok, errors) as the engine reports them: curl's error lines first, then the results
    assert counts.update(1, 0, 1.0) == [(True, 1.0)]
    assert counts.update(1, 1, 2.0) == []  # curl said a transfer failed; its result is not in yet
    assert counts.update(1, 3, 2.001) == []  # two more
    assert counts.update(4, 0, 2.002) == [(True, 2.002)] * 3  # the results: refusals, as expected
    assert counts.update(4, 1, 3.0) == []
    assert counts.update(5, 1, 3.2) == [(True, 3.2)]
    assert counts.update(6, 1, 3.6) == [(False, 3.0), (True, 3.6)]  # counted for 0.5 s: a failure, from 3.0
    assert counts.update(7, 1, 4.0) == [(True, 4.0)]
