"""`kubectl waypoint skew` end to end: the real CLI over HTTPS against the simulated cluster."""

from __future__ import annotations

import socket

import pytest
import yaml

from conftest import one_line_error
from kubectl_waypoint.sim import SimCluster

CONTRACT_COMPONENT_FIELDS = {"kind", "namespace", "workload", "pods", "revision", "version",
                             "controlPlaneVersion", "minorSkew", "status", "message"}


@pytest.fixture
def cluster(tmp_path):
    """Start a scenario; afterwards assert the tool sent no request that changes anything."""
    started: list[SimCluster] = []

    def start(scenario: str = "bookinfo", **kwargs) -> tuple[SimCluster, str]:
        sim = SimCluster(scenario, **kwargs).start()
        started.append(sim)
        return sim, sim.write_kubeconfig(str(tmp_path / f"kubeconfig-{len(started)}"))

    yield start
    for sim in started:
        assert sim.writes() == [], "the tool sent a write request"
        sim.stop()


def statuses(doc: dict) -> dict[tuple[str, str, str], str]:
    return {(c["kind"], c["namespace"], c["version"]): c["status"] for c in doc["components"]}


def test_healthy_mesh_passes_with_contract_fields(run_cli, cluster):
    _, kubeconfig = cluster("bookinfo")
    doc = run_cli("skew", "--kubeconfig", kubeconfig, "-o", "json").json
    assert (doc["apiVersion"], doc["kind"], doc["result"]) == ("kubectl-waypoint/v1", "SkewReport", "pass")
    (plane,) = doc["controlPlanes"]
    assert {k: plane[k] for k in ("namespace", "revision", "version", "tags")} == {
        "namespace": "istio-system", "revision": "default", "version": "1.28.6-asm-r3", "tags": []}
    assert {(c["kind"], c["namespace"]) for c in doc["components"]} == {
        ("waypoint", "bookinfo"), ("ztunnel", "istio-system"), ("istio-cni", "istio-system")}
    for component in doc["components"]:
        assert CONTRACT_COMPONENT_FIELDS <= component.keys()
        assert (component["status"], component["minorSkew"]) == ("ok", 0)
        assert component["controlPlaneVersion"] == "1.28.6-asm-r3"
        assert component["pods"] and all(isinstance(p, str) for p in component["pods"])
    ztunnel = next(c for c in doc["components"] if c["kind"] == "ztunnel")
    assert len(ztunnel["pods"]) == 3 and "image tag of container istio-proxy" in ztunnel["source"]


def test_table_groups_a_daemonset_into_one_line(run_cli, cluster):
    _, kubeconfig = cluster("bookinfo")
    out = run_cli("skew", "--kubeconfig", kubeconfig).stdout
    ztunnel_lines = [line for line in out.splitlines() if line.startswith("ztunnel ")]
    assert len(ztunnel_lines) == 1 and "   3   " in ztunnel_lines[0]
    assert "result: pass" in out
    assert "\x1b[" not in out  # not a terminal: no colour


def test_yaml_is_the_same_document_as_json(run_cli, cluster):
    _, kubeconfig = cluster("bookinfo")
    as_json = run_cli("skew", "--kubeconfig", kubeconfig, "-o", "json").json
    as_yaml = yaml.safe_load(run_cli("skew", "--kubeconfig", kubeconfig, "-o", "yaml").stdout)
    as_json.pop("generatedAt"), as_yaml.pop("generatedAt")  # two runs, possibly a second apart
    assert as_json == as_yaml


@pytest.mark.parametrize("scenario, code, expected", [
    ("waypoint-not-rolled", 0, {("waypoint", "bookinfo", "1.27.3-asm-r2"): "ok"}),
    ("waypoint-too-old", 1, {("waypoint", "bookinfo"): "too-old"}),
    ("ztunnel-ahead", 1, {("ztunnel", "istio-system", "1.29.0"): "ahead"}),
    ("cni-too-old", 1, {("istio-cni", "istio-system"): "too-old"}),
    ("mixed-rollout", 0, {("ztunnel", "istio-system", "1.27.3-asm-r2"): "ok",
                          ("ztunnel", "istio-system", "1.28.6-asm-r3"): "ok"}),
    ("digest-only", 4, {("istio-cni", "istio-system"): "unknown"}),
])
def test_each_rule_outcome_and_exit_code(run_cli, cluster, scenario, code, expected):
    _, kubeconfig = cluster(scenario)
    doc = run_cli("skew", "--kubeconfig", kubeconfig, "-o", "json", expect=code).json
    found = statuses(doc)
    for key, status in expected.items():
        matches = [s for k, s in found.items() if k[: len(key)] == key]
        assert matches and set(matches) == {status}, (key, found)
    assert doc["result"] == {0: "pass", 1: "fail", 4: "inconclusive"}[code]
    # the table carries the same verdict and exit code
    table = run_cli("skew", "--kubeconfig", kubeconfig, expect=code)
    assert f"result: {doc['result']}" in table.stdout


def test_violation_message_says_what_to_do(run_cli, cluster):
    _, kubeconfig = cluster("ztunnel-ahead")
    out = run_cli("skew", "--kubeconfig", kubeconfig, expect=1).stdout
    assert ("ztunnel 1.29 is ahead of control plane 1.28 (revision default): upgrade the control plane first, "
            "or roll ztunnel back to 1.28") in out


def test_mixed_rollout_shows_two_entries_for_one_daemonset(run_cli, cluster):
    _, kubeconfig = cluster("mixed-rollout")
    doc = run_cli("skew", "--kubeconfig", kubeconfig, "-o", "json").json
    ztunnel = [c for c in doc["components"] if c["kind"] == "ztunnel"]
    assert len(ztunnel) == 2 and {c["workload"] for c in ztunnel} == {"ztunnel"}
    assert sorted(c["minorSkew"] for c in ztunnel) == [0, 1]


def test_revisions_and_tags(run_cli, cluster):
    _, kubeconfig = cluster("revisions")
    doc = run_cli("skew", "--kubeconfig", kubeconfig, "-o", "json").json
    planes = {p["revision"]: p for p in doc["controlPlanes"]}
    # canary exists only as a Service istiod-revision-tag-canary (Istio 1.28), prod as webhook and Service.
    assert planes["1-27-3"]["tags"] == ["default"] and planes["1-28-6"]["tags"] == ["canary", "prod"]
    waypoints = {c["namespace"]: c for c in doc["components"] if c["kind"] == "waypoint"}
    # A waypoint pod's istio.io/rev annotation names the revision that rendered it, not its Gateway's tag.
    assert waypoints["bookinfo"]["revision"] == "1-28-6"
    assert waypoints["bookinfo"]["controlPlaneVersion"] == "1.28.6-asm-r3"
    assert waypoints["legacy"]["controlPlaneVersion"] == "1.27.3-asm-r2"
    assert waypoints["edge"]["revision"] == "1-27-3"  # the default tag's revision rendered it
    assert waypoints["edge"]["controlPlane"] == "istio-system/1-27-3"
    by_kind = {c["kind"]: c for c in doc["components"] if c["kind"] != "waypoint"}
    assert by_kind["ztunnel"]["controlPlane"] == "istio-system/1-27-3"  # its istio.io/rev annotation
    assert by_kind["istio-cni"]["controlPlane"] == "istio-system/1-28-6"  # the newest control plane in use
    assert by_kind["istio-cni"]["minorSkew"] == 1
    assert all(c["status"] == "ok" for c in doc["components"])


def test_sail_install_in_its_own_namespaces(run_cli, cluster):
    _, kubeconfig = cluster("sail")
    doc = run_cli("skew", "--kubeconfig", kubeconfig, "-o", "json").json
    by_kind = {c["kind"]: c for c in doc["components"]}
    assert by_kind["ztunnel"]["namespace"] == "ztunnel"
    assert by_kind["istio-cni"]["namespace"] == "istio-cni"
    assert by_kind["ztunnel"]["version"] == "v1.28.6"  # the image is pinned by digest
    assert "Sail ZTunnel" in by_kind["ztunnel"]["source"]
    assert doc["result"] == "pass"


def test_namespace_flag_limits_the_data_plane(run_cli, cluster):
    _, kubeconfig = cluster("revisions")
    doc = run_cli("skew", "--kubeconfig", kubeconfig, "-n", "legacy", "-o", "json").json
    assert {(c["kind"], c["namespace"]) for c in doc["components"]} == {("waypoint", "legacy")}
    assert len(doc["controlPlanes"]) == 2
    everything = run_cli("skew", "--kubeconfig", kubeconfig, "-n", "legacy", "-A", "-o", "json").json
    assert len(everything["components"]) > 1


def test_gateway_api_absent_is_not_an_error(run_cli, cluster):
    sim, kubeconfig = cluster("no-gateway-api")
    doc = run_cli("skew", "--kubeconfig", kubeconfig, "-o", "json").json
    assert doc["result"] == "pass"
    assert not any(r.path.endswith("/gateways") for r in sim.requests)


def test_lists_are_server_side_selected_and_paged(run_cli, cluster):
    sim, kubeconfig = cluster("bookinfo")
    run_cli("skew", "--kubeconfig", kubeconfig, "-o", "json")
    pod_lists = [r for r in sim.requests if r.path == "/api/v1/pods"]
    assert pod_lists and all(r.query.get("labelSelector") and r.query.get("limit") for r in pod_lists)


# -- kubeconfig rules through the CLI ---------------------------------------------------------------


def _write(path, doc) -> str:
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_kubeconfig_list_first_file_current_context_wins(run_cli, cluster, tmp_path):
    _, good = cluster("bookinfo")
    broken = _write(tmp_path / "b.yaml", {
        "apiVersion": "v1", "kind": "Config", "current-context": "elsewhere",
        "clusters": [{"name": "elsewhere", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "elsewhere", "user": {"token": "nope"}}],
        "contexts": [{"name": "elsewhere", "context": {"cluster": "elsewhere", "user": "elsewhere"}}],
    })
    env = {"KUBECONFIG": f"{good}:{broken}"}
    assert run_cli("skew", "-o", "json", env=env).json["result"] == "pass"
    # and the later file's context is still reachable by name (it points nowhere: exit 3)
    run_cli("skew", "--context", "elsewhere", env=env, expect=3)


def test_context_flag_selects_a_context(run_cli, cluster, tmp_path):
    _, first = cluster("bookinfo")
    _, second = cluster("ztunnel-ahead")
    merged = yaml.safe_load(open(first))
    other = yaml.safe_load(open(second))
    for section in ("clusters", "users", "contexts"):
        entry = other[section][0]
        entry["name"] = "ahead"
        if section == "contexts":
            entry["context"] = {"cluster": "ahead", "user": "ahead"}
        merged[section].append(entry)
    path = _write(tmp_path / "merged.yaml", merged)
    run_cli("skew", "--kubeconfig", path)
    run_cli("skew", "--kubeconfig", path, "--context", "ahead", expect=1)


# -- error paths: one sentence on stderr, the documented exit code -------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server(run_cli, tmp_path):
    path = _write(tmp_path / "k.yaml", {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{_closed_port()}"}}],
        "users": [{"name": "c", "user": {"token": "secret-token-value"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "c"}}],
    })
    result = run_cli("skew", "--kubeconfig", path, expect=3)
    line = one_line_error(result.stderr)
    assert "was refused" in line and "secret-token-value" not in result.stderr


def test_wrong_token_is_authentication_failure(run_cli, cluster, tmp_path):
    sim, _ = cluster("bookinfo")
    path = sim.write_kubeconfig(str(tmp_path / "bad-token"), token="not-the-token")
    line = one_line_error(run_cli("skew", "--kubeconfig", path, expect=3).stderr)
    assert "401 Unauthorized" in line and 'context "simulated"' in line
    assert "not-the-token" not in line


def test_forbidden_core_read_names_verb_resource_and_scope(run_cli, cluster):
    sim, kubeconfig = cluster("bookinfo")
    sim.deny("list", "pods")
    line = one_line_error(run_cli("skew", "--kubeconfig", kubeconfig, expect=3).stderr)
    assert "cannot list pods at the cluster scope" in line and "ClusterRole" in line


def test_unknown_certificate_authority(run_cli, cluster, tmp_path):
    sim, kubeconfig = cluster("bookinfo")
    doc = yaml.safe_load(open(kubeconfig))
    del doc["clusters"][0]["cluster"]["certificate-authority-data"]
    path = _write(tmp_path / "no-ca.yaml", doc)
    line = one_line_error(run_cli("skew", "--kubeconfig", path, expect=3).stderr)
    assert "could not be verified" in line and "certificate-authority" in line


def test_insecure_skip_tls_verify_is_honoured(run_cli, cluster, tmp_path):
    sim, _ = cluster("bookinfo")
    path = sim.write_kubeconfig(str(tmp_path / "insecure"), insecure=True)
    run_cli("skew", "--kubeconfig", path)


def test_server_that_stops_answering_hits_the_request_timeout(run_cli, cluster):
    sim, kubeconfig = cluster("bookinfo")
    sim.add_fault(path=".*", delay=5.0)
    line = one_line_error(run_cli("skew", "--kubeconfig", kubeconfig, "--request-timeout", "1s", expect=3).stderr)
    assert "did not answer within 1s" in line


def test_no_kubeconfig_at_all(run_cli):
    line = one_line_error(run_cli("skew", expect=3).stderr)
    assert "no kubeconfig found" in line


def test_unknown_context(run_cli, cluster):
    _, kubeconfig = cluster("bookinfo")
    line = one_line_error(run_cli("skew", "--kubeconfig", kubeconfig, "--context", "nope", expect=3).stderr)
    assert '"nope"' in line


def test_malformed_request_timeout_is_a_usage_error(run_cli, cluster):
    _, kubeconfig = cluster("bookinfo")
    line = one_line_error(run_cli("skew", "--kubeconfig", kubeconfig, "--request-timeout", "soon", expect=2).stderr)
    assert "--request-timeout" in line


def test_plain_http_listener(run_cli, cluster):
    _, kubeconfig = cluster("bookinfo", tls=False, anonymous=True)
    assert run_cli("skew", "--kubeconfig", kubeconfig, "-o", "json").json["result"] == "pass"


def test_the_reads_after_the_first_go_out_together(run_cli, cluster):
    """On a real cluster every request waits a round trip and the server (here 0.2 s each): the
    reads that depend on none another are made at once, over as many kept-alive connections."""
    sim, kubeconfig = cluster()
    sim.add_fault(method=None, path=".*", status=None, delay=0.2)
    doc = run_cli("skew", "--kubeconfig", kubeconfig, "-o", "json").json
    assert doc["result"] == "pass"
    first, *rest = sim.requests
    assert first.path == "/apis/sailoperator.io/v1"  # alone: it connects (and runs a credential plugin)
    assert len({request.peer for request in rest}) >= 3  # one connection would serve them one by one
