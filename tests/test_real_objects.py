"""The simulated cluster and the plugin against Istio's own objects (tests/fixtures/istio, Apache-2.0).

Two directions: a cluster made of nothing but Istio's rendered manifests must be understood (each
workload judged against the right istiod), and the bundled scenarios must look like those
manifests (labels, annotations, env, images, ports), so what passes here would pass on a real one.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from kubectl_waypoint.kube.client import Cluster, ExecutableMissing
from kubectl_waypoint.kube.config import ClusterFlags, resolve_target
from kubectl_waypoint.sim import Scenario, SimCluster, load_scenario

FIXTURES = Path(__file__).parent / "fixtures" / "istio"
# istiod creates this class at start-up (pilot/pkg/config/kube/gateway/gatewayclass.go); no manifest holds it.
WAYPOINT_CLASS = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                  "metadata": {"name": "istio-waypoint"},
                  "spec": {"controllerName": "istio.io/mesh-controller"}}


def load(name: str) -> list[dict]:
    """The named objects of a fixture file; golden files start with an unnamed header document."""
    with open(FIXTURES / name, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc and (doc.get("metadata") or {}).get("name")]


def served(obj: dict) -> dict:
    """The object as the API server serves it: Gateway API objects at v1 (v1beta1 is the same schema)."""
    obj = copy.deepcopy(obj)
    if obj["apiVersion"] == "gateway.networking.k8s.io/v1beta1":
        obj["apiVersion"] = "gateway.networking.k8s.io/v1"
    return obj


def pods_of(controller: dict, nodes: list[str]) -> list[dict]:
    """Running, ready pods made from the controller's template, as its controller makes them."""
    template, meta = controller["spec"]["template"], controller["metadata"]
    namespace = meta.get("namespace", "default")
    owner = {"apiVersion": "apps/v1", "kind": controller["kind"], "name": meta["name"], "uid": "0", "controller": True}
    return [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {**copy.deepcopy(template["metadata"]), "name": f"{meta['name']}-{i:05d}",
                          "namespace": namespace, "ownerReferences": [owner]},
             "spec": {**copy.deepcopy(template["spec"]), "nodeName": node},
             "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
            for i, node in enumerate(nodes)]


def rendered_cluster() -> Scenario:
    objects = [served(o) for name in ("istiod-rendered.yaml", "ztunnel-rendered.yaml", "istio-cni-rendered.yaml",
                                      "waypoint-rendered.yaml", "waypoint-gateways.yaml") for o in load(name)]
    objects.append(WAYPOINT_CLASS)
    nodes = ["worker-1", "worker-2"]
    for controller in [o for o in objects if o["kind"] in ("Deployment", "DaemonSet")]:
        objects += pods_of(controller, nodes if controller["kind"] == "DaemonSet" else nodes[:1])
    return Scenario.from_dict({"name": "istio-rendered", "description": "Istio 1.28's rendered manifests",
                               "installed": ["gateway.networking.k8s.io"], "nodes": nodes, "objects": objects})


@pytest.fixture
def kubeconfig(tmp_path):
    started = []

    def start(scenario) -> str:
        sim = SimCluster(scenario).start()
        started.append(sim)
        return sim.write_kubeconfig(str(tmp_path / f"config-{len(started)}"))

    yield start
    for sim in started:
        sim.stop()


def test_a_cluster_of_istios_rendered_objects_is_judged_against_the_right_istiod(run_cli, kubeconfig):
    doc = run_cli("skew", "--kubeconfig", kubeconfig(rendered_cluster()), "-o", "json", expect=None).json
    (plane,) = doc["controlPlanes"]
    assert (plane["namespace"], plane["revision"], plane["version"]) == ("istio-system", "default", "1.1.4")
    found = {(c["kind"], c["namespace"], c["workload"]): c for c in doc["components"]}
    # The rendered waypoint (found by its labels), and the two waypoint Gateways without pods.
    assert set(found) == {("waypoint", "default", "namespace"), ("waypoint", "ns", "namespace"),
                          ("waypoint", "ns", "invalid"), ("ztunnel", "istio-system", "ztunnel"),
                          ("istio-cni", "istio-system", "istio-cni-node")}
    # Every workload belongs to the default revision, each by its own rule: the waypoint pod's
    # istio.io/rev annotation, ztunnel's XDS_ADDRESS (istiod.istio-system.svc), istio-cni serving all.
    assert {c["controlPlane"] for c in doc["components"]} == {"istio-system/default"}
    assert found[("waypoint", "default", "namespace")]["revision"] == "default"
    # Test images carry no version (test/proxyv2:test, ztunnel:latest): said, never guessed.
    assert found[("ztunnel", "istio-system", "ztunnel")]["status"] == "unknown"
    assert doc["result"] == "inconclusive"


# -- the bundled cluster looks like Istio's objects -------------------------------------------------

@pytest.fixture(scope="module")
def bookinfo():
    return load_scenario("bookinfo")


def template_of(obj: dict) -> dict:
    return obj["spec"]["template"]


def test_the_simulated_waypoint_carries_every_label_and_annotation_istiod_renders(bookinfo):
    (real,) = [o for o in load("waypoint-rendered.yaml") if o["kind"] == "Deployment"]
    (sim,) = bookinfo.find("Deployment", "bookinfo", "waypoint")
    gateway_only = {"topology.istio.io/network"}  # copied from that test's Gateway labels
    assert set(real["metadata"]["labels"]) - gateway_only <= set(sim["metadata"]["labels"])
    real_pod, sim_pod = template_of(real)["metadata"], template_of(sim)["metadata"]
    assert set(real_pod["labels"]) - gateway_only <= set(sim_pod["labels"])
    assert set(real_pod["annotations"]) <= set(sim_pod["annotations"])
    assert sim_pod["annotations"]["istio.io/rev"] == "default"
    assert sim_pod["labels"]["service.istio.io/canonical-name"] == sim["metadata"]["name"]
    assert sim["spec"]["selector"] == real["spec"]["selector"] | {"matchLabels": {
        "gateway.networking.k8s.io/gateway-name": "waypoint"}}
    (real_service,) = [o for o in load("waypoint-rendered.yaml") if o["kind"] == "Service"]
    (sim_service,) = bookinfo.find("Service", "bookinfo", "waypoint")
    assert [(p["name"], p["port"]) for p in sim_service["spec"]["ports"]] == \
        [(p["name"], p["port"]) for p in real_service["spec"]["ports"]]
    assert "gateway.istio.io/managed" not in sim_service["metadata"]["labels"]  # as rendered: Service has none


@pytest.mark.parametrize("fixture, kind, name", [
    ("istiod-rendered.yaml", "Deployment", "istiod"),
    ("ztunnel-rendered.yaml", "DaemonSet", "ztunnel"),
    ("istio-cni-rendered.yaml", "DaemonSet", "istio-cni-node"),
])
def test_the_simulated_control_plane_and_node_agents_are_labelled_as_rendered(bookinfo, fixture, kind, name):
    (real,) = [o for o in load(fixture) if o["kind"] == kind]
    (sim,) = bookinfo.find(kind, "istio-system", name)
    assert real["metadata"]["labels"].items() <= sim["metadata"]["labels"].items()
    assert template_of(real)["metadata"]["labels"] == template_of(sim)["metadata"]["labels"]
    assert template_of(real)["metadata"]["annotations"] == template_of(sim)["metadata"]["annotations"]
    assert sim["spec"]["selector"] == real["spec"]["selector"]
    real_container, sim_container = template_of(real)["spec"]["containers"][0], template_of(sim)["spec"]["containers"][0]
    assert sim_container["name"] == real_container["name"]
    real_env = {e["name"]: e.get("value") for e in real_container.get("env") or [] if "value" in e}
    sim_env = {e["name"]: e.get("value") for e in sim_container.get("env") or []}
    for key in ("CA_ADDRESS", "XDS_ADDRESS", "REVISION"):
        assert sim_env.get(key) == real_env.get(key), key


def test_bookinfo_and_curl_run_the_samples_images_ports_and_accounts(bookinfo):
    real = load("bookinfo.yaml") + load("curl.yaml")
    for deployment in [o for o in real if o["kind"] == "Deployment"]:
        name = deployment["metadata"]["name"]
        namespace = "curl" if name == "curl" else "bookinfo"
        (sim,) = bookinfo.find("Deployment", namespace, name)
        real_spec, sim_spec = template_of(deployment)["spec"], template_of(sim)["spec"]
        assert sim_spec["serviceAccountName"] == real_spec["serviceAccountName"]
        assert template_of(deployment)["metadata"]["labels"] == template_of(sim)["metadata"]["labels"]
        assert [(c["name"], c["image"], [p["containerPort"] for p in c.get("ports") or []])
                for c in sim_spec["containers"]] == \
            [(c["name"], c["image"], [p["containerPort"] for p in c.get("ports") or []])
             for c in real_spec["containers"]]
    for service in [o for o in real + load("bookinfo-versions.yaml") if o["kind"] == "Service"]:
        name = service["metadata"]["name"]
        (sim,) = bookinfo.find("Service", "curl" if name == "curl" else "bookinfo", name)
        assert sim["spec"]["selector"] == service["spec"]["selector"]
        assert [(p["port"], p["name"]) for p in sim["spec"]["ports"]] == \
            [(p["port"], p["name"]) for p in service["spec"]["ports"]]


# -- exec: only what the image has ------------------------------------------------------------------

@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with SimCluster("bookinfo") as sim:
        path = sim.write_kubeconfig(str(tmp_path_factory.mktemp("kube") / "config"))
        yield sim, Cluster(resolve_target(ClusterFlags(kubeconfig=path, context=None, cluster=None, user=None,
                                                       namespace=None, request_timeout="0")))


def pod_named(sim, namespace: str, prefix: str) -> str:
    return next(p["metadata"]["name"] for p in sim.store.list("pods", namespace)
                if p["metadata"]["name"].startswith(prefix))


@pytest.mark.parametrize("namespace, prefix, container", [
    ("bookinfo", "productpage-v1-", "productpage"),   # python:3.13-slim
    ("bookinfo", "details-v1-", "details"),           # ruby:3.4-slim
    ("bookinfo", "reviews-v2-", "reviews"),           # open-liberty kernel-slim: treated as without
    ("httpbin", "httpbin-v1-", "httpbin"),            # distroless
    ("istio-system", "ztunnel-", "istio-proxy"),      # distroless
])
def test_curl_is_not_found_where_the_image_has_none(api, namespace, prefix, container):
    sim, cluster = api
    with pytest.raises(ExecutableMissing) as missing:
        cluster.exec(namespace, pod_named(sim, namespace, prefix), container, ["curl", "--version"])
    assert 'exec: "curl": executable file not found' in str(missing.value)  # the container runtime's words


def test_the_images_with_curl_run_it(api):
    sim, cluster = api
    for namespace, prefix, container in (("bookinfo", "ratings-v1-", "ratings"), ("curl", "curl-", "curl")):
        result = cluster.exec(namespace, pod_named(sim, namespace, prefix), container,
                              ["curl", "-s", "http://details.bookinfo:9080/details/0"])
        assert result.returncode == 0 and b"William Shakespeare" in result.stdout


def test_a_waypoint_has_pilot_agent_and_istiod_pilot_discovery_not_the_reverse(api):
    sim, cluster = api
    waypoint = pod_named(sim, "bookinfo", "waypoint-")
    with pytest.raises(ExecutableMissing, match="pilot-discovery"):
        cluster.exec("bookinfo", waypoint, "istio-proxy", ["pilot-discovery", "request", "GET", "/debug/syncz"])
    istiod = pod_named(sim, "istio-system", "istiod-")
    with pytest.raises(ExecutableMissing, match="pilot-agent"):
        cluster.exec("istio-system", istiod, "discovery", ["pilot-agent", "request", "GET", "stats/prometheus"])


# -- waypoints by identity in a running cluster -----------------------------------------------------

def identity_scenario() -> Scenario:
    """A renamed waypoint Deployment, an agentgateway waypoint, and an ingress Gateway that is none."""
    return Scenario.from_dict({
        "name": "identity", "description": "waypoints found by class controller and label", "base": "bookinfo",
        "namespaces": {"agents": {"istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "agent-waypoint"}},
        "workloads": [
            {"kind": "Waypoint", "name": "waypoint", "namespace": "bookinfo", "nameOverride": "bookinfo-l7"},
            {"kind": "Waypoint", "name": "agent-waypoint", "namespace": "agents",
             "className": "istio-agentgateway-waypoint", "image": "docker.io/istio/proxyv2:1.28.6"},
        ],
        "objects": [
            {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
             "metadata": {"name": "istio-agentgateway-waypoint"},
             "spec": {"controllerName": "istio.io/mesh-controller"}},
            {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
             "metadata": {"name": "ingress", "namespace": "bookinfo"},
             "spec": {"gatewayClassName": "istio", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}},
        ],
    })


def test_a_renamed_deployment_and_an_agentgateway_class_are_still_waypoints(run_cli, kubeconfig):
    config = kubeconfig(identity_scenario())
    skew = run_cli("skew", "--kubeconfig", config, "-o", "json").json
    waypoints = {(c["namespace"], c["workload"]): c for c in skew["components"] if c["kind"] == "waypoint"}
    assert set(waypoints) == {("bookinfo", "waypoint"), ("agents", "agent-waypoint")}  # not the ingress
    assert all(w["status"] == "ok" and w["pods"] for w in waypoints.values())
    assert waypoints[("bookinfo", "waypoint")]["pods"][0].startswith("bookinfo-l7-")
    for namespace in ("bookinfo", "agents"):
        verify = run_cli("verify", "--kubeconfig", config, "-n", namespace, "--only", "waypoints",
                         "-o", "json").json
        statuses = {c["id"]: c["status"] for c in verify["checks"]}
        assert statuses["waypoint-found"] == statuses["waypoint-deployment-available"] == "pass", verify
        assert statuses["waypoint-pods-ready"] == "pass"


# -- Sail: ZTunnel v1alpha1, conditions, RevisionBased ------------------------------------------------

def sail_samples() -> list[dict]:
    return [o for name in ("istio-sample-revisionbased.yaml", "istiocni-sample.yaml", "istioztunnel-sample.yaml")
            for o in load(f"sail-operator/{name}")]


def sail_checks(run_cli, config: str, expect: int = 0) -> dict[str, dict]:
    doc = run_cli("verify", "--kubeconfig", config, "-n", "bookinfo", "--only", "control-plane", "-o", "json",
                  expect=expect).json
    return {c["id"]: c for c in doc["checks"]}


def test_sail_up_to_1_27_serves_ztunnel_only_as_v1alpha1_and_it_is_read(run_cli, kubeconfig):
    base = load_scenario("sail")
    (ztunnel,) = base.find("ZTunnel")
    v1alpha1 = {**copy.deepcopy(ztunnel), "apiVersion": "sailoperator.io/v1alpha1"}
    for key in ("uid", "resourceVersion", "creationTimestamp"):
        v1alpha1["metadata"].pop(key, None)
    scenario = Scenario.from_dict({
        "name": "sail-1-27", "description": "Sail 1.27: ZTunnel at v1alpha1 only", "base": "sail",
        "installed": ["gateway.networking.k8s.io", "security.istio.io", "sailoperator.io", "sailoperator.io/v1alpha1"],
        "remove": [{"kind": "ZTunnel", "name": "default"}], "objects": [v1alpha1]})
    config = kubeconfig(scenario)
    skew = run_cli("skew", "--kubeconfig", config, "-o", "json").json
    (component,) = [c for c in skew["components"] if c["kind"] == "ztunnel"]
    assert component["version"] == "v1.28.6" and "Sail ZTunnel default" in component["source"]  # digest-pinned image
    checks = sail_checks(run_cli, config)
    assert checks["sail-ztunnel-status"]["status"] == "pass"
    assert checks["sail-ztunnel-status"]["subject"] == "ZTunnel default"


def test_sail_resources_as_users_write_them_are_not_healthy_until_reconciled(run_cli, kubeconfig):
    """The samples carry no status: nothing has reconciled them, and verify says so for each."""
    scenario = Scenario.from_dict({
        "name": "sail-samples", "description": "Sail's samples, never reconciled", "base": "sail",
        "remove": [{"kind": kind, "name": "default"} for kind in ("Istio", "IstioCNI", "ZTunnel")],
        "objects": sail_samples()})
    checks = sail_checks(run_cli, kubeconfig(scenario), expect=1)
    for check_id, kind in (("sail-istio-status", "Istio"), ("sail-ztunnel-status", "ZTunnel"),
                           ("sail-istio-cni-status", "IstioCNI")):
        assert checks[check_id]["status"] == "fail"
        assert checks[check_id]["message"] == \
            f"{kind} default has no status: the Sail operator has not reconciled it (is it running?)"
    assert "updateStrategy: RevisionBased" in checks["sail-istio-status"]["evidence"]


def test_a_condition_not_true_fails_with_its_reason_and_revision_based_draws_no_warning(run_cli, kubeconfig):
    base = load_scenario("sail")
    istio, cni = copy.deepcopy(base.find("Istio")[0]), copy.deepcopy(base.find("IstioCNI")[0])
    istio["spec"]["updateStrategy"] = {"type": "RevisionBased"}
    cni["status"]["conditions"][1] = {"type": "Ready", "status": "False", "reason": "ReadinessCheckFailed",
                                      "message": "not all istio-cni-node pods are ready"}
    for obj in (istio, cni):
        for key in ("uid", "resourceVersion", "creationTimestamp"):
            obj["metadata"].pop(key, None)
    scenario = Scenario.from_dict({"name": "sail-broken-cni", "description": "RevisionBased, CNI not ready",
                                   "base": "sail", "objects": [istio, cni]})
    checks = sail_checks(run_cli, kubeconfig(scenario), expect=1)
    assert checks["sail-istio-status"]["status"] == "pass"
    assert "(RevisionBased)" in checks["sail-istio-status"]["message"]
    assert checks["sail-istio-cni-status"]["status"] == "fail"
    assert checks["sail-istio-cni-status"]["message"] == (
        "IstioCNI default: Ready is False (ReadinessCheckFailed: not all istio-cni-node pods are ready)")
    assert checks["sail-ztunnel-status"]["status"] == "pass"


def test_without_sail_the_sail_checks_skip(run_cli, kubeconfig):
    checks = sail_checks(run_cli, kubeconfig("bookinfo"))
    assert {checks[i]["status"] for i in ("sail-istio-status", "sail-ztunnel-status", "sail-istio-cni-status")} == \
        {"skip"}


def test_without_permission_for_classes_and_services_discovery_falls_back_to_names(run_cli, tmp_path):
    with SimCluster("revisions") as sim:
        sim.deny("list", "gatewayclasses", group="gateway.networking.k8s.io")
        sim.deny("list", "services")
        config = sim.write_kubeconfig(str(tmp_path / "config"))
        doc = run_cli("skew", "--kubeconfig", config, "-o", "json").json
    planes = {p["revision"]: p["tags"] for p in doc["controlPlanes"]}
    assert planes == {"1-27-3": ["default"], "1-28-6": ["prod"]}  # canary exists only as a Service
    assert {c["namespace"] for c in doc["components"] if c["kind"] == "waypoint"} == {"bookinfo", "legacy", "edge"}
    assert doc["result"] == "pass"


def test_a_waypoint_without_pods_belongs_to_its_gateways_label_else_its_namespaces(run_cli, kubeconfig):
    """revisions: bookinfo is labelled istio.io/rev=prod (-> 1-28-6); the default tag is 1-27-3."""
    scenario = Scenario.from_dict({
        "name": "pending-waypoints", "description": "waypoints istiod has not deployed yet", "base": "revisions",
        "workloads": [
            {"kind": "Waypoint", "name": "pending", "namespace": "bookinfo", "replicas": 0, "programmed": False,
             "image": "registry.alauda.cn:60080/asm/proxyv2:1.28.6-asm-r3"},
            {"kind": "Waypoint", "name": "labelled", "namespace": "bookinfo", "replicas": 0, "programmed": False,
             "revision": "1-27-3", "image": "registry.alauda.cn:60080/asm/proxyv2:1.27.3-asm-r2"},
        ]})
    doc = run_cli("skew", "--kubeconfig", kubeconfig(scenario), "-n", "bookinfo", "-o", "json", expect=4).json
    owners = {c["workload"]: c["controlPlane"] for c in doc["components"]}
    assert owners == {"waypoint": "istio-system/1-28-6", "pending": "istio-system/1-28-6",
                      "labelled": "istio-system/1-27-3"}


def revision_based_sail() -> Scenario:
    """Sail RevisionBased mid-upgrade: revisions default-v1-26-5 and default-v1-28-6 both run; one waypoint
    was re-rendered by the new revision, the other still belongs to the old one (its annotation says so)."""
    def istiod(revision: str, tag: str) -> dict:
        return {"kind": "Deployment", "name": f"istiod-{revision}", "namespace": "istio-system",
                "labels": {"app": "istiod", "istio.io/rev": revision, "sidecar.istio.io/inject": "false"},
                "selector": {"app": "istiod", "istio.io/rev": revision}, "serviceAccount": f"istiod-{revision}",
                "containers": [{"name": "discovery", "image": f"docker.io/istio/pilot:{tag}",
                                "env": {"REVISION": revision}}]}

    def revision_cr(name: str, version: str) -> dict:
        return {"apiVersion": "sailoperator.io/v1", "kind": "IstioRevision", "metadata": {"name": name},
                "spec": {"namespace": "istio-system", "version": version, "values": {"revision": name}},
                "status": {"state": "Healthy", "conditions": [{"type": "Ready", "status": "True"},
                                                              {"type": "Reconciled", "status": "True"}]}}
    istio = copy.deepcopy(load_scenario("sail").find("Istio")[0])
    for key in ("uid", "resourceVersion", "creationTimestamp"):
        istio["metadata"].pop(key, None)
    istio["spec"].update({"version": "v1.28.6", "updateStrategy": {"type": "RevisionBased"}})
    istio["status"]["activeRevisionName"] = "default-v1-28-6"
    return Scenario.from_dict({
        "name": "sail-revision-based", "description": "Sail RevisionBased, two revisions in use", "base": "sail",
        "remove": [{"kind": "Deployment", "namespace": "istio-system", "name": "istiod"},
                   {"kind": "IstioRevision", "name": "default"}],
        "namespaces": {"bookinfo": {"istio.io/rev": "default-v1-26-5"},
                       "shop": {"istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint",
                                "istio.io/rev": "default-v1-28-6"}},
        "workloads": [istiod("default-v1-26-5", "1.26.5"), istiod("default-v1-28-6", "1.28.6"),
                      {"kind": "Waypoint", "name": "waypoint", "namespace": "bookinfo",
                       "istiodRevision": "default-v1-26-5", "image": "docker.io/istio/proxyv2:1.26.5"},
                      {"kind": "Waypoint", "name": "waypoint", "namespace": "shop",
                       "istiodRevision": "default-v1-28-6", "image": "docker.io/istio/proxyv2:1.28.6"},
                      {"kind": "DaemonSet", "name": "ztunnel", "namespace": "ztunnel",
                       "containers": [{"name": "istio-proxy", "image": "docker.io/istio/ztunnel:1.28.6",
                                       "env": {"XDS_ADDRESS": "istiod-default-v1-28-6.istio-system.svc:15012",
                                               "CA_ADDRESS": "istiod-default-v1-28-6.istio-system.svc:15012"}}]}],
        "objects": [istio, revision_cr("default-v1-26-5", "v1.26.5"), revision_cr("default-v1-28-6", "v1.28.6")]})


def test_revision_based_sail_judges_each_waypoint_against_the_revision_that_rendered_it(run_cli, kubeconfig):
    config = kubeconfig(revision_based_sail())
    doc = run_cli("skew", "--kubeconfig", config, "-o", "json").json
    judged = {(c["kind"], c["namespace"]): (c["controlPlane"], c["status"], c["minorSkew"]) for c in doc["components"]}
    assert judged == {
        ("waypoint", "bookinfo"): ("istio-system/default-v1-26-5", "ok", 0),  # not too-old against 1.28
        ("waypoint", "shop"): ("istio-system/default-v1-28-6", "ok", 0),
        ("ztunnel", "ztunnel"): ("istio-system/default-v1-28-6", "ok", 0),     # by XDS_ADDRESS
        ("istio-cni", "istio-cni"): ("istio-system/default-v1-28-6", "ok", 0),  # the newest in use
    }
    checks = sail_checks(run_cli, config)
    assert checks["sail-istio-status"]["status"] == "pass"
    assert "active revision default-v1-28-6 (RevisionBased)" in checks["sail-istio-status"]["message"]
