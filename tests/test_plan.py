"""`skew --target-version`: the upgrade plan, as pure rules and end to end on the simulated cluster."""

from __future__ import annotations

import pytest

from conftest import one_line_error
from kubectl_waypoint.discovery import ControlPlane
from kubectl_waypoint.errors import BadInput
from kubectl_waypoint.kube.preflight import kubernetes_version
from kubectl_waypoint.plan import (IN_PLACE, REVISION_BASED, load_support, parse_target, plan_upgrade,
                                   strategy_for)
from kubectl_waypoint.sim import Scenario, SimCluster
from kubectl_waypoint.skew import SkewComponent, SkewResult
from kubectl_waypoint.versions import parse_version


def plane(version: str, revision: str = "default", namespace: str = "istio-system") -> ControlPlane:
    return ControlPlane(namespace=namespace, revision=revision, deployment="istiod", version=parse_version(version),
                        version_source="test", replicas=1, ready_replicas=1)


def component(kind: str, version: str, cp: ControlPlane, namespace: str = "istio-system",
              workload: str | None = None) -> SkewComponent:
    return SkewComponent(kind=kind, namespace=namespace, workload=workload or kind, pods=["p"], revision=cp.revision,
                         version=version, control_plane_version=cp.version.raw,
                         control_plane=f"{cp.namespace}/{cp.revision}", minor_skew=None, status="ok", message="",
                         source="test")


def mesh(cp_version: str, dataplane: dict[str, str], revision: str = "default") -> SkewResult:
    cp = plane(cp_version, revision)
    components = [component(kind, version, cp, namespace="bookinfo" if kind == "waypoint" else "istio-system")
                  for kind, version in dataplane.items()]
    return SkewResult([cp], components, "pass", "")


def plan_for(result: SkewResult, target: str, *, sail=(), k8s="v1.32.4", gateway="v1.4.0", state="installed"):
    return plan_upgrade(result, parse_target(target), sail_istios=list(sail),
                        kubernetes_version=kubernetes_version({"gitVersion": k8s}),
                        gateway_api_version=gateway, gateway_api_state=state)


def blocked(plan) -> set[str]:
    return {f.subject for f in plan.blockers}


SAME = {"waypoint": "1.28.6", "ztunnel": "1.28.6", "istio-cni": "1.28.6"}

# current control plane, data plane, strategy (revision name), target -> result, blocked subjects, a phrase
CASES = [
    ("patch upgrade", "1.28.6", SAME, "default", "1.28.7", "pass", set(), "a patch update in place"),
    ("vendor patch", "1.28.6-asm-r3", SAME, "default", "1.28.7-asm-r1", "pass", set(), "patch update"),
    ("one minor in place", "1.28.6", SAME, "default", "1.29.1", "warn", set(), "1 minor version in place"),
    ("two minors in place", "1.28.6", SAME, "default", "1.30.0", "fail",
     {"control plane istio-system/default", "waypoint bookinfo/waypoint", "ztunnel istio-system/ztunnel",
      "istio-cni istio-system/istio-cni"}, "an in-place upgrade moves one minor version at a time"),
    ("two minors revision-based, ambient node agents cannot follow", "1.28.6", SAME, "1-28-6", "1.30.0", "fail",
     {"ztunnel istio-system/ztunnel", "istio-cni istio-system/istio-cni"}, "cannot reach 1.29 before"),
    ("two minors revision-based, node agents ready", "1.29.2",
     {"waypoint": "1.28.6", "ztunnel": "1.29.2", "istio-cni": "1.29.2"}, "1-29-2", "1.30.1", "warn", set(),
     "stays on its revision"),
    ("three minors revision-based", "1.28.6", SAME, "1-28-6", "1.31.0", "fail",
     {"control plane istio-system/1-28-6", "ztunnel istio-system/ztunnel", "istio-cni istio-system/istio-cni"},
     "at most 2 minor versions"),
    ("node agent one behind, then one more minor", "1.28.6",
     {"waypoint": "1.28.6", "ztunnel": "1.27.3", "istio-cni": "1.28.6"}, "default", "1.29.0", "fail",
     {"ztunnel istio-system/ztunnel"}, "upgrade ztunnel to at least 1.28 before moving the control plane to 1.29"),
    ("waypoint not rolled after the last upgrade", "1.28.6",
     {"waypoint": "1.27.3", "ztunnel": "1.28.6", "istio-cni": "1.28.6"}, "default", "1.29.0", "fail",
     {"waypoint bookinfo/waypoint"}, "kubectl rollout restart deployment -n bookinfo waypoint"),
    ("data plane ahead of a downgrade", "1.28.6", SAME, "default", "1.27.5", "fail",
     {"waypoint bookinfo/waypoint", "ztunnel istio-system/ztunnel", "istio-cni istio-system/istio-cni"},
     "would be ahead of control plane 1.27"),
    ("downgrade two minors", "1.29.0", {"ztunnel": "1.27.1"}, "default", "1.27.5", "fail",
     {"control plane istio-system/default"}, "go down one minor version at a time"),
]


@pytest.mark.parametrize("name,cp,dataplane,revision,target,result,blockers,phrase", CASES, ids=[c[0] for c in CASES])
def test_upgrade_table(name, cp, dataplane, revision, target, result, blockers, phrase):
    plan = plan_for(mesh(cp, dataplane, revision), target)
    text = " | ".join(f"{f.level} {f.subject}: {f.message}" for f in plan.findings)
    assert plan.result == result, text
    assert blocked(plan) == blockers, text
    assert phrase in text


def test_each_component_gets_its_verdict_at_the_target():
    plan = plan_for(mesh("1.28.6", {"waypoint": "1.28.6", "ztunnel": "1.27.3", "istio-cni": "1.28.6"}), "1.29.0")
    assert [(c.kind, j.status, j.minor_skew) for c, j in plan.components] == [
        ("waypoint", "ok", 1), ("ztunnel", "too-old", 2), ("istio-cni", "ok", 1)]


def test_mixed_revisions_judge_each_component_against_its_own_control_plane_strategy():
    old, new = plane("1.27.3", "1-27-3"), plane("1.28.6", "1-28-6")
    result = SkewResult([old, new], [component("waypoint", "1.27.3", old, "legacy"),
                                     component("waypoint", "1.28.6", new, "bookinfo"),
                                     component("ztunnel", "1.28.6", new)], "pass", "")
    plan = plan_for(result, "1.29.0")
    verdicts = {(c.namespace, c.kind): (j.status, j.level) for c, j in plan.components}
    assert verdicts[("legacy", "waypoint")] == ("too-old", "warn")  # stays on revision 1-27-3 until moved
    assert verdicts[("bookinfo", "waypoint")] == ("ok", "ok")
    assert plan.result == "warn" and not plan.blockers


@pytest.mark.parametrize("revision", ["default", "1-27-3"])
def test_a_blocked_plan_names_the_nearest_intermediate_step_first(revision):
    plan = plan_for(mesh("1.27.3", {"waypoint": "1.27.3", "ztunnel": "1.27.3", "istio-cni": "1.27.3"}, revision),
                    "1.30.0")
    assert plan.steps[0].startswith("upgrade to 1.28 first")
    assert "kubectl waypoint skew --target-version 1.28" in plan.steps[0]
    assert plan.steps[-1] == "then judge this upgrade again: kubectl waypoint skew --target-version 1.30.0"


def test_a_clear_plan_lists_the_order_control_plane_cni_ztunnel_waypoints():
    plan = plan_for(mesh("1.28.6", SAME), "1.28.7")
    assert plan.steps == [
        "upgrade the control plane istio-system/default in place to 1.28.7",
        "then upgrade istio-cni to 1.28", "then upgrade ztunnel to 1.28 (node by node)",
        "istiod then rolls the waypoints in place", "check the result: kubectl waypoint verify -n bookinfo",
        "check the data plane: kubectl waypoint skew"]


@pytest.mark.parametrize("k8s,level", [("v1.31.0", "ok"), ("v1.35.2", "ok"), ("v1.30.9", "block"),
                                       ("v1.36.0", "block"), ("v1.33.1-eks-1234", "ok"), (None, "warn")])
def test_kubernetes_version_against_the_targets_support(k8s, level):
    plan = plan_for(mesh("1.28.6", SAME), "1.29.0", k8s=k8s)
    (finding,) = [f for f in plan.findings if f.subject == "kubernetes"]
    assert finding.level == level, finding.message
    if level == "block":
        assert "1.31 to 1.35" in finding.message and plan.result == "fail"


def test_a_target_newer_than_the_table_is_a_warning_never_a_pass_or_a_block():
    newest = load_support().newest
    target = f"{newest[0]}.{newest[1] + 1}.0"
    plan = plan_for(mesh(f"{newest[0]}.{newest[1]}.0", {"ztunnel": f"{newest[0]}.{newest[1]}.0"},
                         revision="default"), target, k8s="v1.99.0")
    (finding,) = [f for f in plan.findings if f.subject == "kubernetes"]
    assert finding.level == "warn" and "not in this plugin's support table" in finding.message
    assert plan.result == "warn"


@pytest.mark.parametrize("installed,state,level,phrase", [
    ("v1.4.0", "installed", "ok", "meet"),
    ("v1.4.1", "installed", "ok", "meet"),
    ("v1.3.0", "installed", "warn", "older than the v1.4.0"),
    (None, "installed", "warn", "no readable"),
    (None, "absent", "warn", "not installed"),
    (None, "unreadable: cannot get customresourcedefinitions", "warn", "could not be checked"),
])
def test_gateway_api_crds_against_the_target(installed, state, level, phrase):
    plan = plan_for(mesh("1.28.6", SAME), "1.28.7", gateway=installed, state=state)
    (finding,) = [f for f in plan.findings if f.subject == "gateway-api"]
    assert (finding.level, phrase in finding.message) == (level, True), finding.message
    assert not plan.blockers  # Gateway API findings inform; only Kubernetes and skew block


def test_support_table_is_ordered_and_sane():
    table = load_support()
    for istio, (low, high) in table.kubernetes.items():
        assert low <= high and high[1] - low[1] <= 6, istio
    assert set(table.jumps) == {IN_PLACE, REVISION_BASED}
    assert table.jumps[IN_PLACE][0] == 1 and table.jumps[REVISION_BASED][0] == 2


def test_strategy_comes_from_sail_else_from_the_revision_name():
    sail = [{"spec": {"namespace": "istio-system", "updateStrategy": {"type": "RevisionBased"}}}]
    assert strategy_for("istio-system", "default-v1-28-6", sail) == REVISION_BASED
    assert strategy_for("istio-system", "default", [{"spec": {}}]) == IN_PLACE  # Sail's default is InPlace
    assert strategy_for("istio-system", "default", []) == IN_PLACE
    assert strategy_for("istio-system", "1-28-6", []) == REVISION_BASED


@pytest.mark.parametrize("text", ["1.x", "latest", "", "v1.28-latest", "master", "1"])
def test_malformed_targets_are_refused(text):
    with pytest.raises(BadInput, match="is not an Istio version"):
        parse_target(text)


# -- end to end ------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path):
    started = []

    def start(scenario="bookinfo"):
        sim = SimCluster(scenario).start()
        started.append(sim)
        return sim, sim.write_kubeconfig(str(tmp_path / f"kubeconfig-{len(started)}"))

    yield start
    for sim in started:
        sim.stop()


def test_cli_plan_allowed_exits_0_with_contract_fields(run_cli, served):
    _, kubeconfig = served()
    doc = run_cli("skew", "--kubeconfig", kubeconfig, "--target-version", "1.28.7-asm-r1", "-o", "json").json
    assert (doc["result"], doc["targetVersion"]) == ("pass", "1.28.7-asm-r1")
    assert {c["kind"]: c["targetStatus"] for c in doc["components"]} == {
        "waypoint": "ok", "ztunnel": "ok", "istio-cni": "ok"}
    assert {c["subject"]: c["level"] for c in doc["plan"]["checks"]}["gateway-api"] == "ok"
    assert doc["plan"]["blockers"] == []


def test_cli_plan_blocked_exits_1_and_says_what_moves_first(run_cli, served):
    _, kubeconfig = served()
    result = run_cli("skew", "--kubeconfig", kubeconfig, "--target-version", "1.30.0", expect=1)
    assert "UPGRADE TO 1.30.0" in result.stdout
    assert "1. upgrade to 1.29 first" in result.stdout
    assert "result: fail (the upgrade to 1.30.0 is blocked by 4 findings)" in result.stdout
    assert one_line_error(result.stderr).startswith(
        "error: the upgrade to 1.30.0 is blocked by 4 findings; the first, control plane istio-system/default:")


def test_cli_plan_blocks_on_an_unsupported_kubernetes(run_cli, served, tmp_path):
    scenario = Scenario.from_dict({"name": "old-k8s", "description": "Kubernetes 1.29", "base": "bookinfo",
                                   "kubernetesVersion": "v1.29.7"})
    _, kubeconfig = served(scenario)
    doc = run_cli("skew", "--kubeconfig", kubeconfig, "--target-version", "1.29.0", "-o", "yaml", expect=1).yaml
    (k8s,) = [f for f in doc["plan"]["blockers"] if f["subject"] == "kubernetes"]
    assert "Kubernetes 1.29 is not supported by Istio 1.29 (it supports 1.31 to 1.35)" in k8s["message"]


def test_cli_plan_with_crds_unreadable_warns_and_still_decides(run_cli, served):
    sim, kubeconfig = served()
    sim.access.deny("get", "customresourcedefinitions", group="apiextensions.k8s.io")
    doc = run_cli("skew", "--kubeconfig", kubeconfig, "--target-version", "1.28.7", "-o", "json").json
    (gateway,) = [f for f in doc["plan"]["warnings"] if f["subject"] == "gateway-api"]
    assert "could not be checked" in gateway["message"]
    assert doc["result"] == "warn"


def test_cli_plan_reads_an_older_gateway_api_bundle(run_cli, served):
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "gateways.gateway.networking.k8s.io",
                        "annotations": {"gateway.networking.k8s.io/bundle-version": "v1.2.1"}},
           "spec": {"group": "gateway.networking.k8s.io", "scope": "Namespaced",
                    "names": {"plural": "gateways", "kind": "Gateway"}, "versions": []}}
    scenario = Scenario.from_dict({"name": "old-gateway-api", "description": "Gateway API v1.2.1",
                                   "base": "bookinfo", "objects": [crd]})
    _, kubeconfig = served(scenario)
    out = run_cli("skew", "--kubeconfig", kubeconfig, "--target-version", "1.28.7").stdout
    assert "WARN  gateway-api: the Gateway API CRDs are v1.2.1, older than the v1.4.0 Istio 1.28 implements" in out


@pytest.mark.parametrize("text", ["1.x", "latest"])
def test_cli_malformed_target_is_exit_2_before_any_request(run_cli, served, text):
    sim, kubeconfig = served()
    before = len(sim.requests)
    result = run_cli("skew", "--kubeconfig", kubeconfig, "--target-version", text, expect=2)
    assert "is not an Istio version: use 1.29, 1.29.1, v1.29.1" in one_line_error(result.stderr)
    assert len(sim.requests) == before
