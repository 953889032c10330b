"""`kubectl waypoint probe` end to end: the real CLI, exec over HTTPS, the real curl, the simulated mesh."""

from __future__ import annotations

import contextlib
import io
import os
import time

import pytest
from conftest import one_line_error

from kubectl_waypoint.probe.engine import ProbeProgress
from kubectl_waypoint.render.probe import ProgressPrinter
from kubectl_waypoint.sim import Scenario, SimCluster

PRODUCTPAGE = "http://productpage.bookinfo:9080/productpage"
REVIEWS = "http://reviews.bookinfo:9080/reviews/0"
CONTRACT_FIELDS = {"apiVersion", "kind", "result", "client", "url", "requests", "statuses", "backends",
                   "expected", "pValue", "latencyMs"}


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    """Simulated clusters by scenario, started once per module; each checked for writes at the end."""
    sims: dict[str, tuple[SimCluster, str]] = {}
    folder = tmp_path_factory.mktemp("kube")

    def start(scenario: str | Scenario) -> tuple[SimCluster, str]:
        key = scenario if isinstance(scenario, str) else scenario.name
        if key not in sims:
            sim = SimCluster(scenario).start()
            sims[key] = (sim, sim.write_kubeconfig(str(folder / f"{key}.kubeconfig")))
        return sims[key]

    yield start
    for sim, _ in sims.values():
        assert sim.writes() == [], "the tool sent a write request"
        sim.stop()


@pytest.fixture
def cluster(started):
    def start(scenario: str | Scenario = "bookinfo") -> tuple[SimCluster, str]:
        sim, kubeconfig = started(scenario)
        sim.mesh.clear_records()
        sim.clear_requests()
        return sim, kubeconfig

    return start


def probe(run_cli, kubeconfig, *args, expect=0):
    return run_cli("probe", "--kubeconfig", kubeconfig, *args, expect=expect)


# ---------------------------------------------------------------- routing

def test_the_routes_split_is_decided_sequentially_from_the_waypoints_telemetry(run_cli, cluster):
    sim, kubeconfig = cluster()
    doc = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", REVIEWS, "--route", "bookinfo/reviews",
                "-o", "json").json
    assert CONTRACT_FIELDS <= doc.keys()
    assert (doc["kind"], doc["result"], doc["test"], doc["measuredBy"]) == ("ProbeReport", "pass", "sequential",
                                                                         "telemetry")
    assert doc["tolerance"] == 0.1 and doc["expected"] == {"reviews-v1": 0.8, "reviews-v2": 0.2}
    sent = doc["requests"]
    assert 80 <= sent < 450 and sent % 10 == 0 and doc["statuses"] == {"200": sent}
    assert set(doc["backends"]) == {"reviews-v1", "reviews-v2", "unmatched"} and doc["backends"]["unmatched"] == 0
    # Who served, by the mesh's own record, is what the waypoint counted.
    served = {}
    for record in sim.mesh.records:
        backend = record.answer.backend_pod.rsplit("-", 2)[0]
        served[backend] = served.get(backend, 0) + 1
    assert served == {name: n for name, n in doc["backends"].items() if n}
    for name, decided in doc["decision"].items():
        assert decided["verdict"] == "pass" and decided["interval"][0] <= decided["expected"] <= decided["interval"][1]
        assert doc["shares"][name]["low"] == decided["interval"][0]  # one interval, the decision's
    assert doc["availabilityDecision"]["verdict"] == "pass" and doc["availabilityDecision"]["required"] == 0.99
    execs = [r for r in sim.requests if r.resource == "pods/exec"]
    curls = [r for r in execs if r.exec_argv[0] == "curl"]
    stats = [r for r in execs if r.exec_argv[0] == "pilot-agent"]
    assert len(curls) == sent // 10 and len(stats) == len(curls) + 1  # before, and after each batch
    assert all("--header" in r.exec_argv and "Connection: close" in r.exec_argv for r in curls)
    assert len(sim.mesh.records) == sent and len({r.connection for r in sim.mesh.records}) == sent


def test_without_telemetry_for_the_client_the_bodies_say_who_served_and_the_report_says_why(run_cli, cluster):
    _, kubeconfig = cluster()
    doc = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", PRODUCTPAGE, "--route", "bookinfo/reviews",
                "-o", "json").json
    assert (doc["result"], doc["measuredBy"]) == ("pass", "body")
    assert any("counted none of the" in note and "from workload curl/curl" in note for note in doc["notes"])


@contextlib.contextmanager
def pilot_agent_says(sim, stdout: str = "", stderr: str = "", code: int = 0):
    """Waypoint pods answer `pilot-agent request ...` this way (a broken proxy); everything else as usual."""

    def handler(request, streams):
        if request.argv[:1] == ["pilot-agent"]:
            streams.write_stdout(stdout)
            streams.write_stderr(stderr)
            return code
        return sim.default_exec_handler(request, streams)

    sim.set_exec_handler(handler)
    try:
        yield
    finally:
        sim.set_exec_handler(None)


def test_unreadable_metrics_fall_back_to_the_bodies_with_the_reason(run_cli, cluster):
    sim, kubeconfig = cluster()

    with pilot_agent_says(sim, stdout='istio_requests_total{reporter="waypoint",source_workload="curl 7\n'):
        doc = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", REVIEWS, "--route", "bookinfo/reviews",
                    "--match", r'"podname": "(reviews-v\d)', "-o", "json").json
    assert (doc["result"], doc["measuredBy"]) == ("pass", "body")
    assert doc["notes"] == ["Who served was read from the response bodies: line 1 of the waypoint's metrics is not "
                            "Prometheus text ('istio_requests_total{reporter=\"waypoint\",source_workload=\"curl 7')"]


def anonymous_app(versions=("a", "b")) -> Scenario:
    """An application whose answers name no backend, behind a waypoint with two replicas, split 90/10.

    Service blue selects the pods of web-a, green those of web-b (when `versions` has it).
    """
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "web", "namespace": "shop", "generation": 1},
             "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "web", "port": 8080}],
                      "rules": [{"backendRefs": [{"kind": "Service", "name": "blue", "port": 8080, "weight": 90},
                                                 {"kind": "Service", "name": "green", "port": 8080, "weight": 10}]}]}}
    app = [{"name": f"web-{version}", "namespace": "shop", "labels": {"app": "web", "version": version},
            "containers": [{"name": "web", "image": "registry.example/web:1", "ports": [8080]}]}
           for version in versions]
    return Scenario.from_dict({
        "name": "anonymous-app-" + "".join(versions), "description": "answers name no backend", "base": "bookinfo",
        "namespaces": {"shop": {"istio.io/dataplane-mode": "ambient", "istio.io/use-waypoint": "waypoint"}},
        "workloads": [*app, {"kind": "Waypoint", "name": "waypoint", "namespace": "shop", "for": "service",
                             "revision": "default", "replicas": 2,
                             "image": "registry.alauda.cn:60080/asm/proxyv2:1.28.6-asm-r3"}],
        "services": [{"name": "web", "namespace": "shop", "selector": {"app": "web"}, "ports": [8080]},
                     {"name": "blue", "namespace": "shop", "selector": {"app": "web", "version": "a"},
                      "ports": [8080]},
                     {"name": "green", "namespace": "shop", "selector": {"app": "web", "version": "b"},
                      "ports": [8080]}],
        "objects": [route]})


def test_any_application_is_measured_by_the_telemetry_of_every_waypoint_replica(run_cli, cluster):
    sim, kubeconfig = cluster(anonymous_app())
    doc = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", "http://web.shop:8080/", "--route", "shop/web",
                "-o", "json").json
    assert (doc["result"], doc["measuredBy"], doc["test"]) == ("pass", "telemetry", "sequential")
    assert doc["backends"]["blue"] + doc["backends"]["green"] == doc["requests"]
    waypoints = {r.path.split("/")[6] for r in sim.requests if r.exec_argv and r.exec_argv[0] == "pilot-agent"}
    assert len(waypoints) == 2  # both replicas were read
    # The bodies could not have told: they name the pods (web-a-...), not the Services blue and green.
    with pilot_agent_says(sim, stderr="pilot-agent: connection refused\n", code=1):
        bodies = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", "http://web.shop:8080/", "--route",
                       "shop/web", "-o", "json", expect=1).json
    assert bodies["measuredBy"] == "body" and bodies["backends"]["unmatched"] == bodies["requests"]
    assert "exited 1 (pilot-agent: connection refused)" in bodies["notes"][0]
    assert "named no backend, more than 5% (--max-unmatched)" in bodies["reasons"][0]


def test_requests_the_waypoint_fails_itself_count_against_availability(run_cli, cluster):
    _, kubeconfig = cluster(anonymous_app(versions=("a",)))  # green selects no pod: the waypoint answers 503 UH
    doc = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", "http://web.shop:8080/", "--route", "shop/web",
                "-o", "json", expect=1).json
    assert doc["measuredBy"] == "telemetry" and doc["backends"]["green"] == 0
    failed = doc["availabilityDecision"]
    assert failed["verdict"] == "fail" and failed["count"] == doc["statuses"]["503"] > 0
    assert doc["reasons"][0].startswith(f"{failed['count']} of {doc['requests']} requests were failed by the mesh: "
                                        "availability ")


def test_the_table_shows_each_backends_interval_and_decision(run_cli, cluster):
    _, kubeconfig = cluster()
    out = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", REVIEWS,
                "--expect-split", "reviews-v1=80,reviews-v2=20,reviews-v3=0", "--count", "200").stdout
    assert "split: equivalence test, tolerance 0.1, who served measured by telemetry" in out
    assert "INTERVAL" in out and "DECISION" in out and "availability 100.0%" in out
    assert [line.split()[0] for line in out.splitlines() if line.startswith("reviews-v")] == \
        ["reviews-v1", "reviews-v2", "reviews-v3"]
    assert "REQUESTS 200 sent" in out and "\x1b[" not in out


def test_a_split_the_waypoint_ignores_fails_fast(run_cli, cluster):
    _, kubeconfig = cluster("split-ignored")
    result = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", REVIEWS, "--route", "bookinfo/reviews",
                   "-o", "json", expect=1)
    doc = result.json
    assert doc["result"] == "fail" and doc["requests"] < 100
    assert doc["reasons"][0].startswith("The traffic split differs from the expected one (a share 10% off its weight "
                                      "explains the counts better): reviews-v1 ")
    assert doc["decision"]["reviews-v1"]["verdict"] == "fail"
    low, high = doc["decision"]["reviews-v1"]["interval"]
    assert not low <= 0.8 <= high
    table = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", REVIEWS, "--route", "bookinfo/reviews",
                  "--count", "200", expect=1).stdout
    assert "result: fail" in table


# ---------------------------------------------------------------- authorization

def test_the_allowed_client_gets_200(run_cli, cluster):
    _, kubeconfig = cluster()
    doc = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", PRODUCTPAGE, "--expect-status", "200",
                "--count", "20", "-o", "yaml").yaml
    assert (doc["result"], doc["statuses"]) == ("pass", {"200": 20})


def test_a_client_outside_the_policy_is_denied_by_the_waypoint(run_cli, cluster):
    _, kubeconfig = cluster()
    doc = probe(run_cli, kubeconfig, "-n", "bookinfo", "deploy/ratings-v1", "http://productpage:9080/productpage",
                "--expect-denied=l7", "--count", "10", "-o", "json").json
    assert (doc["result"], doc["statuses"]) == ("pass", {"403": 10})
    assert doc["clientPod"]["serviceAccount"] == "bookinfo-ratings"


def test_a_method_outside_the_policy_is_an_unexpected_denial(run_cli, cluster):
    _, kubeconfig = cluster()
    out = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", PRODUCTPAGE, "--method", "POST", "--count", "5",
                expect=1).stdout
    assert "UNEXPECTED DENIAL: 5 of 5 requests were denied by the waypoint" in out


def test_an_l4_denial_is_a_reset(run_cli, cluster):
    _, kubeconfig = cluster("l4-deny")
    doc = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", "http://ratings.bookinfo:9080/ratings/0",
                "--expect-denied=l4", "--count", "10", "-o", "json").json
    assert (doc["result"], doc["statuses"]) == ("pass", {"000": 10})
    assert any("(56)" in line for line in doc["curlErrors"])
    # the bare flag accepts either layer; an L7 expectation is not met by a reset
    probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", "http://ratings.bookinfo:9080/ratings/0",
          "--expect-denied", "--count", "5")
    probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", "http://ratings.bookinfo:9080/ratings/0",
          "--expect-denied=l7", "--count", "5", expect=1)


def test_a_policy_the_waypoint_no_longer_enforces_is_an_unexpected_success(run_cli, cluster):
    _, kubeconfig = cluster("authz-not-enforced")
    result = probe(run_cli, kubeconfig, "-n", "bookinfo", "pod/" + ratings_pod(cluster), PRODUCTPAGE,
                   "--expect-denied", "--count", "10", expect=1)
    assert "UNEXPECTED SUCCESS: 10 of 10 requests were allowed (HTTP 200 x10)" in result.stdout
    assert "the authorization policy is not enforced" in result.stdout
    assert "result: fail" in result.stdout


def ratings_pod(cluster) -> str:
    sim, _ = cluster("authz-not-enforced")
    return next(p["metadata"]["name"] for p in sim.store.list("pods", "bookinfo")
                if p["metadata"]["name"].startswith("ratings-v1-"))


# ---------------------------------------------------------------- continuous mode and broken streams

def test_continuous_mode_measures_an_outage_during_a_rollout(run_cli, cluster):
    _, kubeconfig = cluster("rollout-outage")
    result = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", "http://reviews.bookinfo:9080/reviews/0",
                   "--duration", "2s", "--interval", "100ms", "-o", "json", expect=1)
    doc = result.json
    assert doc["result"] == "fail" and doc["requests"] == 20
    assert 0.25 < doc["availability"] < 0.75
    assert 0.8 <= doc["longestOutageSeconds"] <= 1.4  # the scenario's 1s window, to a request or two
    assert doc["statuses"]["000"] >= 10 and doc["intervalSeconds"] == 0.1
    assert "probe " in result.stderr and "errors" in result.stderr  # progress goes to stderr with -o json


def test_continuous_mode_prints_plain_progress_lines_when_not_on_a_terminal(run_cli, cluster):
    _, kubeconfig = cluster()
    out = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", "http://reviews.bookinfo:9080/reviews/0",
                "--duration", "1200ms", "--interval", "100ms", "--min-availability", "0.9").stdout
    progress = [line for line in out.splitlines() if line.startswith("probe ")]
    assert progress and "\r" not in out
    assert "availability 100.0%" in out and "result: pass" in out


def test_the_live_line_is_redrawn_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    printer = ProgressPrinter(stream, 60)
    printer(ProbeProgress(sent=10, ok=9, errors=1, outage_s=2.5, reconnects=0, elapsed_s=10, planned=60))
    printer(ProbeProgress(sent=11, ok=10, errors=1, outage_s=0, reconnects=0, elapsed_s=11, planned=60))
    printer.finish()
    text = stream.getvalue()
    assert text.count("\r") >= 3 and "\n" not in text
    assert "OUTAGE 2.5s" in text and "sent 11   ok 10   errors 1" in text


def hang_up_scenario(after: int) -> Scenario:
    return Scenario.from_dict({"name": f"hang-up-after-{after}", "description": "the exec stream is cut once",
                               "base": "bookinfo", "mesh": {"hangUpExec": {"afterRequests": after}}})


def test_a_broken_exec_stream_is_re_established_in_continuous_mode(run_cli, cluster):
    sim, kubeconfig = cluster(hang_up_scenario(5))
    doc = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", "http://reviews.bookinfo:9080/reviews/0",
                "--duration", "1200ms", "--interval", "100ms", "-o", "json", expect=4).json
    assert doc["reconnects"] == 1 and doc["lost"] >= 1 and doc["requests"] == 12
    assert doc["result"] == "inconclusive" and "lost when the exec stream ended early" in doc["reasons"][0]
    assert len([r for r in sim.requests if r.resource == "pods/exec"]) == 2
    assert sum(doc["statuses"].values()) == 12 - doc["lost"] and set(doc["statuses"]) == {"200"}


def test_a_broken_exec_stream_in_a_one_shot_probe_sends_the_rest(run_cli, cluster):
    sim, kubeconfig = cluster(hang_up_scenario(10))
    doc = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", PRODUCTPAGE, "--count", "30", "-o", "json").json
    assert (doc["result"], doc["reconnects"], doc["requests"]) == ("pass", 1, 30)
    assert len([r for r in sim.requests if r.resource == "pods/exec"]) == 2
    assert doc["lost"] >= 1 and doc["statuses"]["200"] == 30 - doc["lost"]
    assert "lost when the exec stream ended early" in doc["reasons"][0]


# ---------------------------------------------------------------- injection

def test_shell_metacharacters_reach_the_mesh_literally_and_run_nothing(run_cli, cluster, tmp_path):
    sim, kubeconfig = cluster()
    canary = tmp_path / "pwned"
    path = f"/p;$(touch${{IFS}}{canary})|`touch%20{canary}`&&'\"<>*?[x]{{a,b}}\\!#frag"
    header = f"X-Probe: $(touch {canary}); `touch {canary}` | sh && echo ${{HOME}} > {canary} 'q' \"d\" *"
    doc = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", "http://details.bookinfo:9080" + path,
                "-H", header, "--method", "GET", "--count", "2", "-o", "json").json
    assert doc["result"] == "pass"
    records = sim.mesh.records
    assert len(records) == 2
    for record in records:
        assert record.target == "http://details.bookinfo:9080" + path.split("#")[0]
        assert ("X-Probe", header.split(": ", 1)[1]) in record.headers
    assert not canary.exists() and not os.path.exists("pwned")


# ---------------------------------------------------------------- bad input: exit 2, one sentence

@pytest.mark.parametrize("args, words", [
    (["--expect-split", "reviews-v1=eighty"], "weight 'eighty' of backend reviews-v1"),
    (["--expect-split", "reviews-v1=80,,x"], "is malformed"),
    (["--header", "NoColonHere"], "is not a single 'Name: value' line"),
    (["--method", "GE T"], "is not a valid HTTP method"),
    (["--expect-split", "a=1", "--route", "reviews"], "--expect-split and --route both"),
    (["--expect-denied", "--expect-status", "200"], "contradict each other"),
    (["--expect-denied=l5"], "--expect-denied=l5 is unknown; write --expect-denied=l7"),
    (["--count", "10", "--duration", "5s"], "--count and --duration"),
    (["--interval", "1s"], "needs --duration too"),
    (["--duration", "5 minutes"], 'invalid value "5 minutes" for --duration'),
    (["--count", "0"], "--count 0 is not a positive number"),
    (["--expect-split", "reviews-v1=80,reviews-v2"], "give every backend a weight (reviews-v2=0 for none) or none"),
    (["--route", "bookinfo/reviews", "--count", "20"], "--count 20 is too few: the split can be shown within 0.1 "
                                                      "of its weights only from 57 requests; pass --count 57"),
    (["--route", "bookinfo/reviews", "--max-requests", "50"], "pass --max-requests 82 or more"),
    (["--tolerance", "0.6"], "--tolerance 0.6 is not between 0 and 0.5"),
    (["--alpha", "2"], "--alpha 2.0 is not between 0 and 1"),
    (["--match", "(unclosed"], "is not a valid regular expression"),
    (["--route", "bookinfo/nope"], 'HTTPRoute "nope" was not found in namespace "bookinfo"'),
    (["--route", "reviews"], 'HTTPRoute "reviews" was not found in namespace "curl"'),
])
def test_bad_input_exits_2_with_one_sentence(run_cli, cluster, args, words):
    _, kubeconfig = cluster()
    result = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", PRODUCTPAGE, *args, expect=2)
    assert words in one_line_error(result.stderr)
    assert result.stdout == ""


def test_a_bad_url_exits_2_before_touching_the_cluster(run_cli, cluster):
    sim, kubeconfig = cluster()
    result = probe(run_cli, kubeconfig, "-n", "curl", "deploy/curl", "ftp://productpage/", expect=2)
    assert "is not HTTP" in one_line_error(result.stderr)
    assert sim.requests == []


# ---------------------------------------------------------------- no usable client: exit 4

def not_ready_curl() -> Scenario:
    return Scenario.from_dict({"name": "curl-not-ready", "description": "the curl pod is not ready",
                               "base": "bookinfo", "workloads": [
                                   {"kind": "Deployment", "name": "curl", "namespace": "curl",
                                    "podOverrides": [{"index": 0, "ready": False}]}]})


@pytest.mark.parametrize("scenario, namespace, client, extra, words", [
    ("bookinfo", "curl", "pod/curl-nope", [], 'client pod "curl-nope" was not found in namespace "curl"'),
    ("bookinfo", "curl", "deploy/nope", [], 'client deployment "nope" was not found'),
    ("not-ready", "curl", "deploy/curl", [], 'deployment "curl/curl" has no Running and Ready pod'),
    ("bookinfo", "curl", "deploy/curl", ["-c", "sidecar"], 'has no container "sidecar"; pick one of curl with -c'),
    ("bookinfo", "istio-system", "deploy/istiod", [],
     "has no curl; pick another with -c or another CLIENT"),
])
def test_no_usable_client_exits_4_with_one_sentence(run_cli, cluster, scenario, namespace, client, extra, words):
    _, kubeconfig = cluster(not_ready_curl() if scenario == "not-ready" else scenario)
    result = probe(run_cli, kubeconfig, "-n", namespace, client, PRODUCTPAGE, "--count", "3", *extra, expect=4)
    assert words in one_line_error(result.stderr)


def test_a_client_outside_the_mesh_is_warned_about(run_cli, cluster):
    outsider = Scenario.from_dict({"name": "outsider", "description": "a curl pod outside the mesh",
                                   "base": "bookinfo", "workloads": [
                                       {"name": "outsider", "namespace": "default", "labels": {"app": "outsider"},
                                        "containers": [{"name": "curl", "image": "curlimages/curl"}]}]})
    _, kubeconfig = cluster(outsider)
    result = probe(run_cli, kubeconfig, "-n", "default", "deploy/outsider", PRODUCTPAGE, "--expect-denied=l7",
                   "--count", "3")
    assert "WARNING" in result.stdout and "is not in the ambient mesh" in result.stdout
    doc = probe(run_cli, kubeconfig, "-n", "default", "deploy/outsider", PRODUCTPAGE, "--expect-denied=l7",
                "--count", "3", "-o", "json").json
    assert doc["clientPod"]["inMesh"] is False
    assert "no identity of default/default, so authorization results do not show" in doc["warnings"][0]


# ---------------------------------------------------------------- Ctrl-C

def test_ctrl_c_ends_early_and_still_reports_what_was_gathered(cluster):
    from kubectl_waypoint.kube.client import Cluster
    from kubectl_waypoint.kube.config import ClusterFlags, resolve_target
    from kubectl_waypoint.probe.engine import resolve_client, run_probe
    from kubectl_waypoint.probe.expectations import Expectation

    sim, kubeconfig = cluster()
    api = Cluster(resolve_target(ClusterFlags(kubeconfig=kubeconfig, context=None, cluster=None, user=None,
                                              namespace="curl", request_timeout="0")))

    def press_ctrl_c(progress):
        if progress.sent >= 5:
            raise KeyboardInterrupt

    outcome = run_probe(api, resolve_client(api, "curl", "deploy/curl"), "http://reviews.bookinfo:9080/reviews/0",
                        Expectation.answered(), duration_s=60, interval_s=0.05, progress=press_ctrl_c)
    assert outcome.interrupted and outcome.elapsed_s < 5
    assert outcome.verdict.result == "pass" and outcome.verdict.requests >= 5 and outcome.verdict.lost == 0
    time.sleep(0.2)  # the exec went away, so the pod's curl was stopped: no more requests reach the mesh
    seen = len(sim.mesh.records)
    time.sleep(0.3)
    assert len(sim.mesh.records) == seen


def test_verify_can_pick_enrolled_client_pods_automatically(cluster):
    from kubectl_waypoint.kube.client import Cluster
    from kubectl_waypoint.kube.config import ClusterFlags, resolve_target
    from kubectl_waypoint.probe.engine import find_client_pods

    _, kubeconfig = cluster()
    api = Cluster(resolve_target(ClusterFlags(kubeconfig=kubeconfig, context=None, cluster=None, user=None,
                                              namespace=None, request_timeout="0")))
    everyone = find_client_pods(api)
    assert {c.pod.split("-")[0] for c in everyone} == {"curl", "productpage", "details", "ratings", "reviews",
                                                        "httpbin"}
    assert all(c.container not in ("istio-proxy", "discovery") for c in everyone)  # no waypoint, ztunnel, istiod
    (curl,) = find_client_pods(api, service_account="curl/curl")
    assert (curl.namespace, curl.container, curl.identity) == ("curl", "curl", "curl/curl")
    assert find_client_pods(api, service_account="curl/curl", exclude_pods=[f"curl/{curl.pod}"]) == []
    details = next(c.pod for c in everyone if c.pod.startswith("details-"))
    in_bookinfo = find_client_pods(api, "bookinfo", exclude_pods=[details])  # a bare name works too
    assert in_bookinfo and all(c.namespace == "bookinfo" and c.pod != details for c in in_bookinfo)


def test_curl_error_lines_split_across_exec_frames_are_read_whole():
    """The API server may cut stderr anywhere; 'curl: (56)' must not become 'curl: (5' and '6)'."""
    from kubectl_waypoint.probe.engine import _Run
    from kubectl_waypoint.probe.expectations import Expectation

    run = _Run(Expectation.denial("l4"), planned=2, started=0.0, clock=lambda: 0.0, progress=None)
    for chunk in ("curl: (5", "6) Recv failure: Connection reset by peer\ncurl: (56) Recv", " failure: again"):
        run.stderr(chunk)
    run.stderr("", final=True)
    assert run.curl_errors == ["curl: (56) Recv failure: Connection reset by peer", "curl: (56) Recv failure: again"]
    assert run.curl_failures_seen == 2
