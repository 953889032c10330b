"""`kubectl waypoint demo`: the real commands against the built-in simulated cluster.

The simulated API server is reached exactly like a real one (HTTPS, bearer token, a kubeconfig
written to a temporary folder), so what the demo prints is what the commands print.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading

import click

from .commands import RESULT_EXIT_CODES, conclude, connect, render_skew_output, render_verify_output, skew_result
from .errors import BadInput, ExitCode

DEMO_NAMESPACE = "bookinfo"  # every bundled scenario builds on the Bookinfo mesh


def _scenario(name: str):
    from .sim import load_scenario, scenario_names

    if name not in scenario_names():
        raise BadInput(f'unknown scenario "{name}"; run kubectl waypoint demo --list-scenarios to see them')
    return load_scenario(name)


def demo_scenarios() -> list[tuple[str, str]]:
    """(name, description) of every bundled scenario."""
    from .sim import load_scenario, scenario_names

    return [(name, load_scenario(name).description) for name in scenario_names()]


def list_demo_scenarios() -> str:
    scenarios = demo_scenarios()
    width = max(len(name) for name, _ in scenarios)
    return "".join(f"{name.ljust(width)}   {description}\n" for name, description in scenarios)


def run_demo(scenario_name: str, *, output: str, no_colour: bool) -> int:
    """skew for the whole mesh, then verify for the Bookinfo namespace, as a user would run them."""
    from .checks.catalogue import load_catalogue
    from .checks.facts import VerifyFacts, VerifyOptions
    from .checks.judges import JUDGES
    from .checks.runner import run_until, worst
    from .kube.config import ClusterFlags
    from .render.sentences import skew_sentence, verify_sentence
    from .report import probe_report, report_origin, skew_report, verify_report
    from .sim import SimCluster

    scenario = _scenario(scenario_name)
    catalogue = load_catalogue()
    with tempfile.TemporaryDirectory(prefix="kubectl-waypoint-demo-") as folder, SimCluster(scenario, tls=True) as sim:
        kubeconfig = sim.write_kubeconfig(os.path.join(folder, "kubeconfig"), namespace=DEMO_NAMESPACE)
        cluster = connect(ClusterFlags(kubeconfig=kubeconfig))
        skew = skew_result(cluster, None)
        verify = run_until(catalogue, list(catalogue.checks),
                           lambda: VerifyFacts(cluster, DEMO_NAMESPACE, VerifyOptions()), JUDGES, 0)
        probe = _probe_other_application(cluster, scenario)
        origin = report_origin(cluster.target)
    result = worst([skew.result, verify.result] + ([probe.verdict.result] if probe else []))
    if output == "table":
        click.echo(f"Simulated cluster: {scenario.name} - {scenario.description}\n")
        click.echo("$ kubectl waypoint skew")
        click.echo(render_skew_output(skew, output, no_colour))
        click.echo(f"$ kubectl waypoint verify -n {DEMO_NAMESPACE}")
        click.echo(render_verify_output(verify, catalogue, DEMO_NAMESPACE, output, no_colour), nl=False)
        if probe:
            from .render.probe import render_probe
            from .render.text import style_for

            click.echo(f"\n$ {' '.join(OTHER_APPLICATION_PROBE)}")
            click.echo(render_probe(probe, style_for(sys.stdout, no_colour)), nl=False)
    else:
        from .render.structured import dump

        document = {"apiVersion": "kubectl-waypoint/v1", "kind": "DemoReport", "scenario": scenario.name,
                    "result": result, **origin,
                    "reports": [skew_report(skew, origin), verify_report(verify, DEMO_NAMESPACE, origin)]
                    + ([probe_report(probe, origin)] if probe else [])}
        click.echo(dump(document, output), nl=False)
    code = RESULT_EXIT_CODES[result]
    sentence = verify_sentence(verify, DEMO_NAMESPACE) if RESULT_EXIT_CODES[verify.result] == code \
        else skew_sentence(skew)
    return conclude(code, f"the simulated cluster {scenario.name}: {sentence}")


# An application that names no backend in its answers: only the waypoint's telemetry can say who served.
OTHER_APPLICATION = ("httpbin", "httpbin")  # namespace, HTTPRoute
OTHER_APPLICATION_PROBE = ("kubectl", "waypoint", "probe", "-n", "curl", "deploy/curl", "http://httpbin.httpbin:8000/get",
                           "--route", "httpbin/httpbin")


def _probe_other_application(cluster, scenario):
    """The split of the non-Bookinfo application, measured by its waypoint's telemetry; None when the
    scenario has no such application (or it cannot be probed: the verify above says why)."""
    from .errors import WaypointError
    from .probe.engine import fetch_route_weights, resolve_client, run_probe
    from .probe.expectations import Expectation
    from .probe.sequential import DEFAULT_SPLIT_MIN_AVAILABILITY
    from .probe.telemetry import TelemetryUnavailable, for_route

    namespace, route = OTHER_APPLICATION
    if not scenario.find("HTTPRoute", namespace, route):
        return None
    try:
        expectation = Expectation.split(fetch_route_weights(cluster, namespace, route))
        client = resolve_client(cluster, "curl", "deploy/curl")
        try:
            telemetry = for_route(cluster, namespace, route, client.workload, client.namespace, expectation.shares)
        except TelemetryUnavailable:
            telemetry = None  # the probe then reads the bodies, and its report says so
        return run_probe(cluster, client, OTHER_APPLICATION_PROBE[6], expectation, telemetry=telemetry,
                         min_availability=DEFAULT_SPLIT_MIN_AVAILABILITY)
    except WaypointError:
        return None


def serve_demo(scenario_name: str, *, stop: threading.Event | None = None) -> int:
    """Keep the simulated cluster up until Ctrl-C, SIGTERM (or `stop`), for trying the other commands.

    Either way the kubeconfig (it holds the cluster's token) and its folder are removed.
    """
    from .sim import SimCluster

    scenario = _scenario(scenario_name)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    folder = tempfile.mkdtemp(prefix="kubectl-waypoint-demo-")
    try:
        with SimCluster(scenario, tls=True) as sim:
            kubeconfig = sim.write_kubeconfig(os.path.join(folder, "kubeconfig"))
            click.echo(
                f"Simulated cluster \"{scenario.name}\" is serving at {sim.url}\n"
                f"Use it from another terminal:\n"
                f"  export KUBECONFIG={kubeconfig}\n"
                f"  kubectl waypoint skew\n"
                f"  kubectl waypoint verify -n {DEMO_NAMESPACE}\n"
                f"  kubectl waypoint probe -n curl deploy/curl http://productpage.bookinfo:9080/productpage "
                f"--expect-status 200\n"
                f"  kubectl get pods -A\n"
                f"Press Ctrl-C to stop."
            )
            sys.stdout.flush()
            while not stop.wait(0.5):  # a timed wait, so that the signal handler runs promptly
                pass
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return ExitCode.OK


def watch_demo(*, output: str, no_colour: bool, report_file: str | None = None, pace: float = 1.0) -> int:
    """`kubectl waypoint watch` following a whole simulated upgrade (about half a minute at pace 1)."""
    from .kube.config import ClusterFlags
    from .sim import SimCluster
    from .sim.timeline import TO_TAG, upgrade_timeline
    from .watch import mesh_sources, run_watch, watch_settings

    folder = tempfile.mkdtemp(prefix="kubectl-waypoint-demo-")
    with SimCluster("bookinfo", tls=True) as sim:
        kubeconfig = sim.write_kubeconfig(os.path.join(folder, "kubeconfig"), namespace=DEMO_NAMESPACE)
        timeline = upgrade_timeline(sim, pace=pace, waypoint_outage=3.0 * pace)
        if output == "table":
            click.echo(f"Simulated cluster: an upgrade to {TO_TAG}: istiod, istio-cni and ztunnel node by node, then "
                       f"the waypoint, which drops traffic for {3.0 * pace:g}s while it is replaced\n"
                       f"$ kubectl waypoint watch -n {DEMO_NAMESPACE} --target-version {TO_TAG} --interval 250ms\n")
        timeline.play_when(lambda: timeline.watchers() >= len(mesh_sources(DEMO_NAMESPACE)))
        settings_for, options = watch_settings(target_version=TO_TAG, timeout="2m", max_outage=None,
                                               interval="250ms")
        try:
            return run_watch(ClusterFlags(kubeconfig=kubeconfig), settings_for=settings_for, output=output,
                             report_file=report_file, no_colour=no_colour, verify_options=options)
        finally:
            timeline.stop()
            shutil.rmtree(folder, ignore_errors=True)
