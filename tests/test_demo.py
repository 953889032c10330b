"""`kubectl waypoint demo`: the real reports from the simulated cluster, for a new user."""

from __future__ import annotations

import threading
import time

from conftest import one_line_error


def test_demo_runs_the_checks_on_bookinfo(run_cli):
    out = run_cli("demo").stdout
    assert out.startswith("Simulated cluster: bookinfo - ")
    assert "$ kubectl waypoint skew" in out
    assert "1.28.6-asm-r3" in out and "result: pass" in out
    assert "$ kubectl waypoint verify -n bookinfo" in out and "verify -n bookinfo: pass" in out


def test_demo_measures_an_application_that_names_no_backend_by_the_waypoints_telemetry(run_cli):
    out = run_cli("demo").stdout
    probe = out.split("$ kubectl waypoint probe -n curl deploy/curl http://httpbin.httpbin:8000/get "
                      "--route httpbin/httpbin\n", 1)[1]
    assert "who served measured by telemetry" in probe and "result: pass" in probe
    assert "httpbin-v1" in probe and "httpbin-v2" in probe


def test_demo_broken_scenario_shows_the_failure_and_exit_code(run_cli):
    out = run_cli("demo", "--scenario", "ztunnel-ahead", expect=1).stdout
    assert "ahead of control plane 1.28" in out
    assert "× ztunnel is within one minor of its control plane, never ahead" in out


def test_demo_shows_verify_failures_of_the_mesh(run_cli):
    out = run_cli("demo", "--scenario", "authz-not-enforced", expect=1).stdout
    assert "UNEXPECTED SUCCESS" in out


def test_demo_json_wraps_the_real_reports(run_cli):
    doc = run_cli("demo", "-o", "json").json
    assert doc["kind"] == "DemoReport" and doc["result"] == "pass"
    assert [r["kind"] for r in doc["reports"]] == ["SkewReport", "VerifyReport", "ProbeReport"]
    assert (doc["reports"][2]["measuredBy"], doc["reports"][2]["test"]) == ("telemetry", "sequential")


def test_list_scenarios_names_every_bundled_scenario(run_cli):
    from kubectl_waypoint.sim import scenario_names

    out = run_cli("demo", "--list-scenarios").stdout
    assert [line.split()[0] for line in out.splitlines()] == scenario_names()


def test_unknown_scenario_is_bad_input(run_cli):
    line = one_line_error(run_cli("demo", "--scenario", "nope", expect=2).stderr)
    assert '"nope"' in line and "--list-scenarios" in line


def test_serve_prints_a_kubeconfig_that_works(run_cli, capsys):
    from kubectl_waypoint.demo import serve_demo

    stop = threading.Event()
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("code", serve_demo("bookinfo", stop=stop)))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        text = ""
        while "export KUBECONFIG=" not in text and time.monotonic() < deadline:
            time.sleep(0.05)
            text += capsys.readouterr().out
        kubeconfig = text.split("export KUBECONFIG=", 1)[1].split()[0]
        assert run_cli("skew", "--kubeconfig", kubeconfig, "-o", "json").json["result"] == "pass"
    finally:
        stop.set()
        thread.join(10)
    assert outcome["code"] == 0
