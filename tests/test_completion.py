"""Shell completion as kubectl drives it: `kubectl __complete waypoint ...` runs kubectl_complete-waypoint."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from kubectl_waypoint.cli import cli, cluster_options
from kubectl_waypoint.completion import (DIRECTIVE_DEFAULT, DIRECTIVE_ERROR, DIRECTIVE_NO_FILE_COMP,
                                         DIRECTIVE_NO_SPACE, complete, register)
from kubectl_waypoint.kube.client import Cluster
from kubectl_waypoint.kube.config import ClusterFlags, resolve_target
from kubectl_waypoint.kube.resources import DEPLOYMENTS, PODS
from kubectl_waypoint.sim import SimCluster

from conftest import kubectl_binary


@pytest.fixture(scope="module")
def bookinfo(tmp_path_factory):
    """The simulated Bookinfo cluster and a kubeconfig for it."""
    folder = tmp_path_factory.mktemp("completion")
    with SimCluster("bookinfo", tls=True) as sim:
        yield sim.write_kubeconfig(str(folder / "kubeconfig"))


def values(words, command=cli):
    return [value for value, _help in complete(command, words).candidates]


def test_commands_are_offered_with_descriptions_and_no_file_names():
    answer = complete(cli, [""])
    names = [value for value, _ in answer.candidates]
    assert {"skew", "demo", "version"} <= set(names)
    assert "__complete" not in names
    assert all(help for _, help in answer.candidates)
    assert answer.directive == DIRECTIVE_NO_FILE_COMP
    assert values(["sk"]) == ["skew"]


def test_flags_complete_after_a_dash():
    assert {"--namespace", "--no-color"} <= set(values(["skew", "--n"]))
    assert all(v.startswith("--n") for v in values(["skew", "--n"]))
    assert values(["skew", "-o", ""]) == ["table", "json", "yaml"]


def test_kubeconfig_lets_the_shell_complete_file_names():
    answer = complete(cli, ["skew", "--kubeconfig", ""])
    assert answer.candidates == () and answer.directive == DIRECTIVE_DEFAULT


def test_contexts_come_from_the_merged_kubeconfig(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("contexts:\n- name: prod\n  context: {cluster: c, user: u}\n"
                     "- name: staging\n  context: {cluster: c, user: u}\n")
    second.write_text("contexts:\n- name: dev\n  context: {cluster: c, user: u}\n")
    monkeypatch.setenv("KUBECONFIG", f"{first}{os.pathsep}{second}")
    assert values(["skew", "--context", ""]) == ["dev", "prod", "staging"]
    assert values(["skew", "--context", "st"]) == ["staging"]
    assert values(["skew", "--kubeconfig", str(second), "--context", ""]) == ["dev"]


def test_namespaces_come_from_the_cluster_chosen_on_the_line(bookinfo):
    assert {"bookinfo", "istio-system", "default"} <= set(values(["skew", "--kubeconfig", bookinfo, "-n", ""]))
    assert values(["skew", "--kubeconfig", bookinfo, "--namespace", "book"]) == ["bookinfo"]


def test_an_unreachable_cluster_offers_nothing_and_says_nothing(tmp_path, capsys):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("clusters:\n- name: gone\n  cluster: {server: 'https://127.0.0.1:1'}\n"
                          "contexts:\n- name: gone\n  context: {cluster: gone, user: ''}\ncurrent-context: gone\n")
    answer = complete(cli, ["skew", "--kubeconfig", str(kubeconfig), "-n", ""])
    assert answer.candidates == () and answer.directive == DIRECTIVE_ERROR
    assert capsys.readouterr().err == ""


@click.command()
@cluster_options(all_namespaces=False)
@click.option("-c", "--container")
@click.argument("client")
@click.argument("url")
def probe_shaped(**_kwargs):
    """Stands in for `probe CLIENT URL -c CONTAINER`: completers are attached by parameter name."""


def _bookinfo_names(kubeconfig, resource):
    cluster = Cluster(resolve_target(ClusterFlags(kubeconfig=kubeconfig)))
    return sorted(item["metadata"]["name"] for item in cluster.list(resource, "bookinfo"))


def test_probe_clients_are_pods_and_deployments_of_the_namespace(bookinfo):
    line = ["--kubeconfig", bookinfo, "-n", "bookinfo"]
    pods = _bookinfo_names(bookinfo, PODS)
    offered = values([*line, ""], probe_shaped)
    assert offered == pods + ["pod/", "deploy/"]
    assert values([*line, "deploy/rev"], probe_shaped) == [
        f"deploy/{name}" for name in _bookinfo_names(bookinfo, DEPLOYMENTS) if name.startswith("rev")]
    product_page = next(p for p in pods if p.startswith("productpage-"))
    assert values([*line, "pod/product"], probe_shaped) == [f"pod/{product_page}"]
    answer = complete(probe_shaped, [*line, "dep"])
    assert [v for v, _ in answer.candidates] == ["deploy/"]
    assert answer.directive == DIRECTIVE_NO_FILE_COMP | DIRECTIVE_NO_SPACE


def test_containers_are_those_of_the_client_on_the_line(bookinfo):
    line = ["--kubeconfig", bookinfo, "-n", "bookinfo"]
    ratings = next(p for p in _bookinfo_names(bookinfo, PODS) if p.startswith("ratings-"))
    assert values([*line, ratings, "-c", ""], probe_shaped) == ["ratings"]
    assert values([*line, "deploy/reviews-v2", "-c", ""], probe_shaped) == ["reviews"]


def test_register_adds_a_hidden_cobra_style_complete_command():
    group = click.Group("waypoint", commands={"skew": cli.commands["skew"]})
    register(group)
    register(group)  # idempotent
    result = CliRunner().invoke(group, ["__complete", "skew", "-o", "y"])
    assert result.exit_code == 0
    assert result.output == "yaml\n:4\n"
    assert "__complete" not in CliRunner().invoke(group, ["--help"]).output


@pytest.fixture
def plugin_path(tmp_path):
    """A PATH holding only the plugin and its completion hook, as they run from a source install."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, module in (("kubectl-waypoint", "kubectl_waypoint.__main__"),
                         ("kubectl_complete-waypoint", "kubectl_waypoint.completion")):
        script = folder / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "import sys; from {module} import main; '
                          f'sys.exit(main())" "$@"\n')
        script.chmod(0o755)
    return str(folder)


def kubectl_complete(path: str, *words: str) -> tuple[list[str], str]:
    """What `kubectl __complete waypoint WORDS...` prints: candidate lines, then the directive line."""
    result = subprocess.run([kubectl_binary(), "__complete", "waypoint", *words], capture_output=True, text=True,
                            env={**os.environ, "PATH": path}, timeout=60, check=True)
    lines = result.stdout.splitlines()
    return lines[:-1], lines[-1]


def test_real_kubectl_asks_the_plugin_for_commands_and_flags(plugin_path):
    candidates, directive = kubectl_complete(plugin_path, "sk")
    assert [c.split("\t")[0] for c in candidates] == ["skew"]
    assert directive == f":{DIRECTIVE_NO_FILE_COMP}"
    candidates, _ = kubectl_complete(plugin_path, "skew", "--all")
    assert [c.split("\t")[0] for c in candidates] == ["--all-namespaces"]


def test_real_kubectl_completes_namespaces_of_the_simulated_cluster(plugin_path, bookinfo):
    candidates, directive = kubectl_complete(plugin_path, "skew", "--kubeconfig", bookinfo, "-n", "istio")
    assert candidates == ["istio-system"]
    assert directive == f":{DIRECTIVE_NO_FILE_COMP}"


def test_a_second_tab_through_kubectl_is_answered_without_asking_the_cluster(plugin_path, tmp_path):
    """(The Cloud SDK's kubectl dispatcher sends its own GET /version: only lists are counted.)"""
    with SimCluster("bookinfo", tls=True) as sim:
        kubeconfig = sim.write_kubeconfig(str(tmp_path / "kubeconfig"), namespace="bookinfo")

        def lists():
            return [r.resource for r in sim.requests if r.verb == "list"]

        first = kubectl_complete(plugin_path, "verify", "--kubeconfig", kubeconfig, "-n", "")
        assert "bookinfo" in first[0] and lists() == ["namespaces"]
        assert kubectl_complete(plugin_path, "verify", "--kubeconfig", kubeconfig, "-n", "") == first
        assert kubectl_complete(plugin_path, "probe", "--kubeconfig", kubeconfig, "--route", "") == (
            ["reviews"], f":{DIRECTIVE_NO_FILE_COMP}")
        assert kubectl_complete(plugin_path, "probe", "--kubeconfig", kubeconfig, "--route", "rev") == (
            ["reviews"], f":{DIRECTIVE_NO_FILE_COMP}")
        assert lists() == ["namespaces", "httproutes"]


# -- every flag value a user types (issue 13) -------------------------------------------------------

def test_routes_complete_in_the_namespace_on_the_line_or_the_one_typed(bookinfo):
    assert values(["probe", "--kubeconfig", bookinfo, "-n", "bookinfo", "--route", ""]) == ["reviews"]
    assert values(["probe", "--kubeconfig", bookinfo, "--route", "bookinfo/re"]) == ["bookinfo/reviews"]
    assert values(["probe", "--kubeconfig", bookinfo, "-n", "curl", "--route", ""]) == []


def test_check_names_complete_for_only_skip_and_explain():
    from kubectl_waypoint.checks.catalogue import load_catalogue

    catalogue = load_catalogue()
    assert values(["verify", "--only", ""]) == sorted([c.id for c in catalogue.categories]
                                                      + [c.id for c in catalogue.checks])
    assert values(["verify", "--skip", "routing,authz-den"]) == ["routing,authz-denied-method",
                                                                 "routing,authz-denied-principal"]
    answer = complete(cli, ["explain", "waypoint-s"])
    assert answer.candidates == (("waypoint-sync", catalogue.check("waypoint-sync").title),)


def test_output_formats_rbac_commands_and_verify_clients_complete(bookinfo):
    assert values(["verify", "-o", ""]) == ["table", "short", "json", "yaml"]
    assert values(["checks", "-o", "j"]) == ["json"]
    assert {"all", "probe", "skew", "verify"} <= set(values(["rbac", "--command", ""]))
    assert values(["verify", "--kubeconfig", bookinfo, "-n", "bookinfo", "--client", "deploy/rat"]) == [
        "deploy/ratings-v1"]
    assert "waypoint-stale" in values(["demo", "--scenario", "waypoint-s"])
