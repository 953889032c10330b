"""The simulated cluster, driven through the real clients: kubectl and the kubernetes Python client."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
import time

import pytest

from conftest import kubectl_binary
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream
from kubernetes.stream.ws_client import WSClient, get_websocket_url

from kubectl_waypoint.sim import (ExecutableNotFound, Scenario, SimCluster, generate_large_scenario, load_scenario,
                                  scenario_names)

EXPECTED_SCENARIOS = {"bookinfo", "waypoint-not-rolled", "waypoint-too-old", "ztunnel-ahead", "cni-too-old",
                      "mixed-rollout", "digest-only", "revisions", "sail", "no-gateway-api",
                      "split-ignored", "authz-not-enforced", "l4-deny", "rollout-outage",
                      "waypoint-disconnected", "waypoint-no-subscriptions", "waypoint-stale", "legacy-syncz",
                      "hostile", "debug-endpoint-off", "debug-endpoint-off-disconnected"}
HUB = "registry.alauda.cn:60080/asm"


def kubectl_path() -> str:
    return kubectl_binary()


@pytest.fixture(scope="module")
def sim():
    scenario = Scenario.from_dict({
        "name": "bookinfo-with-echo", "description": "bookinfo plus exec rules for the tests", "base": "bookinfo",
        "exec": [{"namespace": "curl", "argv": ["echo", "*"], "stdout": "hello from curl\n"},
                 {"namespace": "curl", "argv": ["sh", "-c", "exit 3"], "stderr": "bye\n", "exitCode": 3}]})
    with SimCluster(scenario, tls=True) as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def fresh(request):
    """Each test starts with no faults, no deny rules, the scenario's exec rules and an empty log."""
    if "sim" in request.fixturenames:
        cluster = request.getfixturevalue("sim")
        cluster.clear_faults()
        cluster.access.clear()
        cluster.set_exec_handler(None)
        cluster.clear_requests()
    yield


@pytest.fixture(scope="module")
def kubeconfig(sim, tmp_path_factory):
    return sim.write_kubeconfig(str(tmp_path_factory.mktemp("kube") / "config"))


@pytest.fixture(scope="module")
def api(kubeconfig):
    return config.new_client_from_config(config_file=kubeconfig)


def kubectl(kubeconfig, tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([kubectl_path(), "--kubeconfig", kubeconfig, "--cache-dir", str(tmp_path / "cache"), *args],
                          capture_output=True, text=True, timeout=30)


def raw(api, method: str, path: str, query=None, body=None, headers=None):
    """A request through the kubernetes client without its models: (status, headers, body bytes)."""
    request = api.param_serialize(method, path, query_params=query or [], body=body,
                                  header_params={"Accept": "application/json", **(headers or {})},
                                  auth_settings=["BearerToken"])
    response = api.call_api(*request)
    response.read()
    return response.status, response.getheaders(), response.data


def raw_json(api, method: str, path: str, query=None, body=None):
    status, _, data = raw(api, method, path, query, body)
    return status, json.loads(data)


def plain(sim, method: str, path: str, token: str | None = "right") -> tuple[int, dict, bytes]:
    """One request over a fresh connection, for what the kubernetes client would hide or retry."""
    context = ssl.create_default_context(cafile=sim.ca_file)
    conn = http.client.HTTPSConnection("127.0.0.1", sim.port, context=context, timeout=10)
    headers = {} if token is None else {"Authorization": f"Bearer {sim.token if token == 'right' else token}"}
    conn.request(method, path, headers=headers)
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


# ---------------------------------------------------------------- scenarios

def test_bundled_scenarios_are_the_expected_set():
    assert set(scenario_names()) == EXPECTED_SCENARIOS


@pytest.mark.parametrize("name", sorted(EXPECTED_SCENARIOS))
def test_each_scenario_expands_into_consistent_objects(name):
    scenario = load_scenario(name)
    assert scenario.name == name and scenario.description and "\n" not in scenario.description
    nodes = [n["metadata"]["name"] for n in scenario.find("Node")]
    assert len(nodes) == 3
    for pod in scenario.find("Pod"):
        assert pod["status"]["phase"] == "Running"
        assert pod["spec"]["nodeName"] in nodes
        assert pod["spec"]["serviceAccountName"]
        statuses = pod["status"]["containerStatuses"]
        assert [s["name"] for s in statuses] == [c["name"] for c in pod["spec"]["containers"]]
        assert all(s["ready"] and s["imageID"] and s["state"]["running"]["startedAt"] for s in statuses)
        assert len(pod["metadata"]["ownerReferences"]) == 1
    for daemonset in scenario.find("DaemonSet"):
        pods = [p for p in scenario.find("Pod", daemonset["metadata"]["namespace"])
                if p["metadata"]["ownerReferences"][0]["name"] == daemonset["metadata"]["name"]]
        assert sorted(p["spec"]["nodeName"] for p in pods) == nodes
        assert daemonset["status"]["desiredNumberScheduled"] == 3
    ztunnel = [p for p in scenario.find("Pod") if p["metadata"]["labels"].get("app") == "ztunnel"]
    cni = [p for p in scenario.find("Pod") if p["metadata"]["labels"].get("k8s-app") == "istio-cni-node"]
    istiod = [p for p in scenario.find("Pod") if p["metadata"]["labels"].get("app") == "istiod"]
    assert len(ztunnel) == len(cni) == 3 and istiod
    assert {c["name"] for p in ztunnel for c in p["spec"]["containers"]} == {"istio-proxy"}
    assert {c["name"] for p in cni for c in p["spec"]["containers"]} == {"install-cni"}
    assert {c["name"] for p in istiod for c in p["spec"]["containers"]} == {"discovery"}


def test_bookinfo_matches_the_upgrade_procedure():
    scenario = load_scenario("bookinfo")
    (istiod,) = scenario.find("Deployment", "istio-system", "istiod")
    assert istiod["spec"]["template"]["spec"]["containers"][0]["image"] == f"{HUB}/pilot:1.28.6-asm-r3"
    assert istiod["spec"]["template"]["metadata"]["labels"]["istio.io/rev"] == "default"
    assert len(scenario.find("ReplicaSet", "istio-system")) == 2  # the 1.27 one, scaled to 0, is still there
    (gateway,) = scenario.find("Gateway", "bookinfo", "waypoint")
    assert gateway["spec"]["gatewayClassName"] == "istio-waypoint"
    assert gateway["metadata"]["labels"]["istio.io/waypoint-for"] == "service"
    assert {c["type"]: c["status"] for c in gateway["status"]["conditions"]}["Programmed"] == "True"
    (waypoint_pod,) = [p for p in scenario.find("Pod", "bookinfo")
                       if p["metadata"]["labels"].get("gateway.networking.k8s.io/gateway-name") == "waypoint"]
    assert waypoint_pod["metadata"]["labels"]["gateway.istio.io/managed"] == "istio.io-mesh-controller"
    assert waypoint_pod["metadata"]["annotations"]["istio.io/rev"] == "default"
    assert waypoint_pod["spec"]["containers"][0]["image"] == f"{HUB}/proxyv2:1.28.6-asm-r3"
    (route,) = scenario.find("HTTPRoute", "bookinfo", "reviews")
    assert [(b["name"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]] == \
        [("reviews-v1", 80), ("reviews-v2", 20)]
    (policy,) = scenario.find("AuthorizationPolicy", "bookinfo", "productpage-waypoint")
    assert policy["spec"]["rules"][0]["from"][0]["source"]["principals"] == ["cluster.local/ns/curl/sa/curl"]
    (namespace,) = scenario.find("Namespace", name="bookinfo")
    assert namespace["metadata"]["labels"]["istio.io/use-waypoint"] == "waypoint"
    reviews = sorted(s["metadata"]["name"] for s in scenario.find("Service", "bookinfo") if "reviews" in
                     s["metadata"]["name"])
    assert reviews == ["reviews", "reviews-v1", "reviews-v2", "reviews-v3"]
    (curl,) = [p for p in scenario.find("Pod", "curl")]
    assert curl["spec"]["serviceAccountName"] == "curl"
    assert curl["status"]["containerStatuses"][0]["image"] == "docker.io/curlimages/curl:8.16.0"  # samples/curl


def _images(scenario, label, value):
    return sorted(p["spec"]["containers"][0]["image"] for p in scenario.find("Pod")
                  if p["metadata"]["labels"].get(label) == value)


def test_variants_change_only_what_they_describe():
    assert _images(load_scenario("waypoint-not-rolled"), "gateway.networking.k8s.io/gateway-name", "waypoint") == \
        [f"{HUB}/proxyv2:1.27.3-asm-r2"]
    assert _images(load_scenario("waypoint-too-old"), "gateway.networking.k8s.io/gateway-name", "waypoint")[0] \
        .endswith(":1.26.4-asm-r2")
    assert set(_images(load_scenario("ztunnel-ahead"), "app", "ztunnel")) == {f"{HUB}/ztunnel:1.29.0"}
    assert set(_images(load_scenario("cni-too-old"), "k8s-app", "istio-cni-node")) == \
        {f"{HUB}/install-cni:1.26.4-asm-r2"}
    assert "@sha256:" in _images(load_scenario("digest-only"), "k8s-app", "istio-cni-node")[0]
    mixed = load_scenario("mixed-rollout")
    assert _images(mixed, "app", "ztunnel") == [f"{HUB}/ztunnel:1.27.3-asm-r2"] * 2 + [f"{HUB}/ztunnel:1.28.6-asm-r3"]
    (daemonset,) = mixed.find("DaemonSet", "istio-system", "ztunnel")
    assert daemonset["status"]["updatedNumberScheduled"] == 1
    assert _images(mixed, "app", "istiod") == [f"{HUB}/pilot:1.28.6-asm-r3"]  # the rest is bookinfo
    assert not load_scenario("no-gateway-api").find("Gateway")
    assert "gateway.networking.k8s.io" not in load_scenario("no-gateway-api").installed


def test_revisions_scenario_has_tags_pointing_at_revisions():
    scenario = load_scenario("revisions")
    assert {d["metadata"]["name"] for d in scenario.find("Deployment", "istio-system")} == \
        {"istiod-1-27-3", "istiod-1-28-6"}
    tags = {w["metadata"]["labels"]["istio.io/tag"]: w["metadata"]["labels"]["istio.io/rev"]
            for w in scenario.find("MutatingWebhookConfiguration") if "istio.io/tag" in w["metadata"]["labels"]}
    assert tags == {"default": "1-27-3", "prod": "1-28-6"}
    revs = {p["metadata"]["namespace"]: p["metadata"].get("annotations", {}).get("istio.io/rev")
            for p in scenario.find("Pod") if "gateway.networking.k8s.io/gateway-name" in p["metadata"]["labels"]}
    assert revs == {"bookinfo": "1-28-6", "legacy": "1-27-3", "edge": "1-27-3"}  # the rendering revision


def test_sail_scenario_keeps_ztunnel_version_only_in_its_custom_resource():
    scenario = load_scenario("sail")
    assert "sailoperator.io" in scenario.installed
    (ztunnel_cr,) = scenario.find("ZTunnel")
    assert ztunnel_cr["spec"] == {"namespace": "ztunnel", "profile": "ambient", "version": "v1.28.6"}
    (istio,) = scenario.find("Istio")
    assert istio["spec"]["updateStrategy"]["type"] == "InPlace" and istio["status"]["state"] == "Healthy"
    assert all("@sha256:" in image for image in _images(scenario, "app", "ztunnel"))
    assert {p["metadata"]["namespace"] for p in scenario.find("Pod")
            if p["metadata"]["labels"].get("app") == "ztunnel"} == {"ztunnel"}
    assert {p["metadata"]["namespace"] for p in scenario.find("Pod")
            if p["metadata"]["labels"].get("k8s-app") == "istio-cni-node"} == {"istio-cni"}


def test_scenarios_are_deterministic():
    first = Scenario.from_dict({"name": "a", "description": "d", "base": "bookinfo"})
    second = Scenario.from_dict({"name": "a", "description": "d", "base": "bookinfo"})
    assert first.objects == second.objects


def test_unknown_keys_in_a_scenario_are_rejected():
    with pytest.raises(ValueError, match="unknown keys"):
        Scenario.from_dict({"name": "x", "description": "d", "workload": []})
    with pytest.raises(ValueError, match="unknown optional API groups"):
        Scenario.from_dict({"name": "x", "description": "d", "installed": ["networking.istio.io"]})


def test_large_scenario_has_agents_on_every_node_and_unrelated_apps():
    started = time.perf_counter()
    scenario = generate_large_scenario(300, 6, seed=1)
    assert time.perf_counter() - started < 2.0
    pods = scenario.find("Pod")
    ztunnel = [p for p in pods if p["metadata"]["labels"].get("app") == "ztunnel"]
    cni = [p for p in pods if p["metadata"]["labels"].get("k8s-app") == "istio-cni-node"]
    assert len(ztunnel) == len(cni) == 300 and len({p["spec"]["nodeName"] for p in ztunnel}) == 300
    assert len(scenario.find("Gateway")) == 6
    waypoint_pods = [p for p in pods if "gateway.networking.k8s.io/gateway-name" in p["metadata"]["labels"]]
    istiod = [p for p in pods if p["metadata"]["labels"].get("app") == "istiod"]
    assert len(pods) - len(ztunnel) - len(cni) - len(waypoint_pods) - len(istiod) == 300 * 5
    assert len({(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods}) == len(pods)


# ---------------------------------------------------------------- kubectl

def test_kubectl_lists_ztunnel_pods_in_every_namespace(sim, kubeconfig, tmp_path):
    result = kubectl(kubeconfig, tmp_path, "get", "pods", "-A", "-l", "app=ztunnel", "-o", "json")
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)["items"]
    assert len(items) == 3
    assert {i["metadata"]["labels"]["app"] for i in items} == {"ztunnel"}
    assert {i["spec"]["containers"][0]["image"] for i in items} == {f"{HUB}/ztunnel:1.28.6-asm-r3"}
    lists = [r for r in sim.requests if r.verb == "list"]
    assert lists and lists[-1].query["labelSelector"] == "app=ztunnel" and lists[-1].namespace == ""


def test_kubectl_gets_the_waypoint_gateway(kubeconfig, tmp_path):
    result = kubectl(kubeconfig, tmp_path, "get", "gateways", "-n", "bookinfo", "-o", "json")
    assert result.returncode == 0, result.stderr
    (gateway,) = json.loads(result.stdout)["items"]
    assert gateway["kind"] == "Gateway" and gateway["spec"]["gatewayClassName"] == "istio-waypoint"


def test_kubectl_prints_tables_for_humans(kubeconfig, tmp_path):
    result = kubectl(kubeconfig, tmp_path, "get", "pods", "-n", "istio-system", "-l", "app=ztunnel")
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(rows) == 3 and all(row.split()[1:4] == ["1/1", "Running", "0"] for row in rows)
    gateways = kubectl(kubeconfig, tmp_path, "get", "gateways", "-A").stdout.splitlines()
    assert gateways[0].split() == ["NAMESPACE", "NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"]
    assert gateways[1].split()[:5:2] == ["bookinfo", "istio-waypoint", "True"]


def test_kubectl_exec_runs_through_exec_rules(sim, kubeconfig, tmp_path):
    result = kubectl(kubeconfig, tmp_path, "exec", "-n", "curl", "deploy/curl", "--", "echo", "hi")
    assert (result.returncode, result.stdout) == (0, "hello from curl\n"), result.stderr
    failed = kubectl(kubeconfig, tmp_path, "exec", "-n", "curl", "deploy/curl", "--", "sh", "-c", "exit 3")
    assert failed.returncode == 3 and "bye" in failed.stderr
    missing = kubectl(kubeconfig, tmp_path, "exec", "-n", "curl", "deploy/curl", "--", "wget", "x")
    assert missing.returncode == 1 and 'exec: "wget": executable file not found in $PATH' in missing.stderr
    execs = [r for r in sim.requests if r.resource == "pods/exec"]
    assert [r.exec_argv for r in execs] == [["echo", "hi"], ["sh", "-c", "exit 3"], ["wget", "x"]]
    assert [r.exec_exit_code for r in execs] == [0, 3, None]
    assert sim.writes() == []


def test_kubectl_sees_a_denied_exec_as_forbidden(sim, kubeconfig, tmp_path):
    # Both verbs: kubectl tries a WebSocket exec (get) and falls back to SPDY (create), which it reports.
    sim.deny("*", "pods/exec", namespace="curl")
    result = kubectl(kubeconfig, tmp_path, "exec", "-n", "curl", "deploy/curl", "--", "echo", "hi")
    assert result.returncode == 1
    pod = sim.store.list("pods", "curl")[0]["metadata"]["name"]
    assert (f'pods "{pod}" is forbidden: User "system:serviceaccount:default:tester" cannot create resource '
            f'"pods/exec" in API group "" in the namespace "curl"') in result.stderr
    allowed = kubectl(kubeconfig, tmp_path, "auth", "can-i", "create", "pods", "--subresource=exec", "-n", "curl")
    assert allowed.stdout.strip() == "no"


# ---------------------------------------------------------------- Python client: reads

def _names(document) -> list[str]:
    return [i["metadata"]["name"] for i in document["items"]]


@pytest.mark.parametrize("selector,expected", [
    ("app=reviews", {"reviews-v1", "reviews-v2", "reviews-v3"}),
    ("app==reviews,version!=v1", {"reviews-v2", "reviews-v3"}),
    ("version in (v2, v3),app=reviews", {"reviews-v2", "reviews-v3"}),
    ("app notin (reviews,ratings,details,productpage),version", set()),
    ("!version", {"waypoint"}),
    ("version,app in (details)", {"details-v1"}),
])
def test_label_selectors(api, selector, expected):
    status, document = raw_json(api, "GET", "/api/v1/namespaces/bookinfo/pods", [("labelSelector", selector)])
    assert status == 200 and document["kind"] == "PodList" and document["apiVersion"] == "v1"
    assert {name.rsplit("-", 2)[0] for name in _names(document)} == expected


def test_field_selectors(api, sim):
    node = sim.store.list("pods", "curl")[0]["spec"]["nodeName"]
    _, on_node = raw_json(api, "GET", "/api/v1/pods", [("fieldSelector", f"spec.nodeName={node}")])
    assert on_node["items"] and {i["spec"]["nodeName"] for i in on_node["items"]} == {node}
    _, not_running = raw_json(api, "GET", "/api/v1/pods", [("fieldSelector", "status.phase!=Running")])
    assert not_running["items"] == []
    _, one = raw_json(api, "GET", "/api/v1/namespaces", [("fieldSelector", "metadata.name==bookinfo")])
    assert _names(one) == ["bookinfo"]


@pytest.mark.parametrize("query", [("labelSelector", "app in (a"), ("labelSelector", "app=a b"),
                                   ("fieldSelector", "spec.foo=bar"), ("continue", "not-a-token")])
def test_malformed_list_options_are_bad_requests(api, query):
    status, document = raw_json(api, "GET", "/api/v1/pods", [query])
    assert status == 400 and document["reason"] == "BadRequest" and document["kind"] == "Status"


def test_get_one_object_and_not_found(api):
    status, namespace = raw_json(api, "GET", "/api/v1/namespaces/bookinfo")
    assert (status, namespace["kind"], namespace["metadata"]["name"]) == (200, "Namespace", "bookinfo")
    status, missing = raw_json(api, "GET", "/api/v1/namespaces/bookinfo/pods/x")
    assert status == 404
    assert missing == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": 'pods "x" not found', "reason": "NotFound",
                       "details": {"name": "x", "kind": "pods"}, "code": 404}
    status, missing = raw_json(api, "GET", "/apis/apps/v1/namespaces/bookinfo/deployments/x")
    assert missing["message"] == 'deployments.apps "x" not found'


def test_pagination_walks_the_whole_list_in_etcd_order(api):
    _, everything = raw_json(api, "GET", "/api/v1/pods")
    assert "continue" not in everything["metadata"]
    keys = [f'{i["metadata"]["namespace"]}/{i["metadata"]["name"]}' for i in everything["items"]]
    assert keys == sorted(keys) and len(keys) == 17  # 15 + httpbin v1 and v2
    pages, token = [], None
    while True:
        query = [("limit", "4")] + ([("continue", token)] if token else [])
        _, page = raw_json(api, "GET", "/api/v1/pods", query)
        pages.append(page)
        token = page["metadata"].get("continue")
        if not token:
            break
        assert page["metadata"]["remainingItemCount"] == len(keys) - 4 * len(pages)
    assert [len(p["items"]) for p in pages] == [4, 4, 4, 4, 1]
    assert [f'{i["metadata"]["namespace"]}/{i["metadata"]["name"]}' for p in pages for i in p["items"]] == keys


def test_expired_continue_token_answers_410(api, sim):
    _, first = raw_json(api, "GET", "/api/v1/pods", [("limit", "2")])
    sim.add_fault(path=r"/pods$", expired_continue=True, times=1)
    status, gone = raw_json(api, "GET", "/api/v1/pods", [("limit", "2")])
    assert status == 200  # a list without a continue token is not affected
    status, gone = raw_json(api, "GET", "/api/v1/pods", [("limit", "2"), ("continue", first["metadata"]["continue"])])
    assert (status, gone["reason"], gone["code"]) == (410, "Expired", 410)
    assert gone["message"].startswith("The provided continue parameter is too old")
    status, _ = raw_json(api, "GET", "/api/v1/pods", [("limit", "2"), ("continue", first["metadata"]["continue"])])
    assert status == 200


def test_discovery_lists_installed_groups_only(api):
    _, groups = raw_json(api, "GET", "/apis")
    names = {g["name"] for g in groups["groups"]}
    assert {"apps", "gateway.networking.k8s.io", "security.istio.io", "authorization.k8s.io"} <= names
    assert "sailoperator.io" not in names
    _, core = raw_json(api, "GET", "/api/v1")
    pods = next(r for r in core["resources"] if r["name"] == "pods")
    assert pods["namespaced"] and pods["kind"] == "Pod" and "list" in pods["verbs"]
    assert any(r["name"] == "pods/exec" for r in core["resources"])


def test_uninstalled_group_is_404_page_not_found():
    with SimCluster("no-gateway-api", tls=False, anonymous=True) as bare:
        conn = http.client.HTTPConnection("127.0.0.1", bare.port, timeout=10)
        conn.request("GET", "/apis/gateway.networking.k8s.io/v1/namespaces/bookinfo/gateways")
        response = conn.getresponse()
        assert (response.status, response.read()) == (404, b"404 page not found\n")
        conn.request("GET", "/apis")
        groups = json.loads(conn.getresponse().read())
        assert "gateway.networking.k8s.io" not in {g["name"] for g in groups["groups"]}


def test_objects_can_change_while_serving(api, sim):
    pod = sim.store.list("pods", "curl")[0]
    name = pod["metadata"]["name"]
    before = int(pod["metadata"]["resourceVersion"])
    pod["spec"]["containers"][0]["image"] = "curlimages/curl:8.17.0"
    stored = sim.store.put(pod)
    try:
        assert int(stored["metadata"]["resourceVersion"]) > before
        _, fetched = raw_json(api, "GET", f"/api/v1/namespaces/curl/pods/{name}")
        assert fetched["spec"]["containers"][0]["image"] == "curlimages/curl:8.17.0"
        assert sim.store.delete("pods", "curl", name)
        status, _ = raw_json(api, "GET", f"/api/v1/namespaces/curl/pods/{name}")
        assert status == 404
    finally:
        pod["spec"]["containers"][0]["image"] = "curlimages/curl"
        sim.store.put(pod)


# ---------------------------------------------------------------- auth, access, faults, writes

def test_requests_without_the_token_are_unauthorized(sim):
    for token in (None, "wrong"):
        status, _, body = plain(sim, "GET", "/api/v1/pods", token=token)
        assert status == 401
        assert json.loads(body) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


def test_anonymous_http_listener_serves_without_a_token(tmp_path):
    with SimCluster("bookinfo", tls=False, anonymous=True) as bare:
        assert bare.url.startswith("http://") and bare.ca_file is None
        kubeconfig = bare.write_kubeconfig(str(tmp_path / "config"))
        result = kubectl(kubeconfig, tmp_path, "get", "nodes", "-o", "json")
        assert result.returncode == 0, result.stderr
        assert len(json.loads(result.stdout)["items"]) == 3


def test_denied_requests_get_kube_apiservers_forbidden_message(api, sim):
    sim.deny("list", "pods", namespace="istio-system")
    sim.deny("get", "gateways", group="gateway.networking.k8s.io")
    status, cluster_wide = raw_json(api, "GET", "/api/v1/pods")
    assert status == 403 and cluster_wide["message"] == (
        'pods is forbidden: User "system:serviceaccount:default:tester" cannot list resource "pods" '
        'in API group "" at the cluster scope')
    assert raw_json(api, "GET", "/api/v1/namespaces/bookinfo/pods")[0] == 200
    status, gateway = raw_json(api, "GET", "/apis/gateway.networking.k8s.io/v1/namespaces/bookinfo/gateways/waypoint")
    assert status == 403 and gateway["reason"] == "Forbidden" and gateway["message"] == (
        'gateways.gateway.networking.k8s.io "waypoint" is forbidden: User "system:serviceaccount:default:tester" '
        'cannot get resource "gateways" in API group "gateway.networking.k8s.io" in the namespace "bookinfo"')
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "istio-system"}}}
    status, answer = raw_json(api, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=review)
    assert (status, answer["status"]["allowed"], answer["spec"]) == (201, False, review["spec"])
    review["spec"]["resourceAttributes"]["namespace"] = "bookinfo"
    assert raw_json(api, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                    body=review)[1]["status"]["allowed"] is True
    assert sim.writes() == []


def test_fault_with_status_and_retry_after_then_recovery(sim):
    sim.add_fault(path=r"^/api/v1/namespaces$", status=429, retry_after=2, times=1)
    status, headers, body = plain(sim, "GET", "/api/v1/namespaces")
    assert (status, headers["Retry-After"]) == (429, "2")
    assert json.loads(body)["reason"] == "TooManyRequests" and json.loads(body)["details"] == {"retryAfterSeconds": 2}
    assert plain(sim, "GET", "/api/v1/namespaces")[0] == 200
    sim.add_fault(path="namespaces", status=503, reason="ServiceUnavailable")
    assert [plain(sim, "GET", "/api/v1/namespaces")[0] for _ in range(2)] == [503, 503]
    assert [r.status for r in sim.requests] == [429, 200, 503, 503]


def test_fault_delay_and_dropped_connection(sim):
    sim.add_fault(path="^/version$", status=None, delay=0.3, times=1)
    started = time.monotonic()
    assert plain(sim, "GET", "/version")[0] == 200
    assert time.monotonic() - started >= 0.3
    sim.add_fault(path="^/version$", close=True, times=1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, ssl.SSLError)):
        plain(sim, "GET", "/version")
    assert sim.requests[-1].status == 0
    assert plain(sim, "GET", "/version")[0] == 200


def test_writes_are_refused_and_logged(api, sim):
    status, refused = raw_json(api, "DELETE", "/api/v1/namespaces/bookinfo/pods/anything")
    assert (status, refused["reason"]) == (405, "MethodNotAllowed")
    status, _ = raw_json(api, "POST", "/apis/apps/v1/namespaces/bookinfo/deployments",
                         body={"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}})
    assert status == 405
    assert [(w.method, w.verb, w.resource, w.namespace) for w in sim.writes()] == [
        ("DELETE", "delete", "pods", "bookinfo"), ("POST", "create", "deployments", "bookinfo")]


# ---------------------------------------------------------------- Python client: exec

def _exec_url(sim, pod, command, **flags):
    params = [("command", command)] + [(k, "true") for k, v in flags.items() if v]
    return get_websocket_url(f"{sim.url}/api/v1/namespaces/curl/pods/{pod}/exec", params)


def _curl_pod(sim) -> str:
    return sim.store.list("pods", "curl")[0]["metadata"]["name"]


def test_exec_streams_output_live_and_returns_the_exit_code(api, sim):
    def ticking(request, streams):
        assert (request.namespace, request.container, request.service_account) == ("curl", "curl", "curl")
        for i in range(3):
            streams.write_stdout(f"tick {i}\n")
            time.sleep(0.15)
        streams.write_stderr("done\n")
        return 3

    sim.set_exec_handler(ticking)
    core = client.CoreV1Api(api)
    ws = stream(core.connect_get_namespaced_pod_exec, _curl_pod(sim), "curl", command=["tick"], stdout=True,
                stderr=True, stdin=False, tty=False, _preload_content=False)
    assert ws.subprotocol == "v5.channel.k8s.io"
    first_seen = None
    started = time.monotonic()
    output = ""
    while ws.is_open():
        ws.update(timeout=1)
        chunk = ws.read_stdout(timeout=0)
        if chunk and first_seen is None:
            first_seen = time.monotonic() - started
        output += chunk
    assert output == "tick 0\ntick 1\ntick 2\n"
    assert first_seen is not None and first_seen < 0.25  # the first line came before the command ended
    assert ws.returncode == 3


def test_exec_handler_learns_when_the_client_goes_away(api, sim):
    import threading

    gone = threading.Event()

    def endless(request, streams):
        while not streams.wait_closed(0.05):
            streams.write_stdout("still here\n")
        gone.set()
        return 0

    sim.set_exec_handler(endless)
    ws = WSClient(api.configuration, _exec_url(sim, _curl_pod(sim), ["watch"], stdout=True),
                  {"authorization": f"Bearer {sim.token}"}, capture_all=True)
    assert ws.readline_stdout(timeout=2) == "still here"
    ws.close()
    assert gone.wait(2)
    assert [r.exec_argv for r in sim.requests] == [["watch"]]


@pytest.mark.parametrize("protocol", ["v5.channel.k8s.io", "v4.channel.k8s.io"])
def test_exec_negotiates_v5_and_v4(api, sim, protocol):
    sim.set_exec_handler(lambda request, streams: streams.write_stdout(" ".join(request.argv)) or 0)
    ws = WSClient(api.configuration, _exec_url(sim, _curl_pod(sim), ["echo", "a b"], stdout=True, stderr=True),
                  {"authorization": f"Bearer {sim.token}", "sec-websocket-protocol": protocol}, capture_all=True)
    ws.run_forever(timeout=5)
    assert (ws.subprotocol, ws.returncode, ws.read_all()) == (protocol, 0, "echo a b")


def test_exec_reads_stdin_until_the_client_closes_it(api, sim):
    sim.set_exec_handler(lambda request, streams: streams.write_stdout(streams.read_stdin().upper()) or 0)
    core = client.CoreV1Api(api)
    ws = stream(core.connect_get_namespaced_pod_exec, _curl_pod(sim), "curl", command=["tr"], stdout=True,
                stderr=True, stdin=True, tty=False, _preload_content=False)
    ws.write_stdin("hello ")
    ws.write_stdin(b"bytes")
    ws.close_channel(0)
    ws.run_forever(timeout=5)
    assert not ws.is_open(), "the command never saw the end of its stdin"
    assert (ws.read_stdout(timeout=0), ws.returncode) == ("HELLO BYTES", 0)


def test_exec_of_a_missing_program_is_an_internal_error(api, sim):
    def composed(request, streams):
        if request.argv[0] == "curl":
            raise ExecutableNotFound("curl")
        return sim.default_exec_handler(request, streams)

    sim.set_exec_handler(composed)
    ws = WSClient(api.configuration, _exec_url(sim, _curl_pod(sim), ["curl", "-s", "x"], stdout=True),
                  {"authorization": f"Bearer {sim.token}"}, capture_all=True)
    ws.run_forever(timeout=5)
    error = json.loads(ws.read_channel(3))
    assert error["reason"] == "InternalError" and error["code"] == 500
    assert 'exec: "curl": executable file not found in $PATH' in error["message"]
    ws = WSClient(api.configuration, _exec_url(sim, _curl_pod(sim), ["echo", "x"], stdout=True),
                  {"authorization": f"Bearer {sim.token}"}, capture_all=True)
    ws.run_forever(timeout=5)
    assert (ws.returncode, ws.read_all()) == (0, "hello from curl\n")


def test_exec_refused_before_the_upgrade(api, sim):
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException, match="Handshake status 404"):
        stream(core.connect_get_namespaced_pod_exec, "missing", "curl", command=["x"], stdout=True,
               _preload_content=False)
    pod = _curl_pod(sim)
    status, _, body = plain(sim, "GET", f"/api/v1/namespaces/curl/pods/{pod}/exec?command=x&container=nope&stdout=1")
    assert status == 400 and json.loads(body)["message"] == f"container nope is not valid for pod {pod}"
    pending = sim.store.get("pods", "curl", pod)
    pending["metadata"]["name"] = "curl-pending"
    pending["status"] = {"phase": "Pending"}
    sim.store.put(pending)
    try:
        status, _, body = plain(sim, "GET", "/api/v1/namespaces/curl/pods/curl-pending/exec?command=x&stdout=1")
        assert status == 400 and "container not found" in json.loads(body)["message"]
    finally:
        sim.store.delete("pods", "curl", "curl-pending")


# ---------------------------------------------------------------- TLS and kubeconfig

def test_certificate_is_valid_for_ip_and_localhost_and_kubeconfig_embeds_the_ca(sim, kubeconfig):
    context = ssl.create_default_context(cafile=sim.ca_file)
    for host in ("127.0.0.1", "localhost"):
        with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
            with context.wrap_socket(sock, server_hostname=host) as tls:
                assert tls.version()
    import yaml

    with open(kubeconfig) as f:
        document = yaml.safe_load(f)
    cluster = document["clusters"][0]["cluster"]
    assert base64.b64decode(cluster["certificate-authority-data"]).decode() == sim.ca_pem
    assert document["users"][0]["user"]["token"] == sim.token
    assert oct(os.stat(kubeconfig).st_mode & 0o777) == "0o600"


def test_ten_thousand_pods_page_by_500_in_well_under_a_second():
    scenario = generate_large_scenario(1500, 10)
    with SimCluster(scenario, tls=False, anonymous=True) as big:
        conn = http.client.HTTPConnection("127.0.0.1", big.port, timeout=30)
        token, bodies = None, []
        started = time.perf_counter()
        while True:
            conn.request("GET", "/api/v1/pods?limit=500" + (f"&continue={token}" if token else ""))
            bodies.append(conn.getresponse().read())
            # The continue token sits in the list metadata, ahead of the items.
            head = bodies[-1][:300].decode()
            token = head.split('"continue":"')[1].split('"')[0] if '"continue":"' in head else None
            if not token:
                break
        elapsed = time.perf_counter() - started
    pods = sum(len(json.loads(body)["items"]) for body in bodies)
    assert pods == 1500 * 7 + 1 + 10 and len(bodies) == 22
    assert elapsed < 1.0, f"{elapsed:.2f}s to serve {pods} pods"
