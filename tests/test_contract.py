"""The contract on every exit (issue 13): one `error:` sentence, JUnit a CI server accepts,
hints to paste, help that works offline, and RBAC generated from what the preflight asks."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET

import pytest
import yaml

from conftest import one_line_error
from kubectl_waypoint.checks.catalogue import load_catalogue
from kubectl_waypoint.checks.docs import check_section, docs_page
from kubectl_waypoint.checks.hints import FIELD, fill_hint
from kubectl_waypoint.sim import SimCluster
from kubectl_waypoint.sim.access import DEFAULT_USER, AccessRules

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATIC = ("--skip", "routing,authorization")


@pytest.fixture
def cluster(tmp_path):
    started: list[SimCluster] = []

    def start(scenario: str = "bookinfo", namespace: str | None = "bookinfo") -> tuple[SimCluster, str]:
        sim = SimCluster(scenario).start()
        started.append(sim)
        return sim, sim.write_kubeconfig(str(tmp_path / f"kubeconfig-{len(started)}"), namespace=namespace)

    yield start
    for sim in started:
        sim.stop()


def last_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), stderr
    assert sum(line.startswith("error: ") for line in lines) == 1, stderr
    return lines[-1]


# -- one sentence on every non-zero exit --------------------------------------------------------------

def test_exit_1_names_how_many_checks_failed_the_first_and_a_command_to_paste(run_cli, cluster):
    _, kubeconfig = cluster("waypoint-stale")
    result = run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, expect=1)
    line = one_line_error(result.stderr)
    pod = re.search(r"\[bookinfo/(waypoint-[a-z0-9-]+)\]", line).group(1)
    assert line.startswith("error: 1 check failed in namespace bookinfo; the first, waypoint-sync [bookinfo/")
    assert f"istioctl proxy-status {pod}.bookinfo" in line and "kubectl waypoint explain waypoint-sync" in line


def test_exit_4_says_what_could_not_be_decided_and_what_to_do(run_cli, cluster):
    sim, kubeconfig = cluster()
    sim.deny("create", "pods/exec", "istio-system")
    sim.deny("get", "pods/exec", "istio-system")
    result = run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, expect=4)
    line = last_line(result.stderr)
    assert "check could not be decided in namespace bookinfo; the first, sync-status-available" in line
    assert "kubectl waypoint rbac --command verify -n bookinfo" in line


def test_skew_and_probe_failures_end_with_one_sentence(run_cli, cluster):
    _, kubeconfig = cluster("ztunnel-ahead")
    line = one_line_error(run_cli("skew", "--kubeconfig", kubeconfig, expect=1).stderr)
    assert line.startswith("error: 1 workload breaks the n-1 version rule; the first, ztunnel istio-system/ztunnel: "
                           "ztunnel 1.29 is ahead of control plane 1.28")
    _, kubeconfig = cluster("split-ignored")
    result = run_cli("probe", "--kubeconfig", kubeconfig, "-n", "curl", "deploy/curl",
                     "http://reviews.bookinfo:9080/reviews/0", "--route", "bookinfo/reviews", expect=1)
    assert one_line_error(result.stderr).startswith("error: the probe of http://reviews.bookinfo:9080/reviews/0 "
                                                   "from pod curl-")


def test_usage_errors_are_one_lower_case_sentence(run_cli):
    line = one_line_error(run_cli("verify", "-o", "xml", expect=2).stderr)
    assert line.startswith("error: invalid value for '-o'") and line.endswith("see kubectl waypoint verify --help")


# -- JUnit ----------------------------------------------------------------------------------------------

def test_junit_has_a_suite_per_category_stable_names_a_timestamp_and_no_hostname(run_cli, cluster, tmp_path):
    _, kubeconfig = cluster("waypoint-stale")
    junit = tmp_path / "junit.xml"
    run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, "--junit-file", str(junit), expect=1)
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["verify.control-plane", "verify.waypoints", "verify.proxy-status",
                                               "verify.skew"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", s.get("timestamp")) for s in suites)
    assert not any("hostname" in e.attrib for e in root.iter())
    names = [c.get("name") for c in root.iter("testcase")]
    assert "waypoint-sync [bookinfo/waypoint]" in names and len(names) == len(set(names))
    assert not any(re.search(r"\[[^]]*-[a-z0-9]{6,10}-[a-z0-9]{5}\]", n) for n in names), names


def test_junit_is_written_when_the_cluster_cannot_be_used(run_cli, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("clusters:\n- name: gone\n  cluster: {server: 'https://127.0.0.1:1'}\n"
                          "contexts:\n- name: gone\n  context: {cluster: gone, user: gone}\n"
                          "users:\n- name: gone\n  user: {token: t}\ncurrent-context: gone\n")
    junit = tmp_path / "junit.xml"
    result = run_cli("verify", "--kubeconfig", str(kubeconfig), "-n", "bookinfo", "--junit-file", str(junit),
                     "--request-timeout", "2s", expect=3)
    line = one_line_error(result.stderr)
    (error,) = ET.parse(junit).getroot().iter("error")
    assert error.get("message") in line and error.get("message")


# -- hints and offline help -----------------------------------------------------------------------------

def test_every_hint_is_a_command_to_paste_with_no_placeholder_to_guess():
    for spec in load_catalogue().checks:
        filled = fill_hint(spec.hint, spec.id, "bookinfo/waypoint", "bookinfo")
        assert not FIELD.search(filled) and not re.search(r"<[^>]*>|\{[a-z_]+\}", filled), (spec.id, filled)
        assert not re.search(r"\b(NAME|NAMESPACE|CLIENT|URL|POD)\b", filled), (spec.id, filled)
        assert "docs/" not in filled and re.search(r"\b(kubectl|istioctl)\b", filled), (spec.id, filled)


def test_a_hint_names_the_results_own_objects_or_points_to_explain():
    assert fill_hint("kubectl -n {object_namespace} describe gateway {object}", "x", "ns1/gw", "ns2") == \
        "kubectl -n ns1 describe gateway gw"
    assert fill_hint("kubectl -n {object_namespace} describe gateway {object}", "x", "bookinfo", "bookinfo") == \
        "kubectl waypoint explain x says what to look at"
    assert fill_hint("kubectl -n {namespace} get pods", "x", "-", "it's") == "kubectl -n 'it'\"'\"'s' get pods"


def test_checks_lists_every_check_with_what_it_proves_and_needs(run_cli):
    catalogue = load_catalogue()
    doc = run_cli("checks", "-o", "json").json
    assert [c["id"] for c in doc["checks"]] == [c.id for c in catalogue.checks]
    sync = next(c for c in doc["checks"] if c["id"] == "waypoint-sync")
    assert sync["needsChecks"] == ["waypoint-found", "sync-status-available"]
    assert any("pods/exec" in p for p in sync["needsPermissions"])
    table = run_cli("checks").stdout
    assert all(c.id in table for c in catalogue.checks) and "PROVES" in table and "NEEDS" in table


def test_explain_prints_the_same_text_as_docs_checks_md(run_cli):
    with open(os.path.join(REPO, "docs", "checks.md"), encoding="utf-8") as f:
        page = f.read()
    assert page == docs_page(), "docs/checks.md is stale: python -m kubectl_waypoint.checks.docs > docs/checks.md"
    for spec in load_catalogue().checks:
        shown = run_cli("explain", spec.id).stdout
        assert check_section(spec) in shown and f'<a id="{spec.id}"></a>\n{check_section(spec)}' in page
    assert '"nope"' in one_line_error(run_cli("explain", "nope", expect=2).stderr)


def test_help_and_reports_point_to_explain_not_to_a_relative_path(run_cli, cluster):
    _, kubeconfig = cluster("waypoint-stale")
    out = run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, expect=1).stdout
    assert "see: kubectl waypoint explain waypoint-sync" in out and "docs/checks.md" not in out


# -- rbac -------------------------------------------------------------------------------------------

class RbacAuthorizer(AccessRules):
    """Kubernetes RBAC over the generated documents, for the simulated cluster (which has none).

    Every authenticated user may create SelfSubjectAccessReviews (system:basic-user does that in
    a real cluster). The access reviews asked are recorded.
    """

    def __init__(self, documents: list[dict], user: str):
        super().__init__()
        self.user = user
        self.asked: set[tuple[str, str, str, str | None]] = set()
        roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in documents
                 if d["kind"] in ("Role", "ClusterRole")}
        self.grants: list[tuple[dict, str | None]] = []  # (rule, namespace or None for everywhere)
        for binding in (d for d in documents if d["kind"].endswith("Binding")):
            if not any(_user_of(s) == user for s in binding["subjects"]):
                continue
            ref = binding["roleRef"]
            role = roles[(ref["kind"], binding["metadata"].get("namespace") if ref["kind"] == "Role" else None,
                          ref["name"])]
            self.grants += [(rule, binding["metadata"].get("namespace")) for rule in role["rules"]]

    def allows(self, attrs, user: str | None = None) -> bool:
        if attrs.resource == "selfsubjectaccessreviews":
            return True
        return user in (None, self.user) and any(attrs.verb in rule["verbs"] and attrs.group in rule["apiGroups"]
                   and attrs.resource_path in rule["resources"] and (where is None or attrs.namespace == where)
                   for rule, where in self.grants)

    def review(self, spec: dict, user: str | None = None) -> dict:
        a = spec["resourceAttributes"]
        resource = a["resource"] + (f"/{a['subresource']}" if a.get("subresource") else "")
        self.asked.add((a["verb"], a.get("group", ""), resource, a.get("namespace") or None))
        return super().review(spec, user)


def _user_of(subject: dict) -> str:
    if subject["kind"] == "ServiceAccount":
        return f"system:serviceaccount:{subject['namespace']}:{subject['name']}"
    return subject["name"]


def granted(documents: list[dict]) -> set[tuple[str, str, str, str | None]]:
    return {(verb, group, resource, d["metadata"].get("namespace"))
            for d in documents if d["kind"] in ("Role", "ClusterRole") for rule in d["rules"]
            for verb in rule["verbs"] for group in rule["apiGroups"] for resource in rule["resources"]}


def test_rbac_prints_yaml_that_parses_and_binds_the_subject(run_cli):
    result = run_cli("rbac", "--command", "verify", "-n", "bookinfo", "--serviceaccount", "ci:verifier",
                     "--group", "sre")
    documents = list(yaml.safe_load_all(result.stdout))
    kinds = [d["kind"] for d in documents]
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Role", "RoleBinding"]
    assert {d["metadata"].get("namespace") for d in documents} == {None, "bookinfo", "istio-system"}
    binding = documents[1]
    assert binding["subjects"] == [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "sre"},
                                   {"kind": "ServiceAccount", "name": "verifier", "namespace": "ci"}]
    assert one_line_error(run_cli("rbac", "--serviceaccount", "verifier", expect=2).stderr)
    assert "no bindings" in run_cli("rbac").stderr


@pytest.mark.parametrize("command", ["skew", "verify", "probe", "all"])
def test_rbac_grants_exactly_what_the_preflight_asks_and_the_commands_then_work(run_cli, cluster, command):
    from kubectl_waypoint.commands import connect
    from kubectl_waypoint.kube.config import ClusterFlags
    from kubectl_waypoint.kube.preflight import COMMANDS, preflight

    sim, kubeconfig = cluster("sail")  # every optional API served, so the preflight asks about all of them
    namespace, subject = DEFAULT_USER.split(":")[2:]
    documents = list(yaml.safe_load_all(run_cli("rbac", "--command", command, "-n", "bookinfo",
                                                "--serviceaccount", f"{namespace}:{subject}").stdout))
    sim.access = RbacAuthorizer(documents, DEFAULT_USER)
    api = connect(ClusterFlags(kubeconfig=kubeconfig, namespace="bookinfo"))
    for name in (COMMANDS if command == "all" else (command,)):
        assert preflight(api, name, "bookinfo") == [], name  # nothing missing, not even optional
    assert granted(documents) == sim.access.asked  # and nothing granted that it does not ask for
    if command in ("verify", "all"):  # the probes' client pods may live elsewhere: their exec is not asked about
        result = run_cli("verify", "--kubeconfig", kubeconfig, "-n", "bookinfo", *STATIC, "-o", "json")
        assert result.stderr == "" and result.json["summary"]["inconclusive"] == 0, result.stderr
