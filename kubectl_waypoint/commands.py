"""Each command's flow: connect, gather, judge, render, and the exit code of the result."""

from __future__ import annotations

import sys

import click

from .errors import ExitCode

RESULT_EXIT_CODES = {"pass": ExitCode.OK, "warn": ExitCode.OK, "fail": ExitCode.FAILED,
                     "inconclusive": ExitCode.INCONCLUSIVE}


def connect(flags):
    """Resolve the kubeconfig like kubectl does and open a read-only cluster client."""
    from .kube.client import Cluster
    from .kube.config import resolve_target

    return Cluster(resolve_target(flags))


def skew_result(cluster, namespace: str | None):
    from .discovery import fetch_inventory
    from .skew import judge_inventory

    return judge_inventory(fetch_inventory(cluster, namespace))


def render_skew_output(result, output: str, no_colour: bool) -> str:
    if output == "table":
        from .render.skew import render_skew
        from .render.text import style_for

        return render_skew(result, style_for(sys.stdout, no_colour))
    from .render.structured import dump
    from .report import skew_report

    return dump(skew_report(result), output)


def run_skew(flags, *, all_namespaces: bool, output: str, no_colour: bool) -> int:
    cluster = connect(flags)
    namespace = cluster.target.namespace if flags.namespace and not all_namespaces else None
    result = skew_result(cluster, namespace)
    click.echo(render_skew_output(result, output, no_colour), nl=False)
    return RESULT_EXIT_CODES[result.result]
