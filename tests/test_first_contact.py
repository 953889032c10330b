"""What a first-time user meets (issue 13): which namespace, a missing namespace, Ctrl-C,
stopping `demo --serve`, `--version`, plurals, and where a report came from."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET

import pytest

from conftest import one_line_error
from kubectl_waypoint.sim import SimCluster

STATIC = ("--skip", "routing,authorization")


@pytest.fixture(scope="module")
def bookinfo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kube")
    with SimCluster("bookinfo") as sim:
        sim.kubeconfigs = {namespace: sim.write_kubeconfig(str(folder / f"config-{namespace}"), namespace=namespace)
                           for namespace in ("bookinfo", None)}
        yield sim


def test_verify_without_n_or_a_context_namespace_says_which_namespace_it_checks(run_cli, bookinfo):
    result = run_cli("verify", "--kubeconfig", bookinfo.kubeconfigs[None], *STATIC, expect=None)
    assert result.stderr.splitlines()[0] == ('checking namespace "default": no -n given and the context sets no '
                                             "other; pass -n NAMESPACE to check another")
    assert "verify -n default:" in result.stdout
    quiet = run_cli("verify", "--kubeconfig", bookinfo.kubeconfigs["bookinfo"], *STATIC)
    assert "checking namespace" not in quiet.stderr  # the context chose it: nothing to explain


def test_verify_of_a_namespace_that_does_not_exist_is_one_sentence(run_cli, bookinfo):
    result = run_cli("verify", "--kubeconfig", bookinfo.kubeconfigs["bookinfo"], "-n", "nosuch", expect=1)
    assert result.stdout == ""
    assert one_line_error(result.stderr) == ('error: namespace "nosuch" does not exist in context simulated; '
                                             "kubectl get namespaces lists them, pass the right one with -n")
    doc = run_cli("verify", "--kubeconfig", bookinfo.kubeconfigs["bookinfo"], "-n", "nosuch", "-o", "json",
                  expect=1).json  # scripts still get the report
    assert any(c["id"] == "namespace-exists" and c["status"] == "fail" for c in doc["checks"])


def test_version_flag_and_command_agree(run_cli):
    flag = run_cli("--version").stdout
    assert re.fullmatch(r"kubectl-waypoint v\d+\.\d+\.\d+ \(commit .+, Python [\d.]+\)\n", flag)
    assert flag == run_cli("version").stdout


def test_reports_say_when_against_what_and_by_which_build(run_cli, bookinfo):
    kubeconfig = bookinfo.kubeconfigs["bookinfo"]
    documents = [run_cli("skew", "--kubeconfig", kubeconfig, "-o", "json").json,
                 run_cli("verify", "--kubeconfig", kubeconfig, *STATIC, "-o", "json").json,
                 run_cli("probe", "--kubeconfig", kubeconfig, "-n", "curl", "deploy/curl",
                         "http://productpage.bookinfo:9080/productpage", "--count", "3", "-o", "yaml").yaml]
    version = run_cli("version", "-o", "json").json
    for doc in documents:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["generatedAt"]), doc["kind"]
        assert (doc["context"], doc["server"]) == ("simulated", bookinfo.url)
        assert doc["pluginVersion"] == f"{version['version']} ({version['commit']})"


def test_plurals_read_right(run_cli, tmp_path):
    with SimCluster("waypoint-not-rolled") as sim:
        kubeconfig = sim.write_kubeconfig(str(tmp_path / "config"), namespace="bookinfo")
        out = run_cli("verify", "--kubeconfig", kubeconfig, *STATIC).stdout
    assert re.search(r"\(1 warning, \d+ passed", out), out.splitlines()[-1]


# -- Ctrl-C and SIGTERM, sent to a real process -------------------------------------------------------

def block_istiod_exec(sim: SimCluster, entered: threading.Event):
    """Hold the exec into istiod (the sync status) open until the client goes away."""

    def handler(request, streams):
        if request.container != "discovery":
            return sim.default_exec_handler(request, streams)
        entered.set()
        streams.wait_closed(30)
        return 1

    return handler


def test_ctrl_c_prints_the_partial_report_and_exits_130(tmp_path):
    entered = threading.Event()
    junit = tmp_path / "junit.xml"
    with SimCluster("bookinfo") as sim:
        kubeconfig = sim.write_kubeconfig(str(tmp_path / "config"), namespace="bookinfo")
        sim.set_exec_handler(block_istiod_exec(sim, entered))
        process = subprocess.Popen([sys.executable, "-m", "kubectl_waypoint", "verify", "--kubeconfig", kubeconfig,
                                    *STATIC, "--junit-file", str(junit)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        try:
            assert entered.wait(60), "verify never reached the sync status"
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
        finally:
            process.kill()
    assert process.returncode == 130, err
    assert "√ istiod runs in the cluster" in out and "√ the namespace exists" in out  # judged before Ctrl-C
    assert "istiod's sync status can be read" not in out  # the check Ctrl-C stopped is not made up
    assert "interrupted, partial report" in out.splitlines()[-1]
    assert one_line_error(err).startswith("error: interrupted (Ctrl-C) after ")
    errors = list(ET.parse(junit).getroot().iter("error"))
    assert errors and "interrupted" in errors[-1].get("message")


def test_demo_serve_removes_its_kubeconfig_on_sigterm():
    process = subprocess.Popen([sys.executable, "-m", "kubectl_waypoint", "demo", "--serve"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        kubeconfig = None
        for line in process.stdout:
            if line.startswith("  export KUBECONFIG="):
                kubeconfig = line.split("=", 1)[1].strip()
                break
        assert kubeconfig and os.path.exists(kubeconfig)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0
    assert not os.path.exists(os.path.dirname(kubeconfig)), "the kubeconfig (with its token) was left behind"
