"""The permissions preflight against the simulated cluster: what it asks, what it reports, the RBAC it documents."""

from __future__ import annotations

import os

import pytest
import yaml

from kubectl_waypoint.errors import ClusterUnavailable, ExitCode
from kubectl_waypoint.kube.client import Cluster, PermissionDenied
from kubectl_waypoint.kube.config import ClusterFlags, resolve_target
from kubectl_waypoint.kube.preflight import kubernetes_version, preflight, render_cluster_role
from kubectl_waypoint.rbac import rbac_documents
from kubectl_waypoint.sim import SimCluster
from kubectl_waypoint.sim.access import AccessRules, Attributes, authorizations, forbidden_reason

NAMESPACE = "bookinfo"


@pytest.fixture
def cluster(tmp_path):
    """A started scenario, a client for it, and the access reviews the client sent (as (ns, group, resource, verb))."""
    started: list[SimCluster] = []

    def start(scenario: str = "sail") -> tuple[SimCluster, Cluster, list[tuple[str, str, str, str]]]:
        sim = SimCluster(scenario).start()
        started.append(sim)
        asked: list[tuple[str, str, str, str]] = []
        review = sim.access.review

        def recording(spec: dict, *asker) -> dict:
            a = spec["resourceAttributes"]
            resource = a["resource"] + (f"/{a['subresource']}" if a.get("subresource") else "")
            asked.append((a.get("namespace", ""), a.get("group", ""), resource, a["verb"]))
            return review(spec, *asker)

        sim.access.review = recording
        kubeconfig = sim.write_kubeconfig(str(tmp_path / f"kubeconfig-{len(started)}"))
        return sim, Cluster(resolve_target(ClusterFlags(kubeconfig=kubeconfig))), asked

    yield start
    for sim in started:
        assert sim.writes() == [], "the preflight sent a write request"
        posts = [r for r in sim.requests if r.method != "GET"]
        assert all(r.resource == "selfsubjectaccessreviews" for r in posts), posts
        sim.stop()


def granted(document: dict) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for rule in document["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def test_cluster_role_is_exactly_what_the_preflight_asks_for(cluster):
    _, client, asked = cluster("sail")  # every optional API group installed
    for command, namespace in (("skew", None), ("skew", NAMESPACE), ("verify", NAMESPACE), ("probe", NAMESPACE),
                               ("watch", NAMESPACE)):
        assert preflight(client, command, namespace) == []
    (role,) = yaml.safe_load_all(render_cluster_role())
    assert role["kind"] == "ClusterRole" and role["metadata"]["name"] == "kubectl-waypoint"
    assert granted(role) == {(group, resource, verb) for _, group, resource, verb in asked}
    assert {("", "pods/exec", "get"), ("", "pods/exec", "create")} <= granted(role)  # a WebSocket exec needs both
    assert not any(verb in ("update", "patch", "delete", "deletecollection") for _, _, verb in granted(role))
    watched = {resource for _, resource, verb in granted(role) if verb == "watch"}  # only what watch follows
    assert watched == {"pods", "deployments", "daemonsets", "gateways", "istios", "istiorevisions", "istiocnis",
                       "ztunnels"}


def test_role_variant_grants_each_namespace_exactly_what_is_asked_there(cluster):
    _, client, asked = cluster("sail")
    for command in ("skew", "verify", "probe", "watch"):
        preflight(client, command, NAMESPACE)
    documents = rbac_documents("all", NAMESPACE, [])
    by_namespace = {doc["metadata"].get("namespace", ""): doc for doc in documents}
    assert by_namespace[""]["kind"] == "ClusterRole" and by_namespace[NAMESPACE]["kind"] == "Role"
    assert set(by_namespace) == {"", NAMESPACE, "istio-system"}
    for namespace, doc in by_namespace.items():
        wanted = {(g, res, v) for ns, g, res, v in asked if ns == namespace}
        assert granted(doc) == wanted, namespace
    assert ("", "pods/exec", "create") not in granted(by_namespace[""])  # no exec cluster-wide in this variant


def test_every_missing_core_permission_is_reported_at_once_with_its_rule(cluster):
    sim, client, _ = cluster("bookinfo")
    sim.deny("list", "deployments", group="apps")
    sim.deny("list", "services", NAMESPACE)
    with pytest.raises(ClusterUnavailable) as raised:
        preflight(client, "verify", NAMESPACE)
    message = raised.value.message
    assert raised.value.exit_code == ExitCode.CLUSTER and "\n" not in message
    assert "2 permissions" in message
    assert 'list deployments.apps in every namespace: grant it with the rule {apiGroups: ["apps"], ' \
           'resources: ["deployments"], verbs: ["list"]}' in message
    assert f'list services in namespace "{NAMESPACE}": grant it with the rule {{apiGroups: [""], ' \
           'resources: ["services"], verbs: ["list"]}' in message
    assert "kubectl waypoint rbac --command verify prints the roles" in message


def test_missing_optional_permissions_are_warnings_naming_what_is_lost(cluster):
    sim, client, _ = cluster("bookinfo")
    sim.deny("*", "pods/exec", "istio-system")
    sim.deny("list", "httproutes", NAMESPACE, group="gateway.networking.k8s.io")
    warnings = preflight(client, "verify", NAMESPACE)
    assert len(warnings) == 2  # one for the exec, though both of its verbs are missing
    exec_warning = next(w for w in warnings if "pods/exec" in w)
    assert exec_warning.startswith('cannot get and create pods/exec in namespace "istio-system"')
    assert "sync-status-available is inconclusive" in exec_warning
    assert 'grant get and create on pods/exec with the rule {apiGroups: [""], resources: ["pods/exec"], ' \
           'verbs: ["get", "create"]}' in exec_warning
    assert any("route-split" in w for w in warnings)


def test_only_the_selected_checks_permissions_are_asked(cluster):
    sim, client, asked = cluster("bookinfo")
    sim.deny("list", "httproutes", NAMESPACE, group="gateway.networking.k8s.io")
    assert preflight(client, "verify", NAMESPACE, checks=["istiod-found", "waypoint-sync"]) == []
    assert not any(resource == "httproutes" for _, _, resource, _ in asked)
    assert any(resource == "pods/exec" for _, _, resource, _ in asked)


def test_apis_the_cluster_does_not_serve_are_not_asked_for(cluster):
    sim, client, asked = cluster("no-gateway-api")  # no Gateway API, no Sail
    sim.deny("list", "gateways", group="gateway.networking.k8s.io")
    sim.deny("list", "istios", group="sailoperator.io")
    assert preflight(client, "skew", None) == []
    assert not any(group in ("gateway.networking.k8s.io", "sailoperator.io") for _, group, _, _ in asked)


def test_probe_needs_the_client_namespace_only(cluster):
    sim, client, _ = cluster("bookinfo")
    sim.deny("get", "pods/exec", "curl")
    with pytest.raises(ClusterUnavailable) as raised:
        preflight(client, "probe", "curl")
    assert 'get pods/exec in namespace "curl": grant get and create on pods/exec' in raised.value.message
    assert preflight(client, "probe", "bookinfo") == []


# -- exec is authorized as get, and from Kubernetes 1.35 also as create ---------------------------

def test_a_role_without_create_on_exec_is_refused_from_kubernetes_1_35(cluster):
    sim, client, _ = cluster("bookinfo")
    sim.kubernetes_version = "v1.35.0"
    sim.deny("create", "pods/exec", "curl")  # a role granting only get on pods/exec
    with pytest.raises(ClusterUnavailable) as raised:
        preflight(client, "probe", "curl")
    message = raised.value.message
    assert 'create pods/exec in namespace "curl": grant get and create on pods/exec' in message
    assert "get and create pods/exec" not in message  # get is granted: only create is named


def test_a_role_without_create_on_exec_works_before_1_35_with_a_warning(cluster):
    sim, client, _ = cluster("bookinfo")  # Kubernetes 1.32
    sim.deny("create", "pods/exec", "curl")
    (warning,) = preflight(client, "probe", "curl")
    assert warning.startswith('cannot create pods/exec in namespace "curl" (this Kubernetes 1.32 API server '
                              "does not check it, but from 1.35 every exec needs it); grant get and create")


@pytest.mark.parametrize("version", ["v1.32.4", "v1.35.0"])
def test_a_role_without_get_on_exec_is_refused_on_every_version(cluster, version):
    sim, client, _ = cluster("bookinfo")
    sim.kubernetes_version = version
    sim.deny("get", "pods/exec", "curl")  # a role granting only create, as the README said before 1.35
    with pytest.raises(ClusterUnavailable) as raised:
        preflight(client, "probe", "curl")
    assert raised.value.message.startswith("kubectl waypoint probe lacks 1 permission it needs: ")
    assert 'get pods/exec in namespace "curl": grant get and create on pods/exec' in raised.value.message


def test_waypoint_exec_is_asked_in_the_waypoints_namespaces(cluster):
    sim, client, asked = cluster("bookinfo")
    sim.deny("*", "pods/exec", "mesh-gateways")
    (warning,) = preflight(client, "verify", NAMESPACE, waypoint_namespaces=["mesh-gateways"])
    assert warning.startswith('cannot get and create pods/exec in namespace "mesh-gateways"')
    assert "waypoints' own Envoy stats" in warning
    exec_places = {ns for ns, _, resource, _ in asked if resource == "pods/exec"}
    assert exec_places == {NAMESPACE, "istio-system", "mesh-gateways"}


@pytest.mark.parametrize("version, denied, works", [
    ("v1.32.4", "create", True), ("v1.32.4", "get", False),
    ("v1.35.0", "create", False), ("v1.35.0", "get", False), ("v1.35.0", None, True)])
def test_the_simulated_api_server_authorizes_a_websocket_exec_like_kube_apiserver(cluster, version, denied, works):
    sim, client, _ = cluster("bookinfo")
    sim.kubernetes_version = version
    if denied:
        sim.deny(denied, "pods/exec", "curl")
    sim.set_exec_handler(lambda request, streams: 0)  # what runs does not matter here, only who may run it
    pod = sim.store.list("pods", "curl")[0]["metadata"]["name"]
    if works:
        assert client.exec("curl", pod, "curl", ["echo", "hi"]).returncode == 0
    else:
        with pytest.raises(PermissionDenied):
            client.exec("curl", pod, "curl", ["echo", "hi"])
        (refused,) = [r for r in sim.requests if r.resource == "pods/exec"]
        assert refused.status == 403


def test_the_forbidden_answer_names_the_verb_that_was_refused():
    get = Attributes("get", "", "pods", "exec", "curl", "curl-1")
    assert authorizations(get, "v1.34.2", websocket=True) == [get]
    assert authorizations(get, "v1.35.0", websocket=True) == [get, Attributes("create", "", "pods", "exec", "curl", "curl-1")]
    assert authorizations(get, "v1.36.1", websocket=False) == [get]  # not an upgrade: the verb is the method's
    logs = Attributes("get", "", "pods", "log", "curl", "curl-1")
    assert authorizations(logs, "v1.35.0", websocket=True) == [logs]
    rules = AccessRules()
    rules.deny("create", "pods/exec", "curl")
    denied = rules.first_denied(authorizations(get, "v1.35.0", websocket=True))
    assert forbidden_reason("u", denied) == 'User "u" cannot create resource "pods/exec" in API group "" in the namespace "curl"'
    assert rules.first_denied(authorizations(get, "v1.34.0", websocket=True)) is None


def test_forbidden_access_reviews_do_not_stop_the_command(cluster):
    sim, client, _ = cluster("bookinfo")
    sim.deny("create", "selfsubjectaccessreviews", group="authorization.k8s.io")
    (warning,) = preflight(client, "skew", None)
    assert "could not be checked in advance" in warning


def test_one_review_per_distinct_question(cluster):
    _, client, asked = cluster("sail")
    preflight(client, "verify", NAMESPACE)
    assert len(asked) == len(set(asked))


def test_readme_cluster_role_is_the_generated_one():
    text = open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read()
    block = text.split("## RBAC", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert block == render_cluster_role()


@pytest.mark.parametrize("version,denied", [("v1.32.4", "get"), ("v1.35.0", "get"), ("v1.35.0", "create")])
def test_a_refused_exec_names_the_verb_the_api_server_refused(cluster, version, denied):
    sim, client, _ = cluster("bookinfo")
    sim.kubernetes_version = version
    sim.deny(denied, "pods/exec", "curl")
    (pod,) = [p["metadata"]["name"] for p in sim.scenario.find("Pod", "curl")]
    with pytest.raises(ClusterUnavailable) as raised:
        client.exec("curl", pod, None, ["curl", "--version"])
    assert f'cannot {denied} pods/exec in namespace "curl"' in raised.value.message
    assert "exec needs get and create on pods/exec" in raised.value.message


@pytest.mark.parametrize("git_version, parsed", [
    ("v1.35.0", (1, 35)), ("v1.34.2-gke.1066000", (1, 34)), ("v1.33.5+k3s1", (1, 33)), ("", None), ("devel", None)])
def test_the_server_version_is_read_from_git_version(git_version, parsed):
    assert kubernetes_version({"gitVersion": git_version}) == parsed
