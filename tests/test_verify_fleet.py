"""`kubectl waypoint verify -A`: every waypoint namespace, cluster-wide reads done once, the worst exit."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from conftest import one_line_error
from kubectl_waypoint.sim import SimCluster, generate_fleet_scenario

STATIC = ("--only", "control-plane,waypoints,proxy-status,skew")  # no probes: fast, and reads only


@pytest.fixture
def fleet(tmp_path):
    started: list[SimCluster] = []

    def start(namespaces: int, **kwargs) -> tuple[SimCluster, str]:
        sim = SimCluster(generate_fleet_scenario(namespaces, **kwargs)).start()
        started.append(sim)
        return sim, sim.write_kubeconfig(str(tmp_path / f"kubeconfig-{len(started)}"))

    yield start
    for sim in started:
        sim.stop()


def lists(sim: SimCluster) -> Counter:
    """List requests by resource (a GET of a collection, not of one object, not an exec)."""
    return Counter(r.resource for r in sim.requests
                   if r.method == "GET" and r.resource and "/" not in r.resource and "limit" in r.query)


def test_every_waypoint_namespace_gets_a_row_and_the_worst_result_decides_the_exit(run_cli, fleet):
    _, kubeconfig = fleet(3, too_old="team-01", no_client="team-02")
    result = run_cli("verify", "-A", "--kubeconfig", kubeconfig, expect=1)
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:] if line.strip()
            and not line.startswith("verify -A")}
    assert set(rows) == {"bookinfo", "httpbin", "team-00", "team-01", "team-02"}
    assert rows["team-00"][1:3] == ["1", "pass"] and rows["bookinfo"][2] == "pass"
    assert rows["team-01"][2:] == ["fail", "waypoint-proxy-version"]  # its waypoint runs 1.26
    assert rows["team-02"][2:] == ["inconclusive", "route-split"]  # no client with curl there
    assert "verify -A: fail (5 namespaces: 1 fail, 2 inconclusive, 2 pass)" in result.stdout
    sentence = one_line_error(result.stderr)
    assert sentence.startswith("error: 1 namespace of 5 failed; the first, team-01: 1 check failed in namespace team-01")


def test_json_is_a_verify_report_with_a_report_per_namespace(run_cli, fleet):
    _, kubeconfig = fleet(2, no_client="team-01")
    doc = run_cli("verify", "-A", "--kubeconfig", kubeconfig, "-o", "json", expect=4).json
    assert (doc["kind"], doc["result"], doc["allNamespaces"]) == ("VerifyReport", "inconclusive", True)
    by_name = {n["namespace"]: n for n in doc["namespaces"]}
    assert set(by_name) == {"bookinfo", "httpbin", "team-00", "team-01"}
    team = by_name["team-00"]
    assert team["result"] == "pass" and team["waypoints"] == 1 and team["summary"]["fail"] == 0
    assert {c["id"] for c in team["checks"]} >= {"waypoint-found", "waypoint-sync", "route-split"}
    (split,) = [c for c in by_name["team-01"]["checks"] if c["id"] == "route-split"]
    assert split["status"] == "inconclusive" and "kubectl apply -n team-01 -f" in split["hint"]
    assert doc["summary"] == {"pass": 2, "warn": 0, "fail": 0, "inconclusive": 2}  # httpbin has no client either


def test_junit_has_one_testsuite_per_namespace(run_cli, fleet, tmp_path):
    _, kubeconfig = fleet(2, too_old="team-00")
    junit = tmp_path / "fleet.xml"
    run_cli("verify", "-A", "--kubeconfig", kubeconfig, *STATIC, "--junit-file", str(junit), expect=1)
    suites = ET.parse(junit).getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["verify.bookinfo", "verify.httpbin", "verify.team-00", "verify.team-01"]
    failed = {s.get("name"): s.get("failures") for s in suites}
    assert failed["verify.team-00"] != "0" and failed["verify.team-01"] == "0"


def test_list_requests_and_istiod_reads_do_not_grow_with_namespaces(run_cli, fleet):
    small, small_config = fleet(2)
    large, large_config = fleet(10)
    for config in (small_config, large_config):
        run_cli("verify", "-A", "--kubeconfig", config, *STATIC)
    assert lists(large) == lists(small) and sum(lists(small).values()) <= 20
    for sim in (small, large):  # istiod's sync view and version: read once for the whole run
        istiod_execs = [r for r in sim.requests if r.resource == "pods/exec" and "/pods/istiod-" in r.path]
        assert len(istiod_execs) == 2, [r.exec_argv for r in istiod_execs]


def test_alpha_is_shared_by_the_namespaces_of_one_run(run_cli, fleet):
    _, kubeconfig = fleet(1)
    doc = run_cli("verify", "-A", "--kubeconfig", kubeconfig, "--only", "routing", "--alpha", "0.003", "-o", "json",
                  expect=None).json
    (team,) = [n for n in doc["namespaces"] if n["namespace"] == "team-00"]
    (split,) = [c for c in team["checks"] if c["id"] == "route-split"]
    assert "alpha: 0.001 (family-wise 0.003 over 1 route probe in each of 3 namespaces, Bonferroni)" \
        in split["evidence"]


def test_a_cluster_without_waypoints_is_undecided_with_one_sentence(run_cli, tmp_path):
    from kubectl_waypoint.sim import generate_large_scenario

    with SimCluster(generate_large_scenario(nodes=1, waypoint_namespaces=0)) as sim:
        kubeconfig = sim.write_kubeconfig(str(tmp_path / "kubeconfig"))
        result = run_cli("verify", "-A", "--kubeconfig", kubeconfig, expect=4)
    assert "verify -A: inconclusive (0 namespaces: none found)" in result.stdout
    assert one_line_error(result.stderr) == (
        "error: no namespace has a waypoint or the istio.io/use-waypoint label in this cluster; "
        "kubectl get gateways -A shows the Gateways this --context sees")


def test_missing_permissions_end_the_fleet_run_with_exit_3_and_a_junit_error(run_cli, fleet, tmp_path):
    sim, kubeconfig = fleet(1)
    sim.deny("list", "services")
    junit = tmp_path / "fleet.xml"
    result = run_cli("verify", "-A", "--kubeconfig", kubeconfig, "--junit-file", str(junit), expect=3)
    assert "list services in every namespace" in one_line_error(result.stderr)
    (suite,) = ET.parse(junit).getroot().findall("testsuite")
    assert suite.get("errors") == "1" and "list services" in suite.find("testcase/error").get("message")
