"""`kubectl waypoint verify` end to end against simulated scenarios: verdicts, evidence, exit codes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import yaml

from conftest import one_line_error
from kubectl_waypoint.sim import Scenario, SimCluster

STATIC = ("--skip", "routing,authorization")  # the traffic checks have their own tests


@pytest.fixture
def cluster(tmp_path):
    started: list[SimCluster] = []

    def start(scenario: str = "bookinfo") -> tuple[SimCluster, str]:
        sim = SimCluster(scenario).start()
        started.append(sim)
        return sim, sim.write_kubeconfig(str(tmp_path / f"kubeconfig-{len(started)}"), namespace="bookinfo")

    yield start
    for sim in started:
        assert [w for w in sim.writes()] == [], "verify sent a write request"
        sim.stop()


def checks(doc: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for check in doc["checks"]:
        found.setdefault(check["id"], []).append(check)
    return found


def status(doc: dict, check_id: str) -> str:
    return max((c["status"] for c in checks(doc)[check_id]),
               key=["pass", "skip", "warn", "inconclusive", "fail"].index)


def test_healthy_after_upgrade_passes(run_cli, cluster):
    _, kubeconfig = cluster("bookinfo")
    doc = run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, "-o", "json").json
    assert (doc["kind"], doc["result"], doc["namespace"]) == ("VerifyReport", "pass", "bookinfo")
    for check in doc["checks"]:
        assert {"id", "category", "subject", "status", "message", "hint"} <= check.keys()
    assert status(doc, "waypoint-sync") == "pass" and status(doc, "waypoint-proxy-version") == "pass"
    assert doc["summary"]["fail"] == 0 and doc["summary"]["pass"] >= 12
    (version,) = checks(doc)["waypoint-proxy-version"]
    assert version["subject"].startswith("bookinfo/waypoint-")


def test_waypoint_not_rolled_warns_and_exits_zero(run_cli, cluster):
    _, kubeconfig = cluster("waypoint-not-rolled")
    doc = run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, "-o", "json").json
    assert doc["result"] == "warn"
    (version,) = checks(doc)["waypoint-proxy-version"]
    assert version["status"] == "warn" and "InPlace" in version["message"]


def test_waypoint_too_old_fails(run_cli, cluster):
    _, kubeconfig = cluster("waypoint-too-old")
    doc = run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, "-o", "json", expect=1).json
    assert status(doc, "waypoint-proxy-version") == "fail"


@pytest.mark.parametrize("scenario, words", [
    ("waypoint-disconnected", "not connected to any istiod"),
    ("waypoint-no-subscriptions", "subscribed to nothing"),
    ("waypoint-stale", "out of sync"),
])
def test_broken_sync_fails_the_sync_check(run_cli, cluster, scenario, words):
    _, kubeconfig = cluster(scenario)
    doc = run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, "-o", "json", expect=1).json
    (sync,) = checks(doc)["waypoint-sync"]
    assert sync["status"] == "fail" and words in sync["message"], sync
    assert doc["result"] == "fail"


def test_legacy_syncz_shape_is_understood(run_cli, cluster):
    _, kubeconfig = cluster("legacy-syncz")
    doc = run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, "-o", "json").json
    assert status(doc, "waypoint-sync") == "pass"


def test_exec_into_istiod_forbidden_is_inconclusive_and_the_rest_runs(run_cli, cluster):
    sim, kubeconfig = cluster("bookinfo")
    sim.deny("*", "pods/exec", "istio-system")
    result = run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, "-o", "json", expect=4)
    doc = result.json
    (available,) = checks(doc)["sync-status-available"]
    assert available["status"] == "inconclusive"
    assert "pods/exec" in available["message"] and "istio-system" in available["message"]
    assert status(doc, "waypoint-sync") == "skip"
    assert status(doc, "waypoint-pods-ready") == "pass" and status(doc, "ztunnel-skew") == "pass"
    assert doc["result"] == "inconclusive"


def test_proxy_status_file_replaces_exec(run_cli, cluster, tmp_path):
    sim, kubeconfig = cluster("bookinfo")
    sim.deny("*", "pods/exec", "istio-system")
    pod = next(p["metadata"]["name"] for p in sim.store.list("pods", "bookinfo")
               if p["metadata"]["name"].startswith("waypoint-"))
    captured = tmp_path / "ps.txt"
    rows = [("NAME", "CLUSTER", "ISTIOD", "VERSION", "SUBSCRIBED TYPES"),
            (f"{pod}.bookinfo", "Kubernetes", "istiod-85c76b5b66-qgbrv", "1.28.6-asm-r3", "4 (CDS,LDS,EDS,WDS)")]
    widths = [max(len(row[i]) for row in rows) + 5 for i in range(4)]
    captured.write_text("".join("".join(cell.ljust(w) for cell, w in zip(row, widths)) + row[4] + "\n"
                                for row in rows))
    doc = run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, "--proxy-status-file", str(captured), "-o", "json").json
    assert status(doc, "sync-status-available") == "pass" and status(doc, "waypoint-sync") == "pass"
    assert not any(r.resource == "pods/exec" for r in sim.requests)


def test_unreadable_proxy_status_file_is_bad_input(run_cli, cluster, tmp_path):
    _, kubeconfig = cluster("bookinfo")
    bad = tmp_path / "bad.txt"
    bad.write_text("this is not istioctl output\n")
    one_line_error(run_cli("verify", "--kubeconfig", kubeconfig, "--proxy-status-file", str(bad), expect=2).stderr)
    line = one_line_error(run_cli("verify", "--kubeconfig", kubeconfig, "--proxy-status-file",
                                  str(tmp_path / "missing.txt"), expect=2).stderr)
    assert "missing.txt" in line


def test_gateway_api_not_installed(run_cli, cluster):
    _, kubeconfig = cluster("no-gateway-api")
    doc = run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, "-o", "json", expect=1).json
    assert status(doc, "gateway-api-installed") == "fail"
    assert status(doc, "waypoint-found") == "skip" and "gateway-api-installed" in checks(doc)["waypoint-found"][0]["message"]


def test_namespace_without_waypoint_is_reported_not_crashed(run_cli, cluster):
    _, kubeconfig = cluster("bookinfo")
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "-n", "curl", *STATIC, "-o", "json").json
    (found,) = checks(doc)["waypoint-found"]
    assert found["status"] == "warn" and "uses no waypoint" in found["message"]
    assert status(doc, "waypoint-programmed") == "skip"
    assert doc["result"] == "warn"


def test_missing_namespace_fails(run_cli, cluster):
    _, kubeconfig = cluster("bookinfo")
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "-n", "nope", *STATIC, "-o", "json", expect=1).json
    assert status(doc, "namespace-exists") == "fail"


def test_context_namespace_is_the_default(run_cli, cluster):
    _, kubeconfig = cluster("bookinfo")  # written with namespace bookinfo
    assert run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, "-o", "json").json["namespace"] == "bookinfo"


def test_table_groups_by_category_with_evidence_under_failures(run_cli, cluster):
    _, kubeconfig = cluster("waypoint-stale")
    out = run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, expect=1).stdout
    assert "Proxy sync status\n-----------------" in out
    assert "× each waypoint is connected, subscribed (CDS, LDS) and in sync" in out
    assert "CDS: STALE" in out and "hint: " in out and "see: kubectl waypoint explain waypoint-sync" in out
    assert out.rstrip().splitlines()[-1].startswith("verify -n bookinfo: fail (1 failed")


def test_short_output_lists_only_problems(run_cli, cluster):
    _, kubeconfig = cluster("waypoint-not-rolled")
    out = run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, "-o", "short").stdout
    assert "‼ each waypoint runs the control plane's version" in out
    assert "√" not in out


def test_same_exit_code_in_every_format(run_cli, cluster, tmp_path):
    _, kubeconfig = cluster("waypoint-stale")
    for fmt in ("table", "short", "json", "yaml"):
        run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, "-o", fmt, expect=1)
    doc = yaml.safe_load(run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, "-o", "yaml", expect=1).stdout)
    assert doc["result"] == "fail"


def test_junit_file_has_one_testcase_per_check(run_cli, cluster, tmp_path):
    _, kubeconfig = cluster("waypoint-stale")
    junit = tmp_path / "out.xml"
    doc = run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, "--junit-file", str(junit), "-o", "json",
                  expect=1).json
    root = ET.parse(junit).getroot()
    cases = list(root.iter("testcase"))
    assert len(cases) == len(doc["checks"])
    failed = [c for c in cases if c.find("failure") is not None]
    failures = sum(int(suite.get("failures")) for suite in root.iter("testsuite"))
    assert failures == len(failed) == doc["summary"]["fail"] >= 1
    assert any(c.get("name").startswith("waypoint-sync") for c in failed)


def test_only_and_skip_select_by_category_and_id(run_cli, cluster):
    _, kubeconfig = cluster("bookinfo")
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "control-plane,ztunnel-skew", "-o", "json").json
    assert {c["category"] for c in doc["checks"]} == {"control-plane", "skew"}
    assert "istio-cni-skew" not in checks(doc)
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "proxy-status", "--skip", "waypoint-proxy-version",
                  "-o", "json").json
    assert set(checks(doc)) == {"sync-status-available", "waypoint-sync"}
    line = one_line_error(run_cli("verify", "--kubeconfig", kubeconfig, "--only", "bogus", expect=2).stderr)
    assert '"bogus"' in line


def test_wait_retries_until_the_rollout_settles(run_cli, cluster):
    """A waypoint that reconnects while verify waits: the failing check is retried and passes."""
    sim, kubeconfig = cluster("waypoint-disconnected")
    import threading

    def reconnect():
        sim.scenario.syncz.clear()  # the waypoint shows up in istiod's syncz from now on

    timer = threading.Timer(1.0, reconnect)
    timer.start()
    try:
        doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "proxy-status", "--wait", "30s",
                      "-o", "json").json
    finally:
        timer.cancel()
    assert doc["result"] == "pass" and doc["attempts"] >= 2


def test_wait_gives_up_at_the_deadline(run_cli, cluster):
    _, kubeconfig = cluster("waypoint-stale")
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "proxy-status", "--wait", "1s", "-o", "json",
                  expect=1).json
    assert doc["attempts"] >= 2


def test_bad_wait_duration_is_a_usage_error(run_cli, cluster):
    _, kubeconfig = cluster("bookinfo")
    one_line_error(run_cli("verify", "--kubeconfig", kubeconfig, "--wait", "later", expect=2).stderr)


# -- the traffic checks: real curl through the simulated mesh ---------------------------------------


def test_healthy_mesh_routes_and_authorizes_as_configured(run_cli, cluster):
    sim, kubeconfig = cluster("bookinfo")
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing,authorization", "-o", "json").json
    assert {c["id"]: c["status"] for c in doc["checks"]} == {
        "route-split": "pass", "authz-allowed": "pass", "authz-denied-principal": "pass", "authz-denied-method": "pass"}
    (split,) = checks(doc)["route-split"]
    assert split["subject"] == "HTTPRoute reviews -> Service reviews"
    assert any(e.startswith("backends: reviews-v1=") for e in split["evidence"])
    assert "measured by: telemetry (sequential test)" in split["evidence"]
    execs = [r for r in sim.requests if r.resource == "pods/exec"]
    # curl in the clients, pilot-agent's stats in the waypoint: argument vectors, never a shell
    assert execs and {r.exec_argv[0] for r in execs} == {"curl", "pilot-agent"}
    assert all(r.exec_argv == ["pilot-agent", "request", "GET", "stats/prometheus"]
               for r in execs if r.exec_argv[0] == "pilot-agent")


def test_split_ignored_by_the_waypoint_fails(run_cli, cluster):
    _, kubeconfig = cluster("split-ignored")
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "-o", "json", expect=1).json
    (split,) = checks(doc)["route-split"]
    assert split["status"] == "fail" and "differs from the expected" in split["message"]


def test_authorization_not_enforced_fails_loudly(run_cli, cluster):
    _, kubeconfig = cluster("authz-not-enforced")
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "authorization", "-o", "json", expect=1).json
    assert status(doc, "authz-allowed") == "pass"
    for check_id in ("authz-denied-principal", "authz-denied-method"):
        (check,) = checks(doc)[check_id]
        assert check["status"] == "fail" and "UNEXPECTED SUCCESS" in check["message"]


def test_client_override_is_used(run_cli, cluster):
    # A second client with curl, sorted after ratings (the automatic choice: the first Bookinfo image with curl).
    scenario = Scenario.from_dict({"name": "two-clients", "description": "another client in bookinfo", "base": "bookinfo",
                                   "workloads": [{"name": "zz-curl", "namespace": "bookinfo", "labels": {"app": "zz-curl"},
                                                  "containers": [{"name": "curl", "image": "curlimages/curl:8.16.0",
                                                                  "command": ["/bin/sleep", "infinity"]}]}]})
    sim, kubeconfig = cluster(scenario)
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "--client", "deploy/zz-curl",
                  "-o", "json").json
    (split,) = checks(doc)["route-split"]
    assert split["status"] == "pass" and any("client: bookinfo/zz-curl-" in e for e in split["evidence"])


def test_probe_config_describes_the_probe(run_cli, cluster, tmp_path):
    _, kubeconfig = cluster("bookinfo")
    config = tmp_path / "probes.yaml"
    config.write_text(yaml.safe_dump({"routes": [{"route": "reviews", "url": "http://reviews.bookinfo:9080/reviews/0",
                                                  "match": "(reviews-v[0-9])", "count": 400}]}))
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "--probe-config", str(config),
                  "-o", "json").json
    (split,) = checks(doc)["route-split"]
    assert split["status"] == "pass" and "url: http://reviews.bookinfo:9080/reviews/0" in split["evidence"]
    assert "requests: 400, statuses: 200=400" in split["evidence"]


def test_responses_that_name_no_backend_warn_with_a_hint(run_cli, cluster, tmp_path):
    """Without the waypoint's telemetry the bodies must name the backend; when none does, say so."""
    sim, kubeconfig = cluster("bookinfo")

    def broken_stats(request, streams):  # the waypoint's stats endpoint answers something else
        if request.argv[:1] == ["pilot-agent"]:
            streams.write_stdout("404 page not found\n")
            return 0
        return sim.default_exec_handler(request, streams)

    sim.set_exec_handler(broken_stats)
    config = tmp_path / "probes.yaml"
    config.write_text(yaml.safe_dump({"routes": [{"route": "reviews", "match": "(no-such-marker)", "count": 60}]}))
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "--probe-config", str(config),
                  "-o", "json").json
    (split,) = checks(doc)["route-split"]
    assert split["status"] == "warn" and "--probe-config" in split["message"]
    assert any(e.startswith("Who served was read from the response bodies: line 1 of the waypoint's metrics")
               for e in split["evidence"])


def test_bad_probe_config_is_bad_input(run_cli, cluster, tmp_path):
    _, kubeconfig = cluster("bookinfo")
    config = tmp_path / "probes.yaml"
    config.write_text("routes:\n  - route: reviews\n    colour: red\n")
    line = one_line_error(run_cli("verify", "--kubeconfig", kubeconfig, "--probe-config", str(config), expect=2).stderr)
    assert "colour" in line and "probes.yaml" in line


def test_many_routes_probed_concurrently_in_catalogue_order(run_cli, tmp_path):
    from kubectl_waypoint.sim import generate_routes_scenario

    with SimCluster(generate_routes_scenario(waypoints=2, routes=4)) as sim:
        kubeconfig = sim.write_kubeconfig(str(tmp_path / "k"), namespace="bookinfo")
        sequential = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "--parallel", "1",
                             "-o", "json").json
        concurrent = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "--parallel", "4",
                             "-o", "json").json
        assert sim.writes() == []
    subjects = [c["subject"] for c in concurrent["checks"]]
    assert subjects == [c["subject"] for c in sequential["checks"]] and len(subjects) == 4
    assert {c["status"] for c in concurrent["checks"]} == {"pass"}


def test_unwritable_junit_file_and_bad_alpha_fail_before_any_check(run_cli, cluster, tmp_path):
    sim, kubeconfig = cluster("bookinfo")
    sim.clear_requests()
    line = one_line_error(run_cli("verify", "--kubeconfig", kubeconfig, "--junit-file",
                                  str(tmp_path / "no-such-dir" / "out.xml"), expect=2).stderr)
    assert "--junit-file" in line and "no-such-dir" in line
    line = one_line_error(run_cli("verify", "--kubeconfig", kubeconfig, "--alpha", "2", expect=2).stderr)
    assert "--alpha 2" in line
    assert sim.requests == []  # refused before touching the cluster
