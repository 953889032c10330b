"""verify's routing and authorization probes through the real CLI on the simulated mesh: which rule is
probed with which request, from which client, at which alpha, and what --wait does with a rejection."""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from kubectl_waypoint.checks.clients import CURL_SAMPLE_URL
from kubectl_waypoint.checks.traffic import CURL_SAMPLE_ACCOUNT
from kubectl_waypoint.sim import ExecutableNotFound, Scenario, SimCluster

FIXTURES = Path(__file__).parent / "fixtures" / "istio"
DEPLOY_CURL = f"kubectl apply -n bookinfo -f {CURL_SAMPLE_URL}"
# Images that have curl, per Istio's sources: ratings installs it, the curl sample is curl.
IMAGES_WITH_CURL = ("examples-bookinfo-ratings", "curlimages/curl")


@pytest.fixture
def cluster(tmp_path):
    started: list[SimCluster] = []

    def start(scenario: str | Scenario = "bookinfo") -> tuple[SimCluster, str]:
        sim = SimCluster(scenario).start()
        started.append(sim)
        return sim, sim.write_kubeconfig(str(tmp_path / f"kubeconfig-{len(started)}"), namespace="bookinfo")

    yield start
    for sim in started:
        assert sim.writes() == [], "verify sent a write request"
        sim.stop()


def with_route(route: dict, mesh: dict | None = None) -> Scenario:
    """Bookinfo with its HTTPRoute replaced by `route` (namespace bookinfo), and mesh knobs."""
    route = copy.deepcopy(route)
    route["metadata"]["namespace"] = "bookinfo"
    return Scenario.from_dict({"name": "rules", "description": "bookinfo with another reviews route", "base": "bookinfo",
                               "remove": [{"kind": "HTTPRoute", "namespace": "bookinfo", "name": "reviews"}],
                               "objects": [route], **({"mesh": mesh} if mesh else {})})


def curl_only_where_istio_ships_it(sim: SimCluster, extra_without: tuple[str, ...] = ()):
    """Containers whose image has no curl refuse it as the API server does ("executable file not found").

    Stands in for the simulated cluster's own per-image behaviour until it has one.
    """
    def handler(request, streams):
        container = next(c for c in request.pod["spec"]["containers"] if c["name"] == request.container)
        has_curl = any(marker in container.get("image", "") for marker in IMAGES_WITH_CURL) \
            and request.pod_name.rsplit("-", 2)[0] not in extra_without
        if request.argv and request.argv[0] == "curl" and not has_curl:
            raise ExecutableNotFound("curl")
        return sim.default_exec_handler(request, streams)

    sim.set_exec_handler(handler)


def checks(doc: dict, check_id: str) -> list[dict]:
    return [c for c in doc["checks"] if c["id"] == check_id]


def probes(sim: SimCluster) -> list:
    """The curl runs that sent requests (not the `curl --version` questions)."""
    return [r for r in sim.requests if r.resource == "pods/exec" and r.exec_argv and r.exec_argv[0] == "curl"
            and "--url" in r.exec_argv]


def versions_asked(sim: SimCluster) -> list[str]:
    return [r.path.split("/")[-2] for r in sim.requests
            if r.resource == "pods/exec" and r.exec_argv == ["curl", "--version"]]


# -- 10.4: probe the rule, not the host ------------------------------------------------------------


def test_istios_90_10_reviews_route_is_probed_as_it_is(run_cli, cluster):
    route = yaml.safe_load((FIXTURES / "traffic-route-reviews-90-10.yaml").read_text())
    sim, kubeconfig = cluster(with_route(route))
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "-o", "json").json
    (split,) = checks(doc, "route-split")
    assert split["status"] == "pass" and split["subject"] == "HTTPRoute reviews -> Service reviews"
    assert "(expected 90%)" in next(e for e in split["evidence"] if e.startswith("backends:"))
    assert "url: http://reviews.bookinfo.svc.cluster.local:9080/" in split["evidence"]


SEVERAL_RULES = {
    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "reviews"},
    "spec": {
        "parentRefs": [{"group": "", "kind": "Service", "name": "reviews", "port": 9080}],
        "rules": [
            {"name": "testers", "matches": [{"path": {"type": "Exact", "value": "/reviews/0"},
                                             "headers": [{"name": "x-tester", "value": "yes"}],
                                             "queryParams": [{"name": "debug", "type": "RegularExpression",
                                                              "value": "[0-9]+"}]}],
             "backendRefs": [{"name": "reviews-v1", "port": 9080, "weight": 80},
                             {"name": "reviews-v2", "port": 9080, "weight": 20}]},
            {"matches": [{"path": {"type": "RegularExpression", "value": "/reviews/[0-9]+"}}],
             "backendRefs": [{"name": "reviews-v1", "port": 9080, "weight": 80},
                             {"name": "reviews-v2", "port": 9080, "weight": 20}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/reviews"}, "method": "POST"}],
             "backendRefs": [{"name": "reviews-v3", "port": 9080}]},
            {"matches": [{"path": {"type": "Exact", "value": "/"}}],
             "backendRefs": [{"name": "reviews-v1", "port": 9080, "weight": 80},
                             {"name": "reviews-v2", "port": 9080, "weight": 20}]},
            {"matches": [{"path": {"type": "RegularExpression", "value": "/reviews/1"}}],
             "backendRefs": [{"name": "reviews-v1", "port": 9080, "weight": 80},
                             {"name": "reviews-v2", "port": 9080, "weight": 20}]},
        ],
    },
}


def test_each_weighted_rule_is_probed_with_a_request_it_matches(run_cli, cluster):
    """One check per weighted rule; what reached the mesh is the rule's path, headers, query and method.

    (The simulated mesh routes by the route's first rule whatever the request; the rules here share
    its weights, so the verdicts hold and the requests themselves are what this test checks.)
    """
    sim, kubeconfig = cluster(with_route(SEVERAL_RULES))
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "-o", "json").json
    by_subject = {c["subject"]: c for c in checks(doc, "route-split")}
    assert list(by_subject) == [
        "HTTPRoute reviews rule 0 (testers) -> Service reviews",
        "HTTPRoute reviews rule 1 -> Service reviews",
        "HTTPRoute reviews rule 3 -> Service reviews",
        "HTTPRoute reviews rule 4 -> Service reviews",
    ]  # rule 2 has one backend: nothing to split
    testers, regex, catch_all, shadowed = by_subject.values()
    assert [testers["status"], regex["status"], catch_all["status"]] == ["pass"] * 3
    # Istio ranks the longer regex first, and it matches /reviews/1 too
    assert shadowed["status"] == "skip" and "HTTPRoute reviews rule 1 first" in shadowed["message"]
    assert "method: GET, header x-tester: yes" in testers["evidence"]
    seen = {(r.method, urlsplit(r.target).path, urlsplit(r.target).query, dict(r.headers).get("x-tester"))
            for r in sim.mesh.records}
    assert seen == {("GET", "/reviews/0", "debug=0", "yes"),  # rule 0: exact path, header and query
                    ("GET", "/reviews/0", "", None),  # rule 1: its regex, without rule 0's header
                    ("GET", "/", "", None)}  # rule 3: its exact path


def test_probe_config_can_describe_one_rule(run_cli, cluster, tmp_path):
    _, kubeconfig = cluster(with_route(SEVERAL_RULES))
    config = tmp_path / "probes.yaml"
    config.write_text(yaml.safe_dump({"routes": [{"route": "reviews", "rule": "testers", "count": 500},
                                                 {"route": "reviews", "rule": 3, "url": "http://reviews.bookinfo:9080/"}]}))
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "--probe-config", str(config),
                  "-o", "json").json
    testers, regex, exact, _ = checks(doc, "route-split")
    assert "requests: 500, statuses: 200=500" in testers["evidence"]
    assert not any(e.startswith("requests: 500,") for e in regex["evidence"])
    assert "url: http://reviews.bookinfo:9080/" in exact["evidence"]


def test_a_route_on_a_service_of_another_namespace_is_not_probed_as_a_local_one(run_cli, cluster):
    route = copy.deepcopy(SEVERAL_RULES)
    route["spec"]["parentRefs"][0]["namespace"] = "curl"  # a consumer route on curl/reviews, not bookinfo/reviews
    sim, kubeconfig = cluster(with_route(route))
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "-o", "json").json
    assert {c["status"] for c in checks(doc, "route-split")} == {"skip"}
    assert all("namespace curl (a consumer route" in c["message"] for c in checks(doc, "route-split"))
    assert probes(sim) == []


def test_a_rule_no_request_can_reach_is_skipped_and_nothing_is_sent_for_it(run_cli, cluster):
    route = copy.deepcopy(SEVERAL_RULES)
    route["spec"]["rules"] = [{"matches": [{"path": {"type": "RegularExpression", "value": "/(?=x)x"}}],
                               "backendRefs": SEVERAL_RULES["spec"]["rules"][0]["backendRefs"]}]
    sim, kubeconfig = cluster(with_route(route))
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "-o", "json").json
    (split,) = checks(doc, "route-split")
    assert split["status"] == "skip" and "look-around, which RE2 (Envoy's engine) rejects" in split["message"]
    assert probes(sim) == []


# -- 10.5: a client that can do the job ------------------------------------------------------------


def test_clients_without_curl_are_passed_over_and_asked_only_once(run_cli, cluster):
    sim, kubeconfig = cluster("bookinfo")
    curl_only_where_istio_ships_it(sim)
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing,authorization", "-o", "json").json
    (split,) = checks(doc, "route-split")
    assert split["status"] == "pass"
    assert any(e.startswith("client: bookinfo/ratings-v1-") for e in split["evidence"])  # the namespace's own
    asked = versions_asked(sim)
    assert len(asked) == len(set(asked))  # once per pod for the whole run, across checks
    assert [p.split("-")[0] for p in asked][:2] == ["details", "productpage"]  # asked, refused, passed over
    assert all(r.path.split("/")[-2].startswith(("ratings", "curl")) for r in probes(sim))
    assert {c["status"] for c in doc["checks"]} == {"pass"}


def test_no_client_with_curl_is_inconclusive_with_the_command_that_deploys_one(run_cli, cluster):
    sim, kubeconfig = cluster("bookinfo")
    curl_only_where_istio_ships_it(sim, extra_without=("ratings-v1", "curl"))
    result = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "-o", "json", expect=4)
    (split,) = checks(result.json, "route-split")
    assert split["status"] == "inconclusive" and split["hint"] == DEPLOY_CURL
    assert "has no curl" in split["message"] and DEPLOY_CURL in split["message"]
    assert probes(sim) == []  # never a routing verdict from a client that could not send
    table = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", expect=4).stdout
    assert f"hint: {DEPLOY_CURL}" in table


def test_the_hint_deploys_istios_real_curl_sample():
    sample = [d for d in yaml.safe_load_all((FIXTURES / "traffic-curl.yaml").read_text()) if d]
    assert CURL_SAMPLE_URL.endswith("/samples/curl/curl.yaml")
    (account,) = [d for d in sample if d["kind"] == "ServiceAccount"]
    (deployment,) = [d for d in sample if d["kind"] == "Deployment"]
    assert account["metadata"]["name"] == CURL_SAMPLE_ACCOUNT  # the identity authz hints count on
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == CURL_SAMPLE_ACCOUNT
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].startswith(IMAGES_WITH_CURL[1])


def test_a_named_client_without_curl_is_inconclusive_not_a_routing_failure(run_cli, cluster):
    sim, kubeconfig = cluster("bookinfo")
    curl_only_where_istio_ships_it(sim)
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "--client", "deploy/productpage-v1",
                  "-o", "json", expect=4).json
    (split,) = checks(doc, "route-split")
    assert split["status"] == "inconclusive" and 'container "productpage"' in split["message"]
    assert split["hint"] == DEPLOY_CURL and probes(sim) == []


# -- 13.7: --client is honoured by the authorization probes -----------------------------------------


def test_client_flag_drives_the_authorization_probes_it_fits(run_cli, cluster):
    sim, kubeconfig = cluster("bookinfo")
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "authorization", "--client", "curl/deploy/curl",
                  "-o", "json").json
    for check_id in ("authz-allowed", "authz-denied-method"):
        (check,) = checks(doc, check_id)
        assert check["status"] == "pass" and any(e.startswith("client: curl/curl-") for e in check["evidence"])
    (denied,) = checks(doc, "authz-denied-principal")
    assert denied["status"] == "skip" and "runs as curl/curl" in denied["message"]
    assert {r.path.split("/")[-2].split("-")[0] for r in probes(sim)} == {"curl"}


def test_a_client_outside_the_policy_is_used_for_the_denial_only(run_cli, cluster):
    sim, kubeconfig = cluster("bookinfo")
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "authorization", "--client", "deploy/ratings-v1",
                  "-o", "json").json
    (denied,) = checks(doc, "authz-denied-principal")
    assert denied["status"] == "pass" and any(e.startswith("client: bookinfo/ratings-v1-") for e in denied["evidence"])
    assert {c["status"] for c in checks(doc, "authz-allowed") + checks(doc, "authz-denied-method")} == {"skip"}


def test_no_allowed_client_with_curl_points_at_the_namespace_the_policy_allows(run_cli, cluster):
    """productpage-waypoint allows only cluster.local/ns/curl/sa/curl: the sample deployed there fits."""
    sim, kubeconfig = cluster("bookinfo")
    curl_only_where_istio_ships_it(sim, extra_without=("curl",))
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "authorization", "-o", "json", expect=4).json
    for check_id in ("authz-allowed", "authz-denied-method"):
        (check,) = checks(doc, check_id)
        assert check["status"] == "inconclusive" and check["hint"] == f"kubectl apply -n curl -f {CURL_SAMPLE_URL}"
        assert "running as an allowed principal" in check["message"]
    (denied,) = checks(doc, "authz-denied-principal")  # ratings in bookinfo has curl and is not allowed
    assert denied["status"] == "pass" and any(e.startswith("client: bookinfo/ratings-v1-") for e in denied["evidence"])


def test_where_the_curl_sample_would_not_fit_the_policy_no_sample_is_suggested(run_cli, cluster):
    policy = {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
              "metadata": {"name": "productpage-waypoint", "namespace": "bookinfo"},
              "spec": {"targetRefs": [{"kind": "Service", "group": "", "name": "productpage"}], "action": "ALLOW",
                       "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/bookinfo/sa/bookinfo-details"]}}],
                                  "to": [{"operation": {"methods": ["GET"]}}]}]}}
    sim, kubeconfig = cluster(Scenario.from_dict({
        "name": "details-only", "description": "only details may call productpage", "base": "bookinfo",
        "remove": [{"kind": "AuthorizationPolicy", "namespace": "bookinfo", "name": "productpage-waypoint"}],
        "objects": [policy]}))
    curl_only_where_istio_ships_it(sim)  # details has no curl, and the sample would run as curl, not details
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "authz-allowed", "-o", "json", expect=4).json
    (allowed,) = checks(doc, "authz-allowed")
    assert allowed["status"] == "inconclusive" and "has no curl" in allowed["message"]
    assert "name one in --probe-config" in allowed["message"] and "kubectl apply" not in allowed["hint"]


# -- 12.5 and 12.6: one alpha for the run; a rejection is final ---------------------------------------


def test_route_probes_share_the_run_alpha(run_cli, tmp_path):
    from kubectl_waypoint.sim import generate_routes_scenario

    with SimCluster(generate_routes_scenario(waypoints=1, routes=4)) as sim:
        kubeconfig = sim.write_kubeconfig(str(tmp_path / "k"), namespace="bookinfo")
        doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "--alpha", "0.002", "-o", "json").json
        asked = versions_asked(sim)
    assert len(asked) == len(set(asked)) >= 1  # four concurrent probes, each pod asked for curl once
    splits = checks(doc, "route-split")
    assert len(splits) == 4 and {c["status"] for c in splits} == {"pass"}
    for split in splits:
        assert "alpha: 0.0005 (family-wise 0.002 over 4 route probes, Bonferroni)" in split["evidence"]


def test_a_failed_split_hints_the_probe_command_that_reproduces_it(run_cli, cluster):
    route = copy.deepcopy(SEVERAL_RULES)
    route["spec"]["rules"] = route["spec"]["rules"][:1]  # the testers' rule: exact path, header, query
    sim, kubeconfig = cluster(with_route(route, mesh={"splitIgnored": True}))
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "-o", "json", expect=1).json
    (split,) = checks(doc, "route-split")
    assert split["status"] == "fail" and split["hint"].startswith("reproduce it: kubectl waypoint probe -n bookinfo ")
    argv = shlex.split(split["hint"].removeprefix("reproduce it: "))
    assert argv[argv.index("-H") + 1] == "x-tester: yes" and "--expect-split" in argv
    again = run_cli(*argv[2:], "--kubeconfig", kubeconfig, "-o", "json", expect=1).json  # pasted as it is
    assert again["result"] == "fail" and urlsplit(again["url"]).query == "debug=0"


def test_wait_does_not_redraw_a_rejected_split(run_cli, cluster):
    sim, kubeconfig = cluster("split-ignored")
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "--wait", "30s", "-o", "json",
                  expect=1).json
    (split,) = checks(doc, "route-split")
    assert split["status"] == "fail" and doc["attempts"] == 1
    sent = int(re.search(r"requests: (\d+)", " ".join(split["evidence"])).group(1))
    batches = [int(re.search(r"#\[1-(\d+)\]$", r.exec_argv[r.exec_argv.index("--url") + 1]).group(1))
               for r in probes(sim)]
    assert sum(batches) == sent  # the batches of one sequential run, none drawn again


def test_one_failed_request_in_a_hundred_does_not_fail_the_split(run_cli, cluster):
    """A route check needs 99% availability, not 100%: one 503 in a rollout blip is not a failed upgrade."""
    scenario = Scenario.from_dict({"name": "blip", "description": "one request answered 503", "base": "bookinfo",
                                   "mesh": {"outages": [{"afterRequests": 40, "requests": 1, "answer": "503"}]}})
    _, kubeconfig = cluster(scenario)
    doc = run_cli("verify", "--kubeconfig", kubeconfig, "--only", "routing", "-o", "json").json
    (split,) = checks(doc, "route-split")
    assert split["status"] == "pass" and "503=1" in " ".join(split["evidence"])
    assert "measured by: telemetry (sequential test)" in split["evidence"]
