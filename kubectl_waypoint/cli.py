"""Click wiring: parse flags, call the core, render, return the exit code.

Nothing heavy is imported at module level: `--help` and `version` must start instantly, so the
`kubernetes` client and the simulated cluster are imported inside the commands that need them.
"""

from __future__ import annotations

import functools
import sys

import click

from .errors import ExitCode

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def cluster_options(all_namespaces: bool = True):
    """The kubectl flags every cluster command takes (kubectl passes them through unchanged)."""

    def decorate(command):
        options = [
            click.option("--kubeconfig", metavar="PATH", help="Path to the kubeconfig file to use."),
            click.option("--context", metavar="NAME", help="The kubeconfig context to use."),
            click.option("--cluster", metavar="NAME", help="The kubeconfig cluster to use."),
            click.option("--user", metavar="NAME", help="The kubeconfig user to use."),
            click.option("-n", "--namespace", metavar="NS",
                         help="Namespace (default: the context's namespace, else default)."),
            click.option("--request-timeout", metavar="DURATION", default="0", show_default=True,
                         help="How long to wait for each API request (30s, 1m; 0 = no limit)."),
        ]
        if all_namespaces:
            options.append(click.option("-A", "--all-namespaces", is_flag=True,
                                        help="Look in every namespace."))
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def output_option(*formats: str):
    return click.option("-o", "--output", type=click.Choice(formats), default=formats[0], show_default=True,
                        help="Output format.")


def common_options(command):
    """-v and --no-color work before or after the command name."""
    command = click.option("-v", "--verbose", count=True, expose_value=False, callback=_remember_verbose,
                           help="Debug log on stderr and tracebacks on errors.")(command)
    command = click.option("--no-color", is_flag=True, expose_value=False, callback=_remember_no_color,
                           help="Plain output without colours (NO_COLOR is honoured too).")(command)
    return command


def _remember_verbose(ctx: click.Context, _param, value: int) -> None:
    settings = ctx.ensure_object(dict)
    settings["verbose"] = settings.get("verbose", 0) + value
    if value:
        _configure_logging(settings["verbose"])


def _remember_no_color(ctx: click.Context, _param, value: bool) -> None:
    settings = ctx.ensure_object(dict)
    settings["no_color"] = settings.get("no_color", False) or value


def _configure_logging(level: int) -> None:
    import logging

    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="debug: %(name)s: %(message)s", force=True)
    logging.getLogger("urllib3").setLevel(logging.INFO if level < 2 else logging.DEBUG)


def _settings() -> dict:
    ctx = click.get_current_context()
    merged: dict = {}
    while ctx is not None:
        for key, value in (ctx.obj or {}).items():
            merged.setdefault(key, value)
        ctx = ctx.parent
    return merged


def cluster_flags(kubeconfig, context, cluster, user, namespace, request_timeout):
    from .kube.config import ClusterFlags

    return ClusterFlags(kubeconfig=kubeconfig, context=context, cluster=cluster, user=user,
                        namespace=namespace, request_timeout=request_timeout)


def with_cluster_flags(command):
    """Bundle the kubectl flags into one ClusterFlags argument named `flags`."""

    @functools.wraps(command)
    def wrapper(kubeconfig, context, cluster, user, namespace, request_timeout, **kwargs):
        flags = cluster_flags(kubeconfig, context, cluster, user, namespace, request_timeout)
        return command(flags=flags, **kwargs)

    return wrapper


def emit(text: str) -> None:
    click.echo(text, nl=False)


@click.group(context_settings=CONTEXT_SETTINGS)
@common_options
def cli() -> None:
    """Check that Istio ambient waypoints, ztunnel and istio-cni came through an upgrade intact.

    \b
    Start here without a cluster:   kubectl waypoint demo
    Version skew of the whole mesh: kubectl waypoint skew
    """


@cli.command(context_settings=CONTEXT_SETTINGS)
@cluster_options(all_namespaces=True)
@output_option("table", "json", "yaml")
@common_options
@with_cluster_flags
def skew(flags, all_namespaces: bool, output: str) -> int:
    """Judge every waypoint, ztunnel and istio-cni workload against its control plane.

    The n-1 rule: a data-plane component may run the control plane's minor version or one minor
    behind, never ahead. Without -n, all namespaces are checked.
    """
    from .commands import run_skew

    return run_skew(flags, all_namespaces=all_namespaces, output=output, no_colour=_settings().get("no_color", False))


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--scenario", default="bookinfo", show_default=True, metavar="NAME",
              help="Simulated cluster to start (see --list-scenarios).")
@click.option("--list-scenarios", is_flag=True, help="List the simulated scenarios and exit.")
@click.option("--serve", is_flag=True, help="Keep the simulated cluster running and print the kubeconfig to use.")
@output_option("table", "json", "yaml")
@common_options
def demo(scenario: str, list_scenarios: bool, serve: bool, output: str) -> int:
    """Run the checks against a built-in simulated ambient cluster on loopback."""
    from .demo import list_demo_scenarios, run_demo, serve_demo

    if list_scenarios:
        emit(list_demo_scenarios())
        return ExitCode.OK
    if serve:
        return serve_demo(scenario)
    return run_demo(scenario, output=output, no_colour=_settings().get("no_color", False))


@cli.command(context_settings=CONTEXT_SETTINGS)
@output_option("text", "json", "yaml")
@common_options
def version(output: str) -> int:
    """Print the plugin's own version."""
    from .buildinfo import build_info

    info = build_info()
    if output == "text":
        emit(f"kubectl-waypoint {info['version']} (commit {info['commit']}, {info['python']})\n")
    else:
        from .render.structured import dump

        emit(dump(info, output))
    return ExitCode.OK
