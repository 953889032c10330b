"""Who served, by the waypoint's own counters: parsing, differences, workloads, and the simulated waypoint."""

from __future__ import annotations

import pytest

from kubectl_waypoint.kube.client import Cluster, ExecutableMissing
from kubectl_waypoint.kube.config import ClusterFlags, resolve_target
from kubectl_waypoint.probe.telemetry import (
    STATS_COMMAND,
    TelemetryUnavailable,
    for_route,
    parse_requests_total,
    served_between,
    snapshot,
    workload_name,
)
from kubectl_waypoint.sim import SimCluster

# The labels Istio's waypoints put on istio_requests_total (tests/integration/ambient/baseline_test.go,
# listed in shared/reference/istio-sources/README.md).
ISTIO_LABELS = {
    "reporter", "request_protocol", "response_code", "response_flags", "connection_security_policy",
    "source_workload", "source_workload_namespace", "source_principal", "source_canonical_service",
    "source_canonical_revision", "source_app", "source_version", "destination_workload",
    "destination_workload_namespace", "destination_service", "destination_service_name",
    "destination_service_namespace", "destination_principal", "destination_canonical_service",
    "destination_canonical_revision", "destination_app", "destination_version",
}


def line(value, **labels):
    rendered = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"istio_requests_total{{{rendered}}} {value}"


def ours(workload, value, flags="-", code="200"):
    return line(value, reporter="waypoint", source_workload="curl", source_workload_namespace="curl",
                destination_workload=workload, destination_workload_namespace="bookinfo", response_flags=flags,
                response_code=code)


BACKENDS = {("bookinfo", "reviews-v1"): "reviews-v1", ("bookinfo", "reviews-v2"): "reviews-v2"}


def test_prometheus_text_with_escapes_comments_and_timestamps():
    text = "\n".join([
        "# HELP istio_requests_total Total requests.", "# TYPE istio_requests_total counter",
        'istio_requests_total{reporter="waypoint",path="a\\"b\\\\c\\nd"} 12 1700000000000',
        'envoy_server_uptime 33', 'istio_requests_total_other{x="1"} 1', "",
    ])
    assert parse_requests_total(text) == [({"reporter": "waypoint", "path": 'a"b\\c\nd'}, 12.0)]


@pytest.mark.parametrize(("text", "words"), [
    ("404 page not found", "line 1 of the waypoint's metrics is not Prometheus text ('404 page not found')"),
    ('istio_requests_total{reporter=waypoint} 1', "line 1 of the waypoint's metrics has a malformed label"),
    ('istio_requests_total{reporter="waypoint"} many', "line 1 of the waypoint's metrics has no number ('many')"),
    ("envoy_ok 1\n\x1b]0;owned\x07", "line 2 of the waypoint's metrics is not Prometheus text"),
])
def test_bad_metrics_text_gives_a_reason_never_a_crash(text, words):
    with pytest.raises(TelemetryUnavailable) as raised:
        parse_requests_total(text)
    assert words in raised.value.reason


def test_the_difference_counts_only_the_clients_requests_and_notes_foreign_traffic():
    before = snapshot({"bookinfo/waypoint-a": "\n".join([ours("reviews-v1", 5)])}, "curl", "curl")
    after = snapshot({"bookinfo/waypoint-a": "\n".join([
        ours("reviews-v1", 85), ours("reviews-v2", 20), ours("unknown", 3, flags="UH", code="503"),
        ours("ratings-v1", 4),
        line(50, reporter="waypoint", source_workload="productpage-v1", source_workload_namespace="bookinfo",
             destination_workload="reviews-v1", destination_workload_namespace="bookinfo", response_flags="-"),
        line(9, reporter="destination", source_workload="curl", source_workload_namespace="curl",
             destination_workload="reviews-v1", destination_workload_namespace="bookinfo", response_flags="-"),
    ])}, "curl", "curl")
    served = served_between(before, after, BACKENDS)
    assert served.backends == {"reviews-v1": 80, "reviews-v2": 20}
    assert served.waypoint_failures == 3
    assert served.notes == (
        "The waypoint also counted requests from the client's workload to workloads outside the split "
        "(bookinfo/ratings-v1 x4); they were not counted.",
        "The waypoint served 50 requests from other clients meanwhile; only the probe client's were counted.")


def test_a_restarted_waypoint_pod_counts_from_zero():
    before = snapshot({"bookinfo/waypoint-a": ours("reviews-v1", 500)}, "curl", "curl")
    after = snapshot({"bookinfo/waypoint-a": ours("reviews-v1", 7)}, "curl", "curl")
    assert served_between(before, after, BACKENDS).backends == {"reviews-v1": 7}


def test_an_application_404_counts_as_served():
    after = snapshot({"p": ours("reviews-v2", 3, code="404")}, "curl", "curl")
    served = served_between(snapshot({}, "curl", "curl"), after, BACKENDS)
    assert served.backends == {"reviews-v2": 3} and served.waypoint_failures == 0


def test_workload_names_follow_istio():
    def pod(name, owner_kind=None, owner=None, template_hash=None):
        meta = {"name": name, "labels": {"pod-template-hash": template_hash} if template_hash else {}}
        if owner:
            meta["ownerReferences"] = [{"kind": owner_kind, "name": owner, "controller": True}]
        return {"metadata": meta}

    assert workload_name(pod("reviews-v1-5d8f-abcde", "ReplicaSet", "reviews-v1-5d8f", "5d8f")) == "reviews-v1"
    assert workload_name(pod("ztunnel-x1", "DaemonSet", "ztunnel")) == "ztunnel"
    assert workload_name(pod("loner")) == "loner"
    assert workload_name(pod("odd-1", "ReplicaSet", "odd-rs", "5d8f")) == "odd-rs"


@pytest.fixture(scope="module")
def sim():
    cluster = SimCluster("bookinfo").start()
    yield cluster
    cluster.stop()


def test_the_simulated_waypoint_counts_with_istios_labels_and_answers_pilot_agent(sim, tmp_path):
    api = Cluster(resolve_target(ClusterFlags(kubeconfig=sim.write_kubeconfig(str(tmp_path / "kubeconfig")))))
    telemetry = for_route(api, "bookinfo", "reviews", "curl", "curl", ["reviews-v1", "reviews-v2"])
    assert telemetry.waypoint == "bookinfo/waypoint" and telemetry.pods
    telemetry.start()
    (client,) = [p for p in sim.store.list("pods", "curl")]
    result = api.exec("curl", client["metadata"]["name"], "curl",
                      ["curl", "-s", "-H", "Connection: close", "http://reviews.bookinfo:9080/reviews/0#[1-20]"])
    assert result.returncode == 0
    served = telemetry.served(answered=20)
    assert sum(served.backends.values()) == 20 and set(served.backends) <= {"reviews-v1", "reviews-v2"}
    namespace, pod = telemetry.pods[0].split("/")
    text = api.exec(namespace, pod, "istio-proxy", STATS_COMMAND).stdout.decode()
    samples = parse_requests_total(text)
    assert samples and all(ISTIO_LABELS <= labels.keys() for labels, _ in samples)
    mine = [labels for labels, _ in samples if labels["source_workload"] == "curl"]
    assert {labels["source_principal"] for labels in mine} == {"spiffe://cluster.local/ns/curl/sa/curl"}
    assert {labels["destination_service"] for labels in mine} <= {"reviews-v1.bookinfo.svc.cluster.local",
                                                                  "reviews-v2.bookinfo.svc.cluster.local"}
    assert {labels["reporter"] for labels in mine} == {"waypoint"}


def test_only_a_waypoints_istio_proxy_answers_pilot_agent(sim, tmp_path):
    api = Cluster(resolve_target(ClusterFlags(kubeconfig=sim.write_kubeconfig(str(tmp_path / "kubeconfig")))))
    (client,) = sim.store.list("pods", "curl")
    with pytest.raises(ExecutableMissing):
        api.exec("curl", client["metadata"]["name"], "curl", STATS_COMMAND)
