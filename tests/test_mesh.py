"""The simulated mesh: a pod's curl runs for real and a loopback proxy plays ztunnel and the waypoints."""

from __future__ import annotations

import random

import pytest

from kubectl_waypoint.kube.client import Cluster
from kubectl_waypoint.kube.config import ClusterFlags, resolve_target
from kubectl_waypoint.probe.curl import build_curl_argv
from kubectl_waypoint.sim import Scenario, SimCluster
from kubectl_waypoint.sim.mesh import Caller, MeshSettings

CURL = Caller("curl", "curl-pod", "curl", enrolled=True)
RATINGS = Caller("bookinfo", "ratings-pod", "bookinfo-ratings", enrolled=True)
OUTSIDER = Caller("default", "outside-pod", "default", enrolled=False)


@pytest.fixture(scope="module")
def sim():
    with SimCluster("bookinfo") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def api(sim, tmp_path_factory):
    path = sim.write_kubeconfig(str(tmp_path_factory.mktemp("kube") / "config"))
    return Cluster(resolve_target(ClusterFlags(kubeconfig=path, context=None, cluster=None, user=None,
                                               namespace=None, request_timeout="0")))


@pytest.fixture(autouse=True)
def fresh_records(request):
    if "sim" in request.fixturenames:
        request.getfixturevalue("sim").mesh.clear_records()
    yield


def curl_pod(sim) -> str:
    return sim.store.list("pods", "curl")[0]["metadata"]["name"]


def answer(sim, caller, target, method="GET", seed=0):
    return sim.mesh.answer(caller, method, target, random.Random(seed))


# ---------------------------------------------------------------- what the mesh decides

@pytest.mark.parametrize("host", ["productpage.bookinfo", "productpage.bookinfo.svc",
                                  "productpage.bookinfo.svc.cluster.local"])
def test_service_names_resolve_like_cluster_dns(sim, host):
    result = answer(sim, CURL, f"http://{host}:9080/productpage")
    assert result.status == 200 and result.backend_pod.startswith("productpage-v1-")


def test_a_short_name_resolves_in_the_callers_namespace_and_the_port_must_exist(sim):
    assert answer(sim, CURL, "http://productpage:9080/productpage").status == 502  # no such Service in curl
    assert answer(sim, RATINGS, "http://details:9080/details/0").status == 200
    assert answer(sim, RATINGS, "http://details:9081/details/0").status == 502
    cluster_ip = sim.store.get("services", "bookinfo", "details")["spec"]["clusterIP"]
    assert answer(sim, CURL, f"http://{cluster_ip}:9080/details/0").backend_pod.startswith("details-v1-")


def test_the_waypoint_enforces_the_policy_by_principal_and_method(sim):
    assert answer(sim, CURL, "http://productpage.bookinfo:9080/productpage").status == 200
    for caller, method in ((RATINGS, "GET"), (CURL, "POST"), (OUTSIDER, "GET")):
        denied = answer(sim, caller, "http://productpage.bookinfo:9080/productpage", method)
        assert (denied.status, denied.body, denied.reason) == (403, b"RBAC: access denied", "l7-denied")


def test_productpage_names_the_reviews_pod_the_route_chose(sim):
    served = [answer(sim, CURL, "http://productpage.bookinfo:9080/productpage", seed=seed).body
              for seed in range(400)]
    v1 = sum(b"reviews-v1-" in body for body in served)
    v2 = sum(b"reviews-v2-" in body for body in served)
    assert v1 + v2 == 400 and not any(b"reviews-v3-" in body for body in served)
    assert 0.74 < v1 / 400 < 0.86  # 80/20, far outside chance at 400 draws


def test_reviews_answers_name_their_own_pod(sim):
    body = answer(sim, RATINGS, "http://reviews-v2:9080/reviews/0").body
    assert b'"podname": "reviews-v2-' in body


def test_split_ignored_spreads_evenly():
    scenario = Scenario.from_dict({"name": "even", "description": "split ignored", "base": "bookinfo",
                                   "mesh": {"splitIgnored": True}})
    with SimCluster(scenario) as sim:
        bodies = [answer(sim, CURL, "http://reviews.bookinfo:9080/reviews/0", seed=seed).body for seed in range(400)]
    v1 = sum(b"reviews-v1-" in body for body in bodies)
    assert 0.4 < v1 / 400 < 0.6


def test_ztunnel_policies_reset_and_their_l7_fields_fail_closed():
    policy = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
              "metadata": {"name": "details-l4", "namespace": "bookinfo"},
              "spec": {"selector": {"matchLabels": {"app": "details"}}, "action": "ALLOW",
                       "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/curl/sa/curl"]}}],
                                  "to": [{"operation": {"methods": ["GET"]}}]}]}}
    scenario = Scenario.from_dict({"name": "l4", "description": "an L4 policy with an L7 field",
                                   "base": "bookinfo", "objects": [policy]})
    with SimCluster(scenario) as sim:
        reset = answer(sim, CURL, "http://details.bookinfo:9080/details/0")
    assert (reset.status, reset.reason) == (None, "l4-denied")  # ztunnel cannot see the method: denied


def test_unknown_mesh_knobs_are_refused():
    with pytest.raises(ValueError, match="splitIgnord"):
        MeshSettings.from_dict({"splitIgnord": True})


# ---------------------------------------------------------------- curl through exec

def test_curl_runs_through_exec_and_each_request_gets_its_own_connection(sim, api):
    argv = build_curl_argv("http://productpage.bookinfo:9080/productpage", 3, nonce="a" * 32)
    result = api.exec("curl", curl_pod(sim), "curl", argv)
    assert result.returncode == 0 and result.stdout.count(b"Reviews served by:") == 3
    records = sim.mesh.records
    assert [r.caller.principal for r in records] == ["cluster.local/ns/curl/sa/curl"] * 3
    assert len({r.connection for r in records}) == 3
    assert all(("Connection", "close") in r.headers for r in records)
    assert not any(name.lower() == "proxy-authorization" for r in records for name, _ in r.headers)


def test_without_connection_close_requests_share_a_connection(sim, api):
    url = "http://details.bookinfo:9080/details/0"
    result = api.exec("curl", curl_pod(sim), "curl", ["curl", "-s", url, url])
    assert result.returncode == 0
    assert len({r.connection for r in sim.mesh.records}) == 1


def test_the_pods_curl_honours_proxy_variables_so_the_mesh_sees_its_requests():
    argv = build_curl_argv("http://productpage:9080/", 1, nonce="a" * 32)
    assert "--noproxy" not in argv


def test_options_that_go_around_the_mesh_are_refused_not_silently_bypassed(sim, api):
    result = api.exec("curl", curl_pod(sim), "curl", ["curl", "--noproxy", "*", "http://127.0.0.1:1/"])
    assert result.returncode == 2 and b"--noproxy would go around the mesh" in result.stderr
    assert sim.mesh.records == []


def test_a_shell_is_not_a_program_of_the_mesh_unless_a_benchmark_allows_it(sim, api):
    from kubectl_waypoint.kube.client import ExecutableMissing

    with pytest.raises(ExecutableMissing):
        api.exec("curl", curl_pod(sim), "curl", ["sh", "-c", "curl -s http://details.bookinfo:9080/details/0"])
    sim.mesh.allow_shell = True
    try:
        result = api.exec("curl", curl_pod(sim), "curl",
                          ["sh", "-c", "curl -s http://details.bookinfo:9080/details/0"])
    finally:
        sim.mesh.allow_shell = False
    assert result.returncode == 0 and b"William Shakespeare" in result.stdout


def test_a_container_without_curl_is_an_exec_rule(sim, api):
    from kubectl_waypoint.kube.client import ExecutableMissing

    istiod = sim.store.list("pods", "istio-system")
    pod = next(p["metadata"]["name"] for p in istiod if p["metadata"]["name"].startswith("istiod-"))
    with pytest.raises(ExecutableMissing, match="curl"):
        api.exec("istio-system", pod, "discovery", ["curl", "-s", "http://details.bookinfo:9080/"])


def test_an_outage_lasts_seconds_or_a_count_of_requests_never_both():
    by_count = MeshSettings.from_dict({"outages": [{"afterRequests": 40, "requests": 1, "answer": "503"}]})
    assert (by_count.outages[0].after_requests, by_count.outages[0].requests) == (40, 1)
    for doc in ({"afterRequests": 1}, {"afterRequests": 1, "seconds": 1, "requests": 1}):
        with pytest.raises(ValueError, match="either seconds or requests"):
            MeshSettings.from_dict({"outages": [doc]})
